"""The weights of a TF.js graph model (model JSON + .bin shards) by name, for the networks read into PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def read_weights(spec: Path) -> dict[str, np.ndarray]:
    """Every weight in `spec`'s manifest as a read-only array; refuses quantised or other dtypes,
    shards shorter than the manifest says and bytes the manifest does not cover, naming the file."""
    folder = spec.parent
    manifest = json.loads(spec.read_text())["weightsManifest"]
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buf = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            if w["dtype"] not in ("float32", "int32") or "quantization" in w:
                raise ValueError(f"{folder}: {w['name']} is stored as {w['dtype']}"
                                 f"{' (quantised)' if 'quantization' in w else ''}; only float32/int32 are read")
            if offset + n * 4 > len(buf):
                raise ValueError(f"{folder}: {w['name']} runs past the end of the weights ({len(buf)} bytes)")
            dtype = np.float32 if w["dtype"] == "float32" else np.int32
            out[w["name"]] = np.frombuffer(buf, dtype, n, offset).reshape(w["shape"])
            offset += n * 4
        if offset != len(buf):
            raise ValueError(f"{folder}: weights manifest covers {offset} bytes of {len(buf)}")
    return out
