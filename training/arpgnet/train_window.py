"""Stage D: a window head for faces that move, on the shipped encoder's embeddings.

The encoder is read back from the shipped ONNX file (`arpgnet.from_onnx`) and stays
frozen, flip-averaged as it runs live. The head (new, the paper's 1e-3) keeps the
fusion graph and its TRS band and pools with recency attention; it is trained on the
windows of `arpgnet.dynamics` (still, onset, offset, change) whose label is what the
face shows at the newest frame. A temperature is then fitted on one half of FER2013
val (even rows) and the expected calibration error reported on the other half.

  python -m arpgnet.train_window --encoder-onnx ../models/arpgnet-edge.encoder.onnx --out runs/window
  python -m arpgnet.train_window ... --folds 5      # CK+48 per subject fold (see RESULTS for what it can mean)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from . import clips
from .common import ROOT, commit, save, shared_dir
from .data import subject_folds
from .dynamics import Mix
from .onnx_import import load_onnx_encoder, load_onnx_head
from .metrics import summarise
from .windows import banks, calibrate, fer_val_logits, fit, logits_of, moving_val


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--encoder-onnx", default=str(ROOT / "models" / "arpgnet-edge.encoder.onnx"))
    ap.add_argument("--out", default=str(ROOT / "training" / "runs" / "window"))
    ap.add_argument("--shared", default=None)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-images", type=int, default=12000, help="FER2013 train faces in the bank (0 = all)")
    ap.add_argument("--sequences", type=int, default=6, help="times each CK+48 sequence is a target per epoch")
    ap.add_argument("--still", type=float, default=Mix.still, help="share of still windows (the rest move)")
    ap.add_argument("--balance", default="items", choices=["items", "mass"],
                    help="class weights from the items' labels (1.2.0) or from the windows' soft-target mass")
    ap.add_argument("--init-head", default=None,
                    help="start from a trained head (ONNX, e.g. 1.1.0's stage-C head) instead of a new one")
    ap.add_argument("--lr", type=float, default=1e-3,
                    help="1e-3 for a new head (the paper's rate for new layers), 1e-4 for one that starts trained")
    ap.add_argument("--pooling", default="recency", choices=["recency", "mean"])
    ap.add_argument("--mode", default="fusion", choices=["fusion", "appearance", "relation", "concat"],
                    help="ablations: one branch alone, or both concatenated without the fusion graph")
    ap.add_argument("--no-trs", action="store_true", help="ablation: the fusion graph without the TRS band")
    ap.add_argument("--folds", type=int, default=0, help="k > 0: CK+48 subject folds, a head per fold")
    ap.add_argument("--results", default=None, help="write the measurements as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    _, enc_cfg, _ = load_onnx_encoder(Path(args.encoder_onnx))
    cfg = enc_cfg.replace(pooling=args.pooling, mode=args.mode, use_trs=not args.no_trs)
    mix = Mix(still=args.still)
    init = None
    if args.init_head:
        start, start_cfg, _ = load_onnx_head(Path(args.init_head))
        if (start_cfg.labels, start_cfg.window) != (cfg.labels, cfg.window):
            raise SystemExit(f"{args.init_head}: another label set or window than the encoder's head")
        init = start.state_dict()
    fer, val, seqs = banks(Path(args.encoder_onnx), shared_dir(args.shared), cfg, args.train_images)
    result: dict = {"command": "python3 -m arpgnet.train_window " + " ".join(argv or __import__("sys").argv[1:]),
                    "seed": args.seed, "commit": commit(), "mix": mix.__dict__}
    if args.folds:
        fold_of = np.array(subject_folds(seqs.subjects, args.folds))
        truth, pred = [], []
        for f in range(args.folds):
            head = fit(cfg, fer, seqs, np.nonzero(fold_of != f)[0], args.epochs, args.seed + f, args.sequences, mix,
                       balance=args.balance, lr=args.lr, init=init)
            idx = np.nonzero(fold_of == f)[0]
            a, r = clips.sequence_clips(seqs, idx, cfg.window, None)
            p = logits_of(head, a, r).argmax(1)
            acc = float((p == seqs.labels[idx]).mean())
            print(json.dumps({"fold": f + 1, "n": len(idx), "accuracy": acc}), flush=True)
            truth.append(seqs.labels[idx]), pred.append(p)
        result["ckplus48_folds"] = summarise(np.concatenate(truth), np.concatenate(pred), list(cfg.labels))
        print(json.dumps({"ckplus48_folds_accuracy": result["ckplus48_folds"]["accuracy"],
                          "uar": result["ckplus48_folds"]["uar"]}))
    else:
        head = fit(cfg, fer, seqs, np.arange(len(seqs.labels)), args.epochs, args.seed, args.sequences, mix,
                   balance=args.balance, lr=args.lr, init=init)
        z = fer_val_logits(head, val, cfg)
        result["fer2013_val"] = summarise(val.labels, z.argmax(1), list(cfg.labels))
        result["calibration"] = calibrate(z, val.labels)
        result["fer2013_val_onsets"] = moving_val(head, val, cfg)
        print(json.dumps({"fer_val_accuracy": result["fer2013_val"]["accuracy"], "uar": result["fer2013_val"]["uar"],
                          "onsets": result["fer2013_val_onsets"], **result["calibration"]}))
        out = Path(args.out)
        save(out / "head.pt", {"config": cfg.to_json(), "head": head.state_dict(),
                               "temperature": result["calibration"]["temperature"], "fer_val": result["fer2013_val"]})
        print(f"wrote {out / 'head.pt'}")
    if args.results:
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        Path(args.results).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
