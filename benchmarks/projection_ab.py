"""A projection of ``JetPreprocessor.inverse`` on identical generated jets: inverted with it and without it.

A run trained with ``data.pt_sum`` or ``data.constituent_mass`` samples its jets (jet network, then
particle network, at the given steps); the same normalised outputs are then inverted twice, once as
``JetPreprocessor.inverse`` does and once with the chosen projection skipped: ``pt_sum`` rescales each
jet's pt_rel to its generated pt_rel_sum, ``constituent_mass`` scales its angles to its generated mass.
The difference between the two rows is the projection alone, with no training or sampling noise between
them. W1M (x1e-3), W1P (x1e-3, with its eta / phi / pT_rel parts), W1EFP (x1e-5), FPD (x1e-3) and the
10-90 % ranges of the summed pt_rel and of the particles' mass are against the first ``--jets`` jets of
the data's test split, recentred; every W1 is the mean of jetnet's 5 resamples of n jets.

Usage::

    python benchmarks/projection_ab.py --run runs/reference-ptsum/run-30 --data runs/reference/data
    python benchmarks/projection_ab.py --projection constituent_mass --run runs/reference-mass/run-30 \\
        --data runs/reference/data
"""

from __future__ import annotations

import argparse

import numpy as np

from gsgm.data.loading import load_jets, resolve_data_dir
from gsgm.data.preprocessing import constituent_mass, recenter_particles
from gsgm.evaluation.metrics import fpd, fpd_kpd_features, w1efp, w1m, w1p
from gsgm.families.fpcd import load_trained_model
from gsgm.generation.jets import generate_jets


def _range(values: np.ndarray) -> str:
    low, high = np.percentile(values, [10, 90])
    return f"{low:.3f}-{high:.3f}"


def _summed_pt(particles: np.ndarray) -> np.ndarray:
    return (particles[..., 2] * particles[..., 3]).sum(axis=1)


def _mass(particles: np.ndarray) -> np.ndarray:
    return constituent_mass(particles[..., 0], particles[..., 1], particles[..., 2], particles[..., 3])


def _row(name: str, truth: np.ndarray, truth_features: np.ndarray, particles: np.ndarray) -> str:
    n = len(truth)
    parts = w1p(truth, particles, num_eval_samples=n)
    components = " / ".join(f"{1e3 * value:.2f}" for value in parts.components.values())
    return (
        f"  {name:15s} W1M {1e3 * w1m(truth, particles, num_eval_samples=n).mean:6.2f}e-3  "
        f"W1P {1e3 * parts.mean:5.2f}e-3 ({components})  "
        f"W1EFP {1e5 * w1efp(truth, particles, num_eval_samples=n).mean:6.2f}e-5  "
        f"FPD {1e3 * fpd(truth_features, fpd_kpd_features(particles)).mean:7.2f}e-3  "
        f"sum pt_rel {_range(_summed_pt(particles))}  mass {_range(_mass(particles))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="FPCD run trained with the projection's data key")
    parser.add_argument("--data", required=True, help="JetNet-format directory (its test split is used)")
    parser.add_argument("--projection", choices=("pt_sum", "constituent_mass"), default="pt_sum")
    parser.add_argument("--classes", default="g,q,t,w,z")
    parser.add_argument("--jets", type=int, default=1500)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    model, preprocessor, cfg = load_trained_model(args.run)
    if not getattr(preprocessor, args.projection):
        raise SystemExit(f"{args.run} was not trained with data.{args.projection}: nothing to compare")
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
        # The jet features are still read at their full width (num_jet_features is fixed at
        # construction); only the projection that the flag switches is skipped.
        setattr(preprocessor, args.projection, False)
        without = np.concatenate([inverse(*arrays)[0] for arrays in normalised])
        setattr(preprocessor, args.projection, True)
        truth = load_jets(directory, [jet_class], cfg.data.num_particles, split="test").particles
        truth = recenter_particles(truth[: args.jets])
        truth_features = fpd_kpd_features(truth)
        print(
            f"== {jet_class}: truth sum pt_rel 10-90 % {_range(_summed_pt(truth))}, "
            f"mass {_range(_mass(truth))}"
        )
        for name, particles in (("projected", generated[jet_class][0]), ("not projected", without)):
            print(_row(name, truth, truth_features, particles), flush=True)


if __name__ == "__main__":
    main()
