"""How much the truth-vs-truth floor of each W1 varies between disjoint truth pairs, and the recipe's
ratios against the mean floor.

The evaluation's floor is one draw: W1 between two disjoint truth samples of n jets (halves A and B
of the held-out split), averaged over jetnet-style resamples *of those two samples*, which does not
see how much another pair of n jets would differ. Here the same W1 metrics (W1M, W1P, W1EFP and the
four jet-level W1s, with the evaluation's sample size, resampling and seed) are computed for the
evaluation's own pair (A, B: the same cut as ``gsgm evaluate jets``, so its row is the report's
floor) and for ``--train-pairs`` more disjoint pairs of n jets cut from the training split (truth-vs-
truth needs no held-out jets: no model is involved). Each model is compared with the first sample of
every pair (its own A, then each pair's first half), so that model and floor are averages over the same
truth samples. Printed per class and metric: the floor of every pair, the mean floor, the mean model
value, and the ratio of the means.

Usage::

    python benchmarks/floor_spread.py --truth runs/reference/data \\
        --gen "FPCD=runs/reference-mass/run-30/samples" \\
        --gen "FPCD 1 step=runs/reference-mass/run-30/samples-1" --jets 3000 --train-pairs 2
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from gsgm.data.jetnet_format import JET_CLASSES, JetSample
from gsgm.data.loading import load_jets
from gsgm.data.preprocessing import recenter_particles
from gsgm.evaluation.efp_cache import FeatureCache
from gsgm.evaluation.metrics import EvaluationConfig, evaluate_pair
from gsgm.evaluation.samples import load_comparison

W1_KEYS = ("w1m", "w1p", "w1efp", "w1_jet_pt", "w1_jet_eta", "w1_jet_mass", "w1_jet_n")
SCALES = {"w1m": 1e3, "w1p": 1e3, "w1efp": 1e5}


def _training_pairs(truth_dir: str, jet_class: str, particles: int, n: int, count: int, seed: int):
    """``count`` disjoint (A, B) pairs of n recentred training jets each, cut from a seeded permutation."""
    sample = load_jets(truth_dir, [jet_class], particles, split="train")
    if 2 * n * count > len(sample):
        raise SystemExit(
            f"class {jet_class}: {count} pairs of {n} jets need {2 * n * count} training jets, "
            f"the split holds {len(sample)}"
        )
    order = np.random.default_rng(seed).permutation(len(sample))
    label = np.full(n, JET_CLASSES.index(jet_class), dtype=np.int32)

    def cut(k: int) -> JetSample:
        index = order[k * n : (k + 1) * n]
        return JetSample(recenter_particles(sample.particles[index]), sample.jets[index], label)

    return [(cut(2 * k), cut(2 * k + 1)) for k in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--truth", required=True, help="the recipe's JetNet-format directory")
    parser.add_argument("--gen", action="append", default=[], help="LABEL=DIR of a generated sample set")
    parser.add_argument("--particles", type=int, default=30)
    parser.add_argument("--classes", default="g,q,t,w,z")
    parser.add_argument("--jets", type=int, default=3000, help="n, as the recipe's evaluation")
    parser.add_argument("--train-pairs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1, help="permutation of the training split")
    parser.add_argument("--json", help="write every value here")
    args = parser.parse_args()

    gens = [tuple(spec.split("=", 1)) for spec in args.gen]
    comparison = load_comparison(
        args.truth, gens, classes=args.classes, num_particles=args.particles, jets_per_class=args.jets
    )
    config = EvaluationConfig(jets_per_class=args.jets, metrics=W1_KEYS)
    cache = FeatureCache()
    everything: dict = {}
    for jet_class, samples in comparison.classes.items():
        n = samples.n
        pairs = [(samples.truth, samples.truth_floor)]
        pairs += _training_pairs(args.truth, jet_class, args.particles, n, args.train_pairs, args.seed)
        floors = [evaluate_pair(a, b, jet_class, config, cache) for a, b in pairs]
        models = {
            label: [evaluate_pair(a, gen, jet_class, config, cache) for a, _ in pairs]
            for label, gen in samples.generated.items()
        }
        everything[jet_class] = {"n": n, "floors": {}, "models": {label: {} for label in models}}
        print(f"== {jet_class} ({n} jets per sample, {len(pairs)} truth pairs: held-out, then training)")
        for key in W1_KEYS:
            scale = SCALES.get(key, 1.0)
            floor = np.array([f[key].mean for f in floors]) * scale
            everything[jet_class]["floors"][key] = floor.tolist()
            line = f"  {key:12s} floor {' / '.join(f'{v:.3g}' for v in floor)} (mean {floor.mean():.3g})"
            for label, values in models.items():
                model = np.array([v[key].mean for v in values]) * scale
                everything[jet_class]["models"][label][key] = model.tolist()
                line += f"; {label} {model.mean():.3g} ({model.mean() / floor.mean():.2f}x)"
            print(line, flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(everything, handle, indent=1)


if __name__ == "__main__":
    main()
