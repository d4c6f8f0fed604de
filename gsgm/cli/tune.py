"""``gsgm tune``: KerasTuner Hyperband over a family's architecture and learning rate."""

from __future__ import annotations

import argparse

from gsgm.cli.train import add_distributed_arguments
from gsgm.utils.cli import positive_int
from gsgm.utils.outputs import check_output_dir

NAME = "tune"
HELP = "Hyperband search (KerasTuner) over architecture and learning rate; exports the best config"
DESCRIPTION = """Hyperband search (KerasTuner) over a family's architecture and learning rate; exports the
best config.

Examples:
    gsgm tune --config configs/quick.json --data builtin --tuner-dir runs/tune-quick --max-epochs 9
    gsgm train --config runs/tune-quick/best.json --data builtin --out runs/quick-tuned
    gsgm tune --config configs/images_quick.json --model score --data builtin --tuner-dir runs/tune-img
    horovodrun -np 4 python scripts/tune.py --config configs/fpcd_jetnet30.json --tuner-dir ...

Objective: the validation loss (lower is better). Running the same command again continues the
search from its tuner directory (--overwrite starts afresh); the best trial is written as a complete
config (default TUNER_DIR/best.json). The default search space is the family's (FPCD's:
gsgm.families.fpcd.SEARCH_SPACE, what the paper tuned) unless --space gives a JSON file like
    {"jet_net.width": [128, 512], "particle_net.num_heads": [1, 2], "embedding.time_dims": ["32,64"],
     "training.learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log"}}
The learning rate is per rank, like the configs'. Under a multi-process launcher every trial trains
data-parallel on all ranks; rank 0 runs the tuner.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="base config; the search overrides its tuned fields")
    parser.add_argument(
        "--data",
        help="data directory (JetNet files), or 'builtin' for the shipped stand-in "
        "(default: $GSGM_DATA, else ./data/jetnet, as gsgm train)",
    )
    parser.add_argument(
        "--tuner-dir", required=True, help="KerasTuner directory (reused to continue a search)"
    )
    parser.add_argument(
        "--project", help="KerasTuner project name inside --tuner-dir (default: the family name)"
    )
    parser.add_argument(
        "--max-epochs", type=positive_int, default=10, help="Hyperband max_epochs (default 10)"
    )
    parser.add_argument(
        "--factor", type=positive_int, default=3, help="Hyperband reduction factor (default 3)"
    )
    parser.add_argument(
        "--hyperband-iterations", type=positive_int, default=1, help="full Hyperband runs (default 1)"
    )
    parser.add_argument(
        "--max-trials",
        type=positive_int,
        help="stop after this many trials in all (default: Hyperband's full plan)",
    )
    parser.add_argument(
        "--space", help="JSON search space (default: the family's, e.g. gsgm.families.fpcd.SEARCH_SPACE)"
    )
    parser.add_argument(
        "--model",
        choices=("score", "consistency"),
        help="jet-image configs with both sections: the model to tune",
    )
    parser.add_argument("--export", help="where to write the best config (default: TUNER_DIR/best.json)")
    parser.add_argument(
        "--max-jets-per-class", type=positive_int, help="use only this many training samples per class"
    )
    parser.add_argument("--overwrite", action="store_true", help="discard an existing search in --tuner-dir")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras verbosity")
    add_distributed_arguments(parser, "trials")


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.tuner_dir, option="--tuner-dir")  # before any work: no compute lost to a bad path
    from gsgm.training.distributed import init_distributed

    dist = init_distributed(args.distributed)
    from gsgm.data.loading import default_data_spec
    from gsgm.families import family_for_config
    from gsgm.training.tuning import load_space, run_search

    family = family_for_config(args.config, args.model)
    result = run_search(
        family,
        args.config,
        args.data or default_data_spec(),
        args.tuner_dir,
        max_epochs=args.max_epochs,
        factor=args.factor,
        hyperband_iterations=args.hyperband_iterations,
        max_trials=args.max_trials,
        space=load_space(args.space, family),
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
