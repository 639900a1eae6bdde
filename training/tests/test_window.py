"""Stage D: the encoder read back from ONNX, the moving windows and the recency pooling."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

from arpgnet.calibration import ece, fit_temperature, softmax
from arpgnet.common import mass_weights
from arpgnet.clips import Bank, Sequences
from arpgnet.config import preset
from arpgnet.dynamics import Mix, Pools, make_windows, ramp
from arpgnet.onnx_export import Calibrated, EncoderExport, export_encoder, export_head, metadata
from arpgnet.onnx_import import load_onnx_encoder, load_onnx_head
from arpgnet.model import FrameEncoder, WindowHead
from arpgnet.windows import target_mass


def _randomise(m: torch.nn.Module) -> None:
    """Every tensor distinct, as in a trained model (the exporter merges equal initialisers),
    and batch norms far from identity, so undoing their fusion is really checked."""
    gen = torch.Generator().manual_seed(1)
    for p in m.parameters():
        p.data.add_(torch.randn(p.shape, generator=gen) * 0.05)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=gen) * 0.1)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=gen) + 0.5)
            mod.weight.data.copy_(torch.rand(mod.weight.shape, generator=gen) + 0.5)
            mod.bias.data.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.1)


class FromOnnx(unittest.TestCase):
    def test_exported_encoder_reads_back_to_the_same_function(self) -> None:
        torch.manual_seed(0)
        cfg = preset("edge")
        enc = FrameEncoder(cfg).eval()
        _randomise(enc)
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "enc.onnx"
            export_encoder(enc, cfg, path, 17, metadata(cfg, "encoder", "0.0.0-test", True, {"pair": "t"}), True)
            back, cfg2, meta = load_onnx_encoder(path)
        self.assertEqual(cfg2, cfg)
        self.assertEqual(meta["arpgnet.flip_average"], "true")
        x = torch.randn(4, 1, 48, 48)
        with torch.no_grad():
            a0, r0 = EncoderExport(enc, True)(x)
            a1, r1 = EncoderExport(back, True)(x)
        # float32 rounding of the fused weights, relative to the output's scale
        self.assertLess(float((a0 - a1).abs().max() / a0.abs().max()), 1e-5)
        self.assertLess(float((r0 - r1).abs().max() / r0.abs().max()), 1e-5)

    def test_a_head_file_is_refused(self) -> None:
        cfg = preset("edge")
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "x.onnx"
            enc = FrameEncoder(cfg).eval()
            export_encoder(enc, cfg, path, 17, {**metadata(cfg, "head", "0", False, {}), "arpgnet.kind": "head"}, False)
            with self.assertRaises(SystemExit) as e:
                load_onnx_encoder(path)
        self.assertIn("not an arpgnet encoder", str(e.exception))


class HeadFromOnnx(unittest.TestCase):
    def test_exported_heads_read_back_to_the_same_function(self) -> None:
        for pooling, temperature in (("mean", 1.0), ("recency", 1.3)):
            cfg = preset("edge").replace(pooling=pooling)
            head = WindowHead(cfg).eval()
            _randomise(head)
            with tempfile.TemporaryDirectory() as d:
                path = Path(d) / "head.onnx"
                module = Calibrated(head, temperature) if temperature != 1.0 else head
                export_head(module, cfg, path, 17, metadata(cfg, "head", "0.0.0-test", True, {}))
                back, cfg2, _ = load_onnx_head(path)
            self.assertEqual(cfg2.pooling, pooling)
            g = torch.Generator().manual_seed(2)
            app, rel = torch.randn(3, cfg.window, cfg.app_dim, generator=g), torch.randn(3, cfg.window, cfg.rel_dim, generator=g)
            valid = torch.ones(3, cfg.window)
            valid[0, :5] = 0
            with torch.no_grad():
                z0, z1 = head(app, rel, valid), back(app, rel, valid)
            self.assertLess(float((z0 - z1).abs().max()), 1e-5)


def _pools(classes: int = 8, neutral: int = 6) -> Pools:
    """FER rows whose embedding is their class one-hot (scaled), so a window shows its mix."""
    rows = 40
    labels = np.arange(rows) % 7
    app = torch.zeros(rows, 4, 128)
    app[torch.arange(rows), :, torch.from_numpy(labels)] = 10.0
    fer = Bank(app, app.clone(), labels, ["s"] * rows)
    sb = Bank(torch.zeros(3, 4, 128), torch.zeros(3, 4, 128), np.array([7, 7, 7]), ["c"] * 3)
    sb.app[:, :, 7] = 10.0
    sb.rel[:, :, 7] = 10.0
    seqs = Sequences(sb, np.array([[0, 1, 2]]), np.array([7]), ["c"])
    return Pools(fer, np.arange(rows), seqs, np.array([0]), neutral)


class Windows(unittest.TestCase):
    def test_ramp_is_monotone_and_often_finished(self) -> None:
        rng = np.random.default_rng(0)
        finished = 0
        for _ in range(500):
            a = ramp(8, rng)
            self.assertTrue(np.all(np.diff(a) >= 0))
            self.assertTrue(0 <= a.min() and a.max() <= 1)
            finished += a[-1] == 1.0
        self.assertGreater(finished, 300)

    def test_the_label_is_what_the_newest_frame_shows(self) -> None:
        rng = np.random.default_rng(1)
        pools = _pools()
        targets = [((0, i), i % 7) for i in range(7)] * 20 + [((1, 0), 7)] * 20
        app, rel, valid, y, scen = make_windows(pools, targets, 8, 8, rng, Mix())
        self.assertEqual(tuple(app.shape), (len(targets), 8, 128))
        np.testing.assert_allclose(y.sum(1).numpy(), 1.0, atol=1e-6)
        # the newest frame's embedding is the soft target (times 10) by construction
        np.testing.assert_allclose(app[:, -1, :8].numpy() / 10.0, y.numpy(), atol=1e-5)
        self.assertEqual(set(np.unique(scen)), {0, 1, 2, 3})
        moving = scen != 0
        self.assertTrue(np.any(app[moving, 0, :8].numpy().argmax(1) != y[moving].numpy().argmax(1)),
                        "in moving windows the oldest frame often shows something else")
        self.assertTrue(np.all(valid[:, -1].numpy() == 1), "the newest frame is always real")


    def test_held_out_sequences_never_enter_a_window(self) -> None:
        """Per subject fold, stage D may draw CK+48 sequences only from the training
        subjects (its seq_idx): a held-out sequence's frames never appear in a window."""
        rng = np.random.default_rng(2)
        base = _pools()
        sb = Bank(torch.zeros(6, 4, 128), torch.zeros(6, 4, 128), np.array([7, 7, 7, 2, 2, 2]), ["c"] * 3 + ["d"] * 3)
        sb.app[:3, :, 7] = 10.0
        sb.app[3:, :, 100] = 1e3  # the held-out subject's frames carry a mark no other face has
        seqs = Sequences(sb, np.array([[0, 1, 2], [3, 4, 5]]), np.array([7, 2]), ["c", "d"])
        pools = Pools(base.fer, np.arange(len(base.fer.labels)), seqs, np.array([0]), 6)
        targets = [((0, i), i % 7) for i in range(7)] * 40
        app, _, _, _, _ = make_windows(pools, targets, 8, 8, rng, Mix(still=0, onset=0, offset=0, change=1), p_seq=1.0)
        self.assertGreater(float(app[..., 7].max()), 0, "the training sequence is drawn")
        self.assertEqual(float(app[..., 100].abs().max()), 0.0)


