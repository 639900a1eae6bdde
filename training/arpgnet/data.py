"""Dataset folders -> tensors.

Layouts (class folder names go through SYNONYMS, case-insensitive):
  images     DIR/<class>/<image>.png|jpg                 one face per file (FER2013, CK+48)
  sequences  DIR/<class>/<sequence>/<frames sorted by name>
  afew       DIR/<Emotion>/<clip>/<frames>              AFEW with frames extracted per clip
  rml        DIR/<subject>/<an|di|fe|ha|sa|su>/<clip>/<frames>
  affwild2   DIR/annotations/EXPR_Set/<split>/<video>.txt + DIR/cropped_aligned/<video>/<frame>.jpg
Every loader yields (list of frame paths, label index) samples; T-frame sampling is
done by `sample_indices`.
"""

from __future__ import annotations

from argparse import ArgumentTypeError

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp"}

SYNONYMS = {
    "anger": "anger", "angry": "anger", "an": "anger",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust",
    "fear": "fear", "fearful": "fear", "fe": "fear",
    "happiness": "happiness", "happy": "happiness", "ha": "happiness",
    "sadness": "sadness", "sad": "sadness", "sa": "sadness",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise",
    "neutral": "neutral", "ne": "neutral",
    "contempt": "contempt", "co": "contempt",
}
# Aff-Wild2 expression annotation codes
AFFWILD2 = ["neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise", None]


class DatasetError(ValueError):
    pass


def canonical(name: str, labels: tuple[str, ...], where: Path) -> int:
    label = SYNONYMS.get(name.lower())
    if label is None:
        raise DatasetError(f"{where}: unknown class folder {name!r}; known names: {sorted(SYNONYMS)}")
    if label not in labels:
        raise DatasetError(f"{where}: class {label!r} is not among the model's labels {list(labels)}")
    return labels.index(label)


@dataclass
class Sample:
    frames: list[Path]
    label: int
    subject: str


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXT)


def _class_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not dirs:
        raise DatasetError(f"{root}: no class folders")
    return dirs


def subject_of(path: Path) -> str:
    m = re.match(r"(S\d+)_", path.name)
    return m.group(1) if m else path.stem


def scan_images(root: Path, labels: tuple[str, ...], skip_unknown: bool = False) -> list[Sample]:
    out: list[Sample] = []
    for d in _class_dirs(root):
        if skip_unknown and SYNONYMS.get(d.name.lower()) not in labels:
            continue
        y = canonical(d.name, labels, d)
        files = _images(d)
        if not files:
            raise DatasetError(f"{d}: empty class folder")
        out += [Sample([f], y, subject_of(f)) for f in files]
    return out


def scan_sequences(root: Path, labels: tuple[str, ...], min_frames: int = 1) -> list[Sample]:
    out: list[Sample] = []
    for d in _class_dirs(root):
        y = canonical(d.name, labels, d)
        seqs = sorted(p for p in d.iterdir() if p.is_dir())
        if not seqs:
            raise DatasetError(f"{d}: empty class folder")
        for s in seqs:
            frames = _images(s)
            if len(frames) < min_frames:
                raise DatasetError(f"{s}: {len(frames)} frames, at least {min_frames} needed")
            out.append(Sample(frames, y, s.name.split("_")[0]))
    return out


def scan_afew(root: Path, labels: tuple[str, ...], min_frames: int = 1) -> list[Sample]:
    return scan_sequences(root, labels, min_frames)


def scan_rml(root: Path, labels: tuple[str, ...], min_frames: int = 1) -> list[Sample]:
    out: list[Sample] = []
    for subject in _class_dirs(root):
        for s in scan_sequences(subject, labels, min_frames):
            out.append(Sample(s.frames, s.label, subject.name))
    return out


def scan_affwild2(root: Path, split: str, labels: tuple[str, ...], min_frames: int = 1) -> list[Sample]:
    """One sample per run of equal, valid per-frame labels (frames with -1 or Other are skipped)."""
    ann = root / "annotations" / "EXPR_Set" / split
    if not ann.is_dir():
        raise DatasetError(f"{ann}: not a folder")
    out: list[Sample] = []
    for txt in sorted(ann.glob("*.txt")):
        codes = [int(x) for x in txt.read_text().split()[1:] if x.strip().lstrip("-").isdigit()]
        video = root / "cropped_aligned" / txt.stem
        run: list[Path] = []
        prev = None
        for i, c in enumerate(codes + [-1]):
            name = AFFWILD2[c] if 0 <= c < len(AFFWILD2) else None
            frame = video / f"{i + 1:05d}.jpg"
            if name is not None and name in labels and name == prev and frame.exists():
                run.append(frame)
                continue
            if prev is not None and len(run) >= min_frames:
                out.append(Sample(run, labels.index(prev), txt.stem))
            run, prev = ([frame], name) if name in labels and frame.exists() else ([], None)
    return out


def sample_indices(n: int, t: int, rng: np.random.Generator | None) -> np.ndarray:
    """T indices spread over n frames in order: random offsets inside T equal segments
    when training, segment centres when evaluating; short sequences repeat frames."""
    edges = np.linspace(0, n, t + 1)
    if rng is None:
        idx = (edges[:-1] + edges[1:]) / 2
    else:
        idx = edges[:-1] + rng.random(t) * (edges[1:] - edges[:-1])
    return np.clip(idx.astype(int), 0, n - 1)


def load_grey(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as e:
        raise DatasetError(f"{path}: unreadable image ({e})") from e


def load_image_array(samples: list[Sample], size: int, cache: Path | None) -> np.ndarray:
    """All single-frame samples as one uint8 [N, size, size] array, cached on disk by content list."""
    key = hashlib.sha1(("\n".join(str(s.frames[0]) for s in samples) + str(size)).encode()).hexdigest()[:16]
    if cache is not None:
        f = cache / f"images-{key}.npy"
        if f.exists():
            return np.load(f)
    arr = np.stack([load_grey(s.frames[0], size) for s in samples])
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(f, arr)
    return arr


def subject_folds(subjects: list[str], k: int) -> list[int]:
    """Fold id per sample from its subject id: no subject is in two folds."""
    fold_of = {s: i % k for i, s in enumerate(sorted(set(subjects)))}
    return [fold_of[s] for s in subjects]


def fold_list(text: str) -> list[int]:
    try:
        return sorted({int(f) for f in text.split(",")})
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a comma-separated list of fold numbers") from None
