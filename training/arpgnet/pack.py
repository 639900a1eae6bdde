"""The training data as one file small enough to travel with the working tree.

A machine that trains (a lent GPU, another box) may not have the data folder beside the
checkout, and what travels with a working tree is capped (64 MiB here). The training
stages read FER2013 train/val and CK+48 (58 MB of JPEG and PNG files), so the pack holds
exactly those files, byte for byte, in one blob with an index: unpacked, they are the
same files at the same relative paths, so every loader, cache key and soft-target file
(keyed by path under the data folder) works unchanged, and a rebuilt model is the same.
The same 33k files measured 65.3 MiB as a stored zip and 82.2 MiB as a tar (per-file
headers): neither fits.

  python3 -m arpgnet.pack --out packed/training-data.npz                     # from ../shared (or --shared DIR)
  python3 -m arpgnet.pack --unpack packed/training-data.npz --to cache/data-root
  python3 -m arpgnet.train_encoder --shared cache/data-root ...              # any stage, as with ../shared

Every file's sha256 is in the index and is checked on unpacking: a damaged pack names
the first bad file and writes nothing of it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from .common import commit, shared_dir

# what the training stages read, relative to the shared folder (see data.py's loaders)
FOLDERS = ("data/fer2013/train", "data/fer2013/val", "data/ckplus48")


def pack(root: Path, out: Path, folders: tuple[str, ...] = FOLDERS) -> dict:
    files: list[Path] = []
    for f in folders:
        d = root / f
        if not d.is_dir():
            raise SystemExit(f"pack: {d} is not a folder (is --shared the folder that holds data/?)")
        files += sorted(p for p in d.rglob("*") if p.is_file())
    if not files:
        raise SystemExit(f"pack: no files under {', '.join(str(root / f) for f in folders)}")
    blobs = [p.read_bytes() for p in files]
    sizes = np.array([len(b) for b in blobs], dtype=np.int64)
    digests = np.frombuffer(b"".join(hashlib.sha256(b).digest() for b in blobs), dtype=np.uint8).reshape(-1, 32)
    meta = {"command": "python3 -m arpgnet.pack " + " ".join(sys.argv[1:]), "commit": commit(),
            "folders": list(folders), "files": len(files), "bytes": int(sizes.sum())}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("wb") as fh:  # np.savez would add ".npz" to a name without it
        # names as one UTF-8 text: a numpy string array pads each to the longest (6 MB here)
        names = "\n".join(p.relative_to(root).as_posix() for p in files).encode()
        np.savez(fh, names=np.frombuffer(names, dtype=np.uint8), sizes=sizes, sha256=digests,
                 blob=np.frombuffer(b"".join(blobs), dtype=np.uint8), meta=np.array(json.dumps(meta)))
    tmp.replace(out)
    return {**meta, "out": str(out), "mib": round(out.stat().st_size / 2**20, 1)}


def unpack(src: Path, to: Path) -> dict:
    try:
        z = np.load(src, allow_pickle=False)
        names = z["names"].tobytes().decode().split("\n")
        sizes, digests, blob = z["sizes"], z["sha256"], z["blob"]
        meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as e:
        raise SystemExit(f"unpack: {src} is not a training-data pack ({e})") from e
    if not (len(names) == len(sizes) == len(digests)) or int(sizes.sum()) != blob.size:
        raise SystemExit(f"unpack: {src}: its index and its blob disagree ({len(names)} names, "
                         f"{int(sizes.sum())} bytes indexed, {blob.size} stored)")
    written = same = 0
    start = 0
    for name, size, digest in zip(names, sizes, digests):
        data = blob[start:start + int(size)].tobytes()
        start += int(size)
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise SystemExit(f"unpack: {src}: refusing a path outside the target folder: {name}")
        if hashlib.sha256(data).digest() != digest.tobytes():
            raise SystemExit(f"unpack: {src} is damaged: {name} does not match its sha256 "
                             f"({written + same} files before it were fine)")
        dest = to / rel
        if dest.exists() and dest.read_bytes() == data:
            same += 1
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        written += 1
    return {"to": str(to), "written": written, "already_there": same, "packed_at": meta.get("commit")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=None, help="folder with data/ (default: $ARPGNET_SHARED or ../shared)")
    ap.add_argument("--out", default=None, help="write the pack here")
    ap.add_argument("--unpack", default=None, help="a pack to unpack")
    ap.add_argument("--to", default=None, help="with --unpack: the folder that will hold data/")
    args = ap.parse_args(argv)
    if args.unpack:
        if not args.to:
            ap.error("--unpack needs --to DIR")
        print(json.dumps(unpack(Path(args.unpack), Path(args.to))))
    elif args.out:
        print(json.dumps(pack(shared_dir(args.shared), Path(args.out))))
    else:
        ap.error("give --out FILE (pack) or --unpack FILE --to DIR")


if __name__ == "__main__":
    main()
