"""How much of FPD is the spread of the particles' summed pT_rel? Truth-only, no model.

FPD (jetnet's Frechet distance on the 36 EFPs with d <= 4) is computed on un-normalised EFPs: with
z_i = pT_rel_i, an EFP of n vertices scales as (sum_i z_i)^n, and the d = 0 graph *is* sum_i z_i,
the feature with by far the largest spread. This benchmark perturbs held-out truth jets in ways a
generator errs and reports FPD and W1M against the other held-out half:

* ``scale S``: every particle's pT_rel of a jet multiplied by one factor exp(S * g), g ~ N(0, 1), so
  only the summed pT_rel spreads (angles and pT fractions within the jet unchanged);
* ``noise X``: Gaussian noise of standardised size X on all three particle features through the
  library preprocessing (``pt_feature`` log1m or log), as the section "The pt feature" measured W1M;
* ``noise X, sum kept``: the same, then each jet's pT_rel rescaled to its un-noised sum.

``--truth-pairs K`` instead measures how stable FPD itself is at this sample size: FPD between K
disjoint pairs of truth samples (the held-out halves, then pairs from the training split), each also
with the single most extreme jet of the second sample left out (the jet whose largest standardised
EFP is farthest from the first sample's mean).

Usage::

    python benchmarks/pt_sum_fpd.py --data runs/reference/data --jets 3000
    python benchmarks/pt_sum_fpd.py --data builtin --jets 1000 --classes q,w
    python benchmarks/pt_sum_fpd.py --data runs/reference/data --jets 3000 --truth-pairs 3
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from gsgm.data.jetnet_format import JetSample
from gsgm.data.loading import load_jets, resolve_data_dir
from gsgm.data.preprocessing import PT_FEATURES, JetPreprocessor
from gsgm.evaluation.metrics import fpd, fpd_kpd_features, w1m


def _summed_pt_rel(particles: np.ndarray) -> np.ndarray:
    """[N] summed pT_rel of the real particles of particles [N, P, 4]."""
    return (particles[..., 2] * particles[..., 3]).sum(axis=1)


def _with_pt_scaled(particles: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """particles [N, P, 4] with each jet's pT_rel multiplied by factors [N]."""
    out = particles.copy()
    out[..., 2] *= factors[:, None]
    return out


def _noised(pre: JetPreprocessor, sample: JetSample, size: float, seed: int) -> np.ndarray:
    """The sample's particles after noise of standardised ``size`` on all particle features."""
    particles_norm, jets_norm, mask = pre.transform(sample)
    noise = np.random.default_rng(seed).normal(0.0, size, particles_norm.shape) * mask[..., None]
    noisy, _ = pre.inverse(particles_norm + noise.astype(np.float32), jets_norm, sample.labels)
    return noisy


