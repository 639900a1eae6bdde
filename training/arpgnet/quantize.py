"""The CPU's int8 encoder: the float encoder with every Conv in QDQ form, from calibrated ranges.

onnxruntime's CPU provider turns each DequantizeLinear -> Conv -> QuantizeLinear group into
one QLinearConv (u8 activations per tensor, s8 weights per output channel, int32 biases),
which this CPU runs with its VNNI instructions; everything else stays float. The same QDQ
graph is what TensorRT's explicit quantisation reads. PRelu becomes Max(x, x * slope), equal
for slopes <= 1 (checked), because onnxruntime broadcasts a per-channel slope over the
channels-last tensors around QLinearConv far more slowly as PRelu than as Mul and Max.

The ranges come from the TypeScript side, which feeds the encoder exactly as the pipeline
does (`arpgnet-edge models calibrate --ranges`); 1.3.1+int8 was made with:

    node bin/arpgnet-edge.js models calibrate --faces ../shared/data/fer2013/train --limit 560 \\
        --encoder models/arpgnet-edge.encoder.onnx --out training/runs/int8/trt.cache --ranges training/runs/int8/ranges.json
    cd training && /usr/bin/python3 -m arpgnet.quantize --encoder ../models/arpgnet-edge.encoder.onnx \\
        --ranges runs/int8/ranges.json --out ../models/arpgnet-edge.encoder.int8.onnx --version 1.3.1+int8
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper


class QuantizeError(Exception):
    pass


def _activation(name: str, ranges: dict[str, list[float]]) -> tuple[float, int]:
    """u8 scale and zero point covering [low, high] (widened to hold 0, which padding and ReLU-like ops produce)."""
    if name not in ranges:
        raise QuantizeError(f"no calibrated range for tensor {name!r}: were the ranges made from this encoder?")
    lo, hi = (float(v) for v in ranges[name])
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise QuantizeError(f"range of {name!r} is not a finite [low, high]: {ranges[name]}")
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-8) / 255.0
    return scale, int(np.clip(round(-lo / scale), 0, 255))


def prelu_as_max(model: onnx.ModelProto) -> int:
    """Rewrites PRelu(x, s) as Max(x, x * s) wherever every slope is <= 1; returns how many."""
    init = {t.name: t for t in model.graph.initializer}
    nodes, n = [], 0
    for node in model.graph.node:
        slope = numpy_helper.to_array(init[node.input[1]]) if node.op_type == "PRelu" and node.input[1] in init else None
        if slope is None or slope.max() > 1:  # Max(x, s x) is PRelu only for s <= 1
            nodes.append(node)
            continue
        xs = node.output[0] + "_times_slope"
        nodes.append(helper.make_node("Mul", [node.input[0], node.input[1]], [xs], name=node.name + "_mul"))
        nodes.append(helper.make_node("Max", [node.input[0], xs], [node.output[0]], name=node.name + "_max"))
        n += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return n


def quantize_convs(model: onnx.ModelProto, ranges: dict[str, list[float]]) -> int:
    """Puts every Conv with constant weights between DequantizeLinear inputs and a QuantizeLinear output."""
    g = model.graph
    init = {t.name: t for t in g.initializer}
    nodes = list(g.node)
    convs = [k for k, n in enumerate(nodes) if n.op_type == "Conv" and n.input[1] in init]
    new_inits: list[onnx.TensorProto] = []
    after: dict[str, list[onnx.NodeProto]] = {}  # new nodes, placed after the producer of the named tensor
    qdq: dict[str, str] = {}

    def qdq_of(name: str) -> str:
        if name not in qdq:
            scale, zp = _activation(name, ranges)
            new_inits.extend([numpy_helper.from_array(np.array(scale, np.float32), name + "_scale"),
                              numpy_helper.from_array(np.array(zp, np.uint8), name + "_zero")])
            q, dq = name + "_q", name + "_dq"
            after.setdefault(name, []).extend([
                helper.make_node("QuantizeLinear", [name, name + "_scale", name + "_zero"], [q], name=q),
                helper.make_node("DequantizeLinear", [q, name + "_scale", name + "_zero"], [dq], name=dq)])
            qdq[name] = dq
        return qdq[name]

    def constant_dq(name: str, values: np.ndarray, scales: np.ndarray, zero: np.ndarray, near: str) -> str:
        new_inits.extend([numpy_helper.from_array(values, name + "_int"), numpy_helper.from_array(scales, name + "_scale"),
                          numpy_helper.from_array(zero, name + "_zero")])
        after.setdefault(near, []).append(helper.make_node(
            "DequantizeLinear", [name + "_int", name + "_scale", name + "_zero"], [name + "_dq"], axis=0, name=name + "_dq"))
        return name + "_dq"

    for k in convs:
        n = nodes[k]
        x, w = n.input[0], n.input[1]
        weights = numpy_helper.to_array(init[w]).astype(np.float32)
        c = weights.shape[0]
        w_scale = (np.maximum(np.abs(weights.reshape(c, -1)).max(1), 1e-8) / 127.0).astype(np.float32)
        w_int = np.clip(np.round(weights / w_scale.reshape(-1, *[1] * (weights.ndim - 1))), -127, 127).astype(np.int8)
        n.input[0] = qdq_of(x)
        n.input[1] = constant_dq(w, w_int, w_scale, np.zeros(c, np.int8), x)
        if len(n.input) > 2 and n.input[2]:
            # onnxruntime fuses only a group whose every input is dequantised: the bias as int32 at x_scale * w_scale
            x_scale, _ = _activation(x, ranges)
            b_scale = (x_scale * w_scale).astype(np.float32)
            bias = numpy_helper.to_array(init[n.input[2]]).astype(np.float64)
            n.input[2] = constant_dq(n.input[2], np.round(bias / b_scale).astype(np.int32), b_scale, np.zeros(c, np.int32), x)
    # every reader of a Conv's output reads it through Q -> DQ, the group's closing QuantizeLinear
    outs = {nodes[k].output[0] for k in convs}
    graph_outputs = {o.name for o in g.output}
    if outs & graph_outputs:
        raise QuantizeError(f"a Conv output is a graph output ({sorted(outs & graph_outputs)}): not supported")
    for n in nodes:
        for i, name in enumerate(n.input):
            if name in outs:
                n.input[i] = qdq_of(name)
    produced = {o for n in nodes for o in n.output}
    ordered = [m for name, extra in after.items() if name not in produced for m in extra]  # graph inputs
    for n in nodes:
        ordered.append(n)
        for o in n.output:
            ordered.extend(after.get(o, []))
    del g.node[:]
    g.node.extend(ordered)
    used = {i for n in ordered for i in n.input}
    kept = [t for t in g.initializer if t.name in used]  # the float weights now live as int8
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    return len(convs)


def set_meta(model: onnx.ModelProto, key: str, value: str) -> None:
    for p in model.metadata_props:
        if p.key == key:
            p.value = value
            return
    model.metadata_props.add(key=key, value=value)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", required=True, help="the float encoder (ONNX)")
    ap.add_argument("--ranges", required=True, help="JSON written by `arpgnet-edge models calibrate --ranges`")
    ap.add_argument("--out", required=True)
    ap.add_argument("--version", required=True, help="arpgnet.version of the result, e.g. 1.3.1+int8")
    args = ap.parse_args(argv)
    raw = Path(args.encoder).read_bytes()
    doc = json.loads(Path(args.ranges).read_text())
    if doc.get("sha256") != hashlib.sha256(raw).hexdigest():
        sys.exit(f"{args.ranges} was calibrated on {doc.get('encoder')} (sha256 {str(doc.get('sha256'))[:12]}), "
                 f"not on {args.encoder}: calibrate this encoder")
    model = onnx.load_from_string(raw)
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("arpgnet.kind") != "encoder" or "arpgnet.quantization" in meta:
        sys.exit(f"{args.encoder}: not a float ARPGNet encoder")
    try:
        convs = quantize_convs(model, doc["ranges"])
    except QuantizeError as e:
        sys.exit(f"{args.ranges}: {e}")
    prelus = prelu_as_max(model)
    onnx.checker.check_model(model)
    set_meta(model, "arpgnet.version", args.version)
    set_meta(model, "arpgnet.quantization",
             f"QDQ int8: {convs} Conv (u8 activations per tensor at the {doc['percentile']}th percentile of "
             f"{doc['faces']} faces and their mirrors, s8 weights per output channel, int32 biases); "
             f"{prelus} PRelu as Max(x, x * slope); made from {doc['encoder']} sha256 {doc['sha256'][:12]}")
    onnx.save(model, args.out)
    print(json.dumps({"out": args.out, "convs": convs, "prelus_as_max": prelus, "bytes": Path(args.out).stat().st_size}))


if __name__ == "__main__":
    main()
