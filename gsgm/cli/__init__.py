"""The ``gsgm`` command: one entry point with a subcommand per task, dispatching on the model family.

What a user types is in :data:`USAGE` (``gsgm --help``).

Each subcommand is a module of this package with ``HELP``, ``DESCRIPTION`` (with examples),
``add_arguments(parser)`` and ``run(args) -> int``, or with ``SUBCOMMANDS`` (``evaluate`` and ``plot``
take the kind of sample: jets, images, ...). ``scripts/*.py`` and ``plots/*.py`` are shims that
run one subcommand under their own name (:func:`run_script`), so the Slurm templates and users' habits
keep working. A user error (bad file, bad value) is one line ``error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gsgm.utils.cli import quiet_tensorflow, run_cli

__all__ = ["COMMANDS", "Command", "build_parser", "main", "run_script"]

#: ``gsgm --help``: what a user types (the module docstring adds how the package is organised).
USAGE = """The ``gsgm`` command: one entry point with a subcommand per task, dispatching on the model family.

    gsgm train     --config configs/quick.json --data builtin --out runs/quick
    gsgm sample    --run runs/quick --per-class 1000 --out runs/quick/samples
    gsgm distill   --run runs/quick --until 1
    gsgm evaluate  jets --truth builtin --gen runs/quick/samples --label quick --out runs/quick/evaluation
    gsgm evaluate  images --samples score=runs/img_score/samples.h5 --out runs/img_report
    gsgm plot      jets --truth builtin --gen runs/quick/samples --label quick --out runs/quick/plots
    gsgm plot      training --run runs/quick --out runs/quick/plots
    gsgm tune      --config configs/quick.json --data builtin --tuner-dir runs/tune
    gsgm make-data --classes t,w --jets-per-class 500 --seed 1 --out data/mine
    gsgm make-showers --showers 500 --seed 1 --out data/showers.h5
    gsgm inspect   builtin
    gsgm reference --out runs/reference        # the fidelity reference recipe (about an hour)
    gsgm make-phase-space --process muon_decay --events 20000 --seed 1 --out data/muon.hdf5
    gsgm evaluate  phase-space --truth data/muon.hdf5 --gen runs/ps/samples.hdf5 --label q --out runs/ps/eval

`gsgm COMMAND --help` explains each command, with examples; a user error (bad file, bad value) is one
line `error: ...` on stderr and exit status 2.
"""

#: subcommand name -> module in gsgm.cli (imported only when used: most pull in TensorFlow)
COMMANDS = {
    "train": "gsgm.cli.train",
    "sample": "gsgm.cli.sample",
    "distill": "gsgm.cli.distill",
    "evaluate": "gsgm.cli.evaluate",
    "plot": "gsgm.cli.plot",
    "tune": "gsgm.cli.tune",
    "make-data": "gsgm.cli.make_data",
    "make-phase-space": "gsgm.cli.phase_space",
    "make-showers": "gsgm.cli.make_showers",
    "inspect": "gsgm.cli.inspect",
    "train-classifier": "gsgm.cli.train_classifier",
    "reference": "gsgm.cli.reference",
}


@dataclass(frozen=True)
class Command:
    """One (sub)command: its one-line help, its --help text with examples, its arguments and its action."""

    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _commands(name: str) -> Command | dict[str, Command]:
    """The command of module ``COMMANDS[name]``, or its sub-commands (``SUBCOMMANDS``: evaluate, plot)."""
    module = importlib.import_module(COMMANDS[name])
    if hasattr(module, "SUBCOMMANDS"):
        return module.SUBCOMMANDS
    return Command(module.HELP, module.DESCRIPTION, module.add_arguments, module.run)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors follow the project's convention: one line, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add(subparsers, name: str, command: Command) -> None:
    sub = subparsers.add_parser(
        name, help=command.help, description=command.description, formatter_class=_formatter
    )
    command.add_arguments(sub)
    # not ``run``: a subcommand may have a --run option (the run directory)
    sub.set_defaults(handler=command.run)


def build_parser() -> argparse.ArgumentParser:
    """The ``gsgm`` parser with every subcommand (their modules are imported, TensorFlow is not)."""
    parser = OneLineParser(prog="gsgm", description=USAGE, formatter_class=_formatter)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        commands = _commands(name)
        if isinstance(commands, Command):
            _add(subparsers, name, commands)
            continue
        group = subparsers.add_parser(
            name,
            help=importlib.import_module(COMMANDS[name]).HELP,
            description=f"gsgm {name} {{{','.join(commands)}}}: see gsgm {name} KIND --help",
            formatter_class=_formatter,
        )
        kinds = group.add_subparsers(dest="kind", metavar="KIND", required=True)
        for kind, command in commands.items():
            _add(kinds, kind, command)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``gsgm`` console script."""
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    run_cli(lambda: args.handler(args))


def run_script(name: str, kind: str | None = None, argv: Sequence[str] | None = None) -> None:
    """Run ``gsgm NAME [KIND]`` as a stand-alone script (``scripts/train.py`` is ``gsgm train``)."""
    quiet_tensorflow()
    commands = _commands(name)
    command = commands if isinstance(commands, Command) else commands[kind]
    prog = sys.argv[0].rsplit("/", 1)[-1]
    parser = OneLineParser(prog=prog, description=command.description, formatter_class=_formatter)
    command.add_arguments(parser)
    args = parser.parse_args(argv)
    run_cli(lambda: command.run(args))
