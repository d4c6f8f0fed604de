#!/usr/bin/env python
"""Train FPCD's particle network alone and report W1M, W1P and the mass correlation on truth jets.

The particle network's loss does not involve the jet network (FPCD trains the sum of two separate
losses, the particles conditioned on the clean jets), so variants of its input features can be compared
here at a fraction of the full training's cost: the run's training jets (its own split of jetnet's train
split, ``load_training_data``), its optimizer with cosine decay, EMA weights for sampling. Sampling is
conditioned on held-out truth jets, so the numbers isolate the particle network (W1M of sampled jets in
the recipe is within 10 % of this, BENCHMARKS.md "What the W1M gap is not").

Printed per class: W1 of the particles' relative mass (the quantity of W1M) against one held-out half,
the floor (the other half against it), W1 of eta_rel, phi_rel and pt_rel over real particles, and the
correlation of the particles' mass with the conditioning jet's m / pT (truth: the held-out half's own).

``--pt-feature`` chooses the particles' third feature before standardising (``data.pt_feature``):
``log1m`` is FPCD's log(1 - pt_rel), ``log`` is log(pt_rel); one the run was not trained with is
refitted on the run's training jets.

    python benchmarks/particle_network_alone.py --run runs/reference-quantile/run-30 \\
        --data runs/reference-long/data --classes w --epochs 10 --pt-feature log
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from gsgm.data.preprocessing_file import PT_FEATURES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="trained FPCD run (its config and preprocessing)")
    parser.add_argument("--data", required=True, help="the run's JetNet-format directory")
    parser.add_argument("--classes", default="w", help="comma-separated classes to train and evaluate")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--pt-feature", choices=list(PT_FEATURES), default="log1m")
    parser.add_argument("--steps", default="64", help="DDIM steps, comma-separated for several")
    parser.add_argument(
        "--mass-ratio-condition",
        action="store_true",
        help="also condition on the standardised log(m / pT) of the jet (a 5th jet feature)",
    )
    parser.add_argument("--jets", type=int, default=2000, help="held-out jets per half and class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, help="instead of the run's")
    parser.add_argument(
        "--particle-net",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a particle_net setting of the run's config (integers), e.g. num_heads=4",
    )
    parser.add_argument("--time-power", type=float, default=1.0, help="train on t = u ** power")
    parser.add_argument("--save", help="write the truth halves and generated particles to this .npz")
    args = parser.parse_args()

    import tensorflow as tf
    from bench_distillation import relative_mass
    from jet_alone_training import ema_denoiser, ema_optimizer_schedule, make_train_step
    from scipy.stats import wasserstein_distance

    from gsgm.config import load_config
    from gsgm.data.jetnet_format import JET_CLASSES, JetSample
    from gsgm.data.loading import load_class
    from gsgm.data.preprocessing import JetPreprocessor, recenter_particles
    from gsgm.diffusion.ddim import ddim_sample
    from gsgm.families.fpcd import load_training_data
    from gsgm.models import build_particle_net

    cfg = load_config(os.path.join(args.run, "config.json"))
    cfg.training.epochs = args.epochs
    for override in args.particle_net:
        key, value = override.split("=")
        setattr(cfg.particle_net, key, int(value))
    if args.learning_rate:
        cfg.training.learning_rate = args.learning_rate
    preprocessor = JetPreprocessor.load(os.path.join(args.run, "preprocessing.json"))
    if preprocessor.pt_feature != args.pt_feature:
        # Refitted on the run's training jets with the other pt feature (same split, same seed).
        cfg.data.pt_feature, preprocessor = args.pt_feature, None
    classes = [JET_CLASSES.index(c) for c in args.classes.split(",")]
    num_particles = cfg.data.num_particles
    batch = cfg.training.batch_size

    training = load_training_data(cfg, args.data, preprocessor=preprocessor)
    preprocessor = training.preprocessor
    particles_norm, jets_norm, mask, labels = training.train_arrays
    keep = np.isin(labels, classes)
    particles_norm, jets_norm, mask, labels = (a[keep] for a in (particles_norm, jets_norm, mask, labels))

    def to_physical(sampled: np.ndarray, cond_jets: np.ndarray, cond_labels: np.ndarray) -> np.ndarray:
        return preprocessor.inverse(sampled, cond_jets, cond_labels)[0]

    # The 5th condition, log(m / pT) of the raw jets, standardised over the training jets.
    train_jets = training.sample.jets[training.train_idx][keep]  # [N, 4] raw (pT, eta, mass, N)
    train_log_ratio = np.log(train_jets[:, 2] / train_jets[:, 0])
    log_ratio_mean, log_ratio_std = train_log_ratio.mean(), train_log_ratio.std()

    def with_mass_ratio(cond_jets: np.ndarray, raw_jets: np.ndarray) -> np.ndarray:
        if not args.mass_ratio_condition:
            return cond_jets
        ratio = (np.log(raw_jets[:, 2] / raw_jets[:, 0]) - log_ratio_mean) / log_ratio_std
        return np.concatenate([cond_jets, ratio[:, None]], -1).astype(np.float32)

    jets_norm = with_mass_ratio(jets_norm, train_jets)

    onehot_all = np.eye(len(JET_CLASSES), dtype=np.float32)[labels]
    mask3_all = mask[..., None].astype(np.float32)
    steps_per_epoch = len(labels) // batch
    network = build_particle_net(
        cfg.particle_net,
        num_particles,
        num_jet_features=jets_norm.shape[1],
        embedding=cfg.embedding,
        seed=args.seed,
    )
    ema, optimizer, schedule = ema_optimizer_schedule(network, cfg.training, steps_per_epoch)
    decay = cfg.training.ema_decay
    print(f"particle network: {network.count_params():,} parameters, pt feature {args.pt_feature}, "
          f"classes {args.classes}, {args.epochs} epochs of {steps_per_epoch} steps", flush=True)  # fmt: skip

    train_step = make_train_step(network, ema, optimizer, schedule, decay, args.time_power)

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order, total = rng.permutation(len(labels)), 0.0
        for k in range(steps_per_epoch):
            i = order[k * batch : (k + 1) * batch]
            seed = tf.constant([args.seed * 100_003 + epoch, k], tf.int64)
            cond = {"jets": jets_norm[i], "class_onehot": onehot_all[i], "mask": mask3_all[i]}
            total += float(train_step(particles_norm[i], cond, seed))
        print(f"epoch {epoch + 1}: loss {total / steps_per_epoch:.4f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip

    denoiser = ema_denoiser(ema, schedule)
    for label in classes:
        truth, truth_jets = load_class(args.data, JET_CLASSES[label], num_particles, split="test")
        truth = recenter_particles(truth)
        n = min(args.jets, len(truth_jets) // 2)
        reference, other, other_jets = truth[:n], truth[n : 2 * n], truth_jets[n : 2 * n]
        cond_labels = np.full(n, label, np.int32)
        _, cond_jets, cond_mask = preprocessor.transform(JetSample(other, other_jets, cond_labels))
        mask3 = tf.constant(cond_mask[..., None].astype(np.float32))
        noise = tf.random.stateless_normal([n, num_particles, 3], seed=[args.seed, 1])
        cond = {
            "jets": tf.constant(with_mass_ratio(cond_jets, other_jets)),
            "class_onehot": tf.constant(np.eye(len(JET_CLASSES), dtype=np.float32)[cond_labels]),
            "mask": mask3,
        }
        for steps in [int(k) for k in args.steps.split(",")]:
            sampled = ddim_sample(denoiser, noise, schedule, steps, mask=mask3, cond=cond).numpy()
            generated = to_physical(sampled * cond_mask[..., None], cond_jets, cond_labels)
            mass_ref, mass_other, mass_gen = (relative_mass(p) for p in (reference, other, generated))
            m_over_pt = other_jets[:, 2] / other_jets[:, 0]
            real_ref, real_gen = reference[..., 3] > 0, generated[..., 3] > 0
            w1p = [
                wasserstein_distance(reference[..., k][real_ref], generated[..., k][real_gen])
                for k in range(3)
            ]
            w1m, floor = (1e3 * wasserstein_distance(mass_ref, m) for m in (mass_gen, mass_other))
            corr_truth, corr_gen = (np.corrcoef(m, m_over_pt)[0, 1] for m in (mass_other, mass_gen))
            print(
                f"{JET_CLASSES[label]} ({n} jets, {steps} steps): W1M {w1m:.2f} floor {floor:.2f} (x1e-3); "
                f"W1 eta {1e3 * w1p[0]:.2f} phi {1e3 * w1p[1]:.2f} pt {1e3 * w1p[2]:.3f} (x1e-3); "
                f"corr(mass, m/pT) truth {corr_truth:.3f} generated {corr_gen:.3f}",
                flush=True,
            )
            quantiles = [0.1, 0.5, 0.9]
            print(
                f"  relative mass mean / std / q10,50,90: truth {mass_other.mean():.4f} / "
                f"{mass_other.std():.4f}"
                f" / {np.round(np.quantile(mass_other, quantiles), 4)}; generated {mass_gen.mean():.4f} / "
                f"{mass_gen.std():.4f} / {np.round(np.quantile(mass_gen, quantiles), 4)}",
                flush=True,
            )
            if args.save:
                np.savez(
                    f"{args.save}-{JET_CLASSES[label]}-{steps}.npz",
                    reference=reference,
                    other=other,
                    other_jets=other_jets,
                    generated=generated,
                )


if __name__ == "__main__":
    main()
