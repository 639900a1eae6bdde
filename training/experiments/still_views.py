"""Still images as clips of T fixed views (models/preprocess.json `stillViews`).

Each view is a small similarity about the input centre applied when sampling the
aligned face: the TypeScript pipeline composes the same transform into its warp.

  python -m experiments.still_views --encoder runs/encoder/encoder.pt [--head runs/head/head.pt]
prints FER2013 val accuracy of plain still clips versus view clips.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from arpgnet.common import ROOT, normalise, shared_dir, to_unit
from arpgnet.config import ModelConfig, load_contract
from arpgnet.data import load_image_array, scan_images
from arpgnet.model import WindowHead
from arpgnet.heads import load_encoder


def view_grid(views: list, size: int) -> torch.Tensor:
    """affine_grid thetas for the views: output pixel u samples input c + R(a)*s*(u - c) + t."""
    thetas = []
    for rot, scale, dx, dy in views:
        a = math.radians(rot)
        cos, sin = math.cos(a) * scale, math.sin(a) * scale
        # normalised coordinates (align_corners=False): a shift of d pixels is 2d/size
        thetas.append([[cos, -sin, 2 * dx / size], [sin, cos, 2 * dy / size]])
    return torch.tensor(thetas, dtype=torch.float32)


@torch.no_grad()
def embed_views(encoder, images: np.ndarray, views: list, flip_average: bool, batch: int = 128):
    size = images.shape[-1]
    theta = view_grid(views, size)
    apps, rels = [], []
    for i in range(0, len(images), batch):
        x = to_unit(images[i:i + batch])
        b = len(x)
        xs = x.repeat_interleave(len(views), 0)
        grid = F.affine_grid(theta.repeat(b, 1, 1), list(xs.shape), align_corners=False)
        xs = F.grid_sample(xs, grid, mode="bilinear", padding_mode="border", align_corners=False)
        xs = normalise(xs).contiguous(memory_format=torch.channels_last)
        a, r = encoder(xs)
        if flip_average:
            fa, fr = encoder(torch.flip(xs, dims=[3]).contiguous(memory_format=torch.channels_last))
            a, r = (a + fa) / 2, (r + fr) / 2
        apps.append(a.view(b, len(views), -1))
        rels.append(r.view(b, len(views), -1))
    return torch.cat(apps), torch.cat(rels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--encoder", default=str(ROOT / "training" / "runs" / "encoder" / "encoder.pt"))
    ap.add_argument("--head", default=None)
    ap.add_argument("--shared", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    enc, cfg = load_encoder(Path(args.encoder))
    views = load_contract()["stillViews"]["views"]
    val = scan_images(shared_dir(args.shared) / "data" / "fer2013" / "val", cfg.labels)
    images = load_image_array(val, cfg.input_size, ROOT / "training" / "cache")
    y = torch.tensor([s.label for s in val])
    out = {}
    head = None
    if args.head:
        hk = torch.load(args.head, map_location="cpu")
        head = WindowHead(ModelConfig.from_json(hk["config"]))
        head.load_state_dict(hk["head"])
        head.eval()
    for flip in (False, True):
        for name, vs in (("plain", [views[0]]), ("views", views)):
            a, r = embed_views(enc, images, vs, flip)
            t = cfg.window
            a = a.repeat(1, t // a.shape[1], 1)
            r = r.repeat(1, t // r.shape[1], 1)
            with torch.no_grad():
                logits = head(a, r, torch.ones(len(a), t))
            out[f"{name}{'+flip' if flip else ''}"] = float((logits.argmax(1) == y).float().mean())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
