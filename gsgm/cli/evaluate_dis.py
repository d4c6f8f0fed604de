"""``gsgm evaluate dis`` and ``gsgm plot dis``: generated DIS events vs Pythia (ep-scattering paper V)."""

from __future__ import annotations

import argparse

from gsgm.cli import Command
from gsgm.utils.cli import non_negative_int, positive_int
from gsgm.utils.outputs import check_output_dir

EVALUATE = """Compare generated DIS event images with Pythia: W1 of the 1D observables (z, eta, phi per
species, multiplicities, sum z, leading-electron z and eta, Q^2, x) with the truth-vs-truth floor and the
pixelation effect, and the paper's figures.

Writes OUT/metrics.json and OUT/metrics.md (printed too) and, unless --no-plots, OUT/dis_*.png: spectra
(Fig. 5), multiplicities (Fig. 6), sum_z (Fig. 7), correlations (Figs. 8, 9), reduced_cross_section
(Fig. 10), electron. The truth is the test split of --data (the last 20 %, never trained on).

Example:
    gsgm evaluate dis --data builtin --samples quick=runs/dis_quick/ddim50.h5 --out runs/dis_quick/eval
"""

PLOT = """The DIS figures only (see gsgm evaluate dis --help): OUT/dis_*.png.

Example:
    gsgm plot dis --data builtin --samples quick=runs/dis_quick/ddim50.h5 --out runs/dis_quick/plots
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="builtin", help="DIS event file (or 'builtin', the default)")
    parser.add_argument("--split", default="test", choices=("train", "test", "all"), help="default test")
    parser.add_argument(
        "--samples",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a model's sample file (from gsgm sample); repeat for each model; none: truth only",
    )
    parser.add_argument(
        "--pixels", type=positive_int, default=64, help="image size when no --samples (default 64)"
    )
    parser.add_argument("--max-events", type=positive_int, help="use at most this many truth events")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="split of the truth into halves (default 0)"
    )
    parser.add_argument("--out", required=True, help="report directory")


def _comparison(args: argparse.Namespace):
    from gsgm.data.dis_format import read_dis_file, resolve_dis_file, split_events
    from gsgm.data.dis_observables import DisComparison
    from gsgm.generation.dis import read_dis_images_file

    truth = split_events(read_dis_file(resolve_dis_file(args.data)), args.split)
    if args.max_events is not None:
        if args.max_events < 2:
            raise ValueError(f"--max-events must be >= 2, got {args.max_events}")
        truth = truth.select(slice(0, args.max_events))
    samples, pixels = {}, None
    for item in args.samples:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--samples must be NAME=FILE, got {item!r}")
        if name in samples:
            raise ValueError(f"model {name!r} given twice in --samples")
        images, attributes = read_dis_images_file(path)
        for key, mine in (("eta_max", truth.eta_max), ("sqrt_s", truth.sqrt_s)):
            if abs(float(attributes[key]) - mine) > 1e-9:
                raise ValueError(f"{path}: {key} = {attributes[key]}, the truth {args.data} has {mine}")
        if pixels is not None and images.shape[1] != pixels:
            raise ValueError(f"{path} has {images.shape[1]} pixels, other samples {pixels}")
        pixels = images.shape[1]
        samples[name] = images
    return DisComparison(truth, samples, pixels or args.pixels, seed=args.seed)


def run_evaluate(args: argparse.Namespace, plots: bool = True) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    from gsgm.evaluation.dis import evaluate_dis, format_dis_markdown, write_dis_report

    comparison = _comparison(args)
    report = evaluate_dis(comparison)
    json_path, md_path = write_dis_report(report, args.out)
    print(format_dis_markdown(report))
    print(f"wrote {json_path} and {md_path}")
    if plots and not args.no_plots:
        _plot(comparison, args.out)
    return 0


def _plot(comparison, out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from gsgm.plotting.dis import plot_dis_all

    paths = plot_dis_all(comparison, out)
    print(f"wrote {len(paths)} figures to {out}")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.add_argument("--no-plots", action="store_true", help="the table only")


def run_plot(args: argparse.Namespace) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    _plot(_comparison(args), args.out)
    return 0


EVALUATE_COMMAND = Command(
    "metrics (W1 with floors) and figures of generated DIS events vs Pythia",
    EVALUATE,
    add_evaluate_arguments,
    run_evaluate,
)
PLOT_COMMAND = Command(
    "figures of generated DIS events vs Pythia (paper Figs. 5-10)", PLOT, add_arguments, run_plot
)
