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
from pathlib import Path

import onnx
import torch

from .common import check_config
from .config import ModelConfig, preset
from .model import FrameEncoder, WindowHead
from .onnx_export import Calibrated, metadata, export_encoder, export_head


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
