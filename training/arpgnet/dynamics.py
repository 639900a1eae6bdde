"""Windows in which the expression moves, built in embedding space.

The live head sees the last T analysed frames of a face. In a call (10 fps) that is
0.8 s: onsets, apexes, offsets, returns to neutral and changes of expression all
land inside one window. The data we may train on hold no such videos (CK+48 keeps
the last three frames of each sequence, FER2013 is stills), so the windows are made:
every frame of a window is a blend of a *from* face and a *to* face,

    e_t = (1 - a_t) * e_from + a_t * e_to,    a_t = clip((t - start) / length, 0, 1)

with a ramp placed anywhere in (or outside) the window and 1 to 2T frames long, so
the same window covers a slow onset at 30 fps and a sudden one at 10 fps.

What a window's label means: what the face shows at its newest frame. The target is
soft, (1 - a_last) on the from-class and a_last on the to-class, so a half-formed
expression is not trained as a full one.

Scenarios (weights in `Mix`): still (the pseudo-clip of stage B), onset (neutral ->
expression), offset (expression -> neutral), change (expression -> expression).
Neutral faces are FER2013's; expressions are FER2013 faces or CK+48 sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .clips import Bank, Sequences, random_valid
from .data import sample_indices


@dataclass(frozen=True)
class Mix:
    still: float = 0.3
    onset: float = 0.35
    offset: float = 0.15
    change: float = 0.2

    def probs(self) -> np.ndarray:
        p = np.array([self.still, self.onset, self.offset, self.change], dtype=np.float64)
        return p / p.sum()


STILL, ONSET, OFFSET, CHANGE = range(4)


@dataclass
class Pools:
    """Where the faces of a window come from: FER2013 rows (with labels) and CK+48 sequences."""

    fer: Bank
    fer_idx: np.ndarray
    seqs: Sequences | None
    seq_idx: np.ndarray
    neutral: int  # class index of neutral

    def __post_init__(self) -> None:
        lab = self.fer.labels[self.fer_idx]
        self.neutral_rows = self.fer_idx[lab == self.neutral]
        self.expr_rows = self.fer_idx[lab != self.neutral]
        if not len(self.neutral_rows):
            raise ValueError("no neutral FER2013 faces to build onsets from")


def ramp(t: int, rng: np.random.Generator, finished: float = 0.7) -> np.ndarray:
    """Intensity a_t in [0, 1], non-decreasing over the window. With probability `finished`
    the ramp is complete by the newest frame (a_last = 1), else it ends part-way."""
    length = int(rng.integers(1, 2 * t + 1))
    if rng.random() < finished:
        end = int(rng.integers(0, t))  # frame at which a reaches 1
        start = end - length
    else:
        start = int(rng.integers(-length + 1, t - 1))
    a = (np.arange(t) - start) / length
    return np.clip(a, 0.0, 1.0)


def _face_track(pools: Pools, source: tuple[int, int], t: int, rng: np.random.Generator,
                flip: int) -> tuple[Tensor, Tensor]:
    """T embeddings of one face (kind 0: FER row, kind 1: CK+ sequence, frames in order),
    each frame a random jitter variant of the face or of its mirror (`flip`)."""
    kind, i = source
    bank = pools.fer if kind == 0 else pools.seqs.bank if pools.seqs is not None else None
    assert bank is not None
    per_flip = bank.app.shape[1] // 2  # VARIANTS_PER_FLIP for training banks, 1 for evaluation ones
    v = flip * per_flip + rng.integers(0, per_flip, size=t)
    if kind == 0:
        rows = np.full(t, i)
    else:
        assert pools.seqs is not None
        frames = pools.seqs.frames[i]
        rows = frames[sample_indices(len(frames), t, rng)]
    return bank.app[rows, v], bank.rel[rows, v]


def _pick_expression(pools: Pools, rng: np.random.Generator, p_seq: float) -> tuple[tuple[int, int], int]:
    if pools.seqs is not None and len(pools.seq_idx) and rng.random() < p_seq:
        i = int(rng.choice(pools.seq_idx))
        return (1, i), int(pools.seqs.labels[i])
    i = int(rng.choice(pools.expr_rows))
    return (0, i), int(pools.fer.labels[i])


def make_windows(pools: Pools, targets: list[tuple[tuple[int, int], int]], t: int, classes: int,
                 rng: np.random.Generator, mix: Mix = Mix(), p_seq: float = 0.15
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor, np.ndarray]:
    """One window per target ((kind, row), label). Returns app [B,T,Da], rel [B,T,Dr],
    valid [B,T], soft targets [B,C] and the scenario of each window."""
    apps, rels, ys = [], [], []
    scen = rng.choice(4, size=len(targets), p=mix.probs())
    for (src, label), s in zip(targets, scen):
        flip = int(rng.integers(0, 2))
        y = np.zeros(classes, dtype=np.float32)
        if s == STILL or (label == pools.neutral and s in (ONSET, OFFSET)):
            a, r = _face_track(pools, src, t, rng, flip)
            y[label] = 1.0
        else:
            if s == CHANGE:
                other, other_label = _pick_expression(pools, rng, p_seq)
            else:
                other, other_label = (0, int(rng.choice(pools.neutral_rows))), pools.neutral
            if s == OFFSET:  # from the target's expression back to neutral
                (from_src, from_y), (to_src, to_y) = (src, label), (other, other_label)
            else:
                (from_src, from_y), (to_src, to_y) = (other, other_label), (src, label)
            a0, r0 = _face_track(pools, from_src, t, rng, flip)
            a1, r1 = _face_track(pools, to_src, t, rng, flip)
            w = torch.from_numpy(ramp(t, rng)).float()[:, None]
            a, r = (1 - w) * a0 + w * a1, (1 - w) * r0 + w * r1
            last = float(w[-1, 0])
            y[from_y] += 1.0 - last
            y[to_y] += last
        apps.append(a)
        rels.append(r)
        ys.append(y)
    valid = random_valid(len(targets), t, rng)
    return torch.stack(apps), torch.stack(rels), valid, torch.from_numpy(np.stack(ys)), scen
