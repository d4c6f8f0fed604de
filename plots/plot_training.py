#!/usr/bin/env python
"""Training curves of a run: losses per epoch (training and validation) and the learning rate.

Reads RUN/history.csv (gsgm.training.run_dir.RunDirectory.read_history) and writes OUT/training.png
and OUT/training.pdf.

Example:
    python plots/plot_training.py --run runs/quick --out runs/quick/plots
"""

from __future__ import annotations

import argparse

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
    from gsgm.plotting import plot_training_history, save_figure
    from gsgm.training.run_dir import RunDirectory

    run = RunDirectory(args.run)
    if not run.path.is_dir():
        raise FileNotFoundError(f"run directory not found: {run.path}")
    if not run.history_path.is_file():
        raise FileNotFoundError(f"{run.path} has no history.csv (has training finished an epoch?)")
    figure = plot_training_history(run.read_history(), title=str(run.path))
    paths = save_figure(figure, args.out, "training")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
