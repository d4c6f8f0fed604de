#!/usr/bin/env python
"""Train the small jet-image classifier whose embedding the evaluation's FD uses, on truth images.

Trains on the jetnet train split, stops early on the valid split, reports the accuracy on the test
split, and writes the weights plus a JSON record (accuracy, confusion matrix, data hash) next to them.

Example (rewrites the shipped weights):
    python scripts/train_image_classifier.py --data builtin
"""

from __future__ import annotations

import argparse

from gsgm.utils.cli import quiet_tensorflow, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="builtin", help="directory of JetNet files, or 'builtin' (default)")
    parser.add_argument(
        "--out", help="weights file (default: gsgm/evaluation/weights/jet_image_classifier.weights.h5)"
    )
    parser.add_argument("--epochs", type=int, default=40, help="maximum epochs (early stopping on valid)")
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.out is not None and not args.out.endswith(".weights.h5"):
        raise ValueError(f"--out must end in .weights.h5 (Keras' convention), got {args.out}")
    quiet_tensorflow()
    from gsgm.evaluation.image_classifier import CLASSIFIER_WEIGHTS, train_image_classifier

    out = args.out or CLASSIFIER_WEIGHTS
    record = train_image_classifier(
        args.data, out, epochs=args.epochs, patience=args.patience, seed=args.seed, verbose=args.verbose
    )
    per_class = ", ".join(f"{c} {a:.3f}" for c, a in record["test_accuracy_per_class"].items())
    print(
        f"test accuracy {record['test_accuracy']:.3f} ({per_class}) on {record['num_test']} images; "
        f"wrote {out}"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
