"""The shipped model's whole recipe per CK+48 subject fold: the clean subject-independent number.

The shipped encoder went through stage C on every CK+48 subject, so a head retrained per
fold over it (`train_window --folds`) has seen the test subjects' faces through the
encoder. Here each fold repeats what built the shipped model from the last point that
never saw CK+48 (the stage-A encoder and the FER2013-only stage-B head):

  stage C on the other folds' subjects -> that encoder exported to ONNX, mirror-averaged,
  as it ships -> stage D's window head on its embeddings with the same subjects'
  sequences -> the held-out subjects' sequences, label at the end.

The stage-A encoder is 1.0.0's shipped encoder (FER2013 train only, frozen in 1.0.0's
stage B), read back with `arpgnet.from_onnx`:

  git show 3b43689:models/arpgnet-edge.encoder.onnx > runs/v1.0.0/arpgnet-edge.encoder.onnx
  python3 -m arpgnet.from_onnx runs/v1.0.0/arpgnet-edge.encoder.onnx --out runs/clean/stage-a.pt
  python3 -m arpgnet.train_head --encoder runs/clean/stage-a.pt --out runs/clean/head-fer --sequences 0
  python3 -m arpgnet.folds --encoder runs/clean/stage-a.pt --head runs/clean/head-fer/head.pt \\
      --results results/clean-ckplus48-folds.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import clips
from .common import ROOT, commit, shared_dir
from .config import ModelConfig
from .data import fold_list, subject_folds
from .dynamics import Mix
from .metrics import summarise
from .onnx_export import export_encoder, metadata
from .stage_c import finetune, predict_clips, stage_c_data
from .windows import banks, fit, logits_of


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", required=True, help="stage-A encoder checkpoint (never saw CK+48)")
    ap.add_argument("--head", required=True, help="stage-B head trained with --sequences 0 (never saw CK+48)")
    ap.add_argument("--shared", default=None)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--only-folds", type=fold_list, default=None, help="comma-separated fold numbers (0-based) to run")
    ap.add_argument("--seed", type=int, default=0, help="fold f uses seed + f in both stages")
    ap.add_argument("--stage-c-epochs", type=int, default=16, help="1.1.0's stage C: 16 epochs")
    ap.add_argument("--fer-ratio", type=float, default=0.5, help="1.1.0's stage C: 0.5 replayed FER2013 clips")
    ap.add_argument("--window-epochs", type=int, default=10, help="stage D as shipped: 10 epochs")
    ap.add_argument("--sequences", type=int, default=12, help="stage D as shipped: each sequence 12 times an epoch")
    ap.add_argument("--train-images", type=int, default=12000, help="stage D as shipped: 12,000 FER2013 faces")
    ap.add_argument("--still", type=float, default=Mix.still, help="stage D's share of still windows (the rest move)")
    ap.add_argument("--balance", default="items", choices=["items", "mass"],
                    help="stage D's class weights: from the items' labels (1.2.0) or the windows' target mass")
    ap.add_argument("--init", default="new", choices=["new", "stage-c"],
                    help="stage D's head starts new (1.2.0) or from the fold's stage-C head (kept in --work)")
    ap.add_argument("--window-lr", type=float, default=1e-3,
                    help="stage D's learning rate: 1e-3 for a new head (the paper's), 1e-4 for one that starts trained")
    ap.add_argument("--work", default=str(ROOT / "training" / "runs" / "clean-folds"),
                    help="per-fold encoders (ONNX) are written here")
    ap.add_argument("--reuse-stage-c", action="store_true",
                    help="take each fold's stage-C encoder (and head) from --work, written by an earlier run of the "
                         "same folds, and only train and measure stage D: for stage-D variants (stage C keeps that "
                         "run's seed; --seed then moves stage D's only)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", default=None, help="write the measurements as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    shared = shared_dir(args.shared)
    ck = torch.load(args.encoder, map_location="cpu")
    cfg = ModelConfig.from_json(ck["config"]).replace(mode="fusion")
    window_cfg = cfg.replace(pooling="recency", mode="fusion", use_trs=True)
    d = stage_c_data(shared, cfg)
    images, frames, labels, subjects = d.images, d.frames, d.labels, d.subjects
    fold_of = np.array(subject_folds(subjects, args.folds))
    only = args.only_folds or list(range(args.folds))
    if not set(only) <= set(range(args.folds)):
        ap.error(f"--only-folds: folds are numbered 0 to {args.folds - 1}")
    names = list(cfg.labels)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"command": "python3 -m arpgnet.folds " + " ".join(argv if argv is not None else sys.argv[1:]),
                    "seed": args.seed, "commit": commit(), "folds": []}
    truth, pred_c, pred_d = [], [], []
    t0 = time.time()
    for f in only:
        train, test = np.nonzero(fold_of != f)[0], np.nonzero(fold_of == f)[0]
        onnx_path, head_c_path = work / f"fold-{f}.encoder.onnx", work / f"fold-{f}.head-c.pt"
        p_c = None
        if args.reuse_stage_c:
            if not onnx_path.exists():
                raise SystemExit(f"--reuse-stage-c: {onnx_path} is missing (run the folds once without it)")
            if args.init == "stage-c" and not head_c_path.exists():
                raise SystemExit(f"--init stage-c: {head_c_path} is missing (run the folds once without --reuse-stage-c)")
        else:
            model = finetune(cfg, Path(args.encoder), Path(args.head), images, frames, labels, train, d.fer_images,
                             d.fer_labels, epochs=args.stage_c_epochs, fer_ratio=args.fer_ratio, seed=args.seed + f,
                             quiet=True)
            # stage C's own head, as 1.1.0's fold protocol measured it
            p_c = predict_clips(model, images[frames[test]], cfg.window, True)
            torch.save(model.head.state_dict(), head_c_path)
            export_encoder(model.encoder, cfg, onnx_path, 17,
                           metadata(cfg, "encoder", f"fold-{f}", True,
                                    {"training_data": f"FER2013 train; CK+48 subjects outside fold {f} of {args.folds}"}),
                           flip_average=True)
        fer_bank, _, seqs = banks(onnx_path, shared, window_cfg, args.train_images)
        if seqs.subjects != subjects:
            raise SystemExit("CK+48 sequences came back in another order than stage C read them")
        head = fit(window_cfg, fer_bank, seqs, train, args.window_epochs, args.seed + f, args.sequences,
                   Mix(still=args.still), quiet=True, balance=args.balance, lr=args.window_lr,
                   init=torch.load(head_c_path) if args.init == "stage-c" else None)
        a, r = clips.sequence_clips(seqs, test, window_cfg.window, None)
        z_d = logits_of(head, a, r)
        p_d = z_d.argmax(1)
        row = {"fold": f, "n": len(test), "subjects": sorted({subjects[i] for i in test}),
               "stage_c_accuracy": None if p_c is None else float((p_c == labels[test]).mean()),
               "accuracy": float((p_d == labels[test]).mean()), "seconds": round(time.time() - t0)}
        print(json.dumps(row), flush=True)
        result["folds"].append({**row, "truth": labels[test].tolist(),
                                "stage_c_prediction": None if p_c is None else p_c.tolist(), "prediction": p_d.tolist(),
                                "logits": np.round(z_d, 4).tolist()})
        truth.append(labels[test]), pred_d.append(p_d)
        if p_c is not None:
            pred_c.append(p_c)
        # pooled over the folds run so far, written after each: a long run stopped part-way still says what it measured
        y = np.concatenate(truth)
        result["folds_run"] = [r["fold"] for r in result["folds"]]
        if pred_c:
            result["stage_c_head"] = summarise(y, np.concatenate(pred_c), names)
        result["ckplus48_folds"] = summarise(y, np.concatenate(pred_d), names)
        if args.results:
            Path(args.results).parent.mkdir(parents=True, exist_ok=True)
            Path(args.results).write_text(json.dumps(result, indent=1))
    print(json.dumps({"ckplus48_folds_accuracy": result["ckplus48_folds"]["accuracy"],
                      "uar": result["ckplus48_folds"]["uar"],
                      "stage_c_head_accuracy": result.get("stage_c_head", {}).get("accuracy"), "folds_run": result["folds_run"]}))


if __name__ == "__main__":
    main()
