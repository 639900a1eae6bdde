"""Stage D's pieces: embedding banks from an ONNX frame encoder, the window head fitted on
the moving windows of `arpgnet.dynamics`, and what it is measured by (FER2013 val as still
clips and as onsets, the temperature). `arpgnet.train_window` and `arpgnet.folds` call them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import clips
from .calibration import ece, fit_temperature, softmax
from .common import ROOT, class_weights, mass_weights, seed_all, optimiser_step
from .config import ModelConfig
from .data import scan_images
from .dynamics import Mix, Pools, make_windows
from .onnx_export import EncoderExport
from .onnx_import import load_onnx_encoder
from .model import WindowHead


def banks(encoder_onnx: Path, shared: Path, cfg: ModelConfig, train_images: int
          ) -> tuple[clips.Bank, clips.Bank, clips.Sequences]:
    """Embeddings of a fixed random subset of FER2013 train (as in stage B: the head needs
    far fewer faces than the encoder did), all of FER2013 val and all of CK+48."""
    enc, _, _ = load_onnx_encoder(encoder_onnx)
    live = EncoderExport(enc, flip_average=True).eval()  # the embeddings the pipeline produces
    key = "onnx-" + clips.encoder_key(encoder_onnx)
    cache = ROOT / "training" / "cache"
    data = shared / "data"
    train = scan_images(data / "fer2013" / "train", cfg.labels)
    if train_images and train_images < len(train):
        pick = np.sort(np.random.default_rng(0).permutation(len(train))[:train_images])
        train = [train[i] for i in pick]
    val = scan_images(data / "fer2013" / "val", cfg.labels)
    fer = clips.image_bank(live, train, cfg, cache, key, "fer-train", mirror_invariant=True)
    fer_val = clips.image_bank(live, val, cfg, cache, key, "fer-val", jitter=False, mirror_invariant=True)
    seqs = clips.ck_sequences(live, data / "ckplus48", cfg, cache, key, mirror_invariant=True)
    return fer, fer_val, seqs


def soft_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None, smooth: float) -> torch.Tensor:
    c = target.shape[1]
    target = target * (1 - smooth) + smooth / c
    per = -(target * F.log_softmax(logits, dim=1)).sum(1)
    if weights is not None:
        per = per * (target @ weights)
    return per.mean()


def target_mass(pools: Pools, items: list[tuple[tuple[int, int], int]], cfg: ModelConfig, mix: Mix,
                rng: np.random.Generator, draws: int = 4096) -> np.ndarray:
    """Each class's share of the soft targets the windows of an epoch carry. Offsets and
    unfinished onsets move target mass from the expression to neutral, so counting the
    items' labels undercounts neutral."""
    pick = rng.choice(len(items), size=min(draws, len(items)), replace=False)
    _, _, _, y, _ = make_windows(pools, [items[k] for k in pick], cfg.window, cfg.num_classes, rng, mix)
    m = y.sum(0).double().numpy()
    return m / m.sum()


def fit(cfg: ModelConfig, fer: clips.Bank, seqs: clips.Sequences | None, seq_idx: np.ndarray, epochs: int,
        seed: int, seq_repeat: int, mix: Mix, batch: int = 128, lr: float = 1e-3, quiet: bool = False,
        balance: str = "items", init: dict[str, torch.Tensor] | None = None) -> WindowHead:
    """`balance`: class weights from the items' labels (1.2.0) or from the windows' target mass.
    `init`: a trained head's weights to start from (a mean-pooling head lacks only the
    recency pooling's, which start new)."""
    seed_all(seed)
    rng = np.random.default_rng(seed)
    head = WindowHead(cfg)
    if init is not None:
        missing, unexpected = head.load_state_dict(init, strict=False)
        if unexpected or any(not k.startswith("pool_") for k in missing):
            raise ValueError(f"init head does not fit: missing {missing}, unexpected {unexpected}")
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    fer_idx = np.arange(len(fer.labels))
    pools = Pools(fer, fer_idx, seqs, seq_idx, cfg.labels.index("neutral"))
    items = [((0, int(i)), int(fer.labels[i])) for i in fer_idx]
    if seqs is not None:
        items += [((1, int(i)), int(seqs.labels[i])) for i in np.repeat(seq_idx, seq_repeat)]
    if balance == "mass":
        weights = mass_weights(target_mass(pools, items, cfg, mix, np.random.default_rng(seed + 10_000)))
        if not quiet:
            print("class weights from target mass:", [round(float(w), 3) for w in weights])
    elif balance == "items":
        weights = class_weights(np.array([y for _, y in items]), cfg.num_classes)
    else:
        raise ValueError(f"balance: 'items' or 'mass', not {balance!r}")
    steps = math.ceil(len(items) / batch)
    total = steps * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    for epoch in range(epochs):
        head.train()
        order = rng.permutation(len(items))
        bar = tqdm(range(steps), desc=f"window head {epoch + 1}/{epochs}", disable=quiet, mininterval=10)
        for step in bar:
            chunk = [items[k] for k in order[step * batch:(step + 1) * batch]]
            app, rel, valid, y, _ = make_windows(pools, chunk, cfg.window, cfg.num_classes, rng, mix)
            loss = soft_loss(head(app, rel, valid), y, weights, smooth=0.05)
            optimiser_step(opt, sched, loss)
    return head.eval()


@torch.no_grad()
def logits_of(head: WindowHead, app: torch.Tensor, rel: torch.Tensor) -> np.ndarray:
    return head(app, rel, torch.ones(app.shape[:2])).numpy()


def fer_val_logits(head: WindowHead, val: clips.Bank, cfg: ModelConfig) -> np.ndarray:
    a, r = clips.image_clips(val, np.arange(len(val.labels)), cfg.window, None)
    return logits_of(head, a, r)


def moving_val(head: WindowHead, val: clips.Bank, cfg: ModelConfig, seed: int = 0) -> dict:
    """Accuracy on moving windows made from FER2013 val faces (never trained on): each
    expressive face as an onset from a val neutral face, finished by the newest frame; the
    label is the expression. What a head that averages its window loses shows here."""
    rng = np.random.default_rng(seed)
    idx = np.arange(len(val.labels))
    neutral = cfg.labels.index("neutral")
    pools = Pools(val, idx, None, np.arange(0), neutral)
    expr = pools.expr_rows
    targets = [((0, int(i)), int(val.labels[i])) for i in expr]
    app, rel, valid, y, _ = make_windows(pools, targets, cfg.window, cfg.num_classes, rng,
                                         Mix(still=0, onset=1, offset=0, change=0))
    # an evaluation bank holds the untouched face (and its mirror): no jitter is drawn
    with torch.no_grad():
        z = head(app, rel, valid).numpy()
    done = y.numpy().max(1) > 0.999  # ramps finished by the newest frame
    truth = y.numpy().argmax(1)
    return {"onset_windows": int(done.sum()), "accuracy": float((z.argmax(1)[done] == truth[done]).mean())}


def calibrate(logits: np.ndarray, labels: np.ndarray) -> dict:
    fit_rows, test_rows = np.arange(0, len(labels), 2), np.arange(1, len(labels), 2)
    t = fit_temperature(logits[fit_rows], labels[fit_rows])
    return {"temperature": t, "fitted_on": "FER2013 val, even rows", "measured_on": "FER2013 val, odd rows",
            "ece_before": ece(softmax(logits[test_rows]), labels[test_rows]),
            "ece_after": ece(softmax(logits[test_rows], t), labels[test_rows])}
