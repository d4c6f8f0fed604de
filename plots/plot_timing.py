#!/usr/bin/env python
"""Generation time per jet vs number of diffusion steps (paper Table V), from timing files.

A timing file is a JSON list of records (format: gsgm.generation.timing), e.g.
    [{"label": "quick, 30 particles, CPU", "steps": 64, "ms_per_jet": 3.0, "num_particles": 30,
      "batch_size": 10000, "device": "CPU (x86_64, 2 cores)", "date": "2026-11-24T10:00:00+00:00"}]
scripts/sample.py appends one per run to OUT/timing.json; benchmarks/bench_distillation.py speed
--json FILE writes the same. Several files are merged; records with the same label make one line (the
fastest record per step count is kept). Writes OUT/generation_time.png and OUT/generation_time.pdf.

Example:
    python plots/plot_timing.py --results runs/quick/s64/timing.json runs/quick/s8/timing.json \\
        --out runs/quick/plots
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
    parser.add_argument("--results", required=True, nargs="+", metavar="FILE", help="timing file(s) to merge")
    parser.add_argument("--out", required=True, help="directory for the figures")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from gsgm.plotting import load_timing_results, plot_generation_time, save_figure

    figure = plot_generation_time(load_timing_results(*args.results))
    paths = save_figure(figure, args.out, "generation_time")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
