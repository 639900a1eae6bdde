"""Evaluation and ablations on the frozen stage-A encoder.

For each head variant (ARPGNet fusion, appearance-only, relation-only, concatenation,
TRS off) a window head is trained and measured:
  * FER2013 val (PublicTest): head trained on FER2013 train pseudo-clips + all CK+48
    sequences; each val face is a still clip (the same frame T times).
  * CK+48 subject-independent: K folds split by subject id; per fold the head is
    trained on FER2013 pseudo-clips + the other folds' sequences, and predicts each
    held-out sequence from its three frames.
The fusion head trained for the FER2013 row is saved as the shipped head.

  python -m arpgnet.evaluate --encoder runs/encoder/encoder.pt --out results
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import clips
from .common import ROOT, save, shared_dir
from .data import subject_folds
from .metrics import summarise, write
from .heads import eval_images, eval_sequences, fit_head, load_banks, load_encoder

VARIANTS = {
    "ARPGNet (fusion graph, TRS)": {},
    "appearance only": {"mode": "appearance"},
    "relation only": {"mode": "relation"},
    "concatenation instead of fusion graph": {"mode": "concat"},
    "fusion graph, TRS off": {"use_trs": False},
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--encoder", default=str(ROOT / "training" / "runs" / "encoder" / "encoder.pt"))
    ap.add_argument("--out", default=str(ROOT / "training" / "results"))
    ap.add_argument("--head-out", default=str(ROOT / "training" / "runs" / "head" / "head.pt"))
    ap.add_argument("--shared", default=None)
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--ablation-folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--only", default=None, help="run just this variant (a key of VARIANTS)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    _, base = load_encoder(Path(args.encoder))
    _, fer, val, seqs = load_banks(Path(args.encoder), shared_dir(args.shared), base)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    labels = list(base.labels)
    fer_idx = np.arange(len(fer.labels))
    all_seq = np.arange(len(seqs.labels))
    table: dict[str, dict] = {}
    for name, changes in VARIANTS.items():
        if args.only and name != args.only:
            continue
        main_row = not changes
        cfg = base.replace(**changes)
        t0 = time.time()
        head = fit_head(cfg, fer, fer_idx, seqs, all_seq, epochs=args.epochs, quiet=True)
        fer_res = eval_images(head, val, cfg)
        row = {"fer_val": {k: fer_res[k] for k in ("accuracy", "uar")}}
        if main_row:
            write(fer_res, out / "fer2013-val", "FER2013 val (PublicTest), still clips")
            from .clips import image_clips
            from .heads import predict

            a, r = image_clips(val, np.arange(len(val.labels)), cfg.window, None, flip_average=True)
            flip = summarise(val.labels, predict(head, a, r), labels)
            row["fer_val_flip_average"] = {k: flip[k] for k in ("accuracy", "uar")}
            # still images as jittered pseudo-clips, like the head's training clips
            from .clips import image_bank
            from .data import scan_images

            enc, _ = load_encoder(Path(args.encoder))
            jval = image_bank(enc, scan_images(shared_dir(args.shared) / "data" / "fer2013" / "val", cfg.labels), cfg,
                              ROOT / "training" / "cache", clips.encoder_key(Path(args.encoder)), "fer-val-jitter")
            a, r = image_clips(jval, np.arange(len(jval.labels)), cfg.window, np.random.default_rng(0))
            jit = summarise(jval.labels, predict(head, a, r), labels)
            row["fer_val_jitter_clips"] = {k: jit[k] for k in ("accuracy", "uar")}
            save(Path(args.head_out), {"config": cfg.to_json(), "head": head.state_dict(), "fer_val": fer_res})
        k = args.folds if main_row else args.ablation_folds
        folds = np.array(subject_folds(seqs.subjects, k))
        truth, pred = [], []
        for f in range(k):
            train, test = all_seq[folds != f], all_seq[folds == f]
            h = fit_head(cfg, fer, fer_idx, seqs, train, epochs=args.epochs, seed=f, quiet=True)
            y, p = eval_sequences(h, seqs, test, cfg)
            truth.append(y)
            pred.append(p)
        ck = summarise(np.concatenate(truth), np.concatenate(pred), labels)
        row["ckplus48"] = {"accuracy": ck["accuracy"], "uar": ck["uar"], "folds": k, "sequences": ck["n"]}
        if main_row:
            write(ck, out / "ckplus48-subject-folds", f"CK+48, {k} subject-independent folds (sequences)")
        row["seconds"] = round(time.time() - t0)
        table[name] = row
        print(json.dumps({name: row}), flush=True)
    (out / ("ablations.json" if not args.only else f"ablation-{args.only}.json")).write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
