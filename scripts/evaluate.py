#!/usr/bin/env python
"""Compare generated jets with truth: the paper's metrics per class, with the truth-vs-truth floor.

Writes OUT/metrics.json (per class, per metric: mean, std; the floor beside every model) and
OUT/metrics.md (tables laid out like the paper's Tables I and II), and prints the Markdown. A progress
bar with ETA (one step per class, comparison and metric stage) and notes go to stderr.

Examples:
    python scripts/evaluate.py --truth builtin --truth-split all --gen runs/quick/samples --label quick \\
        --jets-per-class 1000 --out runs/quick/evaluation
    python scripts/evaluate.py --truth DATA --gen runs/fpcd/samples --label FPCD \\
        --gen runs/fpcd8/samples --label "FPCD 8" --out reports/jetnet30
"""

from __future__ import annotations

import argparse
import sys

from gsgm.utils.cli import run_cli


def parse_args() -> argparse.Namespace:
    from gsgm.evaluation.cli import add_sample_arguments

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_sample_arguments(parser, default_jets=50_000)
    parser.add_argument("--out", required=True, help="report directory (metrics.json, metrics.md)")
    parser.add_argument(
        "--bootstrap", type=int, default=5, metavar="B", help="resamples for the W1 metrics (default 5)"
    )
    parser.add_argument(
        "--cov-mmd-batches",
        type=int,
        default=10,
        metavar="B",
        help="COV/MMD batches of 100 jets (default 10)",
    )
    parser.add_argument("--metrics", help="comma-separated subset of the metric keys (default: all)")
    parser.add_argument("--efp-jobs", type=int, help="processes for the EFPs (default: all CPUs)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (per class and metric stage) on stderr"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from gsgm.evaluation.cli import gen_dirs_from_args
    from gsgm.evaluation.metrics import METRIC_KEYS, EvaluationConfig
    from gsgm.evaluation.report import evaluate_comparison, format_markdown, write_report
    from gsgm.evaluation.samples import load_comparison

    metrics = tuple(k.strip() for k in args.metrics.split(",") if k.strip()) if args.metrics else METRIC_KEYS
    config = EvaluationConfig(
        jets_per_class=args.jets_per_class,
        bootstrap=args.bootstrap,
        cov_mmd_batches=args.cov_mmd_batches,
        efp_jobs=args.efp_jobs,
        seed=args.seed,
        metrics=metrics,
    )
    comparison = load_comparison(
        args.truth,
        gen_dirs_from_args(args),
        classes=args.classes,
        num_particles=args.particles,
        jets_per_class=args.jets_per_class,
        truth_split=args.truth_split,
        seed=args.seed,
    )
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    if log:
        for note in comparison.notes:
            log(f"note: {note}")
    report = evaluate_comparison(comparison, config, log=log, progress=not (args.quiet or args.no_progress))
    json_path, md_path = write_report(report, args.out)
    if not args.quiet:
        print(format_markdown(report))
        print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    run_cli(main)
