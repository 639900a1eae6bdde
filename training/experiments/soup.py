"""Average the weights of stage-C runs that started from the same model (a uniform model soup).

One stage-C recipe run with other seeds lands up to two points apart on FER2013 val;
runs fine-tuned from one start stay in one basin, so their mean weights make one model of
the same size and cost that is better than their average run (Wortsman et al., 2022).
Stage C keeps the backbone's batch-norm statistics fixed, so they need no re-estimation;
those of the two embedding BatchNorm1d are averaged with the weights.

  python -m experiments.soup runs/ft-s0 runs/ft-s1 runs/ft-s2 --out runs/ft-soup
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from arpgnet.config import ModelConfig
from arpgnet.mixing import save_and_measure, soup
from arpgnet.stage_c import fer_val_clips, initial


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tuned", nargs="+", help="stage C output folders (encoder.pt, head.pt) from one start")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shared", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if len(args.tuned) < 2:
        ap.error("a soup needs two or more runs")
    dirs = [Path(d) for d in args.tuned]
    for d in dirs:
        missing = [f for f in ("encoder.pt", "head.pt") if not (d / f).is_file()]
        if missing:
            ap.error(f"{d}: no {' or '.join(missing)} (a stage C output folder has both)")
    torch.set_num_threads(args.threads)
    cfg = ModelConfig.from_json(torch.load(dirs[0] / "encoder.pt", map_location="cpu")["config"])
    images, labels = fer_val_clips(cfg, args.shared)
    save_and_measure(soup([initial(cfg, d / "encoder.pt", d / "head.pt") for d in dirs]), f"soup of {len(dirs)}",
                     Path(args.out), images, labels)
    print(f"wrote {args.out}/encoder.pt and head.pt")


if __name__ == "__main__":
    main()
