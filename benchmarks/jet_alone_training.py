"""Shared pieces of the networks-alone diagnostics (jet_network_alone.py, jet_eta_point_mass.py,
particle_network_alone.py).

Both train FPCD's jet network by itself (its loss does not involve the particle network) with the
v-prediction loss, an EMA copy for sampling, and compare generated jets with jetnet's held-out split.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from gsgm.data.jetnet_format import read_jetnet_file
from gsgm.data.loading import jetnet_split_indices
from gsgm.diffusion import VDenoiser, diffuse_with_v_target, masked_mse
from gsgm.training.base_model import exponential_moving_average


def held_out_jets(data_dir: str, jet_class: str, num_jets: int) -> np.ndarray:
    """[num_jets, 4] raw jet features (pT [GeV], eta, mass [GeV], N) of jetnet's valid + test split."""
    _, jets = read_jetnet_file(os.path.join(data_dir, f"{jet_class}.hdf5"))
    held = np.concatenate([jetnet_split_indices(len(jets), split) for split in ("valid", "test")])
    return jets[held][:num_jets]


def ema_optimizer_schedule(network, training_cfg, steps_per_epoch: int):
    """``(ema, optimizer, schedule)`` for training ``network`` alone as the run trains it.

    ``ema`` is a clone with the same weights, the optimizer the run's (cosine decay over
    ``training_cfg.epochs * steps_per_epoch``), the schedule FPCD's cosine VP schedule.
    """
    import keras

    from gsgm.diffusion import VPCosineSchedule
    from gsgm.training.optim import make_optimizer

    ema = keras.models.clone_model(network)
    ema.set_weights(network.get_weights())
    return ema, make_optimizer(training_cfg, steps_per_epoch), VPCosineSchedule()


def make_train_step(network, ema, optimizer, schedule, ema_decay: float, time_power: float = 1.0):
    """A compiled ``step(x [B, ...], cond {name: [B, ...]}, seed [2] int64) -> loss`` of the v-loss.

    ``cond`` holds the network's inputs besides ``z`` and ``t`` (``class_onehot``; for the particle
    network also ``jets`` and ``mask``); a ``mask`` [B, P, 1] also masks the noise and the loss, as in
    FPCD's training. Trains on ``t = u ** time_power`` (u the schedule's training times) and updates
    ``ema`` with ``ema_decay`` after every optimizer step.
    """

    @tf.function
    def train_step(x, cond, seed):
        time_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        t = schedule.training_times(tf.shape(x)[:1], time_seed) ** time_power
        noise = tf.random.stateless_normal(tf.shape(x), seed=noise_seed)
        mask = cond.get("mask")
        z, v = diffuse_with_v_target(x, t, noise, schedule, mask=mask)
        with tf.GradientTape() as tape:
            loss = masked_mse(v, network({"z": z, "t": t, **cond}, training=True), mask)
        gradients = tape.gradient(loss, network.trainable_variables)
        optimizer.apply_gradients(zip(gradients, network.trainable_variables, strict=True))
        exponential_moving_average(network, ema, ema_decay)
        return loss

    return train_step


def ema_denoiser(ema, schedule) -> VDenoiser:
    """The EMA network as a denoiser for ``ddim_sample`` (condition: the network's inputs besides z, t)."""

    def velocity(z, t, **cond):
        return ema({"z": z, "t": t, **cond}, training=False)

    return VDenoiser(velocity, schedule)
