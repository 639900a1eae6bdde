"""Shipped ONNX files read back into PyTorch: the frame encoder (fused batch norms undone
into identity norms that add the fused bias) and the window head."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, TypeVar

import onnx
import torch
from onnx import numpy_helper

from .config import ModelConfig
from .model import FrameEncoder, WindowHead


# a fused convolution's batch norm is the module that follows it
FUSED_NORM = {"stem.0": "stem.1", "conv1": "bn2", "conv2": "bn3", "down.0": "down.1"}


def module_path(node_name: str, skip: int = 1) -> str:
    """'/encoder/backbone/stage1/stage1.0/conv1/Conv' -> 'backbone.stage1.0.conv1' (the
    encoder is exported inside a wrapper: `skip` drops its segment)."""
    parts: list[str] = []
    for seg in node_name.strip("/").split("/")[skip:-1]:
        if parts and seg.startswith(parts[-1] + "."):
            parts[-1] = seg
        else:
            parts.append(seg)
    return ".".join(parts)


def encoder_state(model: onnx.ModelProto, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    state: dict[str, torch.Tensor] = {}
    # parameters the exporter kept under their own names
    for name, value in inits.items():
        if name.startswith("encoder."):
            state[name[len("encoder."):]] = value
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            # the exporter shares equal initialisers (fresh zeros, say) through Identity nodes
            inits[node.output[0]] = inits[node.input[0]]
            continue
        weights = [i for i in node.input if i in inits and not i.startswith("encoder.")]
        if not weights:
            continue
        path = module_path(node.name)
        if node.op_type == "Conv":
            state[f"{path}.weight"] = inits[weights[0]]
            # the last one or two path segments name the convolution inside its block or Sequential
            parent, leaf = next((path[: -len(k)], v) for k, v in FUSED_NORM.items() if path.endswith("." + k))
            norm = parent + leaf
            bias = inits[weights[1]]
            c = bias.shape[0]
            eps = 1e-5
            # y = x * 1 / sqrt((1 - eps) + eps) + bias: an identity that adds the fused bias
            state[f"{norm}.weight"] = torch.ones(c)
            state[f"{norm}.bias"] = bias
            state[f"{norm}.running_mean"] = torch.zeros(c)
            state[f"{norm}.running_var"] = torch.full((c,), 1.0 - eps)
            state[f"{norm}.num_batches_tracked"] = torch.tensor(0)
        elif node.op_type == "PRelu":
            state[f"{path}.weight"] = inits[weights[0]].reshape(-1)
        elif node.op_type == "MatMul":
            state[f"{path}.weight"] = inits[weights[0]].t().contiguous()
        else:
            raise ValueError(f"{node.name}: unexpected {node.op_type} with unnamed weights")
    for k in list(state):
        if k.endswith("running_var") and k.replace("running_var", "num_batches_tracked") not in state:
            state[k.replace("running_var", "num_batches_tracked")] = torch.tensor(0)
    return state


M = TypeVar("M", FrameEncoder, WindowHead)


def _load(path: Path, kind: str, build: Callable[[ModelConfig], M],
          state_of: Callable[[onnx.ModelProto, ModelConfig], dict[str, torch.Tensor]]) -> tuple[M, ModelConfig, dict[str, str]]:
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("arpgnet.kind") != kind:
        raise SystemExit(f"{path}: not an arpgnet {kind} (kind {meta.get('arpgnet.kind')!r})")
    cfg = ModelConfig.from_json(json.loads(meta["arpgnet.config"]))
    module = build(cfg)
    missing, unexpected = module.load_state_dict(state_of(model, cfg), strict=False)
    if missing or unexpected:
        raise SystemExit(f"{path}: weights do not fit the {cfg.preset} {kind} (missing {missing}, unexpected {unexpected})")
    return module.eval(), cfg, meta


def load_onnx_encoder(path: Path) -> tuple[FrameEncoder, ModelConfig, dict[str, str]]:
    return _load(path, "encoder", FrameEncoder, encoder_state)


def head_state(model: onnx.ModelProto) -> dict[str, torch.Tensor]:
    """Named initialisers are the head's own parameters; linear weights are stored
    transposed under generated names (found by the MatMul that uses them), and the node
    type embeddings `kind` as the two generated addends after the position encoding."""
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    # a calibrated head is exported inside a wrapper (`Calibrated.head`)
    wrapped = any(k.startswith("head.") for k in inits)
    prefix = "head." if wrapped else ""
    state = {k[len(prefix):]: v for k, v in inits.items() if not k.startswith("onnx::")}
    kinds: list[torch.Tensor] = []
    for node in model.graph.node:
        generated = [i for i in node.input if i.startswith("onnx::") and i in inits]
        if not generated:
            continue
        if node.op_type == "MatMul":
            state[f"{module_path(node.name, skip=int(wrapped))}.weight"] = inits[generated[0]].t().contiguous()
        elif node.op_type == "Add" and len(kinds) < 2:
            kinds.append(inits[generated[0]])
        else:
            raise ValueError(f"{node.name}: unexpected {node.op_type} with unnamed weights")
    if kinds:
        state["kind"] = torch.stack(kinds)
    return state


def load_onnx_head(path: Path) -> tuple[WindowHead, ModelConfig, dict[str, str]]:
    """The head as exported; a temperature exported inside it (metadata `arpgnet.temperature`)
    is not part of WindowHead: the caller applies it or fits its own."""
    return _load(path, "head", WindowHead, lambda model, _cfg: head_state(model))
