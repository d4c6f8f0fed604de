#!/usr/bin/env python
"""DDIM's narrowing of the sampled distribution, and DPM-Solver++(2M) on the same network evaluations.

Part 1 (always, seconds): Gaussian data x ~ N(mu, s^2) per dimension under FPCD's cosine VP schedule,
whose exact denoiser is known, x0_hat(z, t) = mu + s^2 alpha (z - alpha mu) / (alpha^2 s^2 + sigma^2).
For unit-Gaussian data DDIM multiplies the state by alpha_s alpha_t + sigma_s sigma_t = cos(pi / 2N) per
step of a uniform N-step grid, so its samples have standard deviation cos(pi / 2N)^N (1.9 % short at
64 steps); the table prints that value beside the measured std ratio of both solvers and several
(mu, s).

Part 2 (``--run``): a trained FPCD run's EMA jet network alone (the first stage of sampling, whose
multiplicity decides the particle masks), sampled with both solvers at each step count from the same
noise: the generated normalised features' std over the training jets' std (1 for each feature with the
quantile jet transform, whatever the solver's grid) and the fraction of jets that fill every particle
slot, beside the training split's and the held-out jets'. The two solvers are timed in the same process,
interleaved, on the same network.

    python benchmarks/ddim_narrowing.py
    python benchmarks/ddim_narrowing.py --run runs/reference/run-30 --data runs/reference/data \\
        --steps 16,64,1024 --jets 6000
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

#: (mu, s) of the Gaussian data of part 1
GAUSSIANS = ((0.0, 1.0), (0.0, 0.3), (1.5, 0.5), (-1.0, 2.0))


def gaussian_table(steps: list[int], samples: int, seed: int) -> None:
    """Part 1: std(generated) / s for Gaussian data with the exact denoiser, DDIM vs DPM-Solver++(2M)."""
    import tensorflow as tf

    from gsgm.diffusion import SOLVERS, VPCosineSchedule, ddim_sample

    schedule = VPCosineSchedule()
    mu = tf.constant([[m for m, _ in GAUSSIANS]], tf.float32)
    s = tf.constant([[w for _, w in GAUSSIANS]], tf.float32)

    def exact_denoiser(z, t):
        alpha, sigma = schedule.alpha_sigma(t)
        alpha, sigma = alpha[:, None], sigma[:, None]
        return mu + s**2 * alpha * (z - alpha * mu) / (alpha**2 * s**2 + sigma**2)

    noise = tf.random.stateless_normal([samples, len(GAUSSIANS)], seed=[seed, 1])
    print(f"Part 1: Gaussian data, exact denoiser, {samples:,} samples; std(generated) / (s std(noise))")
    header = " | ".join(f"mu={m:g}, s={w:g}" for m, w in GAUSSIANS)
    print(f"| steps | solver | cos(pi/2N)^N | {header} |")
    print("|---|---|---|" + "---|" * len(GAUSSIANS))
    for num_steps in steps:
        for solver in SOLVERS:
            generated = ddim_sample(exact_denoiser, noise, schedule, num_steps, solver=solver).numpy()
            # both solvers map z affinely for Gaussian data: dividing by the noise's own std makes the
            # ratio exact, free of the sample's fluctuation
            ratios = generated.std(axis=0) / noise.numpy().std(axis=0) / np.array([w for _, w in GAUSSIANS])
            cells = " | ".join(f"{r:.4f}" for r in ratios)
            print(
                f"| {num_steps} | {solver} | {np.cos(np.pi / (2 * num_steps)) ** num_steps:.4f} | {cells} |"
            )
    print(flush=True)


def jet_network_table(run: str, data: str, steps: list[int], jets: int, seed: int, rounds: int) -> None:
    """Part 2: the run's EMA jet network sampled with both solvers: spread, full-jet fraction, time."""
    import tensorflow as tf
    from jet_alone_training import held_out_jets

    from gsgm.data.preprocessing import JET_CLASSES
    from gsgm.diffusion import SOLVERS, ddim_sample
    from gsgm.families.fpcd import load_trained_model, load_training_data

    model, preprocessor, cfg = load_trained_model(run)
    training = load_training_data(cfg, data, preprocessor=preprocessor)
    _, x_train, train_mask, train_labels = training.train_arrays
    width = preprocessor.num_jet_features
    slots = cfg.data.num_particles
    print(f"Part 2: {run}, EMA jet network ({model.ema_jet_net.count_params():,} parameters), "
          f"{jets:,} jets per class; std generated / training per normalised jet feature, "
          f"fraction of jets with all {slots} slots filled")  # fmt: skip
    print("| class | steps | solver | std ratio per feature | full jets: generated / training / held out |")
    print("|---|---|---|---|---|")
    seconds = {(solver, n): [] for solver in SOLVERS for n in steps}
    for number, jet_class in enumerate(cfg.data.classes):
        label = JET_CLASSES.index(jet_class)
        onehot = tf.constant(np.eye(len(JET_CLASSES), dtype=np.float32)[np.full(jets, label)])
        noise = tf.random.stateless_normal([jets, width], seed=[seed, number])
        of_class = train_labels == label
        full_train = np.mean(train_mask[of_class].sum(axis=1) == slots)
        full_held = np.mean(held_out_jets(data, jet_class, jets)[:, 3] == slots)
        for num_steps in steps:
            for solver in SOLVERS:
                for _ in range(rounds if number == 0 else 1):  # timed rounds on the first class only
                    start = time.perf_counter()
                    normalised = ddim_sample(
                        model.jet_denoiser,
                        noise,
                        model.schedule,
                        num_steps,
                        cond={"class_onehot": onehot},
                        solver=solver,
                    ).numpy()
                    if number == 0:
                        seconds[(solver, num_steps)].append(time.perf_counter() - start)
                spread = normalised.std(axis=0) / x_train[of_class].std(axis=0)
                raw = preprocessor.inverse_jets(normalised, np.full(jets, label))
                full = np.mean(raw[:, 3] == slots)
                print(f"| {jet_class} | {num_steps} | {solver} | {' '.join(f'{r:.3f}' for r in spread)} | "
                      f"{full:.4f} / {full_train:.4f} / {full_held:.4f} |", flush=True)  # fmt: skip
    print(f"\nTime of the jet stage for {jets:,} jets, class {cfg.data.classes[0]}, minimum of {rounds} "
          f"rounds after a first traced call (same process, same network):")  # fmt: skip
    for num_steps in steps:
        # the first call of each (solver, steps) traces the loop: the minimum over the later rounds
        times = {
            solver: min(seconds[(solver, num_steps)][1:] or seconds[(solver, num_steps)])
            for solver in SOLVERS
        }
        ratio = times["dpm++2m"] / times["ddim"]
        print(f"  {num_steps} steps: ddim {times['ddim']:.3f} s, dpm++2m {times['dpm++2m']:.3f} s "
              f"(ratio {ratio:.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", default="4,16,64,256", help="comma-separated step counts")
    parser.add_argument("--samples", type=int, default=200_000, help="Gaussian samples of part 1")
    parser.add_argument("--run", help="trained FPCD run for part 2")
    parser.add_argument("--data", help="the run's JetNet-format directory (part 2)")
    parser.add_argument("--jets", type=int, default=6000, help="jets per class of part 2")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per solver and step count")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.run and not args.data:
        parser.error("--run needs --data (the run's JetNet-format directory)")
    steps = [int(s) for s in args.steps.split(",")]
    print(f"{platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}\n")  # fmt: skip
    gaussian_table(steps, args.samples, args.seed)
    if args.run:
        jet_network_table(args.run, args.data, steps, args.jets, args.seed, max(2, args.rounds))


if __name__ == "__main__":
    main()
