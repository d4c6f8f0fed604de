#!/usr/bin/env python
"""Progressive distillation of a trained FPCD run: halve the sampling steps stage by stage (FPCD sec. II).

Each stage is written as its own run directory RUN/distill/steps-NNN (loadable like any run); running the
command again continues an interrupted chain at the stage and epoch where it stopped.

Example:
    python scripts/distill.py --run runs/quick --until 1 --epochs-per-stage 10      # 64 -> 32 -> ... -> 1
    python scripts/sample.py --run runs/quick --steps 8 --jets-per-class 1000 --out runs/quick/samples-8
"""

from __future__ import annotations

import argparse

from gsgm.utils.cli import quiet_tensorflow, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="trained run directory (scripts/train.py)")
    parser.add_argument("--until", type=int, default=1, help="steps of the last stage (default: 1)")
    parser.add_argument(
        "--epochs-per-stage", type=int, help="epochs of each stage (default: the run's training.epochs)"
    )
    parser.add_argument(
        "--start-steps",
        type=int,
        help="steps of the undistilled teacher (default: the run's sampling.num_steps, 512 for the paper)",
    )
    parser.add_argument("--data", help="data directory or 'builtin' (default: the run's own data source)")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras verbosity")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    quiet_tensorflow()
    from gsgm.training.distill import distill_chain
    from gsgm.training.run_dir import RunDirectory

    stages = distill_chain(
        args.run,
        until=args.until,
        epochs_per_stage=args.epochs_per_stage,
        start_steps=args.start_steps,
        data=args.data,
        verbose=args.verbose,
        log=lambda message: print(message, flush=True),
    )
    for stage in stages:
        history = RunDirectory(stage).read_history()
        best = min(history, key=lambda row: row["val_loss"]) if history else None
        loss = f"best val_loss {best['val_loss']:.4f} at epoch {int(best['epoch'])}" if best else "no epochs"
        print(f"{stage}: {len(history)} epochs, {loss}")
    return 0


if __name__ == "__main__":
    run_cli(main)
