"""Do MediaPipe's blendshapes add to the image model? A classifier on the 51 facial actions
alone, then late fusion with the shipped model's probabilities, measured on FER2013 val.

The inputs are `arpgnet-edge eval --actions --samples` files, so the actions and the
model's probabilities are exactly what the TypeScript pipeline computes:

  arpgnet-edge eval --data ../shared/data/fer2013/train --format images --aligned --actions --samples cache/actions/fer2013-train.jsonl
  arpgnet-edge eval --data ../shared/data/fer2013/val --format images --aligned --actions --samples cache/actions/fer2013-val.jsonl
  python -m experiments.actions --train cache/actions/fer2013-train.jsonl --val cache/actions/fer2013-val.jsonl \\
      --results results/actions-fer2013-val.json

The actions classifier learns from the training faces only: on them the image model's
probabilities are those of a network that has seen them, so no fusion is fitted there.
The fusion is fitted on val and therefore scored on val by 5-fold cross-validation (each
fifth scored by what was fitted on the other four). Two forms, both only where the
landmarker found a face (elsewhere the model alone, untouched):
- scalar: log p_model + w * log p_actions, w from a short list;
- linear (the one exported): log p_model + A log p_actions + b, A 7x7, b 7, the model's
  log-probabilities passed through unchanged.
For reference, the same linear refit of the model's own log-probabilities without actions
(`recalibratedModel`) says how much of the linear form's gain is class priors alone.
`--export FILE` fits the linear form on all of val and writes it with the actions
classifier as one ONNX graph: 51 actions in, 7 additive log-terms out (FER2013's classes;
the runtime leaves contempt's share alone). A record without actions (no face found) is
counted, never filled with zeros.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from arpgnet.common import commit, seed_all

# the model's FER2013 classes; contempt has no FER2013 faces and stays out of the fusion
CLASSES = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
WEIGHTS = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]


def load(path: Path) -> tuple[list[str], np.ndarray | None, np.ndarray, np.ndarray, np.ndarray, int]:
    """Action names, actions (n x 51, NaN rows where none), labels, model log-probs over CLASSES, mask of rows with actions, records without a model reading."""
    names: list[str] | None = None
    xs, ys, ps, has = [], [], [], []
    unread = 0
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        r = json.loads(line)
        if r["truth"] not in CLASSES:
            continue
        if r.get("probabilities") is None:
            unread += 1
            continue
        a = r.get("actions")
        if a is not None:
            if names is None:
                names = sorted(a)
            elif sorted(a) != names:
                raise ValueError(f"{path}:{line_no}: {r['path']} has other action names than the first record")
        xs.append(None if a is None else [a[k] for k in names])  # type: ignore[union-attr]
        ys.append(CLASSES.index(r["truth"]))
        p = np.array([r["probabilities"][c] for c in CLASSES], dtype=np.float64)
        ps.append(np.log(np.maximum(p / p.sum(), 1e-6)))
        has.append(a is not None)
    if names is None:
        raise ValueError(f"{path}: no record carries actions; was it written with --actions?")
    width = len(names)
    x = np.array([v if v is not None else [np.nan] * width for v in xs], dtype=np.float32)
    return names, x, np.array(ys), np.array(ps), np.array(has), unread


class ActionsNet(nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def fit(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> ActionsNet:
    g = seed_all(seed)
    net = ActionsNet(x.shape[1], len(CLASSES))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * ((len(x) + 255) // 256))
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(x), generator=g).split(256):
            opt.zero_grad()
            loss_fn(net(xt[idx]), yt[idx]).backward()
            opt.step()
            sched.step()
    net.eval()
    return net


def log_probs(net: ActionsNet, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.log_softmax(net(torch.from_numpy(x)), 1).double().numpy()


def fused_accuracy(y: np.ndarray, lp_model: np.ndarray, lp_act: np.ndarray, has: np.ndarray, w: float) -> float:
    z = lp_model + np.where(has[:, None], w * np.nan_to_num(lp_act), 0.0)
    return float((z.argmax(1) == y).mean())


def cross_validated(y: np.ndarray, lp_model: np.ndarray, lp_act: np.ndarray, has: np.ndarray, seed: int) -> tuple[float, list[float]]:
    order = np.random.default_rng(seed).permutation(len(y))
    folds = np.array_split(order, 5)
    right, chosen = 0.0, []
    for k, test in enumerate(folds):
        fit_rows = np.concatenate([f for j, f in enumerate(folds) if j != k])
        w = max(WEIGHTS, key=lambda v: fused_accuracy(y[fit_rows], lp_model[fit_rows], lp_act[fit_rows], has[fit_rows], v))
        chosen.append(w)
        right += fused_accuracy(y[test], lp_model[test], lp_act[test], has[test], w) * len(test)
    return right / len(y), chosen


def fit_linear(lp_model: np.ndarray, extra: np.ndarray, y: np.ndarray, through: bool, lam: float = 1e-3) -> nn.Linear:
    """A linear term on `extra` added to the model's log-probs (through) or replacing them, by L-BFGS."""
    p, x, t = torch.from_numpy(lp_model), torch.from_numpy(extra), torch.from_numpy(y).long()
    lin = nn.Linear(extra.shape[1], len(CLASSES)).double()
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=300)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = (p if through else 0) + lin(x)
        loss = nn.functional.cross_entropy(z, t) + lam * (lin.weight**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lin


def cv_linear(y: np.ndarray, lp_model: np.ndarray, extra: np.ndarray, rows: np.ndarray, through: bool, seed: int) -> float:
    """5-fold CV accuracy over all of y; the linear form applies to `rows`, the others keep the model's argmax."""
    order = np.random.default_rng(seed).permutation(len(y))
    right = 0
    for k, test in enumerate(np.array_split(order, 5)):
        fit_rows = np.setdiff1d(order, test)
        fit_rows = fit_rows[rows[fit_rows]]
        lin = fit_linear(lp_model[fit_rows], extra[fit_rows], y[fit_rows], through)
        with torch.no_grad():
            z = (torch.from_numpy(lp_model[test]) if through else 0) + lin(torch.from_numpy(extra[test]))
        pred = np.where(rows[test], z.argmax(1).numpy(), lp_model[test].argmax(1))
        right += int((pred == y[test]).sum())
    return right / len(y)


class ActionsTerm(nn.Module):
    """51 blendshapes -> the 7 log-terms the runtime adds to the model's log-probabilities."""

    def __init__(self, net: ActionsNet, lin: nn.Linear):
        super().__init__()
        self.net, self.lin = net, lin.float()

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.log_softmax(self.net(actions), 1))


