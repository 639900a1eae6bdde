"""Shape, graph and data checks for the training side (run: python3 -m unittest discover -s tests)."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

from arpgnet.common import check_config
from arpgnet.config import ModelConfig, preset
from arpgnet.data import (DatasetError, load_grey, sample_indices, scan_affwild2, scan_images, scan_rml, scan_sequences,
                          subject_folds)
from arpgnet.model import ARPGNet, FrameEncoder, fusion_adjacency, region_adjacency

torch.set_num_threads(2)


def save_encoder(path: Path, cfg: ModelConfig) -> FrameEncoder:
    """An encoder checkpoint as stage A writes it, with freshly initialised weights."""
    from arpgnet.common import save

    encoder = FrameEncoder(cfg)
    save(path, {"config": cfg.to_json(), "encoder": encoder.state_dict()})
    return encoder


def tiny_stage_c(d: str, cfg: ModelConfig) -> tuple[FrameEncoder, tuple]:
    """A fresh stage-A encoder saved in d, and finetune's positional arguments for four
    three-frame sequences (labels 0-3) and eight FER2013 faces of random pixels."""
    path = Path(d) / "encoder.pt"
    enc = save_encoder(path, cfg)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(12, 48, 48), dtype=np.uint8)
    frames = np.arange(12).reshape(4, 3)
    fer = rng.integers(0, 255, size=(8, 48, 48), dtype=np.uint8)
    return enc, (cfg, path, None, images, frames, np.array([0, 1, 2, 3]), np.arange(4), fer, np.arange(8) % 7)


class Shapes(unittest.TestCase):
    def test_paper_preset_forward_with_the_papers_sizes(self) -> None:
        cfg = preset("paper")
        self.assertEqual((cfg.input_size, cfg.in_channels, cfg.blocks, cfg.app_dim), (112, 3, (3, 4, 14, 3), 512))
        model = ARPGNet(cfg).eval()
        clips = torch.randn(1, cfg.window, 3, 112, 112)
        with torch.no_grad():
            app, s3 = model.encoder.backbone(clips[0, :2])
            logits = model(clips, torch.ones(1, cfg.window))
        self.assertEqual(tuple(app.shape), (2, 512))
        self.assertEqual(tuple(s3.shape), (2, 256, 14, 14))  # IResNet-50 stage 3 at 112x112
        self.assertEqual(tuple(logits.shape), (1, 7))
        params = sum(p.numel() for p in model.encoder.backbone.parameters())
        self.assertGreater(params, 40e6)  # IResNet-50 is ~43.6 M parameters

    def test_edge_preset_lands_stage3_on_the_6x6_grid(self) -> None:
        cfg = preset("edge")
        enc = FrameEncoder(cfg).eval()
        with torch.no_grad():
            _, s3 = enc.backbone(torch.randn(2, 1, 48, 48))
            app, rel = enc(torch.randn(2, 1, 48, 48))
        self.assertEqual(tuple(s3.shape[2:]), (6, 6))
        self.assertEqual((tuple(app.shape), tuple(rel.shape)), ((2, 128), (2, 128)))

    def test_a_wider_edge_encoder_keeps_the_grid_and_the_embeddings_the_head_reads(self) -> None:
        cfg = preset("edge", widths=(40, 80, 160, 320), blocks=(1, 3, 4, 1))
        enc = FrameEncoder(cfg).eval()
        with torch.no_grad():
            _, s3 = enc.backbone(torch.randn(2, 1, 48, 48))
            app, rel = enc(torch.randn(2, 1, 48, 48))
        self.assertEqual(tuple(s3.shape[1:]), (160, 6, 6))
        self.assertEqual((tuple(app.shape), tuple(rel.shape)), ((2, 128), (2, 128)))
        self.assertEqual(len(enc.backbone.stage3), 4)
        with self.assertRaises(SystemExit):  # not interchangeable with the standard edge encoder
            check_config(cfg.to_json(), preset("edge"), "wide.pt")

    def test_every_ablation_runs(self) -> None:
        for changes in ({"mode": "appearance"}, {"mode": "relation"}, {"mode": "concat"}, {"use_trs": False},
                        {"symmetry_edges": False}):
            cfg = preset("edge", **changes)
            with torch.no_grad():
                y = ARPGNet(cfg).eval()(torch.randn(2, cfg.window, 1, 48, 48), torch.ones(2, cfg.window))
            self.assertEqual(tuple(y.shape), (2, cfg.num_classes), changes)

    def test_masked_frames_do_not_change_the_output(self) -> None:
        cfg = preset("edge")
        model = ARPGNet(cfg).eval()
        clips = torch.randn(1, cfg.window, 1, 48, 48)
        valid = torch.ones(1, cfg.window)
        valid[0, :3] = 0
        other = clips.clone()
        other[0, :3] = torch.randn(3, 1, 48, 48)
        with torch.no_grad():
            self.assertTrue(torch.allclose(model(clips, valid), model(other, valid), atol=1e-5))


class Graphs(unittest.TestCase):
    def test_region_graph_has_self_loops_neighbours_and_symmetry(self) -> None:
        adj = region_adjacency(6, symmetry=True)
        self.assertTrue(bool(adj.diagonal().all()))
        self.assertTrue(bool((adj == adj.T).all()))
        self.assertTrue(bool(adj[0, 5]))  # row 0: column 0 <-> column 5
        self.assertTrue(bool(adj[0, 7]))  # diagonal neighbour
        self.assertFalse(bool(region_adjacency(6, symmetry=False)[0, 5]))

    def test_fusion_graph_band_and_cross_edges(self) -> None:
        adj = fusion_adjacency(6, 2, "fusion")
        t = 6
        self.assertTrue(bool(adj[0, 2]) and not bool(adj[0, 3]))  # |t-s| <= TRS within appearance
        self.assertTrue(bool(adj[t + 1, t + 3]) and not bool(adj[t + 1, t + 4]))  # within relation
        self.assertTrue(bool(adj[2, t + 2]) and not bool(adj[2, t + 3]))  # same frame across sequences only
        self.assertTrue(bool(fusion_adjacency(6, None, "fusion")[0, 5]))  # TRS off: the whole sequence


class Data(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp())
        self.labels = preset("edge").labels

    def _img(self, p: Path) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        from PIL import Image

        Image.fromarray(np.zeros((48, 48), np.uint8)).save(p)

    def test_synonyms_are_mapped(self) -> None:
        self._img(self.tmp / "Happy" / "a.png")
        self._img(self.tmp / "angry" / "b.png")
        got = sorted(self.labels[s.label] for s in scan_images(self.tmp, self.labels))
        self.assertEqual(got, ["anger", "happiness"])

    def test_unknown_class_is_named(self) -> None:
        self._img(self.tmp / "bored" / "a.png")
        with self.assertRaisesRegex(DatasetError, "unknown class folder 'bored'"):
            scan_images(self.tmp, self.labels)

    def test_empty_class_is_named(self) -> None:
        (self.tmp / "sad").mkdir()
        with self.assertRaisesRegex(DatasetError, "sad: empty class folder"):
            scan_images(self.tmp, self.labels)

    def test_unreadable_image_is_named(self) -> None:
        bad = self.tmp / "sad" / "broken.png"
        bad.parent.mkdir(parents=True)
        bad.write_bytes(b"not a png")
        with self.assertRaisesRegex(DatasetError, "broken.png: unreadable image"):
            load_grey(bad, 48)

    def test_short_sequence_is_named(self) -> None:
        for i in range(2):
            self._img(self.tmp / "fear" / "S001_001" / f"{i:03d}.png")
        with self.assertRaisesRegex(DatasetError, "S001_001: 2 frames, at least 3 needed"):
            scan_sequences(self.tmp, self.labels, min_frames=3)

    def test_rml_layout_keeps_the_subject(self) -> None:
        for i in range(3):
            self._img(self.tmp / "s1" / "ha" / "clip1" / f"{i}.png")
        got = scan_rml(self.tmp, self.labels, min_frames=3)
        self.assertEqual([(self.labels[g.label], g.subject, len(g.frames)) for g in got], [("happiness", "s1", 3)])

    def test_affwild2_runs_of_equal_labels_become_samples(self) -> None:
        ann = self.tmp / "annotations" / "EXPR_Set" / "Train_Set"
        ann.mkdir(parents=True)
        # header, then per-frame codes: neutral x3, invalid, anger x2, other
        (ann / "v1.txt").write_text("Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n0\n0\n0\n-1\n1\n1\n7\n")
        for i in range(1, 8):
            self._img(self.tmp / "cropped_aligned" / "v1" / f"{i:05d}.jpg")
        got = scan_affwild2(self.tmp, "Train_Set", self.labels, min_frames=2)
        self.assertEqual([(self.labels[g.label], len(g.frames)) for g in got], [("neutral", 3), ("anger", 2)])

    def test_t_frame_sampling_keeps_order_and_covers_the_sequence(self) -> None:
        idx = sample_indices(20, 8, None)
        self.assertEqual(list(idx), sorted(idx))
        self.assertEqual((idx[0] <= 2, idx[-1] >= 17), (True, True))
        self.assertEqual(len(sample_indices(3, 8, np.random.default_rng(0))), 8)


class Folds(unittest.TestCase):
    def test_no_subject_is_in_two_folds(self) -> None:
        subjects = ["S1", "S2", "S1", "S3", "S4", "S2", "S5"]
        folds = subject_folds(subjects, 3)
        for s in set(subjects):
            self.assertEqual(len({f for f, t in zip(folds, subjects) if t == s}), 1)
        self.assertEqual(len(set(folds)), 3)


class Checkpoints(unittest.TestCase):
    def test_wrong_preset_is_refused_with_the_mismatch_named(self) -> None:
        with self.assertRaises(SystemExit) as e:
            check_config(preset("paper").to_json(), preset("edge"), "paper.pt")
        self.assertIn("input_size: file has 112, expected 48", str(e.exception))


class FineTune(unittest.TestCase):
    def test_stage_c_trains_encoder_and_head_and_keeps_batchnorm_statistics(self) -> None:
        from arpgnet.stage_c import finetune, predict_clips

        cfg = preset("edge")
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as d:
            enc, args = tiny_stage_c(d, cfg)
            images, frames = args[3], args[4]
            model = finetune(*args, epochs=1, batch=4, quiet=True)
            # the heavy-replay recipe: one view per FER2013 face, plain cross-entropy
            light = finetune(*args, epochs=1, batch=4, quiet=True, fer_ratio=2.0, fer_views=1, weights_on="none")
            distilled = finetune(*args, epochs=1, batch=4, quiet=True, distill=1.0)
            # an ensemble's soft targets on the replay, and the stem + 2 stages kept fixed
            targets = np.log(np.full((8, cfg.num_classes), 1.0 / cfg.num_classes, dtype=np.float32))
            soft = finetune(*args, epochs=1, batch=4, quiet=True, distill=1.0, fer_targets=targets)
            frozen = finetune(*args, epochs=1, batch=4, quiet=True, freeze=2)
        before = enc.state_dict()
        after = model.encoder.state_dict()
        bn_mean = next(k for k in before if k.endswith("running_mean"))
        conv = next(k for k in before if k.endswith("weight") and before[k].dim() == 4)
        self.assertTrue(torch.equal(before[bn_mean], after[bn_mean]), "batch-norm statistics are kept")
        self.assertFalse(torch.equal(before[conv], after[conv]), "the encoder was trained (1e-4)")
        self.assertFalse(torch.equal(before[conv], light.encoder.state_dict()[conv]))
        self.assertFalse(torch.equal(after[conv], distilled.encoder.state_dict()[conv]), "distillation acts")
        self.assertFalse(torch.equal(after[conv], soft.encoder.state_dict()[conv]), "soft targets act")
        kept = frozen.encoder.state_dict()
        for k in before:
            if k.startswith(("backbone.stem.", "backbone.stage1.", "backbone.stage2.")):
                self.assertTrue(torch.equal(before[k], kept[k]), f"{k} is frozen")
        s3 = next(k for k in before if k.startswith("backbone.stage3.") and k.endswith("weight") and before[k].dim() == 4)
        self.assertFalse(torch.equal(before[s3], kept[s3]), "stage 3 still trains")
        pred = predict_clips(model, images[frames], cfg.window, flip_average=True)
        self.assertEqual(pred.shape, (4,))

    def test_distillation_pulls_the_student_towards_the_teacher(self) -> None:
        from arpgnet.common import distillation

        torch.manual_seed(0)
        teacher = torch.randn(6, 8)
        self.assertAlmostEqual(float(distillation(teacher.clone(), teacher, 2.0)), 0.0, places=5)
        student = torch.randn(6, 8, requires_grad=True)
        before = distillation(student, teacher, 2.0)
        self.assertGreater(float(before), 0.0)
        before.backward()
        with torch.no_grad():
            moved = student - 0.5 * student.grad
        self.assertLess(float(distillation(moved, teacher, 2.0)), float(before))

    def test_sequence_class_weights_leave_the_replay_unweighted(self) -> None:
        import torch.nn.functional as F

        from arpgnet.stage_c import clip_loss

        torch.manual_seed(0)
        logits = torch.randn(6, 8)
        y = torch.tensor([0, 1, 2, 3, 4, 5])  # rows 0-2 CK+48 sequences, rows 3-5 FER2013 replay
        weights = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0, 0.2, 1.0, 1.0])
        plain = clip_loss(logits, y, 0, weights, "sequences")
        self.assertAlmostEqual(float(plain), float(F.cross_entropy(logits, y, label_smoothing=0.1)), places=5)
        self.assertNotAlmostEqual(float(clip_loss(logits, y, 0, weights, "ck")), float(plain), places=3)
        mixed = clip_loss(logits, y, 3, weights, "sequences")
        # a weight of a class only the replay shows changes the loss under "ck", not under "sequences"
        other = weights.clone()
        other[4] = 9.0
        self.assertAlmostEqual(float(clip_loss(logits, y, 3, other, "sequences")), float(mixed), places=5)
        self.assertNotAlmostEqual(float(clip_loss(logits, y, 3, other, "ck")),
                                  float(clip_loss(logits, y, 3, weights, "ck")), places=3)
        self.assertNotAlmostEqual(float(mixed), float(clip_loss(logits, y, 3, None, "none")), places=3)

    def test_unlabelled_margin_spares_neutral_in_the_sequences_loss(self) -> None:
        from arpgnet.stage_c import clip_loss

        torch.manual_seed(0)
        logits = torch.randn(6, 8, requires_grad=True)
        y = torch.tensor([0, 1, 2, 3, 6, 5])  # rows 0-2 sequences, rows 3-5 replay (6 = neutral)
        unlabelled = torch.zeros(8, dtype=torch.bool)
        unlabelled[6] = True  # the sequences never label neutral
        weights = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0, 0.2, 1.0, 1.0])
        for on in ("ck", "sequences", "none"):
            logits.grad = None
            clip_loss(logits, y, 3, weights, on, unlabelled, float("inf")).backward()
            self.assertTrue(torch.all(logits.grad[:3, 6] == 0), f"{on}: sequences do not push neutral down")
            self.assertTrue(torch.all(logits.grad[3:, 6] != 0), f"{on}: the replay still scores neutral")
        push = []
        for margin in (0.0, 2.0):
            logits.grad = None
            clip_loss(logits, y, 3, weights, "sequences", unlabelled, margin).backward()
            push.append(logits.grad[:3, 6].clone())
        self.assertTrue(torch.all(push[1] < push[0]), "a margin pushes neutral down less")
        with torch.no_grad():
            logits[0, 6] = 6.0  # a face the model finds neutral by far more than the margin
        logits.grad = None
        clip_loss(logits, y, 3, weights, "sequences", unlabelled, 2.0).backward()
        self.assertGreater(float(logits.grad[0, 6]), 0.0, "a clearly neutral-looking face is still corrected")
        with torch.no_grad():
            full = clip_loss(logits, y, 3, weights, "sequences")
            self.assertAlmostEqual(float(clip_loss(logits, y, 3, weights, "sequences", unlabelled, 0.0)), float(full))
            partial = clip_loss(logits, y, 3, weights, "sequences", unlabelled, float("inf"))
        self.assertLess(float(partial), float(full), "a class left out can only lower the sequences' loss")

    def test_replay_unlabelled_weighs_only_the_replayed_neutral_faces(self) -> None:
        from arpgnet.stage_c import clip_loss

        torch.manual_seed(0)
        logits = torch.randn(6, 8, requires_grad=True)
        y = torch.tensor([0, 1, 2, 3, 6, 5])  # rows 0-2 sequences, rows 3-5 replay (row 4 a neutral face)
        unlabelled = torch.zeros(8, dtype=torch.bool)
        unlabelled[6] = True
        weights = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0, 0.2, 1.0, 1.0])
        grads = {}
        for on in ("ck", "sequences", "none"):
            for w in (1.0, 3.0):
                logits.grad = None
                loss = clip_loss(logits, y, 3, weights, on, unlabelled, 0.0, w)
                loss.backward()
                grads[on, w] = logits.grad.clone()
                if w == 1.0:
                    self.assertAlmostEqual(float(loss), float(clip_loss(logits, y, 3, weights, on)), places=5)
            g1, g3 = grads[on, 1.0], grads[on, 3.0]
            share = lambda g, i: float(g[i].abs().sum() / g.abs().sum())  # noqa: E731
            self.assertGreater(share(g3, 4), share(g1, 4), f"{on}: the replayed neutral face counts for more")
            if on == "ck":
                continue  # re-weighting leaves PyTorch's class-weighted smoothing for per-row weights, as a margin does
            for i in (0, 1, 2, 3, 5):  # every other row keeps its weight relative to the rest
                self.assertAlmostEqual(float(g3[i].abs().sum() / g3[0].abs().sum()),
                                       float(g1[i].abs().sum() / g1[0].abs().sum()), places=4)

    def test_head_warmup_and_frozen_norm_keep_the_encoder_fixed(self) -> None:
        from arpgnet.common import seed_all
        from arpgnet.stage_c import finetune, initial

        cfg = preset("edge")
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as d:
            enc, args = tiny_stage_c(d, cfg)
            seed_all(0)
            start = initial(cfg, args[1], None)  # the head finetune starts from with seed 0
            probe = finetune(*args, epochs=1, batch=4, quiet=True, head_warmup=1, unlabelled_margin=float("inf"))
            both = finetune(*args, epochs=2, batch=4, quiet=True, head_warmup=1)
            kept = finetune(*args, epochs=1, batch=4, quiet=True, frozen_norm="all")
        for k, v in enc.named_parameters():
            self.assertTrue(torch.equal(v, dict(probe.encoder.named_parameters())[k]), f"{k} waits for the head")
        # the embedding layers' BatchNorm1d statistics drift in train mode unless frozen_norm="all"
        stat = "backbone.features.running_mean"
        self.assertFalse(torch.equal(enc.state_dict()[stat], probe.encoder.state_dict()[stat]))
        for k, v in enc.state_dict().items():
            if "running" in k:
                self.assertTrue(torch.equal(v, kept.encoder.state_dict()[k]), f"{k} keeps stage A's statistics")
        head = next(k for k in start.head.state_dict() if k.endswith("weight"))
        self.assertFalse(torch.equal(start.head.state_dict()[head], probe.head.state_dict()[head]), "the head trains")
        conv = next(k for k, v in enc.state_dict().items() if k.endswith("weight") and v.dim() == 4)
        self.assertFalse(torch.equal(enc.state_dict()[conv], both.encoder.state_dict()[conv]), "then the encoder")

    def test_only_folds_are_parsed_and_checked(self) -> None:
        import argparse
        import contextlib
        import io

        from arpgnet.finetune import fold_list, main

        self.assertEqual(fold_list("3,1,1"), [1, 3])
        with self.assertRaises(argparse.ArgumentTypeError):
            fold_list("1,x")
        for argv, message in ((["--folds", "5", "--only-folds", "5"], "numbered 0 to 4"),
                              (["--folds", "0", "--only-folds", "1"], "needs --folds N")):
            err = io.StringIO()
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(err):
                main(argv + ["--head", ""])
            self.assertIn(message, err.getvalue())

    def test_blends_encoder_and_head_with_their_own_alphas(self) -> None:
        from arpgnet.mixing import alpha_name, blend, parse_alphas

        self.assertEqual(parse_alphas("0.8,0.6:1"), [(0.8, None), (0.6, 1.0)])
        self.assertEqual([alpha_name(a) for a in parse_alphas("0.8,0.6:1")], ["0.8", "0.6-head-1.0"])
        cfg = preset("edge")
        torch.manual_seed(0)
        start, tuned = ARPGNet(cfg).eval(), ARPGNet(cfg).eval()
        s, t = start.state_dict(), tuned.state_dict()
        enc = next(k for k in t if k.startswith("encoder.") and t[k].is_floating_point() and not torch.equal(s[k], t[k]))
        head = next(k for k in t if k.startswith("head.") and t[k].is_floating_point() and not torch.equal(s[k], t[k]))
        whole = blend(start, tuned, 0.5).state_dict()
        torch.testing.assert_close(whole[head], 0.5 * s[head] + 0.5 * t[head])
        split = blend(start, tuned, 0.0, 1.0).state_dict()
        torch.testing.assert_close(split[enc], s[enc])
        torch.testing.assert_close(split[head], t[head])

    def test_a_soup_is_the_mean_of_its_runs_weights(self) -> None:
        from arpgnet.mixing import soup

        cfg = preset("edge")
        torch.manual_seed(0)
        runs = [ARPGNet(cfg).eval() for _ in range(3)]
        states = [r.state_dict() for r in runs]
        mixed = soup(runs).state_dict()
        for k in (next(k for k in states[0] if k.startswith("encoder.") and states[0][k].is_floating_point()),
                  "head.classifier.3.weight"):
            torch.testing.assert_close(mixed[k], (states[0][k] + states[1][k] + states[2][k]) / 3)
        x = torch.randn(2, 1, cfg.input_size, cfg.input_size)
        with torch.no_grad():
            torch.testing.assert_close(soup([runs[0], runs[0]]).encoder(x)[0], runs[0].encoder(x)[0])

    def test_a_soup_refuses_a_folder_that_is_not_a_stage_c_output(self) -> None:
        import contextlib
        import io

        from experiments.soup import main

        with tempfile.TemporaryDirectory() as d:
            err = io.StringIO()
            with contextlib.redirect_stderr(err), self.assertRaises(SystemExit):
                main([d, d, "--out", str(Path(d) / "soup")])
        self.assertIn("no encoder.pt or head.pt", err.getvalue())


class Ensemble(unittest.TestCase):
    def test_the_average_of_two_models_can_fix_what_each_gets_wrong(self) -> None:
        from experiments.ensemble import ensemble_accuracy

        labels = np.array([0, 1])
        a = np.array([[0.9, 0.1], [0.6, 0.4]])   # sure and right on 0, unsure and wrong on 1
        b = np.array([[0.45, 0.55], [0.1, 0.9]])  # unsure and wrong on 0, sure and right on 1
        self.assertEqual(ensemble_accuracy([a], labels), 0.5)
        self.assertEqual(ensemble_accuracy([b], labels), 0.5)
        self.assertEqual(ensemble_accuracy([a, b], labels), 1.0)

    def test_soft_targets_are_refused_for_other_faces_and_read_back_in_order(self) -> None:
        from arpgnet.common import load_targets, write_targets

        probs = np.array([[0.7, 0.3], [0.2, 0.8]], dtype=np.float32)
        labels = np.array([0, 1])
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "t.npz"
            write_targets(f, probs, labels, ["a.png", "b.png"])
            np.testing.assert_allclose(np.exp(load_targets(f, ["a.png", "b.png"], labels)), probs, rtol=1e-6)
            with self.assertRaisesRegex(SystemExit, "no target for c.png"):
                load_targets(f, ["a.png", "c.png"], labels)
            with self.assertRaisesRegex(SystemExit, "order differs"):
                load_targets(f, ["b.png", "a.png"], labels)
            with self.assertRaisesRegex(SystemExit, "labels differ"):
                load_targets(f, ["a.png", "b.png"], np.array([1, 0]))


class Export(unittest.TestCase):
    def test_a_wider_encoder_exports_but_a_head_of_another_shape_is_refused(self) -> None:
        import onnx

        from arpgnet import export
        from arpgnet.common import save
        from arpgnet.model import WindowHead

        cfg = preset("edge", widths=(40, 80, 160, 320))
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            save_encoder(tmp / "encoder.pt", cfg)
            save(tmp / "head.pt", {"config": cfg.to_json(), "head": WindowHead(cfg).state_dict()})
            export.main(["--encoder", str(tmp / "encoder.pt"), "--head", str(tmp / "head.pt"), "--out", str(tmp)])
            meta = {p.key: p.value for p in onnx.load(str(tmp / "arpgnet-edge.encoder.onnx")).metadata_props}
            self.assertEqual(meta["arpgnet.preset"], "edge")
            short = cfg.replace(window=4)
            save(tmp / "short.pt", {"config": short.to_json(), "head": WindowHead(short).state_dict()})
            with self.assertRaises(SystemExit) as e:
                export.main(["--encoder", str(tmp / "encoder.pt"), "--head", str(tmp / "short.pt"), "--out", str(tmp)])
            self.assertIn("window", str(e.exception))


class SymmetryAblation(unittest.TestCase):
    def test_both_relation_branches_share_the_frozen_backbone_and_each_keeps_its_graph(self) -> None:
        from unittest import mock

        from PIL import Image

        from experiments import ablate_symmetry
        from arpgnet.heads import load_encoder

        cfg = preset("edge")
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            for split in ("train", "val"):
                for c in cfg.labels[:7]:
                    for i in range(2):
                        f = tmp / "shared" / "data" / "fer2013" / split / c / f"{i}.png"
                        f.parent.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(f)
            source = save_encoder(tmp / "encoder.pt", cfg)
            with mock.patch.object(ablate_symmetry, "ROOT", tmp):
                ablate_symmetry.main(["--encoder", str(tmp / "encoder.pt"), "--out", str(tmp / "out"),
                                      "--shared", str(tmp / "shared"), "--epochs", "1", "--batch", "7"])
            on, on_cfg = load_encoder(tmp / "out" / "symmetry-on.pt")
            off, off_cfg = load_encoder(tmp / "out" / "symmetry-off.pt")
        self.assertTrue(on_cfg.symmetry_edges)
        self.assertFalse(off_cfg.symmetry_edges)
        for k, v in source.backbone.state_dict().items():
            self.assertTrue(torch.equal(v, off.backbone.state_dict()[k]), f"backbone {k} is frozen")
        # region (row 0, column 0) and its mirror (row 0, column 5) are linked only with symmetry
        self.assertEqual(float(on.relation.bias[0, 5]), 0.0)
        self.assertLess(float(off.relation.bias[0, 5]), -1e3)
        w = "relation.embed.weight"
        self.assertFalse(torch.equal(source.state_dict()[w], off.state_dict()[w]), "the relation branch trained")


if __name__ == "__main__":
    unittest.main()


class MobileFaceWeights(unittest.TestCase):
    """The TF.js face-recognition network read into PyTorch gives what TF.js gives."""

    def test_the_pytorch_network_matches_tfjs_on_a_fixed_input(self) -> None:
        import json

        from experiments import mobileface

        ref = json.loads((Path(__file__).parent / "fixtures" / "mobileface-tfjs.json").read_text())
        i = np.arange(112 * 112 * 3, dtype=np.float64)
        x = ((np.sin(i * 0.013) * 0.5 + 0.5) * 255 * ((i % 7) / 7 + 0.3)) % 256  # as mobileface-tfjs.mjs
        x = torch.from_numpy(x.astype(np.float32).reshape(1, 112, 112, 3)).permute(0, 3, 1, 2).contiguous()
        with torch.no_grad():
            got = mobileface.load().embed(x)[0].numpy()
        want = np.array(ref["embedding"], dtype=np.float32)
        self.assertEqual(got.shape, want.shape)
        self.assertLess(float(np.abs(got - want).max()), 1e-3 * float(np.abs(want).max()))
        # the NHWC flatten matters: the same weights flattened as NCHW give another embedding
        with torch.no_grad():
            m = mobileface.load()
            nchw = m.dense(m.features(x).flatten(1)) * m.scale + m.shift
        self.assertGreater(float(np.abs(nchw[0].numpy() - want).max()), 0.1 * float(np.abs(want).max()))

    def test_weights_of_another_shape_are_refused_with_their_name(self) -> None:
        from unittest import mock

        from experiments import mobileface

        real = mobileface.read_weights

        def narrow(folder: Path) -> dict[str, np.ndarray]:
            w = dict(real(folder))
            w["stage3_unit1_conv1_df"] = w["stage3_unit1_conv1_df"][:, :, :32]
            return w

        with mock.patch.object(mobileface, "read_weights", narrow), \
                self.assertRaisesRegex(ValueError, "stage3_unit1_conv1_df has shape"):
            mobileface.load()

    def test_the_fer2013_classifier_sees_grey_crops_as_mobileface_input(self) -> None:
        from experiments import mobileface
        from experiments.transfer import Classifier

        grey = torch.rand(2, 1, 48, 48)
        x = mobileface.from_grey48(grey)
        self.assertEqual(tuple(x.shape), (2, 3, 112, 112))
        self.assertTrue(torch.equal(x[:, 0], x[:, 2]), "grey repeated over the three channels")
        self.assertAlmostEqual(float(x.mean()), float(grey.mean()) * 255, delta=2.0)  # 0..1 -> 0..255
        net = mobileface.load()
        model = Classifier(net, 8).eval()
        with torch.no_grad():
            self.assertEqual(tuple(model(grey).shape), (2, 8))
            np.testing.assert_allclose(model.net.embed(x).numpy(), mobileface.load().embed(x).numpy(), rtol=1e-5,
                                       atol=1e-4)
