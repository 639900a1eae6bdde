"""The frame encoder with its two auxiliary classifiers (stage A) and its evaluation on faces."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .common import normalise, to_unit
from .config import ModelConfig
from .model import FrameEncoder


class EncoderWithAux(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.encoder = FrameEncoder(cfg)
        self.app_cls = nn.Linear(cfg.app_dim, cfg.num_classes)
        self.rel_cls = nn.Linear(cfg.rel_dim, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        app, rel = self.encoder(x)
        return self.app_cls(app), self.rel_cls(rel)


def evaluate(model: EncoderWithAux, images: np.ndarray, labels: np.ndarray, batch: int = 256,
             device: torch.device | None = None) -> dict:
    model.eval()
    preds = {"app": [], "rel": [], "both": []}
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = normalise(to_unit(images[i:i + batch])).contiguous(memory_format=torch.channels_last)
            a, r = model(x.to(device) if device else x)
            a, r = a.cpu(), r.cpu()
            preds["app"].append(a.argmax(1))
            preds["rel"].append(r.argmax(1))
            preds["both"].append((a.softmax(1) + r.softmax(1)).argmax(1))
    y = torch.from_numpy(labels)
    return {k: float((torch.cat(v) == y).float().mean()) for k, v in preds.items()}
