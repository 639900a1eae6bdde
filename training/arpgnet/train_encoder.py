"""Stage A: train the frame encoder (appearance backbone + relation branch) on faces.

Each face is a one-frame clip; two auxiliary classifiers, one on the appearance
embedding and one on the relation embedding, give both branches their own signal.
Stage B (train_head) then learns the fusion graph on T-frame clips of these
embeddings. Resumable: rerunning the same command continues from `last.pt`.

With --teacher (soft targets written by `experiments.ensemble --targets`) both classifiers
are also pulled towards an ensemble's predictions: one encoder learns what several
independently trained models agree on, at the cost of one.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import augment
from .common import (ROOT, check_config, class_weights, distillation, load_targets, normalise, optimiser_step,
                     pick_device, save, seed_all, shared_dir, to_unit)
from .config import preset
from .data import load_image_array, scan_images
from .encoders import EncoderWithAux, evaluate


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="edge")
    ap.add_argument("--shared", default=None, help="folder with data/ (default: $ARPGNET_SHARED or ../shared)")
    ap.add_argument("--run", default=str(ROOT / "training" / "runs" / "encoder"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3, help="new layers (the paper's 1e-3)")
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--limit", type=int, default=0, help="use only N training images (smoke runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-symmetry", action="store_true", help="ablation: relation graph without symmetry edges")
    ap.add_argument("--widths", default=None,
                    help="stage widths instead of the preset's, e.g. 40,80,160,320 (a wider edge encoder; the "
                         "embedding sizes, and so the window head and the pipeline, stay the same)")
    ap.add_argument("--blocks", default=None, help="blocks per stage instead of the preset's, e.g. 1,3,4,1")
    ap.add_argument("--init", default=None,
                    help="start from this run's weights (a last.pt or snap-*.pt) with a fresh optimiser and "
                         "schedule: a warm restart that trains an existing encoder longer")
    ap.add_argument("--class-weights", choices=["sqrt", "none"], default="sqrt",
                    help="sqrt: (median/count)^0.5 per class (favours UAR); none: plain accuracy")
    ap.add_argument("--augment", choices=["full", "light"], default="full",
                    help="light: smaller jitter and no occlusion boxes, for a last short cycle on a trained encoder")
    ap.add_argument("--teacher", default=None,
                    help="soft targets (.npz from experiments.ensemble --targets) to distil on every training face")
    ap.add_argument("--distill", type=float, default=0.7,
                    help="with --teacher: weight of the distillation term; 1 - this weights the labels")
    ap.add_argument("--temperature", type=float, default=2.0, help="with --teacher: softening of both sides")
    ap.add_argument("--snapshots", type=int, default=0,
                    help="also keep the last N epochs as snap-<epoch>.pt for arpgnet.average")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="auto: CUDA where PyTorch sees it (checkpoints load on either)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    gen = seed_all(args.seed)
    shape: dict[str, object] = {}
    if args.widths:
        shape["widths"] = tuple(int(w) for w in args.widths.split(","))
    if args.blocks:
        shape["blocks"] = tuple(int(b) for b in args.blocks.split(","))
    cfg = preset(args.preset, symmetry_edges=not args.no_symmetry, **shape)
    data = shared_dir(args.shared) / "data"
    cache = ROOT / "training" / "cache"
    full = scan_images(data / "fer2013" / "train", cfg.labels)
    val = scan_images(data / "fer2013" / "val", cfg.labels)
    keep = np.arange(len(full))
    if args.limit:
        keep = np.sort(np.random.default_rng(args.seed).permutation(len(full))[: args.limit])
    train = [full[i] for i in keep]
    x_train = load_image_array(train, cfg.input_size, cache)
    y_train = np.array([s.label for s in train])
    teacher = None
    if args.teacher:
        teacher = load_targets(Path(args.teacher), [str(s.frames[0]) for s in full],
                               np.array([s.label for s in full]))[keep]
    x_val = load_image_array(val, cfg.input_size, cache)
    y_val = np.array([s.label for s in val])

    model = EncoderWithAux(cfg).to(memory_format=torch.channels_last)
    if args.init:
        ck = torch.load(args.init, map_location="cpu")
        check_config(ck["config"], cfg, args.init)
        model.load_state_dict(ck["model"])
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / args.batch)
    total = steps_per_epoch * args.epochs
    warm = max(1, steps_per_epoch // 2)  # a --limit smoke run can have one step per epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )
    run = Path(args.run)
    history: list[dict] = []
    start = 0
    last = run / "last.pt"
    if last.exists():
        ck = torch.load(last, map_location="cpu")
        check_config(ck["config"], cfg, str(last))
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["gen"])
        start, history = ck["epoch"], ck["history"]
        print(f"resuming {last} at epoch {start}")

    weights = class_weights(y_train, cfg.num_classes).to(device) if args.class_weights == "sqrt" else None
    for epoch in range(start, args.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen).numpy()
        bar = tqdm(range(steps_per_epoch), desc=f"encoder {epoch + 1}/{args.epochs}", mininterval=5)
        t0, seen, correct, loss_sum = time.time(), 0, 0, 0.0
        for step in bar:
            idx = order[step * args.batch:(step + 1) * args.batch]
            x = to_unit(x_train[idx])
            if args.augment == "full":
                x = augment.random_erase(augment.photometric(augment.similarity_jitter(x, gen), gen), gen)
            else:
                x = augment.photometric(augment.similarity_jitter(x, gen, rot_deg=6.0, scale=0.05, shift=0.04), gen,
                                        brightness=0.15, contrast=0.2)
            # augmented on the CPU with the seeded generator: the same faces and jitter on either device
            x = normalise(x).contiguous(memory_format=torch.channels_last).to(device)
            y = torch.from_numpy(y_train[idx]).to(device)
            a, r = model(x)
            loss = F.cross_entropy(a, y, weight=weights, label_smoothing=0.1) + F.cross_entropy(
                r, y, weight=weights, label_smoothing=0.1)
            if teacher is not None:
                q = torch.from_numpy(teacher[idx]).to(device)
                kd = distillation(a, q, args.temperature) + distillation(r, q, args.temperature)
                loss = (1 - args.distill) * loss + args.distill * kd
            optimiser_step(opt, sched, loss)
            seen += len(idx)
            correct += int((a.argmax(1) == y).sum())
            loss_sum += float(loss) * len(idx)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        metrics = evaluate(model, x_val, y_val, device=device)
        history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "train_acc": correct / seen,
                        "val": metrics, "seconds": time.time() - t0})
        print(json.dumps(history[-1]), flush=True)
        state = {"config": cfg.to_json(), "model": model.state_dict(), "opt": opt.state_dict(),
                 "sched": sched.state_dict(), "gen": gen.get_state(), "epoch": epoch + 1, "history": history}
        save(last, state)
        if args.snapshots and epoch + 1 > args.epochs - args.snapshots:
            save(run / f"snap-{epoch + 1}.pt", state)
    save(run / "encoder.pt", {"config": cfg.to_json(), "encoder": model.encoder.state_dict(),
                              "history": history})
    print(f"wrote {run / 'encoder.pt'}")


if __name__ == "__main__":
    main()
