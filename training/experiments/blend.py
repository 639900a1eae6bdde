"""Write and measure WiSE-FT blends of a stage-C model with the model it started from.

Stage C's `--wise` measures blends while it trains; this measures further alphas of a
finished run without training again, and writes each blend where `arpgnet.export` reads it.

  python -m experiments.blend --encoder runs/encoder/encoder-swa.pt --head runs/head-fer/head.pt \\
      --tuned runs/finetune3 --alphas 0.6,0.7
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from arpgnet.config import ModelConfig
from arpgnet.mixing import alpha_name, blend, parse_alphas, save_and_measure
from arpgnet.stage_c import fer_val_clips, initial
from arpgnet.metrics import write


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", required=True, help="the encoder stage C started from")
    ap.add_argument("--head", required=True, help="the head stage C started from")
    ap.add_argument("--tuned", required=True, help="stage C output folder (encoder.pt, head.pt)")
    ap.add_argument("--alphas", required=True,
                    help="comma-separated, 1 = the fine-tuned model; 0.6:1 = encoder at 0.6, head at 1")
    ap.add_argument("--shared", default=None)
    ap.add_argument("--results", default=None, help="write FER2013 val metrics (mirrored) per alpha here")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    tuned_dir = Path(args.tuned)
    cfg = ModelConfig.from_json(torch.load(tuned_dir / "encoder.pt", map_location="cpu")["config"])
    start = initial(cfg, Path(args.encoder), Path(args.head))
    tuned = initial(cfg, tuned_dir / "encoder.pt", tuned_dir / "head.pt")
    images, labels = fer_val_clips(cfg, args.shared)
    for a in parse_alphas(args.alphas):
        name = alpha_name(a)
        r = save_and_measure(blend(start, tuned, *a), name, tuned_dir / f"blend-{name}", images, labels)
        if args.results:
            write(r, Path(args.results) / f"fer2013-val-alpha-{name}", f"FER2013 val, WiSE-FT alpha {name}, mirrored")


if __name__ == "__main__":
    main()
