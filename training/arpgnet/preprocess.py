"""The Python twin of src/pipeline/align.ts: the same similarity fit and bilinear warp.

Used by the parity test (the TypeScript preprocessing of a fixed image must equal
this within 1/255) and by anyone training on frames aligned from landmarks."""

from __future__ import annotations

import numpy as np

from .config import load_contract


def template_to_frame(points: np.ndarray, template: np.ndarray) -> tuple[float, float, float, float]:
    t, p = np.asarray(template, np.float64), np.asarray(points, np.float64)
    mu, mp = t.mean(0), p.mean(0)
    tc, pc = t - mu, p - mp
    den = (tc ** 2).sum()
    a = (tc[:, 0] * pc[:, 0] + tc[:, 1] * pc[:, 1]).sum() / den
    b = (tc[:, 0] * pc[:, 1] - tc[:, 1] * pc[:, 0]).sum() / den
    return a, b, mp[0] - a * mu[0] + b * mu[1], mp[1] - b * mu[0] - a * mu[1]


def warp(rgb: np.ndarray, sim: tuple[float, float, float, float], contract: dict | None = None) -> np.ndarray:
    """rgb uint8 [H, W, 3] -> float32 [C, h, w] normalised as the contract says."""
    c = contract or load_contract()
    w, h = c["inputSize"]["width"], c["inputSize"]["height"]
    a, b, tx, ty = sim
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    fh, fw = rgb.shape[:2]
    x = np.clip(a * u - b * v + tx, 0, fw - 1)
    y = np.clip(b * u + a * v + ty, 0, fh - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, fw - 1), np.minimum(y0 + 1, fh - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    img = rgb.astype(np.float64)
    pix = (img[y0, x0] * (1 - fx) * (1 - fy) + img[y0, x1] * fx * (1 - fy)
           + img[y1, x0] * (1 - fx) * fy + img[y1, x1] * fx * fy)
    if c["colour"] == "grey":
        pix = (pix @ np.array(c["lumaWeights"]))[..., None]
    out = (pix / 255.0 - c["mean"]) / c["std"]
    return out.transpose(2, 0, 1).astype(np.float32)
