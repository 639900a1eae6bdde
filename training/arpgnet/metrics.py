"""Accuracy, UAR, WAR, per-class recall and the confusion matrix (JSON and PNG)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .common import commit


def summarise(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    n = len(labels)
    cm = np.zeros((n, n), dtype=int)
    for t, p in zip(y_true, y_pred):
        cm[t, p] += 1
    support = cm.sum(1)
    present = support > 0
    recall = np.where(present, np.diag(cm) / np.maximum(support, 1), np.nan)
    acc = float(np.trace(cm) / max(cm.sum(), 1))
    return {
        "n": int(cm.sum()),
        "accuracy": acc,
        "uar": float(np.nanmean(recall[present])) if present.any() else 0.0,
        # weighted average recall: recall weighted by class support, i.e. accuracy
        "war": acc,
        "recall": {labels[i]: (None if np.isnan(recall[i]) else float(recall[i])) for i in range(n)},
        "labels": labels,
        "confusion": cm.tolist(),
    }


def write(result: dict, out: Path, title: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**result, "commit": commit()}, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(result["confusion"], dtype=float)
    keep = [i for i in range(len(cm)) if cm[i].sum() > 0 or cm[:, i].sum() > 0]
    cm = cm[np.ix_(keep, keep)]
    labels = [result["labels"][i] for i in keep]
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5.2), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(cm)):
        for j in range(len(cm)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\naccuracy {result['accuracy']:.3f}  UAR {result['uar']:.3f}")
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"))
    plt.close(fig)
