"""Read a shipped frame encoder (ONNX) back into the PyTorch FrameEncoder.

The shipped model is the one thing every later stage starts from, and its training
checkpoints are not part of the repository: this makes the ONNX file itself the
checkpoint. The exporter fused each convolution with the batch norm after it and
stored linear weights transposed under generated names, so the weights are found by
the node that uses them (node names carry the module path), and each fused batch
norm becomes an identity that only adds the fused bias.

  python -m arpgnet.from_onnx ../models/arpgnet-edge.encoder.onnx --out runs/shipped/encoder.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import save
from .onnx_import import load_onnx_encoder


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("encoder")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    enc, cfg, meta = load_onnx_encoder(Path(args.encoder))
    save(Path(args.out), {"config": cfg.to_json(), "encoder": enc.state_dict(),
                          "from_onnx": {"version": meta.get("arpgnet.version"), "pair": meta.get("arpgnet.pair"),
                                        "flip_average": meta.get("arpgnet.flip_average")}})
    n = sum(p.numel() for p in enc.parameters())
    print(f"wrote {args.out}: {cfg.preset} encoder, {n / 1e6:.2f} M parameters, from {meta.get('arpgnet.version')}")


if __name__ == "__main__":
    main()
