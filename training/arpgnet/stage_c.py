"""Stage C: fine-tune encoder and head end to end on labelled sequences (CK+48 here).

Stages A and B leave the encoder frozen; here the whole ARPGNet trains on clips, with
the paper's two learning rates (1e-4 for the pre-trained encoder, 1e-3 for the head).
FER2013 still clips are replayed beside the sequences so the encoder keeps what it
learnt from 28k in-the-wild faces; with distillation the replayed clips also pull the
model towards the starting model's soft predictions (Learning without Forgetting). The
backbone's batch norm stays in inference mode: the batches are small and the statistics
from stage A are the better estimate (the two BatchNorm1d of the embedding layers train
unless frozen_norm is "all").

Only the distinct frames of a clip go through the encoder (a CK+48 sequence has three,
a still clip two jittered views); the T window positions index into their embeddings,
which is what the window head sees live when frames repeat. `arpgnet.finetune` is the
command line; `arpgnet.mixing` blends and soups what this trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from . import augment
from .common import ROOT, class_weights, distillation, normalise, seed_all, shared_dir, to_unit, optimiser_step
from .config import ModelConfig
from .clips import ck_sequence_rows
from .data import Sample, load_image_array, sample_indices, scan_images
from .model import ARPGNet
from .heads import load_encoder


@dataclass
class StageCData:
    """CK+48 as sequences (rows of `images` per sequence, label, subject) and FER2013 train
    for the replay, as 48x48 grey arrays."""
    images: np.ndarray
    frames: np.ndarray
    labels: np.ndarray
    subjects: list[str]
    fer: list[Sample]
    fer_images: np.ndarray
    fer_labels: np.ndarray


def stage_c_data(shared: Path, cfg: ModelConfig) -> StageCData:
    data, cache = shared / "data", ROOT / "training" / "cache"
    samples = scan_images(data / "ckplus48", cfg.labels)
    frames, labels, subjects = ck_sequence_rows(samples)
    fer = scan_images(data / "fer2013" / "train", cfg.labels)
    return StageCData(load_image_array(samples, cfg.input_size, cache), frames, labels, subjects, fer,
                      load_image_array(fer, cfg.input_size, cache), np.array([s.label for s in fer]))


def _augment(x: Tensor, gen: torch.Generator, flip: Tensor) -> Tensor:
    x = torch.where(flip[:, None, None, None], torch.flip(x, dims=[3]), x)
    x = augment.similarity_jitter(x, gen, rot_deg=8.0, scale=0.06, shift=0.05, flip=False)
    return augment.photometric(x, gen, brightness=0.15, contrast=0.2)


def _clip_inputs(frames_u8: np.ndarray, t: int, rng: np.random.Generator | None, gen: torch.Generator | None
                 ) -> tuple[Tensor, Tensor]:
    """frames_u8 [B, F, H, W] -> encoder input [B*F, 1, H, W] (augmented when gen is given)
    and the T window positions [B, T] that index each clip's F frames."""
    b, f = frames_u8.shape[:2]
    x = to_unit(frames_u8.reshape(b * f, *frames_u8.shape[2:]))
    if gen is not None:
        flip = (torch.rand(b, generator=gen) < 0.5).repeat_interleave(f)
        x = _augment(x, gen, flip)
    return x, torch.from_numpy(np.stack([sample_indices(f, t, rng) for _ in range(b)]))


def _embed(model: ARPGNet, x: Tensor, pos: Tensor, flip_average: bool = False) -> tuple[Tensor, Tensor]:
    """F encoder passes per clip, gathered into the T window positions: app, rel [B, T, D]."""
    b = pos.shape[0]
    if flip_average:
        a1, r1 = model.encoder(normalise(x).contiguous(memory_format=torch.channels_last))
        a2, r2 = model.encoder(normalise(torch.flip(x, dims=[3])).contiguous(memory_format=torch.channels_last))
        app, rel = (a1 + a2) / 2, (r1 + r2) / 2
    else:
        app, rel = model.encoder(normalise(x).contiguous(memory_format=torch.channels_last))
    app, rel = app.view(b, -1, app.shape[-1]), rel.view(b, -1, rel.shape[-1])
    rows = torch.arange(b)[:, None]
    return app[rows, pos], rel[rows, pos]


def _clip_embeddings(model: ARPGNet, frames_u8: np.ndarray, t: int, rng: np.random.Generator | None,
                     gen: torch.Generator | None, flip_average: bool = False) -> tuple[Tensor, Tensor]:
    x, pos = _clip_inputs(frames_u8, t, rng, gen)
    return _embed(model, x, pos, flip_average)


def _valid(b: int, t: int, rng: np.random.Generator, p_partial: float = 0.3) -> Tensor:
    """Filling windows as `clips.random_valid` makes them for stage B, drawn from the rng in
    another order; one shared function would change every recorded stage-B or stage-C run."""
    valid = np.ones((b, t), dtype=np.float32)
    for i in np.nonzero(rng.random(b) < p_partial)[0]:
        valid[i, : rng.integers(1, t)] = 0
    return torch.from_numpy(valid)


