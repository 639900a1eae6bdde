"""The streaming split as ONNX: the frame encoder and the window head as two files, each
carrying the metadata the runtime reads (labels, T, TRS, preprocessing, version)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from .config import ModelConfig, load_contract, preset
from .model import FrameEncoder, WindowHead


TRAINING_DATA = ("FER2013 train (28,709 faces) for the encoder (stage A) and as pseudo-clips for the window head "
                 "(stage B); both fine-tuned end to end on CK+48 (327 sequences, 108 subjects) with FER2013 "
                 "replayed (stage C). Research-use terms apply.")


class EncoderExport(nn.Module):
    """The frame encoder, optionally averaging each face with its mirror image."""

    def __init__(self, encoder: FrameEncoder, flip_average: bool) -> None:
        super().__init__()
        self.encoder, self.flip_average = encoder, flip_average

    def forward(self, face: Tensor) -> tuple[Tensor, Tensor]:
        if not self.flip_average:
            return self.encoder(face)
        n = face.shape[0]
        a, r = self.encoder(torch.cat([face, torch.flip(face, dims=[3])]))
        return (a[:n] + a[n:]) / 2, (r[:n] + r[n:]) / 2


class Calibrated(nn.Module):
    """The head with its fitted temperature applied, so every consumer gets calibrated logits."""

    def __init__(self, head: WindowHead, temperature: float) -> None:
        super().__init__()
        self.head, self.temperature = head, temperature

    def forward(self, app: Tensor, rel: Tensor, valid: Tensor) -> Tensor:
        return self.head(app, rel, valid) / self.temperature


def metadata(cfg: ModelConfig, kind: str, version: str, flip_average: bool, extra: dict) -> dict[str, str]:
    contract = load_contract()
    base = contract["inputSize"]["width"]
    if cfg.input_size != base or (cfg.in_channels == 3) != (contract["colour"] == "rgb"):
        # another preset (paper: 112x112 RGB): the same framing, scaled to its input
        k = cfg.input_size / base
        contract = {**contract, "inputSize": {"width": cfg.input_size, "height": cfg.input_size},
                    "colour": "rgb" if cfg.in_channels == 3 else "grey",
                    "template": [[round((x + 0.5) * k - 0.5, 3), round((y + 0.5) * k - 0.5, 3)] for x, y in contract["template"]],
                    "stillViews": {**contract["stillViews"], "views": [[r, s, dx * k, dy * k] for r, s, dx, dy in contract["stillViews"]["views"]]}}
    meta = {
        "arpgnet.kind": kind,
        "arpgnet.name": f"arpgnet-{cfg.preset}",
        "arpgnet.version": version,
        "arpgnet.preset": cfg.preset,
        "arpgnet.labels": json.dumps(list(cfg.labels)),
        "arpgnet.window": str(cfg.window),
        "arpgnet.trs": str(cfg.trs if cfg.use_trs else -1),
        "arpgnet.app_dim": str(cfg.app_dim),
        "arpgnet.rel_dim": str(cfg.rel_dim),
        "arpgnet.mode": cfg.mode,
        "arpgnet.flip_average": str(flip_average).lower(),
        "arpgnet.preprocess": json.dumps(contract),
        "arpgnet.config": json.dumps(cfg.to_json()),
        "arpgnet.training_data": extra.get("training_data", TRAINING_DATA),
    }
    meta.update({f"arpgnet.{k}": v for k, v in extra.items() if k != "training_data"})
    return meta


def _stamp(path: Path, meta: dict[str, str]) -> None:
    m = onnx.load(str(path))
    del m.metadata_props[:]
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    m.producer_name = "arpgnet-edge training"
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def export_encoder(encoder: FrameEncoder, cfg: ModelConfig, out: Path, opset: int, meta: dict[str, str],
                   flip_average: bool) -> None:
    wrapper = EncoderExport(encoder.eval(), flip_average).eval()
    x = torch.zeros(2, cfg.in_channels, cfg.input_size, cfg.input_size)
    torch.onnx.export(wrapper, (x,), str(out), opset_version=opset, input_names=["face"],
                      output_names=["appearance", "relation"],
                      dynamic_axes={"face": {0: "n"}, "appearance": {0: "n"}, "relation": {0: "n"}})
    _stamp(out, meta)


def export_head(head: nn.Module, cfg: ModelConfig, out: Path, opset: int, meta: dict[str, str]) -> None:
    t = cfg.window
    args = (torch.zeros(2, t, cfg.app_dim), torch.zeros(2, t, cfg.rel_dim), torch.ones(2, t))
    torch.onnx.export(head.eval(), args, str(out), opset_version=opset,
                      input_names=["appearance", "relation", "valid"], output_names=["logits"],
                      dynamic_axes={"appearance": {0: "n"}, "relation": {0: "n"}, "valid": {0: "n"},
                                    "logits": {0: "n"}})
    _stamp(out, meta)
