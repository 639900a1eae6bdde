"""An encoder without its mirror pass: the same weights, half the work per face.

1.3.0's encoder encodes every face together with its mirror image and averages the two
embeddings (metadata `arpgnet.flip_average`). This rewrites the graph so the batch is
the faces alone and each output is the face's own embedding; every weight is kept. The
pipeline then gives the encoder a face's mirror image every other frame instead
(analysis.mirror 'alternate'), so a window still holds both views. Both files get the
new version; the head's graph is unchanged. 1.3.1 was made from 1.3.0 with:

    mkdir -p training/runs/v1.3.0
    git show 8d7b419:models/arpgnet-edge.encoder.onnx > training/runs/v1.3.0/arpgnet-edge.encoder.onnx
    git show 8d7b419:models/arpgnet-edge.head.onnx > training/runs/v1.3.0/arpgnet-edge.head.onnx
    /usr/bin/python3 -m training.arpgnet.strip_flip training/runs/v1.3.0 models --version 1.3.1
"""
import argparse
import os
import sys

import onnx
from onnx import helper


def strip(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    face = g.input[0].name
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("arpgnet.flip_average") != "true":
        sys.exit("this encoder has no mirror pass (arpgnet.flip_average is not true)")
    concat = [n for n in g.node if n.op_type == "Concat" and n.input and n.input[0] == face]
    if len(concat) != 1:
        sys.exit(f"expected one Concat of '{face}' with its mirror, found {len(concat)}")
    by_output = {o: n for n in g.node for o in n.output}
    nodes = []
    for n in g.node:
        if n is concat[0]:
            # the batch is the faces alone
            nodes.append(helper.make_node("Identity", [face], list(n.output), name=n.name + "_faces_only"))
            continue
        if n.output and n.output[0] in [o.name for o in g.output]:
            # out = (first half + second half) / 2  ->  out = first half
            if n.op_type != "Div":
                sys.exit(f"output {n.output[0]} is made by {n.op_type}, not the averaging Div")
            add = by_output[n.input[0]]
            if add.op_type != "Add":
                sys.exit(f"output {n.output[0]}: expected Add before the Div, found {add.op_type}")
            nodes.append(helper.make_node("Identity", [add.input[0]], list(n.output), name=n.name + "_own"))
            continue
        nodes.append(n)
    # the mirror's half and the averaging are dead now: drop every node no output needs
    needed = {o.name for o in g.output}
    kept = []
    for n in reversed(nodes):
        if any(o in needed for o in n.output):
            kept.append(n)
            needed.update(n.input)
    del g.node[:]
    g.node.extend(reversed(kept))
    used = {i for n in kept for i in n.input}
    inits = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    for p in model.metadata_props:
        if p.key == "arpgnet.flip_average":
            p.value = "false"
    onnx.checker.check_model(model)
    return model


def set_version(model: onnx.ModelProto, version: str) -> None:
    for p in model.metadata_props:
        if p.key == "arpgnet.version":
            p.value = version


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="folder holding arpgnet-edge.{encoder,head}.onnx")
    ap.add_argument("out", help="folder to write them to")
    ap.add_argument("--version", required=True)
    a = ap.parse_args()
    enc = strip(onnx.load(os.path.join(a.src, "arpgnet-edge.encoder.onnx")))
    head = onnx.load(os.path.join(a.src, "arpgnet-edge.head.onnx"))
    set_version(enc, a.version)
    set_version(head, a.version)
    os.makedirs(a.out, exist_ok=True)
    for name, m in (("encoder", enc), ("head", head)):
        path = os.path.join(a.out, f"arpgnet-edge.{name}.onnx")
        onnx.save(m, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