def initial(cfg: ModelConfig, encoder_path: Path, head_path: Path | None) -> ARPGNet:
    model = ARPGNet(cfg)
    enc, _ = load_encoder(encoder_path, cfg)
    model.encoder.load_state_dict(enc.state_dict())
    if head_path is not None:
        model.head.load_state_dict(torch.load(head_path, map_location="cpu")["head"])
    return model.eval()


def clip_loss(logits: Tensor, y: Tensor, n_sequences: int, weights: Tensor | None, weights_on: str,
              unlabelled: Tensor | None = None, margin: float = 0.0, replay_unlabelled: float = 1.0) -> Tensor:
    """Cross-entropy over a batch whose first n_sequences rows are CK+48 sequences, the rest
    FER2013 replay; weights_on "sequences" leaves the replay unweighted.

    CK+48 has no neutral faces, so it never says a face is not neutral; plain cross-entropy
    still pushes neutral down on every subtle CK+48 face, and FER2013's neutral faces pay
    for it. With a margin, the sequences' logits of the `unlabelled` classes are lowered by
    it before scoring: only a face the model finds neutral by more than the margin is
    corrected, and an infinite margin leaves those classes out (a partial label). Under a
    margin "ck" weights each row by its label's weight; without one it keeps PyTorch's
    class-weighted label smoothing, so 1.1.0's recipe reproduces.

    replay_unlabelled weighs the replayed faces of those classes: above 1 the FER2013
    neutral faces hold neutral where the sequences push it down, so the model has to find
    what tells a subtle CK+48 expression from a neutral FER2013 face instead of moving its
    prior away from neutral."""
    partial = unlabelled is not None and margin > 0
    reweigh = unlabelled is not None and replay_unlabelled != 1.0
    if not partial and not reweigh and (weights is None or weights_on == "none"):
        return F.cross_entropy(logits, y, label_smoothing=0.1)
    if not partial and not reweigh and weights_on == "ck":
        return F.cross_entropy(logits, y, weight=weights, label_smoothing=0.1)
    rows = F.cross_entropy(logits, y, reduction="none", label_smoothing=0.1)
    if partial:
        seq_logits, seq_y = logits[:n_sequences], y[:n_sequences]
        if math.isinf(margin):
            keep = torch.nonzero(~unlabelled)[:, 0]
            column = torch.full((logits.shape[1],), -1, dtype=torch.long)
            column[keep] = torch.arange(len(keep))
            seq_logits, seq_y = seq_logits[:, keep], column[seq_y]
        else:
            seq_logits = seq_logits - margin * unlabelled.float()
        seq = F.cross_entropy(seq_logits, seq_y, reduction="none", label_smoothing=0.1)
        rows = torch.cat([seq, rows[n_sequences:]])
    if weights is None or weights_on == "none":
        w = torch.ones(len(y))
    elif weights_on == "ck":
        w = weights[y]
    else:
        w = torch.cat([weights[y[:n_sequences]], torch.ones(len(y) - n_sequences)])
    if reweigh:  # w is a fresh tensor on every path above (indexing, cat, ones), so in place is safe
        w[n_sequences:] *= torch.where(unlabelled[y[n_sequences:]], replay_unlabelled, 1.0)
    return (rows * w).sum() / w.sum()


