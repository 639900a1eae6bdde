"""faceres-deep read into PyTorch: what TF.js computes, and clear refusals of other files."""

from __future__ import annotations

import json
import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

from experiments import faceres


def pattern(size: int) -> torch.Tensor:
    """The input faceres-tfjs.mjs made its reference from: NHWC sin pattern in 0..255, as NCHW."""
    i = np.arange(size * size * 3, dtype=np.float64)
    x = ((np.sin(i * 0.013) * 0.5 + 0.5) * 255 * ((i % 7) / 7 + 0.3)) % 256
    return torch.from_numpy(x.astype(np.float32).reshape(1, size, size, 3)).permute(0, 3, 1, 2).contiguous()


class FaceResWeights(unittest.TestCase):
    def test_the_pytorch_network_matches_tfjs_on_a_fixed_input(self) -> None:
        ref = json.loads((Path(__file__).parent / "fixtures" / "faceres-tfjs.json").read_text())
        model = faceres.load()
        with torch.no_grad():
            maps = model.maps(pattern(224))
            pooled = model(pattern(224))[0].numpy()
        block6 = maps[6].mean(dim=(2, 3))[0].numpy()
        for got, name in ((pooled, "features"), (block6, "block6Mean")):
            want = np.array(ref[name], dtype=np.float32)
            self.assertEqual(got.shape, want.shape, name)
            self.assertLess(float(np.abs(got - want).max()), 1e-4 * float(np.abs(want).max()), name)
        # block 6 is dense on this pattern, so the check sees every early layer's weights
        self.assertGreater(int((np.array(ref["block6Mean"]) > 0).sum()), 400)
        # TF's SAME padding matters: symmetric padding gives other features
        pad = faceres._same
        try:
            faceres._same = lambda x, stride: torch.nn.functional.pad(x, (1, 1, 1, 1))  # type: ignore[assignment]
            with torch.no_grad():
                sym = model.maps(pattern(224))[6].mean(dim=(2, 3))[0].numpy()
        finally:
            faceres._same = pad
        self.assertGreater(float(np.abs(sym - np.array(ref["block6Mean"])).max()), 1e-2)

    def test_a_missing_folder_names_the_file_and_the_fetch_script(self) -> None:
        with tempfile.TemporaryDirectory() as d, self.assertRaisesRegex(FileNotFoundError, "fetch-faceres.sh"):
            faceres.load(Path(d))

    def test_a_graph_with_other_tensors_is_refused_with_their_name(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            dst = Path(d)
            shutil.copy(faceres.default_dir() / "faceres-deep.bin", dst)
            spec = json.loads((faceres.default_dir() / "faceres-deep.json").read_text())
            for w in spec["weightsManifest"][0]["weights"]:
                if w["name"] == "conv_dw_7/depthwise_kernel":
                    w["name"] = "conv_dw_7/renamed"
            (dst / "faceres-deep.json").write_text(json.dumps(spec))
            with self.assertRaisesRegex(ValueError, "no weight conv_dw_7/depthwise_kernel"):
                faceres.load(dst)

    def test_a_truncated_weights_file_is_refused(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            dst = Path(d)
            shutil.copy(faceres.default_dir() / "faceres-deep.json", dst)
            (dst / "faceres-deep.bin").write_bytes((faceres.default_dir() / "faceres-deep.bin").read_bytes()[:1000])
            with self.assertRaisesRegex(ValueError, "runs past the end"):
                faceres.load(dst)

    def test_the_graph_takes_0_255_its_own_heads_tell_faces_apart_only_so(self) -> None:
        """The TF.js graph has no input scaling: on real faces its gender head spreads with
        0..255 and gives nearly one answer for 0..1 (the range the pipeline's crops come in)."""
        from arpgnet.common import ROOT, shared_dir, to_unit
        from arpgnet.config import preset
        from arpgnet.data import load_image_array, scan_images

        cfg = preset("edge")
        val = scan_images(shared_dir(None) / "data" / "fer2013" / "val", cfg.labels)[::56][:64]
        grey = to_unit(load_image_array(val, cfg.input_size, ROOT / "training" / "cache"))
        w = faceres.read_weights(faceres.default_dir())
        model = faceres.load()

        def gender_spread(scale: float) -> float:
            with torch.no_grad():
                f = model(faceres.from_grey(grey, 224) / 255.0 * scale).numpy()
            h = np.maximum(f @ w["feats/kernel"] + w["feats/bias"], 0)
            g = 1 / (1 + np.exp(-(h @ w["gender_pred/kernel"] + w["gender_pred/bias"])))
            return float(g.std())

        self.assertGreater(gender_spread(255.0), 10 * gender_spread(1.0))

    def test_grey_crops_become_three_equal_channels_in_0_255(self) -> None:
        grey = torch.rand(2, 1, 48, 48)
        x = faceres.from_grey(grey, 112)
        self.assertEqual(tuple(x.shape), (2, 3, 112, 112))
        self.assertTrue(torch.equal(x[:, 0], x[:, 2]))
        self.assertAlmostEqual(float(x.mean()), float(grey.mean()) * 255, delta=2.0)


class FineTuneResume(unittest.TestCase):
    """A run longer than one sitting: stopped after an epoch, the same command continues it."""

    def test_a_stopped_run_continues_where_it_stopped_and_refuses_other_settings(self) -> None:
        from experiments import faceres_fer

        with tempfile.TemporaryDirectory() as d:
            common = ["--run", d, "--size", "32", "--epochs", "2", "--limit", "64", "--threads", "1", "--device", "cpu"]
            faceres_fer.main([*common, "--stop-after", "1"])
            first = torch.load(Path(d) / "last.pt", map_location="cpu")
            self.assertEqual(first["epoch"], 1)
            self.assertFalse((Path(d) / "result.json").exists(), "a stopped run has no result yet")
            faceres_fer.main(common)
            result = json.loads((Path(d) / "result.json").read_text())
            self.assertEqual([h["epoch"] for h in result["history"]], [1, 2])
            self.assertEqual(result["history"][0], first["history"][0], "epoch 1 was not trained again")
            with self.assertRaisesRegex(SystemExit, "--size 32"):
                faceres_fer.main([*common[:2], "--size", "48", *common[4:]])


if __name__ == "__main__":
    unittest.main()