class Balance(unittest.TestCase):
    def test_target_mass_counts_the_neutral_that_offsets_carry(self) -> None:
        pools = _pools()
        cfg = preset("edge")
        items = [((0, int(i)), int(pools.fer.labels[i])) for i in pools.fer_idx]
        rng = np.random.default_rng(0)
        # every window an offset: the label of a finished ramp is neutral, whatever the item's
        mass = target_mass(pools, items, cfg, Mix(still=0, onset=0, offset=1, change=0), rng, draws=40)
        self.assertAlmostEqual(float(mass.sum()), 1.0, places=5)
        self.assertGreater(mass[pools.neutral], 0.5)  # items: 6 of 40 are neutral
        still = target_mass(pools, items, cfg, Mix(still=1, onset=0, offset=0, change=0), rng, draws=40)
        np.testing.assert_allclose(still[:7], np.bincount(pools.fer.labels, minlength=7) / 40, atol=1e-6)
        w_still, w_off = mass_weights(still), mass_weights(mass)
        self.assertLess(float(w_off[pools.neutral]), float(w_still[pools.neutral]))


class RecencyPooling(unittest.TestCase):
    def test_frames_masked_out_do_not_count(self) -> None:
        torch.manual_seed(0)
        cfg = preset("edge", pooling="recency")
        head = WindowHead(cfg).eval()
        app, rel = torch.randn(1, 8, 128), torch.randn(1, 8, 128)
        valid = torch.ones(1, 8)
        valid[0, :3] = 0
        app2, rel2 = app.clone(), rel.clone()
        app2[0, :3] = 100.0
        with torch.no_grad():
            self.assertLess(float((head(app, rel, valid) - head(app2, rel2, valid)).abs().max()), 1e-4)

    def test_old_configs_keep_mean_pooling(self) -> None:
        d = preset("edge").to_json()
        del d["pooling"]
        from arpgnet.config import ModelConfig
        self.assertEqual(ModelConfig.from_json(d).pooling, "mean")
        with self.assertRaises(ValueError):
            preset("edge", pooling="max")


class Calibration(unittest.TestCase):
    def test_temperature_undoes_overconfidence(self) -> None:
        rng = np.random.default_rng(0)
        y = rng.integers(0, 4, 4000)
        logits = rng.normal(size=(4000, 4))
        logits[np.arange(4000), y] += 1.0
        sharp = logits * 4  # the same ranking, claiming far too much
        t = fit_temperature(sharp, y)
        self.assertAlmostEqual(t, 4.0, delta=0.4)
        self.assertLess(ece(softmax(sharp, t), y), ece(softmax(sharp), y) / 3)


if __name__ == "__main__":
    unittest.main()