def export(net: ActionsNet, lin: nn.Linear, names: list[str], out: Path, meta: dict[str, str]) -> None:
    import onnx

    term = ActionsTerm(net.eval(), lin).eval()
    torch.onnx.export(term, (torch.zeros(2, len(names)),), str(out), opset_version=17, input_names=["actions"],
                      output_names=["terms"], dynamic_axes={"actions": {0: "n"}, "terms": {0: "n"}})
    m = onnx.load(str(out))
    del m.metadata_props[:]
    for k, v in {"arpgnet.actions": ",".join(names), "arpgnet.classes": ",".join(CLASSES), **meta}.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    m.producer_name = "arpgnet-edge training"
    onnx.checker.check_model(m)
    onnx.save(m, str(out))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True, type=Path)
    ap.add_argument("--val", required=True, type=Path)
    ap.add_argument("--also", type=Path, action="append", default=[],
                    help="more training faces for the actions classifier only (another `eval --actions --samples` file, e.g. CK+48)")
    ap.add_argument("--also-repeat", type=int, default=1, help="each --also face counts this many times")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--export", type=Path, default=None, help="write the linear fusion, fitted on all of val, as ONNX here")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--parity", type=Path, default=None,
                    help="with --export: an `eval --actions --samples` file written with the exported graph; "
                         "its predictions are compared with this fit's, face by face")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    names, xtr, ytr, _, htr, un_tr = load(args.train)
    vnames, xva, yva, pva, hva, un_va = load(args.val)
    if vnames != names:
        raise ValueError(f"{args.val}: its action names differ from {args.train}'s")
    xs, ys = [xtr[htr]], [ytr[htr]]
    also = {}
    for f in args.also:
        anames, xa, ya, _, ha, _ = load(f)
        if anames != names:
            raise ValueError(f"{f}: its action names differ from {args.train}'s")
        xs += [xa[ha]] * args.also_repeat
        ys += [ya[ha]] * args.also_repeat
        also[str(f)] = int(ha.sum())
    net = fit(np.concatenate(xs), np.concatenate(ys), args.epochs, args.seed)
    lp_act = np.full((len(yva), len(CLASSES)), np.nan)
    lp_act[hva] = log_probs(net, xva[hva])
    act_only = float((lp_act[hva].argmax(1) == yva[hva]).mean())
    model_on_found = float((pva[hva].argmax(1) == yva[hva]).mean())
    per_w = {str(w): round(fused_accuracy(yva, pva, lp_act, hva, w), 4) for w in WEIGHTS}
    cv, chosen = cross_validated(yva, pva, lp_act, hva, args.seed)
    act0 = np.nan_to_num(lp_act)
    linear = cv_linear(yva, pva, act0, hva, True, args.seed)
    recal = cv_linear(yva, pva, pva, hva, False, args.seed)
    out = {
        "command": "python -m experiments.actions " + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
        "commit": commit(),
        "seed": args.seed,
        "train": {"faces": int(len(ytr)), "withActions": int(htr.sum()), "unread": un_tr},
        "also": {"files": also, "repeat": args.also_repeat},
        "val": {"faces": int(len(yva)), "withActions": int(hva.sum()), "unread": un_va},
        "actionsOnlyOnFound": round(act_only, 4),
        "modelOnFound": round(model_on_found, 4),
        "modelAll": round(fused_accuracy(yva, pva, lp_act, hva, 0.0), 4),
        "fusedByWeight": per_w,
        "fusedCrossValidated": round(cv, 4),
        "weightsChosenPerFold": chosen,
        "linearCrossValidated": round(linear, 4),
        "recalibratedModelCrossValidated": round(recal, 4),
    }
    if args.export:
        lin = fit_linear(pva[hva], act0[hva], yva[hva], True)
        with torch.no_grad():
            z = pva + np.where(hva[:, None], lin(torch.from_numpy(act0)).numpy(), 0.0)
        pred = z.argmax(1)
        export(net, lin, names, args.export, {
            "arpgnet.version": args.version,
            "arpgnet.commit": commit(),
            "arpgnet.training_data": "actions classifier: FER2013 train faces where MediaPipe's landmarker found one "
                                     f"({int(htr.sum())} of {len(ytr)}); fusion terms: FER2013 val (PublicTest) faces "
                                     f"with actions ({int(hva.sum())} of {len(yva)}), against the shipped model's probabilities",
        })
        out["exported"] = str(args.export)
        out["inSampleLinear"] = round(float((pred == yva).mean()), 4)
        if args.parity:
            _, _, ty, tp, _, _ = load(args.parity)
            if len(ty) != len(yva) or (ty != yva).any():
                raise ValueError(f"{args.parity}: not the same faces, in the same order, as {args.val}")
            out["parity"] = {"file": str(args.parity), "samePrediction": round(float((tp.argmax(1) == pred).mean()), 4)}
    text = json.dumps(out, indent=1)
    print(text)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(text + "\n")


if __name__ == "__main__":
    main()
