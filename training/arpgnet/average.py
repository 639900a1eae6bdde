"""Weight averaging of the encoder's last epochs (stochastic weight averaging).

The last checkpoints of a cosine schedule sit around one minimum; their mean usually
generalises a little better than any one of them. BatchNorm statistics of the mean
weights are re-estimated on training faces afterwards.

  python -m arpgnet.average runs/encoder/snap-*.pt --out runs/encoder/encoder-swa.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .common import ROOT, normalise, save, shared_dir, to_unit
from .config import ModelConfig
from .data import load_image_array, scan_images
from .encoders import EncoderWithAux, evaluate


@torch.no_grad()
def refresh_batchnorm(model: torch.nn.Module, images: np.ndarray, batch: int = 256) -> None:
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the whole pass
    model.train()
    for i in range(0, len(images), batch):
        model(normalise(to_unit(images[i:i + batch])).contiguous(memory_format=torch.channels_last))
    model.eval()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--bn-images", type=int, default=8000)
    ap.add_argument("--shared", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    cks = [torch.load(p, map_location="cpu") for p in args.checkpoints]
    cfg = ModelConfig.from_json(cks[0]["config"])
    model = EncoderWithAux(cfg).to(memory_format=torch.channels_last)
    state = {k: (sum(c["model"][k].float() for c in cks) / len(cks)).to(v.dtype) if v.is_floating_point() else v
             for k, v in cks[-1]["model"].items()}
    model.load_state_dict(state)
    data = shared_dir(args.shared) / "data" / "fer2013"
    cache = ROOT / "training" / "cache"
    train = scan_images(data / "train", cfg.labels)
    pick = np.sort(np.random.default_rng(1).permutation(len(train))[: args.bn_images])
    refresh_batchnorm(model, load_image_array([train[i] for i in pick], cfg.input_size, cache))
    val = scan_images(data / "val", cfg.labels)
    metrics = evaluate(model, load_image_array(val, cfg.input_size, cache), np.array([s.label for s in val]))
    print(json.dumps({"averaged": [str(p) for p in args.checkpoints], "val": metrics}))
    save(Path(args.out), {"config": cfg.to_json(), "encoder": model.encoder.state_dict(),
                          "history": cks[-1]["history"], "averaged": [str(p) for p in args.checkpoints],
                          "val": metrics})


if __name__ == "__main__":
    main()
