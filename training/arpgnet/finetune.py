"""Stage C from the command line: CK+48 subject-independent folds, or one model on all of CK+48.

The training itself (clips, loss, replay, distillation) is `arpgnet.stage_c`; the
weight blends and soups measured beside it are `arpgnet.mixing`.

  python -m arpgnet.finetune --folds 5                   # CK+48 subject-independent accuracy
  python -m arpgnet.finetune --folds 0 --out runs/ft     # fine-tune on all of CK+48 (the shipped model)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from .common import ROOT, load_targets, shared_dir
from .config import ModelConfig
from .data import fold_list, subject_folds
from .metrics import summarise, write
from .mixing import alpha_name, blend, parse_alphas, save_and_measure, soup
from .model import ARPGNet
from .stage_c import fer_val_clips, finetune, initial, predict_clips, stage_c_data


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", default=str(ROOT / "training" / "runs" / "encoder" / "encoder-swa.pt"))
    ap.add_argument("--head", default=str(ROOT / "training" / "runs" / "head" / "head.pt"))
    ap.add_argument("--shared", default=None)
    ap.add_argument("--folds", type=int, default=5, help="subject-independent folds; 0 = train on all sequences")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0,
                    help="sampling and augmentation seed (fold f uses seed + f); another seed measures a "
                         "recipe's spread")
    ap.add_argument("--soup", type=int, default=1,
                    help="train this many runs (seeds seed, seed + 1, ...) and keep the mean of their weights "
                         "(experiments.soup), per fold and for --folds 0")
    ap.add_argument("--only-folds", type=fold_list, default=None,
                    help="run only these of the --folds subject folds, e.g. 1,3 (to split one measurement over "
                         "processes; the pooled figures then cover these folds only)")
    ap.add_argument("--fer-ratio", type=float, default=1.0, help="FER2013 still clips replayed per sequence")
    ap.add_argument("--fer-views", type=int, default=2,
                    help="encoder passes per replayed FER2013 face (jittered views; 1 halves the replay's cost)")
    ap.add_argument("--class-weights", choices=["ck", "sequences", "none"], default="ck",
                    help="weights from the CK+48 training labels; ck: on every clip, the FER2013 replay too; "
                         "sequences: on the CK+48 sequences only; none: plain cross-entropy")
    ap.add_argument("--distill", type=float, default=0.0,
                    help="weight of distillation on the FER2013 replay, towards the starting model or, with "
                         "--teacher, an ensemble's soft targets (0 = off)")
    ap.add_argument("--temperature", type=float, default=2.0, help="softening of the distillation targets")
    ap.add_argument("--teacher", default=None,
                    help="with --distill: distil towards these soft targets (experiments.ensemble --targets) on the "
                         "FER2013 replay instead of towards the starting model")
    ap.add_argument("--freeze", type=int, default=0, choices=range(4),
                    help="keep the stem and the first N backbone stages fixed in stage C (0 = tune all)")
    ap.add_argument("--head-lr", type=float, default=1e-3,
                    help="learning rate of the window head (the encoder's is 1e-4); 1e-4 treats the stage-B head as "
                         "pre-trained")
    ap.add_argument("--unlabelled-margin", type=float, default=0.0,
                    help="on the CK+48 sequences, lower the logits of classes CK+48 never labels (neutral) by this "
                         "much before scoring, so only clearly neutral-looking faces are corrected; inf leaves them "
                         "out (partial labels); 0 = plain cross-entropy")
    ap.add_argument("--replay-unlabelled", type=float, default=1.0,
                    help="loss weight of the replayed FER2013 faces of classes CK+48 never labels (neutral); above 1 "
                         "they hold neutral against the sequences' push (1 = as every other face)")
    ap.add_argument("--head-warmup", type=int, default=0,
                    help="train only the head for the first N epochs, then the whole model (LP-FT)")
    ap.add_argument("--frozen-norm", choices=["2d", "all"], default="2d",
                    help="encoder batch norms kept in inference mode: 2d = the backbone's (1.1.0's recipe); all = "
                         "the embedding layers' BatchNorm1d too")
    ap.add_argument("--flip-average", action="store_true", help="evaluate with the mirrored face averaged in")
    ap.add_argument("--out", default=str(ROOT / "training" / "runs" / "finetune"))
    ap.add_argument("--results", default=None, help="write the CK+48 metrics (JSON + PNG) here")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--wise", default="",
                    help="also measure weight blends with the starting model, e.g. 0.5,0.7; 0.6:1 blends the "
                         "encoder at 0.6 and the head at 1")
    args = ap.parse_args(argv)
    alphas = parse_alphas(args.wise)
    if args.only_folds and not args.folds:
        ap.error("--only-folds needs --folds N (with --folds 0 every sequence trains one model)")
    only = args.only_folds or list(range(args.folds))
    if not set(only) <= set(range(args.folds)):
        ap.error(f"--only-folds {','.join(map(str, only))}: folds are numbered 0 to {args.folds - 1}")
    torch.set_num_threads(args.threads)
    ck = torch.load(args.encoder, map_location="cpu")
    cfg = ModelConfig.from_json(ck["config"]).replace(mode="fusion")
    d = stage_c_data(shared_dir(args.shared), cfg)
    images, frames, labels, subjects = d.images, d.frames, d.labels, d.subjects
    fer, fer_images, fer_labels = d.fer, d.fer_images, d.fer_labels
    fer_targets = load_targets(Path(args.teacher), [str(s.frames[0]) for s in fer], fer_labels) if args.teacher else None
    if fer_targets is not None and args.distill <= 0:
        ap.error("--teacher needs --distill > 0")
    if args.soup < 1:
        ap.error("--soup needs at least one run")
    head = Path(args.head) if args.head else None
    names = list(cfg.labels)
    t0 = time.time()

    def tuned(train: np.ndarray, seed: int, quiet: bool) -> ARPGNet:
        runs = [finetune(cfg, Path(args.encoder), head, images, frames, labels, train, fer_images, fer_labels,
                         epochs=args.epochs, fer_ratio=args.fer_ratio, seed=seed + k, quiet=quiet,
                         fer_views=args.fer_views, weights_on=args.class_weights, distill=args.distill,
                         temperature=args.temperature, head_lr=args.head_lr, fer_targets=fer_targets,
                         freeze=args.freeze, unlabelled_margin=args.unlabelled_margin,
                         head_warmup=args.head_warmup, frozen_norm=args.frozen_norm,
                         replay_unlabelled=args.replay_unlabelled)
                for k in range(args.soup)]
        return soup(runs) if len(runs) > 1 else runs[0]

    if args.folds:
        folds = np.array(subject_folds(subjects, args.folds))
        truth, pred = [], []
        blended: dict[tuple[float, float | None], list[np.ndarray]] = {a: [] for a in alphas}
        start = initial(cfg, Path(args.encoder), head)
        for f in only:
            train, test = np.nonzero(folds != f)[0], np.nonzero(folds == f)[0]
            model = tuned(train, args.seed + f, quiet=True)
            p = predict_clips(model, images[frames[test]], cfg.window, args.flip_average)
            truth.append(labels[test]), pred.append(p)
            for a in alphas:
                blended[a].append(predict_clips(blend(start, model, *a), images[frames[test]], cfg.window,
                                                args.flip_average))
            print(json.dumps({"fold": f, "accuracy": float((p == labels[test]).mean()), "n": len(test),
                              "blends": {alpha_name(a): float((blended[a][-1] == labels[test]).mean()) for a in alphas},
                              "seconds": round(time.time() - t0)}), flush=True)
        for a in alphas:
            r = summarise(np.concatenate(truth), np.concatenate(blended[a]), names)
            print(json.dumps({"ckplus48_blend": {"alpha": alpha_name(a), "accuracy": r["accuracy"], "uar": r["uar"]}}),
                  flush=True)
        res = summarise(np.concatenate(truth), np.concatenate(pred), names)
        print(json.dumps({"ckplus48": {"accuracy": res["accuracy"], "uar": res["uar"], "folds": args.folds,
                                       "folds_run": only, "sequences": res["n"], "flip_average": args.flip_average}}),
              flush=True)
        if args.results:
            write(res, Path(args.results) / "ckplus48-finetuned-subject-folds",
                  f"CK+48, {args.folds} subject-independent folds, encoder + head fine-tuned per fold")
        return
    model = tuned(np.arange(len(labels)), args.seed, quiet=False)
    out = Path(args.out)
    val_images, val_labels = fer_val_clips(cfg, args.shared)
    start = initial(cfg, Path(args.encoder), head)
    save_and_measure(model, 1.0, out, val_images, val_labels)
    for a in alphas:
        save_and_measure(blend(start, model, *a), alpha_name(a), out / f"blend-{alpha_name(a)}", val_images,
                         val_labels)
    print(f"wrote {out}/encoder.pt and head.pt ({round(time.time() - t0)} s)")


if __name__ == "__main__":
    main()
