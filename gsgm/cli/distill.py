"""``gsgm distill``: progressive distillation of a trained run, halving the sampling steps per stage."""

from __future__ import annotations

import argparse

from gsgm.cli.train import add_distributed_arguments, add_testing_arguments
from gsgm.utils.cli import positive_int, positive_int_or_list

NAME = "distill"
HELP = "progressive distillation: halve the sampling steps stage by stage"
DESCRIPTION = """Progressive distillation of a trained run: halve the sampling steps stage by stage
(FPCD sec. II).

Each stage is written as its own run directory RUN/distill/steps-NNN (loadable like any run); running the
command again continues an interrupted chain at the stage and epoch where it stopped. Works for every
family whose config has sampling.num_steps (FPCD); under a launcher every rank trains on its shard.
Calorimeter (calo) runs are distilled by consistency distillation in one stage, RUN/distill/steps-001,
sampled with gsgm sample --sampler cm.

Examples:
    gsgm distill --run runs/quick --until 1 --epochs-per-stage 10        # 64 -> 32 -> ... -> 1
    gsgm distill --run runs/quick --until 1 --epochs-per-stage 2,2,4,6,8,10 # more for the last stages
    gsgm sample --run runs/quick --steps 8 --per-class 1000 --out runs/quick/samples-8
    horovodrun -np 2 python scripts/distill.py --run runs/quick --until 8
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="trained run directory (gsgm train)")
    parser.add_argument("--until", type=positive_int, default=1, help="steps of the last stage (default: 1)")
    parser.add_argument(
        "--epochs-per-stage",
        type=positive_int_or_list,
        help="epochs of each stage, or one count per stage, first stage first, e.g. 1,1,2,3,4,7 for 64 -> 1 "
        "(default: the run's training.epochs)",
    )
    parser.add_argument(
        "--start-steps",
        type=positive_int,
        help="steps of the undistilled teacher (default: the run's sampling.num_steps, 512 for the paper)",
    )
    parser.add_argument("--data", help="data directory or 'builtin' (default: the run's own data source)")
    parser.add_argument(
        "--verbose",
        type=int,
        default=2,
        choices=(0, 1, 2),
        help="0 silent, 1 progress bar, 2 a line per epoch",
    )
    add_distributed_arguments(parser, "distillation")
    add_testing_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from gsgm.training.distributed import init_distributed

    # Before anything creates tensors: Horovod start-up and GPU pinning by local rank.
    dist = init_distributed(args.distributed, average_gradients=not args.debug_no_allreduce)
    from gsgm.families import family_of_run
    from gsgm.training.distill import distill_chain
    from gsgm.training.run_dir import RunDirectory

    stages = distill_chain(
        family_of_run(args.run),
        args.run,
        until=args.until,
        epochs_per_stage=args.epochs_per_stage,
        start_steps=args.start_steps,
        data=args.data,
        verbose=args.verbose,
        log=lambda message: print(message, flush=True),
        distributed=dist,
        debug_dump=args.debug_dump,
    )
    if not dist.is_chief:
        return 0
    for stage in stages:
        history = RunDirectory(stage).read_history()
        best = min(history, key=lambda row: row["val_loss"]) if history else None
        loss = f"best val_loss {best['val_loss']:.4f} at epoch {int(best['epoch'])}" if best else "no epochs"
        print(f"{stage}: {len(history)} epochs, {loss}")
    return 0
