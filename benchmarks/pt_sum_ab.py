"""The pt_sum rescale on identical generated jets: inverted with it and without it, against held-out truth.

A run trained with ``data.pt_sum: true`` samples its jets (jet network, then particle network, at the
given steps); the same normalised outputs are then inverted twice, once as ``JetPreprocessor.inverse``
does (each jet's pt_rel rescaled to its generated pt_rel_sum) and once without the rescale. The
difference between the two rows is the rescale alone, with no training or sampling noise between them.
FPD (x1e-3), W1M (x1e-3, one resample of all jets) and the 10-90 % range of the summed pt_rel are
against the first ``--jets`` jets of the data's test split, recentred.

Usage::

    python benchmarks/pt_sum_ab.py --run runs/reference-ptsum/run-30 --data runs/reference/data --jets 1500
"""

from __future__ import annotations

import argparse

import numpy as np

from gsgm.data.loading import load_jets, resolve_data_dir
from gsgm.data.preprocessing import recenter_particles
from gsgm.evaluation.metrics import fpd, fpd_kpd_features, w1m
from gsgm.families.fpcd import load_trained_model
from gsgm.generation.jets import generate_jets


def _summed_range(particles: np.ndarray) -> str:
    low, high = np.percentile((particles[..., 2] * particles[..., 3]).sum(axis=1), [10, 90])
    return f"{low:.3f}-{high:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="FPCD run trained with data.pt_sum true")
    parser.add_argument("--data", required=True, help="JetNet-format directory (its test split is used)")
    parser.add_argument("--classes", default="g,q,t,w,z")
    parser.add_argument("--jets", type=int, default=1500)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    model, preprocessor, cfg = load_trained_model(args.run)
    if not preprocessor.pt_sum:
        raise SystemExit(f"{args.run} was not trained with data.pt_sum: nothing to compare")
    normalised: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    inverse = preprocessor.inverse

    def keeping_inputs(particles_norm, jets_norm, labels):
        normalised.append((particles_norm.copy(), jets_norm.copy(), labels.copy()))
        return inverse(particles_norm, jets_norm, labels)

    preprocessor.inverse = keeping_inputs
    directory = resolve_data_dir(args.data)
    for jet_class in args.classes.split(","):
        normalised.clear()
        generated = generate_jets(
            model, preprocessor, cfg, args.jets, classes=[jet_class], num_steps=args.steps, seed=args.seed
        )
        preprocessor.pt_sum = False  # the fifth feature is still read, only the rescale is skipped
        unscaled = np.concatenate([inverse(*arrays)[0] for arrays in normalised])
        preprocessor.pt_sum = True
        truth = load_jets(directory, [jet_class], cfg.data.num_particles, split="test").particles
        truth = recenter_particles(truth[: args.jets])
        truth_features = fpd_kpd_features(truth)
        print(f"== {jet_class}: truth summed pt_rel 10-90 % {_summed_range(truth)}")
        for name, particles in (("rescaled", generated[jet_class][0]), ("not rescaled", unscaled)):
            print(
                f"  {name:13s} FPD {1e3 * fpd(truth_features, fpd_kpd_features(particles)).mean:7.2f}e-3  "
                f"W1M {1e3 * w1m(truth, particles, num_eval_samples=len(truth)).mean:5.2f}e-3  "
                f"summed pt_rel 10-90 % {_summed_range(particles)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
