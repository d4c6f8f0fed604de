#!/usr/bin/env python
"""Generation time per jet vs number of diffusion steps (paper Table V), from a results JSON.

The file holds one series or a list of series (gsgm.plotting.curves documents the schema):
    {"label": "FPCD, 30 particles, CPU", "steps": [1, 8, 64], "ms_per_jet": [0.1, 0.4, 3.0]}
Writes OUT/generation_time.png and OUT/generation_time.pdf.

Example:
    python plots/plot_timing.py --results timing.json --out runs/quick/plots
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
    parser.add_argument("--results", required=True, help="timing results JSON")
    parser.add_argument("--out", required=True, help="directory for the figures")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from gsgm.plotting import load_timing_results, plot_generation_time, save_figure

    figure = plot_generation_time(load_timing_results(args.results))
    paths = save_figure(figure, args.out, "generation_time")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
