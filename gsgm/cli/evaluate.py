"""``gsgm evaluate jets|images``: the papers' metrics of generated samples against truth, with floors."""

from __future__ import annotations

import argparse
import sys

from gsgm.cli import Command
from gsgm.cli import evaluate_calo as _calo
from gsgm.cli import evaluate_dis as _dis
from gsgm.cli.phase_space import EVALUATE as PHASE_SPACE_EVALUATE
from gsgm.utils.cli import positive_int
from gsgm.utils.outputs import check_output_dir

HELP = "jets | images | phase-space | calo: the papers' metrics of generated samples vs truth, with floors"

JETS_DESCRIPTION = """Compare generated jets with truth: the FPCD paper's metrics per class, with the
truth-vs-truth floor.

Writes OUT/metrics.json (per class, per metric: mean, std; the floor beside every model) and
OUT/metrics.md (tables laid out like the paper's Tables I and II), and prints the Markdown. A progress
bar with ETA (one step per class, comparison and metric stage) and notes go to stderr.

Examples:
    gsgm evaluate jets --truth builtin --truth-split all --gen runs/quick/samples --label quick \\
        --jets-per-class 1000 --out runs/quick/evaluation        (= python scripts/evaluate.py ...)
    gsgm evaluate jets --truth DATA --gen runs/fpcd/samples --label FPCD \\
        --gen runs/fpcd8/samples --label "FPCD 8" --out reports/jetnet30
"""

IMAGES_DESCRIPTION = """Compare generated jet images with truth images (the jet-image paper's Tables II, III).

Writes OUT/metrics.json and OUT/metrics.md: FD in a jet-image-classifier embedding, pixel Wasserstein
distance, diversity index, m/pT KS tests (Bonferroni), Welch tests over a model's runs, bootstrap CIs,
and a truth-vs-truth reference row. Truth images are made from --data (default the test split: the
classifier never saw it); the valid split is the reference.

Example:
    gsgm evaluate images --data builtin --samples score=runs/img_score/samples.h5 \\
        --samples consistency=runs/img_ct/samples.h5 --out runs/img_report   (= scripts/evaluate_images.py)
"""


def add_jet_arguments(parser: argparse.ArgumentParser) -> None:
    from gsgm.cli.jet_sample_args import add_sample_arguments

    add_sample_arguments(parser, default_jets=50_000)
    parser.add_argument("--out", required=True, help="report directory (metrics.json, metrics.md)")
    parser.add_argument(
        "--bootstrap",
        type=positive_int,
        default=5,
        metavar="B",
        help="resamples for the W1 metrics (default 5)",
    )
    parser.add_argument(
        "--cov-mmd-batches",
        type=positive_int,
        default=10,
        metavar="B",
        help="COV/MMD batches of 100 jets (default 10)",
    )
    parser.add_argument("--metrics", help="comma-separated subset of the metric keys (default: all)")
    parser.add_argument(
        "--feature-cache",
        metavar="DIR",
        help="keep the truth samples' EFPs and the truth-vs-truth floors here between evaluations "
        "(default $GSGM_CACHE_DIR/efp or ~/.cache/gsgm/efp)",
    )
    parser.add_argument(
        "--no-feature-cache",
        action="store_true",
        help="compute the truth samples' EFPs and the floors in memory only",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (per class and metric stage) on stderr"
    )


def run_jets(args: argparse.Namespace) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    from gsgm.cli.jet_sample_args import load_comparison_from_args
    from gsgm.evaluation.efp_cache import default_cache_dir
    from gsgm.evaluation.metrics import METRIC_KEYS, EvaluationConfig
    from gsgm.evaluation.report import evaluate_comparison, format_markdown, write_report

    metrics = tuple(k.strip() for k in args.metrics.split(",") if k.strip()) if args.metrics else METRIC_KEYS
    config = EvaluationConfig(
        jets_per_class=args.jets_per_class,
        bootstrap=args.bootstrap,
        cov_mmd_batches=args.cov_mmd_batches,
        seed=args.seed,
        metrics=metrics,
    )
    comparison = load_comparison_from_args(args)
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    if log:
        for note in comparison.notes:
            log(f"note: {note}")
    cache_dir = None if args.no_feature_cache else (args.feature_cache or default_cache_dir())
    report = evaluate_comparison(
        comparison,
        config,
        log=log,
        progress=not (args.quiet or args.no_progress),
        feature_cache_dir=cache_dir,
    )
    json_path, md_path = write_report(report, args.out)
    if not args.quiet:
        print(format_markdown(report))
        print(f"wrote {json_path} and {md_path}")
    return 0


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="builtin", help="directory of JetNet files, or 'builtin' (default)")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test", "all"))
    parser.add_argument(
        "--samples",
        action="append",
        required=True,
        metavar="NAME=FILE[,FILE...]",
        help="a model's sample files (from gsgm sample); repeat for each model",
    )
    parser.add_argument("--classifier", help="classifier weights (default: the shipped file)")
    parser.add_argument("--no-reference", action="store_true", help="skip the truth-vs-truth reference row")
    parser.add_argument("--out", required=True, help="directory for metrics.json and metrics.md")


