"""The QDQ quantiser: a graph onnxruntime can fuse, PRelu kept exact, bad ranges named."""
import hashlib
import unittest
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from arpgnet import quantize

ENCODER = Path(__file__).resolve().parents[2] / "models" / "arpgnet-edge.encoder.onnx"


def conv_tensors(model: onnx.ModelProto) -> set[str]:
    return {t for n in model.graph.node if n.op_type == "Conv" for t in (n.input[0], n.output[0])}


class QuantizeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.model = onnx.load(ENCODER)

    def test_every_conv_is_a_full_qdq_group(self) -> None:
        ranges = {t: [-4.0, 4.0] for t in conv_tensors(self.model)}
        n = quantize.quantize_convs(self.model, ranges)
        self.assertEqual(n, 17)
        prod = {o: node for node in self.model.graph.node for o in node.output}
        readers = {}
        for node in self.model.graph.node:
            for i in node.input:
                readers.setdefault(i, []).append(node)
        for node in self.model.graph.node:
            if node.op_type != "Conv":
                continue
            # onnxruntime fuses DQ -> Conv -> Q only when every input is dequantised and the output is quantised
            self.assertEqual([prod[i].op_type for i in node.input], ["DequantizeLinear"] * len(node.input), node.name)
            self.assertEqual([r.op_type for r in readers[node.output[0]]], ["QuantizeLinear"], node.name)
        onnx.checker.check_model(self.model)
        names = {t.name for t in self.model.graph.initializer}
        self.assertFalse(any(i in names for n in self.model.graph.node if n.op_type == "Conv" for i in n.input),
                         "no float weight is left behind")

    def test_a_tensor_without_a_range_is_named(self) -> None:
        ranges = {t: [-4.0, 4.0] for t in conv_tensors(self.model)}
        missing = sorted(ranges)[0]
        del ranges[missing]
        with self.assertRaisesRegex(quantize.QuantizeError, missing):
            quantize.quantize_convs(self.model, ranges)
        with self.assertRaisesRegex(quantize.QuantizeError, "finite"):
            quantize.quantize_convs(onnx.load(ENCODER), {t: [1.0, float("nan")] for t in conv_tensors(self.model)})

    def test_prelu_as_max_is_prelu_for_slopes_up_to_one(self) -> None:
        init = {t.name: numpy_helper.to_array(t) for t in self.model.graph.initializer}
        slopes = [init[n.input[1]] for n in self.model.graph.node if n.op_type == "PRelu"]
        self.assertEqual(quantize.prelu_as_max(self.model), len(slopes))
        self.assertFalse(any(n.op_type == "PRelu" for n in self.model.graph.node))
        x = np.random.default_rng(0).normal(size=(2, 1, 5, 5)).astype(np.float32) * 3
        for s in slopes + [np.array([1.0, -0.5, 0.0], np.float32).reshape(3, 1, 1)]:
            xs = np.broadcast_to(x, (2, s.shape[0], 5, 5))
            np.testing.assert_array_equal(np.maximum(xs, xs * s), np.where(xs >= 0, xs, xs * s))

    def test_ranges_of_another_encoder_are_refused(self) -> None:
        import json
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            r = Path(d) / "ranges.json"
            r.write_text(json.dumps({"encoder": "other.onnx", "sha256": hashlib.sha256(b"other").hexdigest(), "ranges": {}}))
            with self.assertRaises(SystemExit) as e:
                quantize.main(["--encoder", str(ENCODER), "--ranges", str(r), "--out", str(Path(d) / "o.onnx"),
                               "--version", "x"])
            self.assertIn("calibrated on other.onnx", str(e.exception))


if __name__ == "__main__":
    unittest.main()
