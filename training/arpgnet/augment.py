"""Batch augmentation on grey face crops, done as one affine grid sample.

The jitter is a small similarity transform: the same family of error that live
landmark alignment makes, so training sees the faces the pipeline will feed."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def similarity_jitter(x: Tensor, gen: torch.Generator, rot_deg: float = 10.0, scale: float = 0.08,
                      shift: float = 0.06, flip: bool = True) -> Tensor:
    """x [B, C, H, W] in [0,1]; edges replicated like the live warp."""
    b = x.shape[0]
    u = lambda: torch.rand(b, generator=gen) * 2 - 1  # noqa: E731
    ang = u() * math.radians(rot_deg)
    s = 1.0 + u() * scale
    sx = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0) if flip else torch.ones(b)
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.stack([
        torch.stack([cos * sx, -sin, u() * shift * 2], dim=1),
        torch.stack([sin * sx, cos, u() * shift * 2], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def photometric(x: Tensor, gen: torch.Generator, brightness: float = 0.25, contrast: float = 0.3) -> Tensor:
    b = x.shape[0]
    c = 1.0 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * contrast
    br = (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * c + mean + br).clamp(0, 1)


def random_erase(x: Tensor, gen: torch.Generator, p: float = 0.4, max_frac: float = 0.3) -> Tensor:
    """Occlusion by a grey box (hands, glasses, a cup), per sample."""
    b, _, h, w = x.shape
    out = x.clone()
    for i in torch.nonzero(torch.rand(b, generator=gen) < p).flatten().tolist():
        eh = int(h * (0.1 + torch.rand(1, generator=gen).item() * max_frac))
        ew = int(w * (0.1 + torch.rand(1, generator=gen).item() * max_frac))
        y0 = int(torch.randint(0, h - eh + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, w - ew + 1, (1,), generator=gen))
        out[i, :, y0:y0 + eh, x0:x0 + ew] = torch.rand(1, generator=gen).item()
    return out