def parse_named_files(items: list[str], option: str = "--samples") -> dict[str, list[str]]:
    """``["score=a.h5,b.h5", ...]`` -> ``{"score": ["a.h5", "b.h5"]}``; one-line errors for bad items."""
    samples: dict[str, list[str]] = {}
    for item in items:
        name, sep, files = item.partition("=")
        if not sep or not name or not files:
            raise ValueError(f"{option} must be NAME=FILE[,FILE...], got {item!r}")
        if name in samples:
            raise ValueError(f"model {name!r} given twice in {option}")
        samples[name] = [f for f in files.split(",") if f]
    return samples


def run_images(args: argparse.Namespace) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    sources = parse_named_files(args.samples)
    from gsgm.data.images import load_jet_images
    from gsgm.data.jetnet_format import JET_CLASSES
    from gsgm.evaluation.image_classifier import CLASSIFIER_WEIGHTS, classifier_info, load_image_classifier
    from gsgm.evaluation.image_report import evaluate, write_report
    from gsgm.generation.image_files import read_images_file

    samples = {}
    geometry = None  # (max_r, num_particles, num_pixels): the truth images are made to match
    for name, files in sources.items():
        runs = []
        for path in files:
            images, labels, attributes = read_images_file(path)
            mine = (
                float(attributes.get("max_r", 0.4)),
                int(attributes.get("num_particles", 30)),
                images.shape[1],
            )
            if geometry is not None and mine != geometry:
                raise ValueError(
                    f"{path} has (max_r, num_particles, pixels) = {mine}, other files {geometry}"
                )
            geometry = mine
            runs.append((images, labels))
        samples[name] = runs
    max_r, num_particles, num_pixels = geometry
    present = sorted(
        {int(c) for runs in samples.values() for _, labels in runs for c in set(labels.tolist())}
    )
    classes = [JET_CLASSES[i] for i in present]

    def truth_images(split: str):
        return load_jet_images(args.data, classes, num_particles, split, num_pixels=num_pixels, max_r=max_r)

    truth = truth_images(args.split)
    reference, other = None, None
    if not args.no_reference:
        other = "valid" if args.split != "valid" else "test"
        reference = truth_images(other)
    weights = args.classifier or CLASSIFIER_WEIGHTS
    classifier = load_image_classifier(weights)
    report = evaluate(truth, samples, classifier, reference=reference, max_r=max_r, sources=sources)
    info = classifier_info(weights)
    report["classifier"] = {
        "weights": str(weights),
        "test_accuracy": info.get("test_accuracy"),
        **{k: info.get(k) for k in ("data_source", "data_sha256", "embedding_dim")},
    }
    report["truth"].update({"data": str(args.data), "split": args.split, "reference_split": other})
    json_path, md_path = write_report(report, args.out)
    print(md_path.read_text() if hasattr(md_path, "read_text") else open(md_path).read())
    print(f"wrote {json_path} and {md_path}")
    return 0


SUBCOMMANDS = {
    "jets": Command(
        "metrics of generated jets vs truth (FPCD Tables I, II)",
        JETS_DESCRIPTION,
        add_jet_arguments,
        run_jets,
    ),
    "images": Command(
        "metrics of generated jet images vs truth", IMAGES_DESCRIPTION, add_image_arguments, run_images
    ),
    "dis": _dis.EVALUATE_COMMAND,
    "phase-space": PHASE_SPACE_EVALUATE,
    "calo": _calo.SUBCOMMANDS["evaluate"],
}
