#!/usr/bin/env python
"""Evaluate generated jet images against truth images: report table (metrics.json, metrics.md).

Each ``--samples NAME=FILE[,FILE...]`` is one model; several files are N independent runs (different
training seeds as in the paper, or at least different sampling seeds) and give the mean, std and
bootstrap 95 % CI, and, with exactly two models, Welch's t-test. Truth: the jetnet ``--split`` of
``--data`` (default the test split: the classifier never saw it); the ``valid`` split is evaluated as
a second truth sample, the floor that finite samples alone give.

Example:
    python scripts/evaluate_images.py --data builtin --samples score=runs/img_score/samples.h5 \\
        --samples consistency=runs/img_ct/samples.h5 --out runs/img_report
"""

from __future__ import annotations

import argparse

from gsgm.utils.cli import quiet_tensorflow, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="builtin", help="directory of JetNet files, or 'builtin' (default)")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test", "all"))
    parser.add_argument(
        "--samples",
        action="append",
        required=True,
        metavar="NAME=FILE[,FILE...]",
        help="a model's sample files (from scripts/sample_images.py); repeat for each model",
    )
    parser.add_argument("--classifier", help="classifier weights (default: the shipped file)")
    parser.add_argument("--no-reference", action="store_true", help="skip the truth-vs-truth reference row")
    parser.add_argument("--out", required=True, help="directory for metrics.json and metrics.md")
    return parser.parse_args()


def parse_samples(items: list[str]) -> dict[str, list[str]]:
    samples: dict[str, list[str]] = {}
    for item in items:
        name, sep, files = item.partition("=")
        if not sep or not name or not files:
            raise ValueError(f"--samples must be NAME=FILE[,FILE...], got {item!r}")
        if name in samples:
            raise ValueError(f"model {name!r} given twice in --samples")
        samples[name] = [f for f in files.split(",") if f]
    return samples


def main() -> int:
    args = parse_args()
    sources = parse_samples(args.samples)
    quiet_tensorflow()
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
    reference = None
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
    report["truth"].update(
        {"data": str(args.data), "split": args.split, "reference_split": None if reference is None else other}
    )
    json_path, md_path = write_report(report, args.out)
    print(open(md_path).read())
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    run_cli(main)
