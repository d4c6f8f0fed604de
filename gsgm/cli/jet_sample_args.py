"""Command-line arguments shared by ``gsgm evaluate jets`` and ``gsgm plot jets`` (truth vs generated jets),
and the FPCD sampling-speed options of ``gsgm sample`` (:func:`add_sampling_speed_arguments`).

``--gen DIR`` may be repeated; a ``--label L`` right after a ``--gen`` names that sample (default: the
directory as given), e.g. ``--gen runs/a/samples --label FPCD --gen runs/b/samples --label "FPCD 8"``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from gsgm.utils.cli import class_list, non_negative_int, positive_int


class _GenAction(argparse.Action):
    """``--gen DIR``: start a new (directory, label) entry."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        entries = list(getattr(namespace, self.dest) or [])
        entries.append([values, None])
        setattr(namespace, self.dest, entries)


class _LabelAction(argparse.Action):
    """``--label L``: name the most recent ``--gen``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        entries = getattr(namespace, "gen", None) or []
        if not entries:
            parser.error("--label must follow the --gen it names")
        if entries[-1][1] is not None:
            parser.error(f"--gen {entries[-1][0]} has two labels ({entries[-1][1]!r}, {values!r})")
        entries[-1][1] = values


def add_sample_arguments(parser: argparse.ArgumentParser, default_jets: int) -> None:
    """Add --truth, --gen/--label, --classes, --particles, --jets-per-class, --truth-split, --seed."""
    # Imported here: gsgm.evaluation is heavy, and `gsgm sample` imports this module too.
    from gsgm.evaluation.samples import DEFAULT_TRUTH_SPLIT

    parser.add_argument("--truth", required=True, help="JetNet-format truth directory, or 'builtin'")
    parser.add_argument(
        "--gen", action=_GenAction, required=True, metavar="DIR", help="generated directory (repeatable)"
    )
    parser.add_argument("--label", action=_LabelAction, metavar="L", help="name of the preceding --gen")
    parser.add_argument(
        "--classes", type=class_list, help="comma-separated classes (default: those of the first --gen)"
    )
    parser.add_argument(
        "--particles", type=int, choices=(30, 150), help="particles per jet (default: what the files have)"
    )
    parser.add_argument(
        "--jets-per-class",
        type=positive_int,
        default=default_jets,
        metavar="N",
        help=f"jets per sample and class (default {default_jets}; reduced to what the files hold)",
    )
    parser.add_argument(
        "--truth-split",
        default=DEFAULT_TRUTH_SPLIT,
        help=f"jetnet split(s) of the truth files: train, valid, test, all or e.g. valid,test "
        f"(default {DEFAULT_TRUTH_SPLIT}: the jets jetnet's default split does not train on)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of every resampling (default 0)"
    )


def gen_dirs_from_args(args: argparse.Namespace) -> list[tuple[str, str]]:
    """[(label, directory)] from the parsed --gen/--label arguments."""
    entries: Sequence[Any] = args.gen or []
    return [(label if label is not None else directory, directory) for directory, label in entries]


def load_comparison_from_args(args: argparse.Namespace):
    """The truth and generated jets the parsed arguments name (:func:`gsgm.evaluation.load_comparison`)."""
    from gsgm.evaluation.samples import load_comparison

    return load_comparison(
        args.truth,
        gen_dirs_from_args(args),
        classes=args.classes,
        num_particles=args.particles,
        jets_per_class=args.jets_per_class,
        truth_split=args.truth_split,
        seed=args.seed,
    )


def add_sampling_speed_arguments(group) -> None:
    """``--precision`` and ``--xla`` of ``gsgm sample`` (FPCD, jet images): override ``sampling.*``."""
    group.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "float16"),
        help="compute type of the networks (default: the run config's sampling.precision, float32); "
        "bfloat16 can be faster on CPUs with AVX512_BF16, at ~3 significant digits (BENCHMARKS.md)",
    )
    group.add_argument(
        "--xla",
        dest="jit_compile",
        action="store_true",
        default=None,
        help="compile the DDIM loops (FPCD) or the U-Net calls (jet images) with XLA (default: the run "
        "config's sampling.jit_compile, off)",
    )
