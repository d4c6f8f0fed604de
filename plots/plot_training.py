#!/usr/bin/env python
"""Training curves of a run: losses per epoch (training and validation) and the learning rate.

Reads RUN/history.csv (gsgm.generation.runs.read_training_history) and writes OUT/training.png
and OUT/training.pdf.

Example:
    python plots/plot_training.py --run runs/quick --out runs/quick/plots
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

from gsgm.utils.cli import run_cli  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="run directory written by scripts/train.py")
    parser.add_argument("--out", required=True, help="directory for the figures")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from gsgm.generation.runs import read_training_history
    from gsgm.plotting import plot_training_history, save_figure

    figure = plot_training_history(read_training_history(args.run), title=str(Path(args.run)))
    paths = save_figure(figure, args.out, "training")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
