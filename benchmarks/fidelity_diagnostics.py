#!/usr/bin/env python
"""Where the particle-level mass gap (W1M) of a trained FPCD run comes from: one change at a time.

For each class, 1-Wasserstein distance between the relative jet mass computed from the particles of
held-out truth jets (the quantity of W1M) and that of jets sampled from the run, under:

* ``ema``: the run as ``gsgm sample`` uses it (EMA weights, generated jets, ``--steps`` DDIM steps);
* ``raw``: the raw (not averaged) weights, otherwise the same;
* ``steps x4``: four times as many DDIM steps (the time grid's resolution);
* ``truth jets``: particles conditioned on held-out truth jets (pT, eta, mass, multiplicity) instead of
  generated ones, so the jet network's errors are removed.

Beside each it prints the correlation between the particles' relative mass and the conditioning jet's
mass / pT, which measures whether the particles follow the jet they are conditioned on (truth: the
same correlation on truth jets), and the truth-vs-truth floor with the same number of jets.

    python benchmarks/fidelity_diagnostics.py --run runs/reference/run-30 --data runs/reference/data \\
        --classes t,q,w --jets 1000
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from bench_distillation import relative_mass  # noqa: E402
from scipy.stats import wasserstein_distance  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="trained FPCD run directory")
    parser.add_argument("--data", required=True, help="JetNet-format directory (its test split is used)")
    parser.add_argument("--classes", default="t,q,w")
    parser.add_argument("--jets", type=int, default=1000, help="jets per class and sample")
    parser.add_argument("--steps", type=int, help="DDIM steps (default: the run's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    import tensorflow as tf

    from gsgm.data.jetnet_format import JET_CLASSES, JetSample
    from gsgm.data.loading import load_class
    from gsgm.data.preprocessing import recenter_particles
    from gsgm.diffusion.ddim import ddim_sample
    from gsgm.diffusion.point_cloud import sample_point_clouds
    from gsgm.generation.jets import network_denoisers
    from gsgm.generation.runs import load_sampling_run

    _, model, preprocessor, cfg, steps = load_sampling_run(args.run, args.steps)
    num_particles = cfg.data.num_particles

    weights = {
        "ema": (model.jet_denoiser, model.particle_denoiser),
        "raw": network_denoisers(model.jet_net, model.particle_net, model.schedule),
    }
    results = {}
    for jet_class in args.classes.split(","):
        label = JET_CLASSES.index(jet_class)
        particles, jets = load_class(args.data, jet_class, num_particles, split="test")
        particles = recenter_particles(particles)
        half = len(jets) // 2
        n = min(args.jets, half)
        reference, other, other_jets = particles[:n], particles[half : half + n], jets[half : half + n]
        reference_mass = relative_mass(reference)
        labels = np.full(n, label, np.int32)
        onehot = np.eye(len(JET_CLASSES), dtype=np.float32)[labels]
        other_mass = relative_mass(other)
        row = {
            "n": n,
            "floor": wasserstein_distance(reference_mass, other_mass),
            "truth_corr": np.corrcoef(other_mass, other_jets[:, 2] / other_jets[:, 0])[0, 1],
        }

        def record(name, generated, condition_jets, row=row, reference_mass=reference_mass):
            mass = relative_mass(generated)
            row[f"{name}_w1"] = wasserstein_distance(reference_mass, mass)
            row[f"{name}_corr"] = np.corrcoef(mass, condition_jets[:, 2] / condition_jets[:, 0])[0, 1]

        for name, (jet_denoiser, particle_denoiser), count in (
            ("ema", weights["ema"], steps),
            ("raw", weights["raw"], steps),
            ("steps_x4", weights["ema"], 4 * steps),
        ):
            jets_norm, particles_norm, _ = sample_point_clouds(
                jet_denoiser,
                particle_denoiser,
                lambda j, labels=labels: preprocessor.multiplicity_mask(j, labels),
                onehot,
                num_particles=num_particles,
                num_particle_features=3,
                num_jet_features=4,
                num_steps=count,
                seed=args.seed,
                schedule=model.schedule,
                num_buckets=4,
            )
            generated, generated_jets = preprocessor.inverse(particles_norm, jets_norm, labels)
            record(name, generated, generated_jets)
        truth_norm, truth_jets_norm, mask = preprocessor.transform(JetSample(other, other_jets, labels))
        mask3 = tf.constant(mask[..., None])
        noise = tf.random.stateless_normal(truth_norm.shape, seed=[args.seed, 1])
        cond = {"jets": tf.constant(truth_jets_norm), "class_onehot": tf.constant(onehot), "mask": mask3}
        sampled = ddim_sample(weights["ema"][1], noise, model.schedule, steps, mask=mask3, cond=cond).numpy()
        generated, _ = preprocessor.inverse(sampled * mask[..., None], truth_jets_norm, labels)
        record("truth_jets", generated, other_jets)
        results[jet_class] = {key: round(float(value), 6) for key, value in row.items()}
        cells = ", ".join(f"{key} {value:.4g}" for key, value in results[jet_class].items())
        print(f"{jet_class}: {cells}", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"run": args.run, "steps": steps, "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
