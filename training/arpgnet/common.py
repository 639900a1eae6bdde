"""Helpers shared by the training stages: paths, seeding, normalisation, checkpoints, the commit measured."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import ModelConfig, load_contract

ROOT = Path(__file__).resolve().parents[2]


def commit() -> str:
    """The commit a result was measured on, for its result file."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def shared_dir(arg: str | None = None) -> Path:
    return Path(arg or os.environ.get("ARPGNET_SHARED") or ROOT.parent / "shared").resolve()


def pick_device(name: str) -> torch.device:
    """--device auto|cpu|cuda: auto takes a CUDA device where PyTorch sees one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to PyTorch")
    return torch.device(name)


def seed_all(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def normalise(x01: Tensor) -> Tensor:
    c = load_contract()
    return (x01 - c["mean"]) / c["std"]


def to_unit(batch_u8: np.ndarray) -> Tensor:
    """uint8 [B, H, W] -> float [B, 1, H, W] in [0, 1]."""
    return torch.from_numpy(batch_u8).float().div_(255.0).unsqueeze(1)


def class_weights(labels: np.ndarray, n: int) -> Tensor:
    """(median / count)^0.5: lifts rare classes (disgust) without drowning the common ones."""
    return mass_weights(np.bincount(labels, minlength=n).astype(np.float64))


def mass_weights(mass: np.ndarray) -> Tensor:
    """class_weights' rule on any per-class amount (counts, or soft-target mass)."""
    counts = np.asarray(mass, dtype=np.float64)
    present = counts > 0
    w = np.ones(len(counts))
    w[present] = np.sqrt(np.median(counts[present]) / counts[present])
    return torch.tensor(w, dtype=torch.float32)


def distillation(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """KL(teacher || student) on softened predictions, scaled by T^2 so its gradient does
    not shrink with the temperature (Hinton et al.; as in Learning without Forgetting)."""
    log_p = F.log_softmax(student / temperature, dim=1)
    q = F.softmax(teacher / temperature, dim=1)
    return F.kl_div(log_p, q, reduction="batchmean") * temperature ** 2


def write_targets(out: Path, probs: np.ndarray, labels: np.ndarray, files: list[str]) -> None:
    """The file names travel with the targets so a student never pairs them with other faces."""
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, probs=probs.astype(np.float32), labels=labels, files=np.array(files))


def data_key(file: str) -> str:
    """A face's path from its data/ folder on: the same face wherever the data folder lies
    (targets written beside ../shared pair with a pack unpacked elsewhere)."""
    parts = Path(file).parts
    i = max((k for k, p in enumerate(parts) if p == "data"), default=-1)
    return "/".join(parts[i:]) if i >= 0 else file


def load_targets(path: Path, files: list[str], labels: np.ndarray) -> np.ndarray:
    """Teacher log-probabilities in the order of `files`, refusing a file made for other faces."""
    z = np.load(path)
    theirs = [data_key(str(f)) for f in z["files"]]
    files = [data_key(f) for f in files]
    if theirs != files:
        known = set(theirs)
        missing = next((f for f in files if f not in known), None)
        raise SystemExit(f"{path}: targets were written for other faces ({len(theirs)} files, here {len(files)}"
                         + (f"; no target for {missing}" if missing else "; order differs") + ")")
    if not np.array_equal(z["labels"], labels):
        raise SystemExit(f"{path}: labels differ from the dataset's (class order changed?)")
    return np.log(np.clip(z["probs"], 1e-8, 1.0)).astype(np.float32)


def check_config(ckpt_cfg: dict, cfg: ModelConfig, what: str) -> None:
    """Refuse a checkpoint of another preset or shape, naming the fields that differ."""
    theirs = ModelConfig.from_json(ckpt_cfg).shape_signature()
    ours = cfg.shape_signature()
    diff = [f"{k}: file has {theirs[k]!r}, expected {ours[k]!r}" for k in ours if theirs.get(k) != ours[k]]
    if diff:
        raise SystemExit(f"{what} does not match preset {cfg.preset!r}: " + "; ".join(diff))


def save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def optimiser_step(opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler._LRScheduler, loss: Tensor) -> None:
    """One optimiser step on `loss`, then one scheduler step (every training loop here)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
