"""Stage B: train the window head (parallel graph attention fusion) on T-frame clips.

The encoder from stage A is frozen (its blocks are the "pre-trained" part); the
head is new and trained with the paper's 1e-3. The shipped head sees every
FER2013 training face as a pseudo-clip and every CK+48 sequence.

  python -m arpgnet.train_head --encoder runs/encoder/encoder.pt --out runs/head
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import clips
from .common import ROOT, check_config, class_weights, save, seed_all, shared_dir
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
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--encoder", default=str(ROOT / "training" / "runs" / "encoder" / "encoder.pt"))
    ap.add_argument("--out", default=str(ROOT / "training" / "runs" / "head"))
    ap.add_argument("--shared", default=None)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="use about N FER images (smoke runs)")
    ap.add_argument("--train-images", type=int, default=0, help="FER2013 train faces in the bank (0 = all)")
    ap.add_argument("--sequences", type=int, default=0,
                    help="times each CK+48 sequence is seen per epoch (0 = none: the head then never saw CK+48, "
                         "so it can start stage C of a subject-independent evaluation)")
    ap.add_argument("--balance", action="store_true", help="weight the loss by (median/count)^0.5 per class")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    _, cfg = load_encoder(Path(args.encoder))
    _, fer, val, seqs = load_banks(Path(args.encoder), shared_dir(args.shared), cfg, args.limit, args.train_images)
    head = fit_head(cfg, fer, np.arange(len(fer.labels)), seqs if args.sequences else None,
                    np.arange(len(seqs.labels)) if args.sequences else np.arange(0), epochs=args.epochs,
                    seed=args.seed, fer_per_epoch=len(fer.labels), seq_repeat=args.sequences, balance=args.balance)
    result = eval_images(head, val, cfg)
    a, r = clips.image_clips(val, np.arange(len(val.labels)), cfg.window, None, flip_average=True)
    flip = summarise(val.labels, predict(head, a, r), list(cfg.labels))
    print(json.dumps({"fer_val_accuracy": result["accuracy"], "uar": result["uar"],
                      "fer_val_flip_average": flip["accuracy"]}))
    out = Path(args.out)
    save(out / "head.pt", {"config": cfg.to_json(), "head": head.state_dict(), "fer_val": result})
    print(f"wrote {out / 'head.pt'}")


if __name__ == "__main__":
    main()
