"""The ``gsgm`` command: one entry point with a subcommand per task, dispatching on the model family.

    gsgm train     --config configs/quick.json --data builtin --out runs/quick
    gsgm sample    --run runs/quick --per-class 1000 --out runs/quick/samples
    gsgm distill   --run runs/quick --until 1
    gsgm evaluate  --truth builtin --gen runs/quick/samples --label quick --out runs/quick/evaluation
    gsgm plot      jets --truth builtin --gen runs/quick/samples --label quick --out runs/quick/plots
    gsgm tune      --config configs/quick.json --data builtin --tuner-dir runs/tune
    gsgm make-data --classes t,w --jets-per-class 500 --seed 1 --out data/mine
    gsgm inspect   builtin

Each subcommand is a module of this package with ``NAME``, ``HELP``, ``DESCRIPTION`` (with examples),
``add_arguments(parser)`` and ``run(args) -> int``. ``scripts/*.py`` and ``plots/*.py`` are shims that
run one subcommand under their own name (:func:`run_script`), so the Slurm templates and users' habits
keep working. A user error (bad file, bad value) is one line ``error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gsgm.utils.cli import quiet_tensorflow, run_cli

__all__ = ["COMMANDS", "build_parser", "main", "run_script"]

#: subcommand name -> module in gsgm.cli (imported only when used: most pull in TensorFlow)
COMMANDS = {
    "train": "gsgm.cli.train",
    "sample": "gsgm.cli.sample",
    "distill": "gsgm.cli.distill",
    "evaluate": "gsgm.cli.evaluate",
    "plot": "gsgm.cli.plot",
    "tune": "gsgm.cli.tune",
    "make-data": "gsgm.cli.make_data",
    "inspect": "gsgm.cli.inspect",
    "train-classifier": "gsgm.cli.train_classifier",
}


def _command(name: str):
    return importlib.import_module(COMMANDS[name])


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    """The ``gsgm`` parser with every subcommand (their modules are imported, TensorFlow is not)."""
    parser = argparse.ArgumentParser(prog="gsgm", description=__doc__, formatter_class=_formatter)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = _command(name)
        sub = subparsers.add_parser(
            name, help=module.HELP, description=module.DESCRIPTION, formatter_class=_formatter
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``gsgm`` console script."""
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    run_cli(lambda: args.run(args))


def run_script(name: str, argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """Run subcommand ``name`` as a stand-alone script (``scripts/train.py`` is ``gsgm train``)."""
    quiet_tensorflow()
    module = _command(name)
    parser = argparse.ArgumentParser(
        prog=prog or sys.argv[0].rsplit("/", 1)[-1],
        description=module.DESCRIPTION,
        formatter_class=_formatter,
    )
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    run_cli(lambda: module.run(args))
