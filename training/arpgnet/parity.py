"""Fixtures for the cross-language parity tests (run by test/parity.test.ts).

  python -m arpgnet.parity model --out DIR     seeded edge model -> ONNX pair + PyTorch outputs on fixed inputs
  python -m arpgnet.parity warp --rgba F --width W --height H --points JSON --out F
                                               the Python preprocessing of one RGBA frame
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .config import preset
from .onnx_export import export_encoder, export_head, metadata
from .model import FrameEncoder, WindowHead
from .preprocess import template_to_frame, warp


def _randomise_norms(m: torch.nn.Module, gen: torch.Generator) -> None:
    """Fresh BatchNorm statistics are identity; random ones make the check see them."""
    for mod in m.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=gen) * 0.1)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=gen) + 0.5)


def model_fixture(out: Path) -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    cfg = preset("edge")
    enc, head = FrameEncoder(cfg).eval(), WindowHead(cfg).eval()
    _randomise_norms(enc, gen)
    out.mkdir(parents=True, exist_ok=True)
    meta = metadata(cfg, "encoder", "0.0.0-parity", False, {"pair": "parity"})
    export_encoder(enc, cfg, out / "encoder.onnx", 17, meta, False)
    export_head(head, cfg, out / "head.onnx", 17, {**meta, "arpgnet.kind": "head"})
    faces = torch.randn(3, cfg.in_channels, cfg.input_size, cfg.input_size, generator=gen)
    app = torch.randn(2, cfg.window, cfg.app_dim, generator=gen)
    rel = torch.randn(2, cfg.window, cfg.rel_dim, generator=gen)
    valid = torch.ones(2, cfg.window)
    valid[1, :5] = 0  # a window still filling
    with torch.no_grad():
        a, r = enc(faces)
        logits = head(app, rel, valid)
    fixture = {k: v.flatten().tolist() for k, v in
               {"faces": faces, "app_in": app, "rel_in": rel, "valid": valid, "app_out": a, "rel_out": r,
                "logits": logits}.items()}
    (out / "fixture.json").write_text(json.dumps(fixture))


def preset_fixture(name: str, out: Path, widths: tuple[int, ...] | None = None, flip_average: bool = False,
                   stem: str | None = None) -> None:
    """Seeded (untrained) ONNX pair of a preset, for timing: the cost does not depend on the
    weights. widths: a candidate backbone width before training one."""
    torch.manual_seed(0)
    cfg = preset(name, widths=widths) if widths else preset(name)
    stem = stem or name
    out.mkdir(parents=True, exist_ok=True)
    meta = metadata(cfg, "encoder", "0.0.0-bench", flip_average, {"pair": f"bench-{stem}"})
    export_encoder(FrameEncoder(cfg).eval(), cfg, out / f"{stem}.encoder.onnx", 17, meta, flip_average)
    export_head(WindowHead(cfg).eval(), cfg, out / f"{stem}.head.onnx", 17, {**meta, "arpgnet.kind": "head"})


def warp_fixture(rgba: Path, width: int, height: int, points: list, out: Path) -> None:
    frame = np.fromfile(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3]
    from .config import load_contract

    c = load_contract()
    t = warp(frame, template_to_frame(np.array(points), np.array(c["template"])), c)
    t.astype("<f4").tofile(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("--out", required=True)
    pr = sub.add_parser("preset")
    pr.add_argument("name")
    pr.add_argument("--out", required=True)
    pr.add_argument("--widths", default=None, help="backbone widths instead of the preset's, e.g. 40,80,160,320")
    pr.add_argument("--flip-average", action="store_true", help="export the encoder with the mirror averaged in")
    pr.add_argument("--stem", default=None, help="file name stem (default: the preset name)")
    w = sub.add_parser("warp")
    w.add_argument("--rgba", required=True)
    w.add_argument("--width", type=int, required=True)
    w.add_argument("--height", type=int, required=True)
    w.add_argument("--points", required=True)
    w.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.cmd == "model":
        model_fixture(Path(args.out))
    elif args.cmd == "preset":
        widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else None
        preset_fixture(args.name, Path(args.out), widths, args.flip_average, args.stem)
    else:
        warp_fixture(Path(args.rgba), args.width, args.height, json.loads(args.points), Path(args.out))


if __name__ == "__main__":
    main()
