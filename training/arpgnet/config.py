"""One config object for the whole network; presets `paper` and `edge`.

Every number that changes the shape of an exported tensor lives here, so a
checkpoint or ONNX file can be checked against the preset it claims to be.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

BASE_LABELS = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]


@dataclass(frozen=True)
class ModelConfig:
    preset: str
    # appearance backbone (InsightFace IResNet layout)
    input_size: int
    in_channels: int
    widths: tuple[int, int, int, int]
    blocks: tuple[int, int, int, int]
    app_dim: int
    # relation branch on the stage-3 feature map
    grid: int = 6
    rel_dim: int = 128
    rel_heads: int = 4
    rel_layers: int = 2
    symmetry_edges: bool = True
    # parallel fusion graph
    window: int = 8
    trs: int = 2
    fusion_dim: int = 128
    fusion_heads: int = 4
    fusion_layers: int = 2
    dropout: float = 0.2
    # temporal pooling of the fusion graph's nodes: "mean" (1.x heads, masked mean) or
    # "recency" (learned attention over nodes with a per-position bias)
    pooling: str = "mean"
    # ablations: "fusion" (ARPGNet), "concat", "appearance", "relation"
    mode: str = "fusion"
    use_trs: bool = True
    contempt: bool = True
    labels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.labels:
            labels = BASE_LABELS + (["contempt"] if self.contempt else [])
            object.__setattr__(self, "labels", tuple(labels))
        if self.mode not in ("fusion", "concat", "appearance", "relation"):
            raise ValueError(f"unknown mode {self.mode!r}")
        if self.pooling not in ("mean", "recency"):
            raise ValueError(f"unknown pooling {self.pooling!r}")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def replace(self, **changes: object) -> "ModelConfig":
        if "contempt" in changes and "labels" not in changes:
            changes["labels"] = ()
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        d["blocks"] = list(self.blocks)
        d["labels"] = list(self.labels)
        return d

    @staticmethod
    def from_json(d: dict) -> "ModelConfig":
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        d["blocks"] = tuple(d["blocks"])
        d["labels"] = tuple(d["labels"])
        return ModelConfig(**d)

    def shape_signature(self) -> dict:
        """The fields that make two models interchangeable at the tensor level."""
        keys = ["preset", "input_size", "in_channels", "widths", "blocks", "app_dim", "grid",
                "rel_dim", "window", "fusion_dim", "labels", "mode"]
        full = self.to_json()
        return {k: full[k] for k in keys}


PRESETS: dict[str, ModelConfig] = {
    # The paper: IResNet-50 at 112x112 RGB, 512-d appearance embedding.
    "paper": ModelConfig(
        preset="paper", input_size=112, in_channels=3, widths=(64, 128, 256, 512),
        blocks=(3, 4, 14, 3), app_dim=512, rel_dim=256, fusion_dim=256, window=16, trs=3,
        contempt=False,
    ),
    # Real time on two CPU cores: grey 48x48 (the native framing of FER2013 and
    # CK+48), a narrow IResNet whose stage 3 lands exactly on the 6x6 region grid.
    "edge": ModelConfig(
        preset="edge", input_size=48, in_channels=1, widths=(32, 64, 128, 256),
        blocks=(1, 2, 2, 1), app_dim=128, rel_dim=128, fusion_dim=128, window=8, trs=2,
    ),
}


def preset(name: str, **overrides: object) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]


def load_contract(root: Path | None = None) -> dict:
    root = root or Path(__file__).resolve().parents[2]
    return json.loads((root / "models" / "preprocess.json").read_text())
