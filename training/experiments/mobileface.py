"""MobileFace, the face-recognition network in `<shared>/models/pretrained/mobileface`, in PyTorch.

The paper transfers its appearance backbone from a face-recognition network; MobileFace
is the one this project may use (MIT). It ships as a TF.js graph model: a 3x3 stem and
four stages of a 1x1 convolution, a stride-2 depthwise convolution and two depthwise
convolutions with a residual, PReLU after each depthwise, then flatten -> 256-d dense ->
a folded batch norm. The graph is small and regular, so the weights are read by name
into the module below instead of interpreting the graph; `load` refuses a file whose
weights do not have the shapes this module expects.

Input: [N, 3, 112, 112] RGB in 0..255 (the network subtracts 127.5 and scales by 1/128
itself). Its 4x4x128 feature map is flattened in TF's NHWC order, which `embed` follows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from experiments import tfjs_weights

from arpgnet.common import shared_dir

WIDTHS = (32, 32, 32, 64, 128)  # stem, stages 1-4


class Stage(nn.Module):
    def __init__(self, cin: int, c: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(cin, c, 1, bias=False)
        self.dw = nn.ModuleList([nn.Conv2d(c, c, 3, stride=2 if i == 0 else 1, padding=1, groups=c, bias=False)
                                 for i in range(3)])
        self.act = nn.ModuleList([nn.PReLU(c) for _ in range(3)])

    def forward(self, x: Tensor) -> Tensor:
        a = self.act[0](self.dw[0](self.expand(x)))
        return a + self.act[2](self.dw[2](self.act[1](self.dw[1](a))))


class MobileFace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, WIDTHS[0], 3, stride=2, padding=1, bias=False)
        self.stem_act = nn.PReLU(WIDTHS[0])
        self.stages = nn.ModuleList([Stage(WIDTHS[i], WIDTHS[i + 1]) for i in range(4)])
        self.dense = nn.Linear(4 * 4 * WIDTHS[-1], 256, bias=False)
        self.scale = nn.Parameter(torch.ones(256))
        self.shift = nn.Parameter(torch.zeros(256))

    def features(self, rgb255: Tensor) -> Tensor:
        """[N, 3, 112, 112] in 0..255 -> the last stage's map [N, 128, 4, 4]."""
        x = self.stem_act(self.stem((rgb255 - 127.5) / 128.0))
        for stage in self.stages:
            x = stage(x)
        return x

    def embed(self, rgb255: Tensor) -> Tensor:
        """The 256-d face-recognition embedding."""
        x = self.features(rgb255).permute(0, 2, 3, 1).flatten(1)  # NHWC, as the TF graph flattens
        return self.dense(x) * self.scale + self.shift

    forward = embed


def read_weights(folder: Path) -> dict[str, np.ndarray]:
    return tfjs_weights.read_weights(folder / "mobileface.json")


def load(shared: str | None = None) -> MobileFace:
    folder = shared_dir(shared) / "models" / "pretrained" / "mobileface"
    w = read_weights(folder)
    model = MobileFace()

    def put(param: Tensor, name: str, value: np.ndarray) -> None:
        t = torch.from_numpy(value.copy())
        if t.shape != param.shape:
            raise ValueError(f"{folder}: {name} has shape {list(t.shape)}, this MobileFace expects {list(param.shape)}")
        param.data.copy_(t)

    hwio = lambda a: a.transpose(3, 2, 0, 1)  # noqa: E731  TF [h, w, in, out] -> torch [out, in, h, w]
    hwc1 = lambda a: a.transpose(2, 3, 0, 1)  # noqa: E731  TF depthwise [h, w, c, 1] -> torch [c, 1, h, w]
    put(model.stem.weight, "conv1_weight", hwio(w["conv1_weight"]))
    put(model.stem_act.weight, "prelu1_gamma", w["prelu1_gamma"])
    for i, stage in enumerate(model.stages, 1):
        p = f"stage{i}_unit1_"
        put(stage.expand.weight, p + "conv0_0_weight", hwio(w[p + "conv0_0_weight"]))
        for k, name in enumerate(["conv0_1_df", "conv1_df", "conv2_df"]):
            put(stage.dw[k].weight, p + name, hwc1(w[p + name]))
            put(stage.act[k].weight, f"{p}prelu{k}_gamma", w[f"{p}prelu{k}_gamma"])
    put(model.dense.weight, "dense/kernel", w["dense/kernel"].T)
    put(model.scale, "batchnorm0/mul", w["batchnorm0/mul"])
    put(model.shift, "batchnorm0/sub", w["batchnorm0/sub"])
    return model.eval()


def from_grey48(grey: Tensor) -> Tensor:
    """Grey faces [N, 1, h, w] in 0..1 (the project's crops) -> MobileFace input [N, 3, 112, 112] in 0..255."""
    x = F.interpolate(grey, size=(112, 112), mode="bilinear", align_corners=False)
    return x.expand(-1, 3, -1, -1) * 255.0
