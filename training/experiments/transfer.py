"""Does face-recognition pre-training help on FER2013? MobileFace fine-tuned, pretrained vs random.

The paper starts its appearance backbone from a face-recognition network. The one this
project may use is MobileFace (`experiments.mobileface`); it is not our backbone, so the
question is asked on its own architecture: the same network and schedule trained on
FER2013 once from its face-recognition weights and once from random ones. The paper's
two learning rates apply: 1e-4 for pre-trained blocks, 1e-3 for new layers (the
classifier, and every layer of the random network). FER2013's 48x48 grey faces are
scaled to MobileFace's 112x112 and repeated over its three colour channels.

  python -m experiments.transfer --init pretrained --epochs 6 --run runs/mobileface-pre
  python -m experiments.transfer --init random --epochs 6 --run runs/mobileface-rand
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
from experiments import mobileface
from arpgnet.common import ROOT, class_weights, save, seed_all, shared_dir, to_unit, optimiser_step
from arpgnet.config import preset
from arpgnet.data import load_image_array, scan_images


class Classifier(nn.Module):
    def __init__(self, net: mobileface.MobileFace, classes: int) -> None:
        super().__init__()
        self.net = net
        self.out = nn.Sequential(nn.Dropout(0.2), nn.Linear(256, classes))

    def forward(self, grey01: Tensor) -> Tensor:
        return self.out(self.net.embed(mobileface.from_grey48(grey01)))


@torch.no_grad()
def accuracy(model: Classifier, images: np.ndarray, labels: np.ndarray, mirror: bool, batch: int = 256) -> float:
    model.eval()
    preds = []
    for i in range(0, len(images), batch):
        x = to_unit(images[i:i + batch])
        p = model(x).softmax(1)
        if mirror:
            p = p + model(torch.flip(x, dims=[3])).softmax(1)
        preds.append(p.argmax(1))
    return float((torch.cat(preds).numpy() == labels).mean())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", choices=["pretrained", "random"], required=True)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--shared", default=None)
    ap.add_argument("--run", required=True, help="folder for the trained network and its history")
    ap.add_argument("--trunk-lr", type=float, default=None,
                    help="learning rate of the network under the classifier (default: the paper's 1e-4 when "
                         "pretrained, 1e-3 when random); the same rate for both arms separates init from rate")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="use only N training images (smoke runs)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    gen = seed_all(args.seed)
    cfg = preset("edge")  # labels and the crop framing every other stage trains on
    data = shared_dir(args.shared) / "data"
    cache = ROOT / "training" / "cache"
    train = scan_images(data / "fer2013" / "train", cfg.labels)
    val = scan_images(data / "fer2013" / "val", cfg.labels)
    x_train, y_train = load_image_array(train, cfg.input_size, cache), np.array([s.label for s in train])
    if args.limit:  # a random subset: the folders are read class by class
        keep = np.sort(np.random.default_rng(args.seed).permutation(len(x_train))[: args.limit])
        x_train, y_train = x_train[keep], y_train[keep]
    x_val, y_val = load_image_array(val, cfg.input_size, cache), np.array([s.label for s in val])

    net = mobileface.load(args.shared) if args.init == "pretrained" else mobileface.MobileFace()
    model = Classifier(net, cfg.num_classes)
    trunk_lr = args.trunk_lr or (1e-4 if args.init == "pretrained" else 1e-3)
    opt = torch.optim.AdamW([{"params": model.net.parameters(), "lr": trunk_lr},
                             {"params": model.out.parameters(), "lr": 1e-3}], weight_decay=5e-4)
    steps = math.ceil(len(x_train) / args.batch)
    total = steps * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    weights = class_weights(y_train, cfg.num_classes)
    history: list[dict] = []
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen).numpy()
        t0, correct = time.time(), 0
        for step in tqdm(range(steps), desc=f"{args.init} {epoch + 1}/{args.epochs}", mininterval=10):
            idx = order[step * args.batch:(step + 1) * args.batch]
            x = augment.random_erase(augment.photometric(augment.similarity_jitter(to_unit(x_train[idx]), gen), gen),
                                     gen)
            y = torch.from_numpy(y_train[idx])
            logits = model(x)
            loss = F.cross_entropy(logits, y, weight=weights, label_smoothing=0.1)
            optimiser_step(opt, sched, loss)
            correct += int((logits.argmax(1) == y).sum())
        history.append({"epoch": epoch + 1, "init": args.init, "train_acc": correct / len(x_train),
                        "fer_val": accuracy(model, x_val, y_val, False), "seconds": round(time.time() - t0)})
        print(json.dumps(history[-1]), flush=True)
    result = {"init": args.init, "trunk_lr": trunk_lr, "epochs": args.epochs, "fer_val": history[-1]["fer_val"],
              "fer_val_mirrored": accuracy(model, x_val, y_val, True)}
    print(json.dumps(result), flush=True)
    save(Path(args.run) / "mobileface-fer.pt", {"model": model.state_dict(), "history": history, "result": result})


if __name__ == "__main__":
    main()
