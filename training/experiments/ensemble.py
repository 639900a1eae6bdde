"""FER2013 val accuracy of a softmax ensemble of trained models, each an encoder + head pair.

Two models from independent training runs make different mistakes; how much their
average beats each alone tells whether distilling the ensemble into one edge encoder
is worth its training time (the ensemble itself is too slow to ship: one encoder pass
per member per face).

  python -m experiments.ensemble runs/encoder-r3/encoder-swa.pt:runs/head-fer-r3/head.pt \\
      runs/encoder-wide/encoder-swa.pt:runs/head-fer-wide/head.pt

With --targets FILE it also writes the ensemble's (mirror-averaged) probabilities on
every FER2013 training face, the soft targets `train_encoder --teacher FILE` distils
into one encoder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from arpgnet.common import ROOT, shared_dir, write_targets
from arpgnet.config import ModelConfig
from arpgnet.data import load_image_array, scan_images
from arpgnet.stage_c import fer_val_clips, initial, predict_proba


def ensemble_accuracy(probs: list[np.ndarray], labels: np.ndarray) -> float:
    return float((np.mean(probs, axis=0).argmax(1) == labels).mean())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="encoder.pt:head.pt pairs")
    ap.add_argument("--shared", default=None)
    ap.add_argument("--no-flip-average", action="store_true", help="without the mirrored face")
    ap.add_argument("--targets", default=None,
                    help="also write the ensemble's probabilities on FER2013 train here (.npz) for distillation")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    probs: list[np.ndarray] = []
    train_probs: list[np.ndarray] = []
    first: tuple | None = None
    for pair in args.models:
        enc, sep, head = pair.partition(":")
        if not sep:
            ap.error(f"{pair}: expected encoder.pt:head.pt")
        cfg = ModelConfig.from_json(torch.load(enc, map_location="cpu")["config"]).replace(mode="fusion")
        key = (tuple(cfg.labels), cfg.input_size)
        if first is None:
            first, (images, labels) = key, fer_val_clips(cfg, args.shared)
            if args.targets:
                train = scan_images(shared_dir(args.shared) / "data" / "fer2013" / "train", cfg.labels)
                train_images = load_image_array(train, cfg.input_size, ROOT / "training" / "cache")[:, None]
                train_labels = np.array([s.label for s in train])
        elif key != first:
            ap.error(f"{pair}: labels or input size differ from the first model's; their outputs cannot be averaged")
        model = initial(cfg, Path(enc), Path(head))
        probs.append(predict_proba(model, images, cfg.window, not args.no_flip_average))
        print(json.dumps({"model": pair, "fer_val": ensemble_accuracy(probs[-1:], labels)}), flush=True)
        if args.targets:
            train_probs.append(predict_proba(model, train_images, cfg.window, not args.no_flip_average))
            print(json.dumps({"model": pair, "fer_train": ensemble_accuracy(train_probs[-1:], train_labels)}),
                  flush=True)
    print(json.dumps({"ensemble": len(probs), "fer_val": ensemble_accuracy(probs, labels),
                      "flip_average": not args.no_flip_average}))
    if args.targets:
        write_targets(Path(args.targets), np.mean(train_probs, axis=0), train_labels, [str(s.frames[0]) for s in train])
        print(json.dumps({"targets": args.targets, "fer_train": ensemble_accuracy(train_probs, train_labels)}))


if __name__ == "__main__":
    main()
