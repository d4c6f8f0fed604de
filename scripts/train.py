#!/usr/bin/env python
"""Train FPCD (jet + particle diffusion models) on JetNet-format data into a run directory.

Example:
    python scripts/train.py --config configs/quick.json --data builtin --particles 30 --out runs/quick
    python scripts/train.py --out runs/quick --resume        # continue after an interruption

Data-parallel training with Horovod (built by scripts/install_horovod.sh), the same command under a
launcher: every process trains on its shard of the jets with the config's batch size, gradients are
averaged every step, the learning rate is scaled by the number of processes, and only rank 0 writes
the run directory:
    horovodrun -np 2 -H localhost:2 python scripts/train.py --config configs/quick.json --out runs/hvd
    srun python scripts/train.py ...                         # see slurm/train_fpcd.sh
Horovod is used when a launcher started several processes (--distributed auto, the default), or
always with --horovod; GSGM_DISTRIBUTED=auto|horovod|none sets the default.
"""

from __future__ import annotations

import argparse

from gsgm.utils.cli import quiet_tensorflow, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="JSON config (configs/*.json); not needed with --resume")
    parser.add_argument("--data", default="builtin", help="directory of JetNet files, or 'builtin' (default)")
    parser.add_argument(
        "--particles", type=int, choices=(30, 150), help="particles per jet (checked against the config)"
    )
    parser.add_argument("--out", required=True, help="run directory to create (or to resume)")
    parser.add_argument("--epochs", type=int, help="override training.epochs (length of the cosine schedule)")
    parser.add_argument("--seed", type=int, help="override training.seed")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    parser.add_argument("--max-jets-per-class", type=int, help="use only this many training jets per class")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras verbosity")
    parser.add_argument(
        "--distributed",
        choices=("auto", "horovod", "none"),
        help="data-parallel training: 'auto' uses Horovod when launched as several processes "
        "(default: $GSGM_DISTRIBUTED, else auto)",
    )
    parser.add_argument(
        "--horovod",
        action="store_const",
        const="horovod",
        dest="distributed",
        help="same as --distributed horovod",
    )
    testing = parser.add_argument_group("testing aids (not for real runs)")
    testing.add_argument(
        "--debug-no-allreduce",
        action="store_true",
        help="do not average gradients over ranks (negative control: the ranks' weights drift apart)",
    )
    testing.add_argument(
        "--debug-dump",
        metavar="DIR",
        help="every rank writes the indices of the jets it trains on and its final weights into DIR",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if not args.resume and not args.config:
        raise ValueError("--config is required unless --resume is given")
    quiet_tensorflow()
    from gsgm.training.distributed import init_distributed

    # Before anything creates tensors: Horovod start-up and GPU pinning by local rank.
    dist = init_distributed(args.distributed, average_gradients=not args.debug_no_allreduce)
    from gsgm.training.trainer import train

    run = train(
        args.config,
        data=args.data,
        out=args.out,
        num_particles=args.particles,
        epochs=args.epochs,
        resume=args.resume,
        seed=args.seed,
        max_jets_per_class=args.max_jets_per_class,
        verbose=args.verbose,
        distributed=dist,
        debug_dump=args.debug_dump,
    )
    history = run.read_history()
    if history and dist.is_chief:
        best = min(history, key=lambda row: row["val_loss"])
        print(
            f"trained {len(history)} epochs into {run.path}; best val_loss {best['val_loss']:.4f} "
            f"at epoch {int(best['epoch'])}"
        )
    return 0


if __name__ == "__main__":
    run_cli(main)
