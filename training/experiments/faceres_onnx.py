"""faceres-deep as an ONNX graph on the pipeline's own input, for its cost in onnxruntime (bench:model).

The graph takes what the edge encoder takes, aligned grey faces [n, 1, 48, 48] in 0..1,
scales them to --size inside the graph, repeats the grey over three channels and returns
the 1,024-d pooled features and the classifier's logits: the cost of shipping the network
as the appearance backbone. With --checkpoint (from `experiments.faceres_fer`) the
fine-tuned weights, else the pretrained network and an untrained classifier (the cost
does not depend on the weights).

  python3 -m experiments.faceres_onnx --size 112 --out .cache/bench/faceres-112.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from arpgnet.config import preset
from experiments import faceres
from experiments.faceres_fer import Classifier


class Exported(torch.nn.Module):
    def __init__(self, model: Classifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = faceres.from_grey(face, self.model.size)
        feats = self.model.net(x)
        return feats, self.model.out(feats)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoint", default=None, help="faceres-fer.pt from experiments.faceres_fer")
    args = ap.parse_args(argv)
    cfg = preset("edge")
    model = Classifier(faceres.load(), cfg.num_classes, args.size)
    if args.checkpoint:
        ck = torch.load(args.checkpoint, map_location="cpu")
        if ck["size"] != args.size:
            raise SystemExit(f"{args.checkpoint} was trained at {ck['size']} px, not --size {args.size}")
        model.load_state_dict(ck["model"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    side = cfg.input_size
    torch.onnx.export(Exported(model.eval()), torch.rand(1, 1, side, side), str(out), input_names=["face"],
                      output_names=["features", "logits"], dynamic_axes={"face": {0: "n"}, "features": {0: "n"},
                                                                          "logits": {0: "n"}}, opset_version=17)
    print(out)


if __name__ == "__main__":
    main()
