"""Streaming split export: frame encoder and window head as two ONNX files.

Everything a consumer needs travels in each file's metadata_props, so the runtime
never duplicates a constant: labels, T, TRS, input size, colour mode, mean/std,
the alignment template, model name/version, training data.

  python -m arpgnet.export --encoder runs/encoder/encoder.pt --head runs/head/head.pt --out ../models
  (--opset 16 for TensorRT 8.5 / JetPack 5, which lacks LayerNormalization: the op is decomposed)
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from .common import check_config
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--head", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="edge")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--flip-average", action="store_true")
    ap.add_argument("--metrics", default=None, help="JSON of measured metrics to record in the metadata")
    ap.add_argument("--training-data", default=None, help="what the weights were trained on (metadata and model card)")
    args = ap.parse_args(argv)

    ek = torch.load(args.encoder, map_location="cpu")
    hk = torch.load(args.head, map_location="cpu")
    # a backbone of other widths or depths (train_encoder --widths/--blocks) feeds the same
    # embeddings to the same head and pipeline; everything else must match the preset
    own = ModelConfig.from_json(ek["config"])
    cfg = preset(args.preset, widths=own.widths, blocks=own.blocks)
    check_config(ek["config"], cfg, args.encoder)
    check_config(hk["config"], cfg, args.head)
    cfg = ModelConfig.from_json(hk["config"])
    extra: dict[str, str] = {"metrics": Path(args.metrics).read_text()} if args.metrics else {}
    enc = FrameEncoder(cfg)
    enc.load_state_dict(ek["encoder"])
    head = WindowHead(cfg)
    head.load_state_dict(hk["head"])
    temperature = float(hk.get("temperature", 1.0))
    if args.training_data:
        extra["training_data"] = args.training_data
    if temperature != 1.0:  # fitted on held-out faces by the stage that made the head
        extra["temperature"] = f"{temperature:.4f}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pair = hashlib.sha1(Path(args.encoder).read_bytes() + Path(args.head).read_bytes()).hexdigest()[:12]
    extra["pair"] = pair  # encoder and head must come from the same training run
    stem = f"arpgnet-{cfg.preset}" + ("" if args.opset == 17 else f"-opset{args.opset}")
    export_encoder(enc, cfg, out / f"{stem}.encoder.onnx", args.opset,
                   metadata(cfg, "encoder", args.version, args.flip_average, extra), args.flip_average)
    export_head(Calibrated(head, temperature), cfg, out / f"{stem}.head.onnx", args.opset,
                metadata(cfg, "head", args.version, args.flip_average, extra))
    for f in sorted(out.glob(f"{stem}.*.onnx")):
        print(f"{f}  {f.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
