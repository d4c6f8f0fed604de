"""``gsgm train-classifier``: the small jet-image classifier whose embedding `gsgm evaluate images` uses."""

from __future__ import annotations

import argparse

from gsgm.utils.cli import non_negative_int, positive_int

HELP = "train the jet-image classifier of the image evaluation's FD"
DESCRIPTION = """Train the small jet-image classifier whose embedding the evaluation's FD uses, on truth
images.

Trains on the jetnet train split, stops early on the valid split, reports the accuracy on the test
split, and writes the weights plus a JSON record (accuracy, confusion matrix, data hash) next to them.

Example (rewrites the shipped weights):
    gsgm train-classifier --data builtin          (= python scripts/train_image_classifier.py --data builtin)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="builtin", help="directory of JetNet files, or 'builtin' (default)")
    parser.add_argument(
        "--out", help="weights file (default: gsgm/evaluation/weights/jet_image_classifier.weights.h5)"
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=40, help="maximum epochs (early stopping on valid)"
    )
    parser.add_argument("--patience", type=positive_int, default=8)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))


def run(args: argparse.Namespace) -> int:
    if args.out is not None and not args.out.endswith(".weights.h5"):
        raise ValueError(f"--out must end in .weights.h5 (Keras' convention), got {args.out}")
    from gsgm.evaluation.image_classifier import CLASSIFIER_WEIGHTS, train_image_classifier

    out = args.out or CLASSIFIER_WEIGHTS
    record = train_image_classifier(
        args.data, out, epochs=args.epochs, patience=args.patience, seed=args.seed, verbose=args.verbose
    )
    per_class = ", ".join(f"{c} {a:.3f}" for c, a in record["test_accuracy_per_class"].items())
    accuracy = record["test_accuracy"]
    print(f"test accuracy {accuracy:.3f} ({per_class}) on {record['num_test']} images; wrote {out}")
    return 0
