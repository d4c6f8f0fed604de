#!/usr/bin/env python
"""Train FPCD (jet + particle diffusion models) on JetNet-format data into a run directory.

With no arguments it trains the paper's JetNet30 model on JetNet, and continues the run if it exists:
    python scripts/train.py
        config   --config, else $GSGM_CONFIG, else configs/fpcd_jetnet30.json
        data     --data,   else $GSGM_DATA,   else ./data/jetnet  (JetNet files g.hdf5 ... z.hdf5)
        run dir  --out,    else $GSGM_RUN_DIR, else runs/<config name>
    An existing run directory is resumed from its last checkpoint (so a requeued job continues);
    a config given for an existing run must be the run's own.

Examples:
    python scripts/train.py --config configs/quick.json --data builtin --out runs/quick
    python scripts/train.py --out runs/quick                 # continue after an interruption (even kill -9)
    GSGM_DATA=/scratch/jetnet python scripts/train.py        # JetNet30 from another directory

`--data builtin` trains on the shipped stand-in (2,000 Pythia jets per class), not on JetNet.

Data-parallel training with Horovod (make install-distributed), the same command under a launcher:
every process trains on its shard with the config's batch size, gradients are averaged every step,
the learning rate is training.learning_rate (per rank) times the number of processes, and only
rank 0 writes the run directory:
    horovodrun -np 16 python scripts/train.py                # the paper: 16 x 128 jets, lr 16 x 1e-4
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
    parser.add_argument(
        "--config",
        help="JSON config of a new run (default: $GSGM_CONFIG, else configs/fpcd_jetnet30.json); "
        "an existing run uses its own",
    )
    parser.add_argument(
        "--data",
        help="directory of JetNet files, or 'builtin' for the shipped stand-in "
        "(default: $GSGM_DATA, else ./data/jetnet)",
    )
    parser.add_argument(
        "--particles", type=int, choices=(30, 150), help="particles per jet (checked against the config)"
    )
    parser.add_argument(
        "--out", help="run directory to create or to resume (default: $GSGM_RUN_DIR, else runs/<config name>)"
    )
    parser.add_argument("--epochs", type=int, help="override training.epochs (length of the cosine schedule)")
    parser.add_argument("--seed", type=int, help="override training.seed")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="require an existing run and continue it (without --resume an existing run is resumed "
        "and a missing one started)",
    )
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
    quiet_tensorflow()
    from gsgm.config import explicit_config, load_config, resolve_config_path
    from gsgm.data.loading import default_data_spec
    from gsgm.training.run_dir import default_run_dir

    config = explicit_config(args.config)
    data = args.data or default_data_spec()
    out = args.out or default_run_dir(load_config(resolve_config_path(config)).name)
    from gsgm.training.distributed import init_distributed

    # Before anything creates tensors: Horovod start-up and GPU pinning by local rank.
    dist = init_distributed(args.distributed, average_gradients=not args.debug_no_allreduce)
    from gsgm.training.trainer import train

    run = train(
        config,
        data=data,
        out=out,
        num_particles=args.particles,
        epochs=args.epochs,
        resume=True if args.resume else "auto",
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
