"""Stage B: train the window head (parallel graph attention fusion) on T-frame clips.

The encoder from stage A is frozen (its blocks are the "pre-trained" part); the
head is new and trained with the paper's 1e-3. The shipped head sees every
FER2013 training face as a pseudo-clip and every CK+48 sequence.

  python -m arpgnet.train_head --encoder runs/encoder/encoder.pt --out runs/head
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from . import clips
from .common import ROOT, save, shared_dir
from .metrics import summarise
from .heads import load_encoder, fit_head, predict, eval_images, load_banks


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--encoder", default=str(ROOT / "training" / "runs" / "encoder" / "encoder.pt"))
    ap.add_argument("--out", default=str(ROOT / "training" / "runs" / "head"))
    ap.add_argument("--shared", default=None)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="use about N FER images (smoke runs)")
    ap.add_argument("--train-images", type=int, default=0, help="FER2013 train faces in the bank (0 = all)")
    ap.add_argument("--sequences", type=int, default=0,
                    help="times each CK+48 sequence is seen per epoch (0 = none: the head then never saw CK+48, "
                         "so it can start stage C of a subject-independent evaluation)")
    ap.add_argument("--balance", action="store_true", help="weight the loss by (median/count)^0.5 per class")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    _, cfg = load_encoder(Path(args.encoder))
    _, fer, val, seqs = load_banks(Path(args.encoder), shared_dir(args.shared), cfg, args.limit, args.train_images)
    head = fit_head(cfg, fer, np.arange(len(fer.labels)), seqs if args.sequences else None,
                    np.arange(len(seqs.labels)) if args.sequences else np.arange(0), epochs=args.epochs,
                    seed=args.seed, fer_per_epoch=len(fer.labels), seq_repeat=args.sequences, balance=args.balance)
    result = eval_images(head, val, cfg)
    a, r = clips.image_clips(val, np.arange(len(val.labels)), cfg.window, None, flip_average=True)
    flip = summarise(val.labels, predict(head, a, r), list(cfg.labels))
    print(json.dumps({"fer_val_accuracy": result["accuracy"], "uar": result["uar"],
                      "fer_val_flip_average": flip["accuracy"]}))
    out = Path(args.out)
    save(out / "head.pt", {"config": cfg.to_json(), "head": head.state_dict(), "fer_val": result})
    print(f"wrote {out / 'head.pt'}")


if __name__ == "__main__":
    main()
