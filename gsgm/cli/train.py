"""``gsgm train``: train any family into a run directory, or continue the run there."""

from __future__ import annotations

import argparse

from gsgm.utils.cli import non_negative_int, positive_int

NAME = "train"
HELP = "train a model (any family) into a run directory, or continue it"
DESCRIPTION = """Train a model into a run directory; the config's family decides what is trained.

With no arguments it trains the paper's JetNet30 FPCD model on JetNet, and continues the run if it exists:
    gsgm train                                   (= python scripts/train.py)
        config   --config, else $GSGM_CONFIG, else configs/fpcd_jetnet30.json
        data     --data,   else $GSGM_DATA,   else ./data/jetnet  (JetNet files g.hdf5 ... z.hdf5)
        run dir  --out,    else $GSGM_RUN_DIR, else runs/<config name>
    An existing run directory is resumed from its last checkpoint (so a requeued job continues);
    a config given for an existing run must be the run's own.

Examples:
    gsgm train --config configs/quick.json --data builtin --out runs/quick
    gsgm train --out runs/quick                      # continue after an interruption (even kill -9)
    GSGM_DATA=/scratch/jetnet gsgm train             # JetNet30 from another directory
    gsgm train --config configs/images_quick.json --model score --data builtin --out runs/img_score
    gsgm train --config configs/images_quick.json --model consistency --mode distill \\
        --teacher runs/img_score --data builtin --out runs/img_cd

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


def add_distributed_arguments(parser: argparse.ArgumentParser, what: str = "training") -> None:
    """``--distributed auto|horovod|none`` and ``--horovod`` (shared by train, distill, tune)."""
    parser.add_argument(
        "--distributed",
        choices=("auto", "horovod", "none"),
        help=f"data-parallel {what}: 'auto' uses Horovod when launched as several processes "
        "(default: $GSGM_DISTRIBUTED, else auto)",
    )
    parser.add_argument(
        "--horovod",
        action="store_const",
        const="horovod",
        dest="distributed",
        help="same as --distributed horovod",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        help="JSON config of a new run (default: $GSGM_CONFIG, else configs/fpcd_jetnet30.json); "
        "an existing run uses its own",
    )
    parser.add_argument(
        "--data",
        help="data directory (JetNet files), or 'builtin' for the shipped stand-in "
        "(default: $GSGM_DATA, else ./data/jetnet)",
    )
    parser.add_argument(
        "--out", help="run directory to create or to resume (default: $GSGM_RUN_DIR, else runs/<config name>)"
    )
    parser.add_argument(
        "--epochs", type=positive_int, help="override training.epochs (length of the learning-rate schedule)"
    )
    parser.add_argument("--seed", type=non_negative_int, help="override training.seed")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="require an existing run and continue it (without --resume an existing run is resumed "
        "and a missing one started)",
    )
    parser.add_argument(
        "--max-jets-per-class", type=positive_int, help="use only this many training samples per class"
    )
    parser.add_argument(
        "--verbose",
        type=int,
        default=2,
        choices=(0, 1, 2),
        help="0 silent, 1 progress bar, 2 a line per epoch",
    )
    fpcd = parser.add_argument_group("FPCD")
    fpcd.add_argument(
        "--particles", type=int, choices=(30, 150), help="particles per jet (checked against the config)"
    )
    images = parser.add_argument_group("jet images")
    images.add_argument(
        "--model", choices=("score", "consistency"), help="the config section to train (configs with both)"
    )
    images.add_argument(
        "--mode",
        choices=("isolation", "distill"),
        help="consistency model: consistency training (isolation, default) or distillation from --teacher",
    )
    images.add_argument("--teacher", help="trained score run to distil from (--mode distill)")
    add_distributed_arguments(parser)
    add_testing_arguments(parser)


def add_testing_arguments(parser: argparse.ArgumentParser) -> None:
    """``--debug-no-allreduce`` and ``--debug-dump`` (the Horovod tests' negative control and records)."""
    testing = parser.add_argument_group("testing aids (not for real runs)")
    testing.add_argument(
        "--debug-no-allreduce",
        action="store_true",
        help="do not average gradients over ranks (negative control: the ranks' weights drift apart)",
    )
    testing.add_argument(
        "--debug-dump",
        metavar="DIR",
        help="every rank writes the indices of the samples it trains on and its final weights into DIR",
    )


def run(args: argparse.Namespace) -> int:
    from gsgm.config import explicit_config, resolve_config_path
    from gsgm.data.loading import default_data_spec
    from gsgm.training.distributed import init_distributed

    # Before anything creates tensors: Horovod start-up and GPU pinning by local rank.
    dist = init_distributed(args.distributed, average_gradients=not args.debug_no_allreduce)
    from gsgm.families import family_for_config, family_of_run
    from gsgm.training.driver import train_run
    from gsgm.training.run_dir import RunDirectory, default_run_dir

    config = explicit_config(args.config)
    config_path = resolve_config_path(config)
    out = args.out or default_run_dir(_config_name(config_path))
    existing = RunDirectory(out).exists()
    family = family_of_run(out) if existing and config is None else family_for_config(config_path, args.model)
    options = {"num_particles": args.particles, "mode": args.mode, "teacher": args.teacher}
    run_dir = train_run(
        family,
        config_path if (config is not None or not existing) else None,
        args.data or default_data_spec(),
        out,
        epochs=args.epochs,
        resume=True if args.resume else "auto",
        seed=args.seed,
        max_per_class=args.max_jets_per_class,
        options={k: v for k, v in options.items() if v is not None},
        verbose=args.verbose,
        distributed=dist,
        debug_dump=args.debug_dump,
    )
    history = run_dir.read_history()
    if history and dist.is_chief:
        best = min(history, key=lambda row: row["val_loss"])
        print(
            f"trained {len(history)} epochs into {run_dir.path}; best val_loss {best['val_loss']:.4f} "
            f"at epoch {int(best['epoch'])}"
        )
    return 0


def _config_name(path) -> str:
    """The ``name`` of a config file, read without validating it (only the default run directory needs it)."""
    import json

    try:
        return str(json.loads(path.read_text())["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return path.stem
