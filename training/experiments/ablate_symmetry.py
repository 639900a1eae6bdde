"""Symmetry-edge ablation without a second stage A.

The symmetry edges live only in the relation branch's graph, so this ablation re-trains
that branch on the frozen stage-A backbone twice, from the same seed, batches and
augmentation: once with the left-right edges (the control) and once without. Comparing
the two re-trained branches isolates the edges; comparing against the original encoder
would mix in the difference between a full stage A and a short re-training. Both are
saved as encoder checkpoints, so `arpgnet.evaluate` measures them like every other row:

  python -m experiments.ablate_symmetry --encoder runs/encoder/encoder-swa.pt --out runs/ablation-symmetry
  python -m arpgnet.evaluate --encoder runs/ablation-symmetry/symmetry-off.pt --only "ARPGNet (fusion graph, TRS)" \\
      --epochs 4 --folds 5 --out runs/ablation-symmetry/off --head-out runs/ablation-symmetry/off/head.pt
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from arpgnet import augment
from arpgnet.common import ROOT, class_weights, normalise, save, seed_all, shared_dir, to_unit
from arpgnet.config import ModelConfig
from arpgnet.data import load_image_array, scan_images
from arpgnet.model import FrameEncoder, RelationBranch
from arpgnet.heads import load_encoder


class RelationProbe(nn.Module):
    """A fresh relation branch and the auxiliary classifier stage A trains it with."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.relation = RelationBranch(cfg)
        self.cls = nn.Linear(cfg.rel_dim, cfg.num_classes)

    def forward(self, s3: torch.Tensor) -> torch.Tensor:
        return self.cls(self.relation(s3))


@torch.no_grad()
def stage3(encoder: FrameEncoder, x: torch.Tensor) -> torch.Tensor:
    return encoder.backbone.trunk(normalise(x).contiguous(memory_format=torch.channels_last))


@torch.no_grad()
def accuracy(encoder: FrameEncoder, probe: RelationProbe, images: np.ndarray, labels: np.ndarray) -> float:
    probe.eval()
    pred = [probe(stage3(encoder, to_unit(images[i:i + 256]))).argmax(1) for i in range(0, len(images), 256)]
    return float((torch.cat(pred).numpy() == labels).mean())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", default=str(ROOT / "training" / "runs" / "encoder" / "encoder-swa.pt"))
    ap.add_argument("--out", default=str(ROOT / "training" / "runs" / "ablation-symmetry"))
    ap.add_argument("--shared", default=None)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="use only N training images (smoke runs)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    encoder, base = load_encoder(Path(args.encoder))
    if not base.symmetry_edges:
        raise SystemExit(f"{args.encoder}: expected a stage-A encoder trained with symmetry edges")
    data = shared_dir(args.shared) / "data"
    cache = ROOT / "training" / "cache"
    train = scan_images(data / "fer2013" / "train", base.labels)
    val = scan_images(data / "fer2013" / "val", base.labels)
    if args.limit:
        train, val = train[:: max(1, len(train) // args.limit)], val[:: max(1, len(val) // args.limit)]
    x_train, x_val = load_image_array(train, base.input_size, cache), load_image_array(val, base.input_size, cache)
    y_train, y_val = np.array([s.label for s in train]), np.array([s.label for s in val])

    variants = {"symmetry-on": base, "symmetry-off": base.replace(symmetry_edges=False)}
    gen = seed_all(args.seed)
    probes, opts = {}, {}
    for name, cfg in variants.items():
        torch.manual_seed(args.seed)  # same initial weights: only the graph differs
        probes[name] = RelationProbe(cfg)
        opts[name] = torch.optim.AdamW(probes[name].parameters(), lr=args.lr, weight_decay=5e-4)
    steps = math.ceil(len(x_train) / args.batch)
    total = steps * args.epochs
    scheds = {n: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
              for n, o in opts.items()}
    weights = class_weights(y_train, base.num_classes)
    history = []
    for epoch in range(args.epochs):
        t0 = time.time()
        for p in probes.values():
            p.train()
        order = torch.randperm(len(x_train), generator=gen).numpy()
        for step in tqdm(range(steps), desc=f"relation {epoch + 1}/{args.epochs}", mininterval=10):
            idx = order[step * args.batch:(step + 1) * args.batch]
            x = augment.photometric(augment.similarity_jitter(to_unit(x_train[idx]), gen), gen)
            s3 = stage3(encoder, x)  # one backbone pass feeds both variants the same features
            y = torch.from_numpy(y_train[idx])
            for name, probe in probes.items():
                loss = F.cross_entropy(probe(s3), y, weight=weights, label_smoothing=0.1)
                opts[name].zero_grad(set_to_none=True)
                loss.backward()
                opts[name].step()
                scheds[name].step()
        row = {"epoch": epoch + 1, "seconds": round(time.time() - t0),
               "relation_val": {n: accuracy(encoder, p, x_val, y_val) for n, p in probes.items()}}
        history.append(row)
        print(json.dumps(row), flush=True)
    out = Path(args.out)
    for name, cfg in variants.items():
        enc = FrameEncoder(cfg)
        enc.backbone.load_state_dict(encoder.backbone.state_dict())
        enc.relation.load_state_dict(probes[name].relation.state_dict())
        save(out / f"{name}.pt", {"config": cfg.to_json(), "encoder": enc.state_dict(), "history": history})
    print(f"wrote {out}/symmetry-on.pt and symmetry-off.pt")


if __name__ == "__main__":
    main()