def _sum_matched(noisy: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """noisy [N, P, 4] rescaled so that each jet's summed pT_rel equals the truth jet's."""
    return _with_pt_scaled(noisy, _summed_pt_rel(truth) / np.maximum(_summed_pt_rel(noisy), 1e-12))


def _row(truth: np.ndarray, truth_features: np.ndarray, particles: np.ndarray) -> dict[str, float]:
    """FPD and W1M (x1e-3) of ``particles`` against the truth half, and their summed pT_rel's 10-90 %."""
    summed = _summed_pt_rel(particles)
    return {
        "fpd_1e3": 1e3 * fpd(truth_features, fpd_kpd_features(particles)).mean,
        "w1m_1e3": 1e3 * w1m(truth, particles, num_eval_samples=len(truth)).mean,
        "pt_sum_p10": float(np.percentile(summed, 10)),
        "pt_sum_p90": float(np.percentile(summed, 90)),
    }


def _truth_pairs(directory, jet_class: str, num_particles: int, jets: int, pairs: int) -> list[dict]:
    """FPD (x1e-3) of disjoint truth pairs, with and without the second sample's most extreme jet."""
    train = load_jets(directory, [jet_class], num_particles, split="train").particles
    valid = load_jets(directory, [jet_class], num_particles, split="valid").particles
    test = load_jets(directory, [jet_class], num_particles, split="test").particles
    half = min(jets, len(valid), len(test))
    samples = [(valid[:half], test[:half])]
    samples += [
        (train[2 * k * half : (2 * k + 1) * half], train[(2 * k + 1) * half : (2 * k + 2) * half])
        for k in range(pairs - 1)
    ]
    rows = []
    for first, second in samples:
        if len(second) < half:
            break
        features_a, features_b = fpd_kpd_features(first), fpd_kpd_features(second)
        scale = features_a.std(axis=0)
        extremity = np.abs((features_b - features_a.mean(axis=0)) / scale).max(axis=1)
        keep = np.argsort(extremity)[:-1]
        rows.append(
            {
                "fpd_1e3": 1e3 * fpd(features_a, features_b).mean,
                "fpd_without_extreme_jet_1e3": 1e3 * fpd(features_a, features_b[keep]).mean,
                "largest_standardised_efp": float(extremity.max()),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="builtin", help="JetNet-format directory or 'builtin'")
    parser.add_argument("--particles", type=int, default=30)
    parser.add_argument("--classes", default="g,q,t,w,z")
    parser.add_argument("--jets", type=int, default=1000, help="jets per half and class")
    parser.add_argument("--fit-jets", type=int, default=4000, help="training jets per class for the fit")
    parser.add_argument("--scales", default="0.03,0.1,0.2", help="log-spreads S of the per-jet pT factor")
    parser.add_argument("--noise", default="0.1", help="standardised noise sizes")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--truth-pairs", type=int, default=0, help="measure FPD's own spread instead")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    directory = resolve_data_dir(args.data)
    if args.truth_pairs:
        spread = {}
        for jet_class in args.classes.split(","):
            spread[jet_class] = _truth_pairs(
                directory, jet_class, args.particles, args.jets, args.truth_pairs
            )
            cells = ", ".join(
                f"{r['fpd_1e3']:.2f} ({r['fpd_without_extreme_jet_1e3']:.2f} without its jet at "
                f"{r['largest_standardised_efp']:.0f} sd)"
                for r in spread[jet_class]
            )
            print(f"{jet_class}: FPD x1e-3 of disjoint truth pairs: {cells}", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(spread, f, indent=1)
        return
    results: dict[str, dict[str, dict[str, float]]] = {}
    for jet_class in args.classes.split(","):
        start = time.perf_counter()
        fit = load_jets(
            directory, [jet_class], args.particles, split="train", max_jets_per_class=args.fit_jets
        )
        valid = load_jets(directory, [jet_class], args.particles, split="valid")
        test = load_jets(directory, [jet_class], args.particles, split="test")
        half = min(args.jets, len(valid), len(test))
        truth_a = valid.select(np.arange(half))
        truth_b = test.select(np.arange(half))
        features_a = fpd_kpd_features(truth_a.particles)
        candidates = {"floor": truth_b.particles}
        rng = np.random.default_rng(args.seed)
        for scale in (float(s) for s in args.scales.split(",")):
            factors = np.exp(scale * rng.normal(size=half))
            candidates[f"scale {scale}"] = _with_pt_scaled(truth_b.particles, factors)
        for pt_feature in PT_FEATURES:
            pre = JetPreprocessor.fit(fit, pt_feature=pt_feature)
            for size in (float(s) for s in args.noise.split(",")):
                noisy = _noised(pre, truth_b, size, args.seed)
                candidates[f"noise {size} {pt_feature}"] = noisy
                candidates[f"noise {size} {pt_feature}, sum kept"] = _sum_matched(noisy, truth_b.particles)
        rows = {name: _row(truth_a.particles, features_a, p) for name, p in candidates.items()}
        results[jet_class] = rows
        print(f"== {jet_class} ({half} jets per half, {time.perf_counter() - start:.0f} s)")
        for name, row in rows.items():
            print(
                f"  {name:28s} FPD {row['fpd_1e3']:8.3f}e-3  W1M {row['w1m_1e3']:6.2f}e-3  "
                f"sum pT_rel 10-90% {row['pt_sum_p10']:.3f}-{row['pt_sum_p90']:.3f}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
