"""Stage B data: frame embeddings of the frozen encoder, assembled into T-frame clips.

The encoder runs once per (image, jitter variant) and the result is cached; a clip
is then a cheap gather of T variants. FER2013 images become pseudo-clips (the same
face under small per-frame pose/scale/brightness jitter); CK+48 sequences become
clips of their three frames in order, each under jitter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from . import augment
from .common import normalise, to_unit
from .config import ModelConfig
from .data import Sample, load_image_array, sample_indices, scan_images
from .model import FrameEncoder

VARIANTS_PER_FLIP = 2  # variant 0 of each flip group is the untouched face


@dataclass
class Bank:
    app: Tensor  # [N, 2*V, Da]: V plain variants then V mirrored (V = 1 for evaluation banks)
    rel: Tensor
    labels: np.ndarray
    subjects: list[str]


@dataclass
class Sequences:
    bank: Bank
    frames: np.ndarray  # [S, F] bank rows of each sequence's frames, in order
    labels: np.ndarray
    subjects: list[str]


def _variants(x: Tensor, gen: torch.Generator) -> list[Tensor]:
    out = []
    for flip in (False, True):
        base = torch.flip(x, dims=[3]) if flip else x
        out.append(base)
        for _ in range(VARIANTS_PER_FLIP - 1):
            j = augment.similarity_jitter(base, gen, rot_deg=6.0, scale=0.05, shift=0.04, flip=False)
            out.append(augment.photometric(j, gen, brightness=0.12, contrast=0.15))
    return out


@torch.no_grad()
def embed(encoder: FrameEncoder, images: np.ndarray, seed: int, jitter: bool = True, batch: int = 256,
          desc: str = "embed", mirror_invariant: bool = False) -> tuple[Tensor, Tensor]:
    """mirror_invariant: the encoder averages each face with its mirror image, so the
    untouched mirrored view equals the plain one and is copied, not computed."""
    encoder.eval()
    gen = torch.Generator().manual_seed(seed)
    apps, rels = [], []
    for i in tqdm(range(0, len(images), batch), desc=desc, mininterval=10):
        x = to_unit(images[i:i + batch])
        views = _variants(x, gen) if jitter else [x, torch.flip(x, dims=[3])]
        mirror = VARIANTS_PER_FLIP if jitter else 1
        run = [k for k in range(len(views)) if not (mirror_invariant and k == mirror)]
        xs = normalise(torch.cat([views[k] for k in run])).contiguous(memory_format=torch.channels_last)
        a, r = encoder(xs)
        b = len(x)
        if len(run) < len(views):
            a, r = (torch.cat([v[: mirror * b], v[:b], v[mirror * b:]]) for v in (a, r))
        apps.append(a.view(len(views), b, -1).transpose(0, 1))
        rels.append(r.view(len(views), b, -1).transpose(0, 1))
    return torch.cat(apps), torch.cat(rels)


def encoder_key(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


def image_bank(encoder: FrameEncoder, samples: list[Sample], cfg: ModelConfig, cache: Path, key: str,
               name: str, jitter: bool = True, mirror_invariant: bool = False) -> Bank:
    f = cache / f"bank-{name}{len(samples)}-{key}-{int(jitter)}.pt"
    if f.exists():
        d = torch.load(f)
        return Bank(d["app"], d["rel"], d["labels"], d["subjects"])
    images = load_image_array(samples, cfg.input_size, cache)
    app, rel = embed(encoder, images, seed=len(samples), jitter=jitter, desc=f"embed {name}",
                     mirror_invariant=mirror_invariant)
    bank = Bank(app, rel, np.array([s.label for s in samples]), [s.subject for s in samples])
    cache.mkdir(parents=True, exist_ok=True)
    torch.save({"app": app, "rel": rel, "labels": bank.labels, "subjects": bank.subjects}, f)
    return bank


def ck_sequence_rows(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """CK+48 names are S<subject>_<sequence>_<frame>: each sequence's rows into `samples`
    in frame order (short ones padded with their last frame), its label and subject."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for i, s in enumerate(samples):
        groups.setdefault("_".join(s.frames[0].stem.split("_")[:2]), []).append((s.frames[0].stem, i))
    seqs = sorted(groups)
    width = max(len(g) for g in groups.values())
    frames = np.array([[i for _, i in sorted(groups[q])] + [sorted(groups[q])[-1][1]] * (width - len(groups[q]))
                       for q in seqs])
    labels = np.array([samples[f[0]].label for f in frames])
    return frames, labels, [q.split("_")[0] for q in seqs]


def ck_sequences(encoder: FrameEncoder, root: Path, cfg: ModelConfig, cache: Path, key: str,
                 mirror_invariant: bool = False) -> Sequences:
    """CK+48 as sequences of cached embeddings."""
    samples = scan_images(root, cfg.labels)
    bank = image_bank(encoder, samples, cfg, cache, key, "ckplus48", mirror_invariant=mirror_invariant)
    frames, labels, subjects = ck_sequence_rows(samples)
    return Sequences(bank, frames, labels, subjects)


def random_valid(b: int, t: int, rng: np.random.Generator, p_partial: float = 0.3) -> Tensor:
    """A filling window: the oldest positions are empty, the newest are real."""
    valid = np.ones((b, t), dtype=np.float32)
    partial = rng.random(b) < p_partial
    first = rng.integers(1, t, size=b)
    for i in np.nonzero(partial)[0]:
        valid[i, : first[i]] = 0
    return torch.from_numpy(valid)


def image_clips(bank: Bank, idx: np.ndarray, t: int, rng: np.random.Generator | None,
                flip_average: bool = False) -> tuple[Tensor, Tensor]:
    if rng is None:  # evaluation: the untouched face, T times (a still image as a clip)
        if flip_average:
            m = bank.app.shape[1] // 2
            a = (bank.app[idx, 0] + bank.app[idx, m]) / 2
            r = (bank.rel[idx, 0] + bank.rel[idx, m]) / 2
            return a[:, None].expand(-1, t, -1), r[:, None].expand(-1, t, -1)
        v = np.zeros((len(idx), t), dtype=int)
    else:
        flip = rng.integers(0, 2, size=(len(idx), 1)) * VARIANTS_PER_FLIP
        v = flip + rng.integers(0, VARIANTS_PER_FLIP, size=(len(idx), t))
    rows = idx[:, None]
    return bank.app[rows, v], bank.rel[rows, v]


def sequence_clips(seqs: Sequences, idx: np.ndarray, t: int, rng: np.random.Generator | None
                   ) -> tuple[Tensor, Tensor]:
    n_frames = seqs.frames.shape[1]
    pos = np.stack([sample_indices(n_frames, t, rng) for _ in idx])
    rows = seqs.frames[idx[:, None], pos]
    if rng is None:
        v = np.zeros_like(rows)
    else:
        flip = rng.integers(0, 2, size=(len(idx), 1)) * VARIANTS_PER_FLIP
        v = flip + rng.integers(0, VARIANTS_PER_FLIP, size=rows.shape)
    return seqs.bank.app[rows, v], seqs.bank.rel[rows, v]
