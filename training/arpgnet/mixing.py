"""Weight-space mixes of stage-C models: WiSE-FT blends with the starting model and
uniform soups of runs from one start, and the FER2013 measurement every mix is judged by."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from torch import Tensor

from .common import save
from .metrics import summarise
from .model import ARPGNet
from .stage_c import predict_clips


def blend(init: ARPGNet, tuned: ARPGNet, alpha: float, head_alpha: float | None = None) -> ARPGNet:
    """Weight-space interpolation between the starting and the fine-tuned model (WiSE-FT):
    alpha = 1 is the fine-tuned model; smaller alphas keep more of what stage A/B learnt
    from FER2013 while most of the gain on the new data usually stays. A separate
    head_alpha blends the window head apart from the encoder, to find which of the two
    carries the forgetting."""
    out = ARPGNet(tuned.cfg)
    a, b = init.state_dict(), tuned.state_dict()

    def mix(k: str) -> Tensor:
        w = head_alpha if head_alpha is not None and k.startswith("head.") else alpha
        return (1 - w) * a[k] + w * b[k] if a[k].is_floating_point() else b[k]

    out.load_state_dict({k: mix(k) for k in b})
    return out.eval()


def soup(models: list[ARPGNet]) -> ARPGNet:
    """Mean weights of stage-C runs from one start (a uniform model soup, Wortsman et al.
    2022); the backbone's batch-norm statistics are stage A's in every run, so the mean needs
    no refresh; those of the embedding BatchNorm1d are averaged like the weights."""
    states = [m.state_dict() for m in models]
    mean = {k: sum(s[k] for s in states) / len(states) if states[0][k].is_floating_point() else states[0][k]
            for k in states[0]}
    out = ARPGNet(models[0].cfg)
    out.load_state_dict(mean)
    return out.eval()


def parse_alphas(text: str) -> list[tuple[float, float | None]]:
    """'0.8,0.6:1' -> [(0.8, None), (0.6, 1.0)]: encoder alpha, optional head alpha after a colon."""
    out: list[tuple[float, float | None]] = []
    for item in filter(None, text.split(",")):
        enc, _, head = item.partition(":")
        out.append((float(enc), float(head) if head else None))
    return out


def alpha_name(alpha: tuple[float, float | None]) -> str:
    return f"{alpha[0]}" if alpha[1] is None else f"{alpha[0]}-head-{alpha[1]}"


def save_and_measure(model: ARPGNet, alpha: float | str, out: Path, val_images: np.ndarray,
                     val_labels: np.ndarray) -> dict:
    """Write the pair `arpgnet.export` reads and print FER2013 val, plain and mirrored;
    returns the mirrored metrics (the shipped setting)."""
    cfg = model.cfg
    save(out / "encoder.pt", {"config": cfg.to_json(), "encoder": model.encoder.state_dict()})
    save(out / "head.pt", {"config": cfg.to_json(), "head": model.head.state_dict()})
    r: dict = {}
    for fa in (False, True):
        r = summarise(val_labels, predict_clips(model, val_images, cfg.window, fa), list(cfg.labels))
        print(json.dumps({"fer_val": {"alpha": alpha, "accuracy": r["accuracy"], "uar": r["uar"],
                                      "flip_average": fa}}), flush=True)
    return r
