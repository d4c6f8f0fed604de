#!/usr/bin/env python
"""Sample jets from a trained FPCD run and write them as JetNet-format files (same names as the data).

Also appends a timing record (wall time of sampling per jet, steps, particles, batch size, device) to
OUT/timing.json; plots/plot_timing.py draws it. A progress bar with ETA goes to stderr.

Example:
    python scripts/sample.py --run runs/quick --jets-per-class 1000 --steps 64 --out runs/quick/samples
"""

from __future__ import annotations

import argparse

from gsgm.utils.cli import quiet_tensorflow, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="run directory written by scripts/train.py")
    parser.add_argument("--jets-per-class", type=int, required=True)
    parser.add_argument("--classes", help="comma-separated subset, e.g. g,t (default: the run's classes)")
    parser.add_argument("--steps", type=int, help="DDIM steps (default: the config's sampling.num_steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--buckets",
        type=int,
        default=8,
        help="multiplicity groups per batch; padded slots beyond each group's largest jet are skipped",
    )
    parser.add_argument("--out", required=True, help="directory for the generated files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument(
        "--timing",
        help="timing file to append this run's record to (default OUT/timing.json; "
        "format: gsgm.generation.timing, plotted by plots/plot_timing.py)",
    )
    parser.add_argument("--timing-label", help="label of the timing record (default: run, particles, device)")
    parser.add_argument("--no-timing", action="store_true", help="write no timing record")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.jets_per_class < 1:
        raise ValueError(f"--jets-per-class must be positive, got {args.jets_per_class}")
    quiet_tensorflow()
    from gsgm.generation.runs import sample_jets_to_directory

    result = sample_jets_to_directory(
        args.run,
        args.out,
        args.jets_per_class,
        classes=args.classes,
        steps=args.steps,
        seed=args.seed,
        batch_size=args.batch_size,
        num_buckets=args.buckets,
        progress=not args.no_progress,
        timing_path=args.timing,
        timing_label=args.timing_label,
        write_timing=not args.no_timing,
    )
    print(
        f"wrote {result.num_jets} jets ({', '.join(result.classes)}) with {result.steps} steps to {args.out} "
        f"in {result.seconds:.1f} s ({result.ms_per_jet:.2f} ms/jet)"
        + (f"; timing appended to {result.timing_path}" if result.timing_path else "")
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
