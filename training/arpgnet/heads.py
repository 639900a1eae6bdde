"""Window heads on frozen encoder embeddings: loading an encoder checkpoint, fitting a head
on clips (stage B), predicting and evaluating on FER2013 images and CK+48 sequences."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import clips
from .common import ROOT, check_config, class_weights, seed_all, optimiser_step
from .config import ModelConfig
from .data import scan_images
from .metrics import summarise
from .model import FrameEncoder, WindowHead


def load_encoder(path: Path, cfg: ModelConfig | None = None) -> tuple[FrameEncoder, ModelConfig]:
    ck = torch.load(path, map_location="cpu")
    file_cfg = ModelConfig.from_json(ck["config"])
    if cfg is not None:
        check_config(ck["config"], cfg.replace(mode=file_cfg.mode), str(path))
    enc = FrameEncoder(file_cfg)
    enc.load_state_dict(ck["encoder"])
    return enc.eval().to(memory_format=torch.channels_last), file_cfg


def fit_head(cfg: ModelConfig, fer: clips.Bank, fer_idx: np.ndarray, seqs: clips.Sequences | None,
             seq_idx: np.ndarray, epochs: int = 12, seed: int = 0, fer_per_epoch: int = 12000,
             seq_repeat: int = 6, batch: int = 128, lr: float = 1e-3, quiet: bool = False,
             balance: bool = True) -> WindowHead:
    seed_all(seed)
    rng = np.random.default_rng(seed)
    head = WindowHead(cfg)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    t = cfg.window
    n_fer = min(fer_per_epoch, len(fer_idx))
    n_seq = len(seq_idx) * seq_repeat if seqs is not None else 0
    steps = math.ceil((n_fer + n_seq) / batch)
    total = steps * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    all_labels = np.concatenate([fer.labels[fer_idx]] + ([seqs.labels[seq_idx]] if seqs is not None else []))
    weights = class_weights(all_labels, cfg.num_classes) if balance else None
    for epoch in range(epochs):
        head.train()
        # each item: (0, fer row) or (1, sequence row)
        items = [(0, i) for i in rng.choice(fer_idx, n_fer, replace=False)]
        items += [(1, i) for i in np.repeat(seq_idx, seq_repeat)]
        order = rng.permutation(len(items))
        bar = tqdm(range(steps), desc=f"head {epoch + 1}/{epochs}", disable=quiet, mininterval=5)
        for step in bar:
            chunk = [items[k] for k in order[step * batch:(step + 1) * batch]]
            fi = np.array([i for s, i in chunk if s == 0], dtype=int)
            si = np.array([i for s, i in chunk if s == 1], dtype=int)
            parts_a, parts_r, ys = [], [], []
            if len(fi):
                a, r = clips.image_clips(fer, fi, t, rng)
                parts_a.append(a), parts_r.append(r), ys.append(fer.labels[fi])
            if len(si) and seqs is not None:
                a, r = clips.sequence_clips(seqs, si, t, rng)
                parts_a.append(a), parts_r.append(r), ys.append(seqs.labels[si])
            app, rel = torch.cat(parts_a), torch.cat(parts_r)
            y = torch.from_numpy(np.concatenate(ys))
            valid = clips.random_valid(len(y), t, rng)
            loss = F.cross_entropy(head(app, rel, valid), y, weight=weights, label_smoothing=0.1)
            optimiser_step(opt, sched, loss)
    return head.eval()


@torch.no_grad()
def predict(head: WindowHead, app: torch.Tensor, rel: torch.Tensor) -> np.ndarray:
    valid = torch.ones(app.shape[:2])
    return head(app, rel, valid).argmax(1).numpy()


def eval_images(head: WindowHead, bank: clips.Bank, cfg: ModelConfig) -> dict:
    idx = np.arange(len(bank.labels))
    a, r = clips.image_clips(bank, idx, cfg.window, None)
    return summarise(bank.labels, predict(head, a, r), list(cfg.labels))


def eval_sequences(head: WindowHead, seqs: clips.Sequences, idx: np.ndarray, cfg: ModelConfig
                   ) -> tuple[np.ndarray, np.ndarray]:
    a, r = clips.sequence_clips(seqs, idx, cfg.window, None)
    return seqs.labels[idx], predict(head, a, r)


def load_banks(encoder_path: Path, shared: Path, cfg: ModelConfig, limit: int = 0, train_images: int = 12000
               ) -> tuple[FrameEncoder, clips.Bank, clips.Bank, clips.Sequences]:
    """Embeddings of a fixed random subset of FER2013 train (the head needs far fewer faces
    than the encoder did, and every one costs 2 x VARIANTS_PER_FLIP encoder passes), all
    of FER2013 val and all of CK+48."""
    enc, _ = load_encoder(encoder_path, cfg)
    key = clips.encoder_key(encoder_path)
    cache = ROOT / "training" / "cache"
    data = shared / "data"
    train, test = scan_images(data / "fer2013" / "train", cfg.labels), scan_images(data / "fer2013" / "val", cfg.labels)
    if limit:  # smoke runs: an evenly spread subset
        train, test = train[:: max(1, len(train) // limit)], test[:: max(1, len(test) // limit)]
    elif train_images and train_images < len(train):
        pick = np.sort(np.random.default_rng(0).permutation(len(train))[:train_images])
        train = [train[i] for i in pick]
    fer = clips.image_bank(enc, train, cfg, cache, key, "fer-train")
    val = clips.image_bank(enc, test, cfg, cache, key, "fer-val", jitter=False)
    seqs = clips.ck_sequences(enc, data / "ckplus48", cfg, cache, key)
    return enc, fer, val, seqs