def finetune(cfg: ModelConfig, encoder_path: Path, head_path: Path | None, images: np.ndarray, frames: np.ndarray,
             labels: np.ndarray, train: np.ndarray, fer_images: np.ndarray, fer_labels: np.ndarray, epochs: int = 10,
             batch: int = 24, fer_ratio: float = 1.0, seed: int = 0, quiet: bool = False, fer_views: int = 2,
             weights_on: str = "ck", distill: float = 0.0, temperature: float = 2.0, head_lr: float = 1e-3,
             fer_targets: np.ndarray | None = None, freeze: int = 0, unlabelled_margin: float = 0.0,
             head_warmup: int = 0, frozen_norm: str = "2d", replay_unlabelled: float = 1.0) -> ARPGNet:
    gen = seed_all(seed)
    rng = np.random.default_rng(seed)
    model = initial(cfg, encoder_path, head_path)
    # the starting model, frozen: on the replayed FER2013 clips the tuned model is pulled
    # towards its soft predictions, which pins the whole output distribution on in-the-wild
    # faces, not only the argmax that a hard label pins
    # fer_targets (an ensemble's log-probabilities per FER2013 face) replace it when given
    teacher = initial(cfg, encoder_path, head_path) if distill > 0 and fer_targets is None else None
    # the stem and the first `freeze` stages keep their FER2013 features: CK+48 moves only the rest
    backbone = model.encoder.backbone
    fixed = [backbone.stem, backbone.stage1, backbone.stage2, backbone.stage3][: freeze + 1] if freeze else []
    for part in fixed:
        part.requires_grad_(False)
    opt = torch.optim.AdamW([
        # pre-trained blocks (the paper's 1e-4)
        {"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": 1e-4},
        # new layers (1e-3); a head that stage B already trained may count as pre-trained (1e-4)
        {"params": model.head.parameters(), "lr": head_lr},
    ], weight_decay=1e-4)
    n_fer = int(len(train) * fer_ratio)
    steps = math.ceil((len(train) + n_fer) / batch)
    total = steps * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    # weights come from the sequences' labels only; "ck" applies them to every clip, the FER2013
    # replay too (1.1.0's recipe), which tilts the replay towards CK+48's rare classes (fear,
    # sadness, contempt) and away from FER2013's common ones; "sequences" weights only the sequences
    weights = class_weights(labels[train], cfg.num_classes) if weights_on != "none" else None
    unlabelled = torch.from_numpy(np.bincount(labels[train], minlength=cfg.num_classes) == 0)
    tunable = [p for p in model.encoder.parameters() if p.requires_grad]
    # "all" also keeps the embedding layers' BatchNorm1d in inference mode: in train mode their
    # running statistics drift to the batches' CK+48-heavy mix, which every FER2013 face then sees
    frozen = torch.nn.BatchNorm2d if frozen_norm == "2d" else torch.nn.modules.batchnorm._BatchNorm
    t = cfg.window
    for epoch in range(epochs):
        # linear probing before fine-tuning (LP-FT): the head first learns the new labels on
        # the stage-B features, so the encoder's first steps are not spent on a head's errors
        for p in tunable:
            p.requires_grad_(epoch >= head_warmup)
        model.train()
        for m in model.encoder.modules():
            if isinstance(m, frozen):
                m.eval()
        items = [(0, i) for i in train] + [(1, i) for i in rng.choice(len(fer_labels), n_fer, replace=False)]
        order = rng.permutation(len(items))
        for step in tqdm(range(steps), desc=f"finetune {epoch + 1}/{epochs}", disable=quiet, mininterval=10):
            chunk = [items[k] for k in order[step * batch:(step + 1) * batch]]
            si = np.array([i for s, i in chunk if s == 0], dtype=int)
            fi = np.array([i for s, i in chunk if s == 1], dtype=int)
            apps, rels, ys = [], [], []
            if len(si):
                a, r = _clip_embeddings(model, images[frames[si]], t, rng, gen)
                apps.append(a), rels.append(r), ys.append(labels[si])
            if len(fi):
                still = np.repeat(fer_images[fi][:, None], fer_views, axis=1)  # jittered views of one face
                x, pos = _clip_inputs(still, t, rng, gen)
                a, r = _embed(model, x, pos)
                apps.append(a), rels.append(r), ys.append(fer_labels[fi])
            app, rel = torch.cat(apps), torch.cat(rels)
            y = torch.from_numpy(np.concatenate(ys))
            valid = _valid(len(y), t, rng)
            logits = model.head(app, rel, valid)
            loss = clip_loss(logits, y, len(si), weights, weights_on, unlabelled, unlabelled_margin, replay_unlabelled)
            if distill > 0 and len(fi):
                if fer_targets is not None:
                    target = torch.from_numpy(fer_targets[fi])
                else:
                    with torch.no_grad():
                        ta, tr = _embed(teacher, x, pos)
                        target = teacher.head(ta, tr, valid[len(si):])
                loss = loss + distill * distillation(logits[len(si):], target, temperature)
            optimiser_step(opt, sched, loss)
    return model.eval()


@torch.no_grad()
def predict_proba(model: ARPGNet, frames_u8: np.ndarray, t: int, flip_average: bool, batch: int = 128) -> np.ndarray:
    out = []
    for i in range(0, len(frames_u8), batch):
        a, r = _clip_embeddings(model, frames_u8[i:i + batch], t, None, None, flip_average)
        out.append(torch.softmax(model.head(a, r, torch.ones(a.shape[:2])), 1).numpy())
    return np.concatenate(out)


def fer_val_clips(cfg: ModelConfig, shared: str | None) -> tuple[np.ndarray, np.ndarray]:
    """FER2013 val as one-frame still clips [N, 1, H, W] and their labels, as every
    FER2013 number after stage A is measured."""
    val = scan_images(shared_dir(shared) / "data" / "fer2013" / "val", cfg.labels)
    return load_image_array(val, cfg.input_size, ROOT / "training" / "cache")[:, None], np.array([s.label for s in val])


def predict_clips(model: ARPGNet, frames_u8: np.ndarray, t: int, flip_average: bool, batch: int = 128) -> np.ndarray:
    return predict_proba(model, frames_u8, t, flip_average, batch).argmax(1)
