#!/usr/bin/env python
"""Train FPCD's jet network alone on a trained run's jets and report its jet-level W1 distances.

The jet network's loss does not depend on the particle network (FPCD trains the sum of two separate
losses), so its size and training can be varied here at a few percent of the full training's cost:
same preprocessing (the run's ``preprocessing.json``), the same training jets (the run's own split of
jetnet's train split into training and validation, ``load_training_data``), the run's optimizer and
cosine decay, EMA weights for sampling. For every class and DDIM step count it prints the W1 distance
of jet pT [GeV], eta, mass [GeV] and multiplicity between generated jets and held-out ones (jetnet's
valid + test split).

    python benchmarks/jet_network_alone.py --run runs/reference-long/run-30 \\
        --data runs/reference-long/data --blocks 5 --width 512 --epochs 48
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="trained FPCD run (its config and preprocessing)")
    parser.add_argument("--data", required=True, help="the run's JetNet-format directory")
    parser.add_argument("--blocks", type=int, help="ResNet blocks (default: the run's)")
    parser.add_argument("--width", type=int, help="layer width (default: the run's)")
    parser.add_argument("--epochs", type=int, help="epochs (default: the run's)")
    parser.add_argument(
        "--fourier-scale", type=float, help="Fourier scale of the time embedding (default: the run's)"
    )
    parser.add_argument(
        "--time-power",
        type=float,
        default=1.0,
        help="train on t = u**POWER, u uniform (1: the schedule's U(0, 1); > 1 favours low noise)",
    )
    parser.add_argument("--steps", default="64,256", help="comma-separated DDIM step counts")
    parser.add_argument("--jets", type=int, default=3000, help="generated and held-out jets per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jet-extras",
        choices=("run", "none", "pt_sum", "constituent_mass", "both"),
        default="run",
        help="jet features beside JetNet's four: the run's (its preprocessing file), or refit the "
        "preprocessing on the run's training jets with none, one or both of data.pt_sum and "
        "data.constituent_mass",
    )
    args = parser.parse_args()

    import tensorflow as tf
    from jet_alone_training import ema_denoiser, ema_optimizer_schedule, held_out_jets, make_train_step
    from scipy.stats import wasserstein_distance

    from gsgm.config import load_config
    from gsgm.data.preprocessing import JET_CLASSES, JetPreprocessor
    from gsgm.diffusion.ddim import ddim_sample
    from gsgm.families.fpcd import load_training_data
    from gsgm.models.jet_resnet import build_jet_net

    cfg = load_config(os.path.join(args.run, "config.json"))
    cfg.jet_net.num_blocks = args.blocks or cfg.jet_net.num_blocks
    cfg.jet_net.width = args.width or cfg.jet_net.width
    cfg.training.epochs = args.epochs or cfg.training.epochs
    cfg.embedding.fourier_scale = args.fourier_scale or cfg.embedding.fourier_scale
    preprocessor = JetPreprocessor.load(os.path.join(args.run, "preprocessing.json"))
    batch = cfg.training.batch_size
    if args.jet_extras != "run":
        cfg.data.pt_sum = args.jet_extras in ("pt_sum", "both")
        cfg.data.constituent_mass = args.jet_extras in ("constituent_mass", "both")
        preprocessor = None  # refit on the same training jets, with the config's jet features

    # The run's own training jets: its split into training and validation, its normalisation.
    training = load_training_data(cfg, args.data, preprocessor=preprocessor)
    preprocessor = training.preprocessor
    _, x_all, train_mask, train_labels = training.train_arrays
    onehot_all = np.eye(len(JET_CLASSES), dtype=np.float32)[train_labels]
    held_out = {jet_class: held_out_jets(args.data, jet_class, args.jets) for jet_class in cfg.data.classes}
    steps_per_epoch = len(x_all) // batch

    width = preprocessor.num_jet_features  # 4, or more with data.pt_sum / data.constituent_mass
    network = build_jet_net(
        cfg.jet_net, len(JET_CLASSES), embedding=cfg.embedding, seed=args.seed, num_jet_features=width
    )
    ema, optimizer, schedule = ema_optimizer_schedule(network, cfg.training, steps_per_epoch)
    decay = cfg.training.ema_decay
    print(f"jet network {cfg.jet_net.num_blocks} x {cfg.jet_net.width}: {network.count_params():,} "
          f"parameters, Fourier scale {cfg.embedding.fourier_scale:g}, t = u^{args.time_power:g}, "
          f"{cfg.training.epochs} epochs of {steps_per_epoch} steps", flush=True)  # fmt: skip

    train_step = make_train_step(network, ema, optimizer, schedule, decay, args.time_power)

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    for epoch in range(cfg.training.epochs):
        order, total = rng.permutation(len(x_all)), 0.0
        for k in range(steps_per_epoch):
            index = order[k * batch : (k + 1) * batch]
            seed = tf.constant([args.seed * 100_003 + epoch, k], tf.int64)
            total += float(train_step(x_all[index], {"class_onehot": onehot_all[index]}, seed))
        print(f"epoch {epoch + 1}: loss {total / steps_per_epoch:.4f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip

    denoiser = ema_denoiser(ema, schedule)
    n = args.jets
    for num_steps in (int(s) for s in args.steps.split(",")):
        for number, jet_class in enumerate(cfg.data.classes):
            label = JET_CLASSES.index(jet_class)
            onehot = tf.constant(np.eye(len(JET_CLASSES), dtype=np.float32)[np.full(n, label)])
            noise = tf.random.stateless_normal([n, width], seed=[args.seed + 7, number])
            normalised = ddim_sample(denoiser, noise, schedule, num_steps, cond={"class_onehot": onehot})
            jets = preprocessor.inverse_jets(normalised.numpy(), np.full(n, label))
            truth = held_out[jet_class]
            w1 = [wasserstein_distance(jets[:, k], truth[:, k]) for k in range(4)]
            full = [np.mean(sample[:, 3] == cfg.data.num_particles) for sample in (jets, truth)]
            full_train = np.mean(train_mask[train_labels == label].sum(axis=1) == cfg.data.num_particles)
            # The generated normalised features' spread against the training jets' (1 per feature
            # with the quantile transform): a sampler or network that narrows the target shows here.
            spread = normalised.numpy().std(axis=0) / x_all[train_labels == label].std(axis=0)
            print(f"{num_steps} steps, {jet_class}: W1 jet pT {w1[0]:.2f} GeV, eta {w1[1]:.4f}, "
                  f"mass {w1[2]:.2f} GeV, N {w1[3]:.3f}; full jets {full[0]:.3f} (held out {full[1]:.3f}, "
                  f"training {full_train:.3f}); "
                  f"std generated / training per normalised feature "
                  f"{' '.join(f'{r:.3f}' for r in spread)}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
