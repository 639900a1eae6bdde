"""Stage D: a window head for faces that move, on the shipped encoder's embeddings.

The encoder is read back from the shipped ONNX file (`arpgnet.from_onnx`) and stays
frozen, flip-averaged as it runs live. The head (new, the paper's 1e-3) keeps the
fusion graph and its TRS band and pools with recency attention; it is trained on the
windows of `arpgnet.dynamics` (still, onset, offset, change) whose label is what the
face shows at the newest frame. A temperature is then fitted on one half of FER2013
val (even rows) and the expected calibration error reported on the other half.

  python -m arpgnet.train_window --encoder-onnx ../models/arpgnet-edge.encoder.onnx --out runs/window
  python -m arpgnet.train_window ... --folds 5      # CK+48 per subject fold (see RESULTS for what it can mean)
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
from .calibration import ece, fit_temperature, softmax
from .common import ROOT, class_weights, save, seed_all, shared_dir, optimiser_step
from .config import ModelConfig
from .data import scan_images, subject_folds
from .dynamics import Mix, Pools, make_windows
from .onnx_export import EncoderExport
from .onnx_import import load_onnx_encoder
from .metrics import summarise
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


def fit(cfg: ModelConfig, fer: clips.Bank, seqs: clips.Sequences | None, seq_idx: np.ndarray, epochs: int,
        seed: int, seq_repeat: int, mix: Mix, batch: int = 128, lr: float = 1e-3, quiet: bool = False) -> WindowHead:
    seed_all(seed)
    rng = np.random.default_rng(seed)
    head = WindowHead(cfg)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    fer_idx = np.arange(len(fer.labels))
    pools = Pools(fer, fer_idx, seqs, seq_idx, cfg.labels.index("neutral"))
    items = [((0, int(i)), int(fer.labels[i])) for i in fer_idx]
    if seqs is not None:
        items += [((1, int(i)), int(seqs.labels[i])) for i in np.repeat(seq_idx, seq_repeat)]
    all_labels = np.array([y for _, y in items])
    weights = class_weights(all_labels, cfg.num_classes)
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--encoder-onnx", default=str(ROOT / "models" / "arpgnet-edge.encoder.onnx"))
    ap.add_argument("--out", default=str(ROOT / "training" / "runs" / "window"))
    ap.add_argument("--shared", default=None)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-images", type=int, default=12000, help="FER2013 train faces in the bank (0 = all)")
    ap.add_argument("--sequences", type=int, default=6, help="times each CK+48 sequence is a target per epoch")
    ap.add_argument("--still", type=float, default=Mix.still, help="share of still windows (the rest move)")
    ap.add_argument("--pooling", default="recency", choices=["recency", "mean"])
    ap.add_argument("--mode", default="fusion", choices=["fusion", "appearance", "relation", "concat"],
                    help="ablations: one branch alone, or both concatenated without the fusion graph")
    ap.add_argument("--no-trs", action="store_true", help="ablation: the fusion graph without the TRS band")
    ap.add_argument("--folds", type=int, default=0, help="k > 0: CK+48 subject folds, a head per fold")
    ap.add_argument("--results", default=None, help="write the measurements as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    _, enc_cfg, _ = load_onnx_encoder(Path(args.encoder_onnx))
    cfg = enc_cfg.replace(pooling=args.pooling, mode=args.mode, use_trs=not args.no_trs)
    mix = Mix(still=args.still)
    fer, val, seqs = banks(Path(args.encoder_onnx), shared_dir(args.shared), cfg, args.train_images)
    result: dict = {"command": "python3 -m arpgnet.train_window " + " ".join(argv or __import__("sys").argv[1:]),
                    "seed": args.seed, "mix": mix.__dict__}
    if args.folds:
        fold_of = np.array(subject_folds(seqs.subjects, args.folds))
        truth, pred = [], []
        for f in range(args.folds):
            head = fit(cfg, fer, seqs, np.nonzero(fold_of != f)[0], args.epochs, args.seed + f, args.sequences, mix)
            idx = np.nonzero(fold_of == f)[0]
            a, r = clips.sequence_clips(seqs, idx, cfg.window, None)
            p = logits_of(head, a, r).argmax(1)
            acc = float((p == seqs.labels[idx]).mean())
            print(json.dumps({"fold": f + 1, "n": len(idx), "accuracy": acc}), flush=True)
            truth.append(seqs.labels[idx]), pred.append(p)
        result["ckplus48_folds"] = summarise(np.concatenate(truth), np.concatenate(pred), list(cfg.labels))
        print(json.dumps({"ckplus48_folds_accuracy": result["ckplus48_folds"]["accuracy"],
                          "uar": result["ckplus48_folds"]["uar"]}))
    else:
        head = fit(cfg, fer, seqs, np.arange(len(seqs.labels)), args.epochs, args.seed, args.sequences, mix)
        z = fer_val_logits(head, val, cfg)
        result["fer2013_val"] = summarise(val.labels, z.argmax(1), list(cfg.labels))
        result["calibration"] = calibrate(z, val.labels)
        result["fer2013_val_onsets"] = moving_val(head, val, cfg)
        print(json.dumps({"fer_val_accuracy": result["fer2013_val"]["accuracy"], "uar": result["fer2013_val"]["uar"],
                          "onsets": result["fer2013_val_onsets"], **result["calibration"]}))
        out = Path(args.out)
        save(out / "head.pt", {"config": cfg.to_json(), "head": head.state_dict(),
                               "temperature": result["calibration"]["temperature"], "fer_val": result["fer2013_val"]})
        print(f"wrote {out / 'head.pt'}")
    if args.results:
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        Path(args.results).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
