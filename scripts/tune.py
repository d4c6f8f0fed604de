#!/usr/bin/env python
"""Hyperband search (KerasTuner) over FPCD's architecture and learning rate; exports the best config.

Examples:
    python scripts/tune.py --config configs/quick.json --tuner-dir runs/tune-quick --max-epochs 9
    python scripts/train.py --config runs/tune-quick/best.json --out runs/quick-tuned
    horovodrun -np 4 python scripts/tune.py --config configs/fpcd_jetnet30.json --tuner-dir ...

Objective: the validation loss (lower is better). Running the same command again continues the
search from its tuner directory (--overwrite starts afresh); the best trial is written as a complete
config (default TUNER_DIR/best.json). The search space is gsgm.training.tuning.DEFAULT_SPACE (what the
paper tuned) unless --space gives a JSON file like
    {"jet_net.width": [128, 512], "particle_net.num_heads": [1, 2], "embedding.time_dims": ["32,64"],
     "training.learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log"}}
Under a multi-process launcher every trial trains data-parallel on all ranks; rank 0 runs the tuner.
"""

from __future__ import annotations

import argparse

from gsgm.utils.cli import quiet_tensorflow, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="base config; the search overrides its tuned fields")
    parser.add_argument(
        "--data",
        help="directory of JetNet files, or 'builtin' for the shipped stand-in "
        "(default: $GSGM_DATA, else ./data/jetnet, as scripts/train.py)",
    )
    parser.add_argument(
        "--tuner-dir", required=True, help="KerasTuner directory (reused to continue a search)"
    )
    parser.add_argument("--project", default="fpcd", help="KerasTuner project name inside --tuner-dir")
    parser.add_argument("--max-epochs", type=int, default=10, help="Hyperband max_epochs (default 10)")
    parser.add_argument("--factor", type=int, default=3, help="Hyperband reduction factor (default 3)")
    parser.add_argument("--hyperband-iterations", type=int, default=1, help="full Hyperband runs (default 1)")
    parser.add_argument(
        "--max-trials", type=int, help="stop after this many trials in all (default: Hyperband's full plan)"
    )
    parser.add_argument("--space", help="JSON search space (default: gsgm.training.tuning.DEFAULT_SPACE)")
    parser.add_argument("--export", help="where to write the best config (default: TUNER_DIR/best.json)")
    parser.add_argument("--max-jets-per-class", type=int, help="use only this many training jets per class")
    parser.add_argument("--overwrite", action="store_true", help="discard an existing search in --tuner-dir")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras verbosity")
    parser.add_argument(
        "--distributed",
        choices=("auto", "horovod", "none"),
        help="'auto' uses Horovod when launched as several processes (default: $GSGM_DISTRIBUTED, else auto)",
    )
    parser.add_argument(
        "--horovod",
        action="store_const",
        const="horovod",
        dest="distributed",
        help="same as --distributed horovod",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    quiet_tensorflow()
    from gsgm.training.distributed import init_distributed

    dist = init_distributed(args.distributed)
    from gsgm.data.loading import default_data_spec
    from gsgm.training.tuning import load_space, run_search

    result = run_search(
        args.config,
        args.data or default_data_spec(),
        args.tuner_dir,
        max_epochs=args.max_epochs,
        factor=args.factor,
        hyperband_iterations=args.hyperband_iterations,
        max_trials=args.max_trials,
        space=load_space(args.space),
        max_jets_per_class=args.max_jets_per_class,
        export=args.export,
        overwrite=args.overwrite,
        project_name=args.project,
        distributed=dist,
        verbose=args.verbose,
    )
    if result is not None:
        print(
            f"best of {result.num_trials} trials: {result.trial_id} with val_loss {result.val_loss:.4f}; "
            f"config written to {result.export_path}"
        )
        for key, value in result.values.items():
            print(f"  {key} = {value}")
    return 0


if __name__ == "__main__":
    run_cli(main)
