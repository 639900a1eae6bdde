"""The blendshape branch's reader refuses what it cannot use, and its export carries what the runtime reads."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

import numpy as np

from experiments.actions import CLASSES, export, fit, fit_linear, load, log_probs

NAMES = [f"a{i:02d}" for i in range(51)]


def record(path: str, truth: str, actions: dict | None, rng: np.random.Generator) -> dict:
    p = rng.random(8)
    labels = CLASSES + ["contempt"]
    return {"path": path, "truth": truth, "prediction": truth,
            "probabilities": {k: float(v / p.sum()) for k, v in zip(labels, p)}, "actions": actions}


class ActionsReader(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp())
        self.rng = np.random.default_rng(0)

    def write(self, name: str, rows: list[dict]) -> Path:
        f = self.dir / name
        f.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return f

    def test_faces_without_actions_are_counted_not_zero_filled(self) -> None:
        acts = {n: 0.5 for n in NAMES}
        f = self.write("a.jsonl", [record("x1", "fear", acts, self.rng), record("x2", "fear", None, self.rng)])
        names, x, y, _, has, unread = load(f)
        self.assertEqual(names, NAMES)
        self.assertEqual(has.tolist(), [True, False])
        self.assertTrue(np.isnan(x[1]).all())
        self.assertEqual(unread, 0)

    def test_refuses_a_file_written_without_actions(self) -> None:
        f = self.write("none.jsonl", [record("x1", "fear", None, self.rng)])
        with self.assertRaisesRegex(ValueError, "no record carries actions; was it written with --actions"):
            load(f)

    def test_refuses_records_with_other_names(self) -> None:
        a = {n: 0.5 for n in NAMES}
        b = {**{n: 0.5 for n in NAMES[:-1]}, "other": 0.1}
        f = self.write("mixed.jsonl", [record("x1", "fear", a, self.rng), record("x2", "anger", b, self.rng)])
        with self.assertRaisesRegex(ValueError, r"mixed.jsonl:2: x2 has other action names"):
            load(f)

    def test_export_carries_the_names_and_classes_the_runtime_reads(self) -> None:
        import onnx

        x = self.rng.random((70, 51)).astype(np.float32)
        y = np.arange(70) % 7
        net = fit(x, y, epochs=1, seed=0)
        lp = np.log(np.full((70, 7), 1 / 7))
        lin = fit_linear(lp, log_probs(net, x), y, True)
        out = self.dir / "actions.onnx"
        export(net, lin, NAMES, out, {"arpgnet.version": "test"})
        meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        self.assertEqual(meta["arpgnet.actions"].split(","), NAMES)
        self.assertEqual(meta["arpgnet.classes"].split(","), CLASSES)
        self.assertEqual(meta["arpgnet.version"], "test")


if __name__ == "__main__":
    unittest.main()
