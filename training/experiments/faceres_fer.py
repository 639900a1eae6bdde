"""faceres-deep fine-tuned on FER2013: the face-pretrained teacher for the edge encoder.

The face-identification MobileNet (`experiments.faceres`) gets a new 7-class classifier
on its pooled 1,024-d features; the whole network is then trained on FER2013 with stage
A's augmentation (grey repeated over three channels, scaled to --size). The new
classifier learns at the paper's 1e-3; the pre-trained network at 3e-4 by default, above
the paper's 1e-4, which cost MobileFace more than its initialisation gave (RESULTS.md).

Resumable: each epoch ends in `<run>/last.pt` (weights, optimiser, schedule, random
state, history); rerunning the same command continues from it, so a run longer than one
sitting goes on where it stopped. `--device auto` uses CUDA where present.

With --targets FILE the finished network writes its (mirror-averaged) probabilities on
every FER2013 training face, the soft targets `arpgnet.train_encoder --teacher FILE`
distils into the edge encoder.

  scripts/fetch-faceres.sh
  python3 -m experiments.faceres_fer --size 112 --epochs 8 --run runs/faceres-112
  python3 -m experiments.faceres_fer --size 112 --epochs 8 --run runs/faceres-112 --targets runs/faceres-112/targets.npz
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
from torch import Tensor, nn
from tqdm import tqdm

from arpgnet import augment
from arpgnet.common import ROOT, commit, optimiser_step, pick_device, save, seed_all, shared_dir, to_unit, write_targets
from arpgnet.config import preset
from arpgnet.data import load_image_array, scan_images
from experiments import faceres


class Classifier(nn.Module):
    def __init__(self, net: faceres.FaceRes, classes: int, size: int) -> None:
        super().__init__()
        self.net, self.size = net, size
        self.out = nn.Sequential(nn.Dropout(0.3), nn.Linear(faceres.FEATURES, classes))

    def forward(self, grey01: Tensor) -> Tensor:
        return self.out(self.net(faceres.from_grey(grey01, self.size)))


@torch.no_grad()
def probabilities(model: Classifier, images: np.ndarray, device: torch.device, batch: int = 256) -> np.ndarray:
    """Mirror-averaged class probabilities (the pipeline averages each face with its mirror image)."""
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = to_unit(images[i:i + batch]).to(device)
        out.append(((model(x).softmax(1) + model(torch.flip(x, dims=[3])).softmax(1)) / 2).cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def accuracy(model: Classifier, images: np.ndarray, labels: np.ndarray, device: torch.device,
             batch: int = 256) -> float:
    model.eval()
    preds = [model(to_unit(images[i:i + batch]).to(device)).argmax(1).cpu() for i in range(0, len(images), batch)]
    return float((torch.cat(preds).numpy() == labels).mean())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="folder for last.pt, the history and the result")
    ap.add_argument("--size", type=int, default=112, help="input side in pixels (the graph was trained at 224)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--trunk-lr", type=float, default=3e-4,
                    help="the pre-trained network (the paper says 1e-4; a face-recognition network fine-tuned here "
                         "gained more from a higher rate, RESULTS.md, MobileFace)")
    ap.add_argument("--lr", type=float, default=1e-3, help="the new classifier (the paper's 1e-3)")
    ap.add_argument("--faceres", default=None, help="folder of faceres-deep.{json,bin} (default: $ARPGNET_FACERES "
                                                    "or training/cache/faceres)")
    ap.add_argument("--shared", default=None)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="use only N training images (smoke runs)")
    ap.add_argument("--targets", default=None, help="after training, write soft targets on every training face")
    ap.add_argument("--stop-after", type=int, default=0,
                    help="end this sitting after N more epochs (the same command continues from last.pt)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    gen = seed_all(args.seed)
    cfg = preset("edge")  # labels and the crop framing every other stage trains on
    data = shared_dir(args.shared) / "data"
    cache = ROOT / "training" / "cache"
    full = scan_images(data / "fer2013" / "train", cfg.labels)
    val = scan_images(data / "fer2013" / "val", cfg.labels)
    x_full, y_full = load_image_array(full, cfg.input_size, cache), np.array([s.label for s in full])
    keep = np.arange(len(full))
    if args.limit:  # a random subset: the folders are read class by class
        keep = np.sort(np.random.default_rng(args.seed).permutation(len(full))[: args.limit])
    x_train, y_train = x_full[keep], y_full[keep]
    x_val, y_val = load_image_array(val, cfg.input_size, cache), np.array([s.label for s in val])

    model = Classifier(faceres.load(Path(args.faceres) if args.faceres else None), cfg.num_classes, args.size)
    model = model.to(device)
    opt = torch.optim.AdamW([{"params": model.net.parameters(), "lr": args.trunk_lr},
                             {"params": model.out.parameters(), "lr": args.lr}], weight_decay=5e-4)
    steps = math.ceil(len(x_train) / args.batch)
    total, warm = steps * args.epochs, max(1, steps // 4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    run = Path(args.run)
    last = run / "last.pt"
    start, history = 0, []
    if last.exists():
        ck = torch.load(last, map_location="cpu")
        if ck["args"]["size"] != args.size or ck["args"]["epochs"] != args.epochs:
            raise SystemExit(f"{last} was started with --size {ck['args']['size']} --epochs {ck['args']['epochs']}; "
                             "resume with the same, or use another --run")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["gen"])
        start, history = ck["epoch"], ck["history"]
        print(f"resuming {last} at epoch {start}", flush=True)

    stop = min(args.epochs, start + args.stop_after) if args.stop_after else args.epochs
    for epoch in range(start, stop):
        model.train()
        order = torch.randperm(len(x_train), generator=gen).numpy()
        t0, correct, skipped = time.time(), 0, 0
        for step in tqdm(range(steps), desc=f"faceres {args.size}px {epoch + 1}/{args.epochs}", mininterval=30):
            idx = order[step * args.batch:(step + 1) * args.batch]
            x = augment.random_erase(augment.photometric(augment.similarity_jitter(to_unit(x_train[idx]), gen), gen),
                                     gen).to(device)
            y = torch.from_numpy(y_train[idx]).to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=0.1)
            if not torch.isfinite(loss):  # never train on a diverged step; counted in the history
                skipped += 1
                opt.zero_grad(set_to_none=True)
                sched.step()
                continue
            optimiser_step(opt, sched, loss)
            correct += int((logits.argmax(1) == y).sum())
        history.append({"epoch": epoch + 1, "train_acc": round(correct / len(x_train), 4),
                        "fer_val": round(accuracy(model, x_val, y_val, device), 4), "skipped_steps": skipped,
                        "seconds": round(time.time() - t0)})
        print(json.dumps(history[-1]), flush=True)
        save(last, {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "gen": gen.get_state(), "epoch": epoch + 1, "history": history, "args": vars(args)})
    if stop < args.epochs:
        print(f"stopped after epoch {stop} of {args.epochs}; the same command continues from {last}", flush=True)
        return

    mirrored = probabilities(model, x_val, device)
    result = {"command": "python3 -m experiments.faceres_fer " + " ".join(argv or __import__("sys").argv[1:]),
              "commit": commit(), "seed": args.seed, "size": args.size, "epochs": args.epochs,
              "trunk_lr": args.trunk_lr, "fer_val": history[-1]["fer_val"] if history else None,
              "fer_val_mirrored": round(float((mirrored.argmax(1) == y_val).mean()), 4), "history": history}
    (run / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "history"}), flush=True)
    torch.save({"model": model.state_dict(), "size": args.size, "labels": list(cfg.labels)}, run / "faceres-fer.pt")
    if args.targets:
        probs = probabilities(model, x_full, device)
        write_targets(Path(args.targets), probs, y_full, [str(s.frames[0]) for s in full])
        print(json.dumps({"targets": args.targets, "fer_train": round(float((probs.argmax(1) == y_full).mean()), 4)}))


if __name__ == "__main__":
    main()
