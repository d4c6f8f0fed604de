"""Two-stage sampling of variable-length point clouds (FPCD section III).

First the jet-level features (kinematics and multiplicity) are sampled; the multiplicity becomes a mask;
then the particles are sampled from masked noise, conditioned on the jet features. Networks enter only
as denoiser callables, so this serves any pair of jet/particle denoisers (base or distilled).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from gsgm.diffusion.ddim import ddim_sample
from gsgm.diffusion.schedules import Schedule

# Denoisers take their conditions as keyword arguments, so one stable callable serves every batch
# without retracing (see gsgm.diffusion.ddim).
JetDenoiser = Callable[..., tf.Tensor]
ParticleDenoiser = Callable[..., tf.Tensor]


def sample_point_clouds(
    jet_denoiser: JetDenoiser,
    particle_denoiser: ParticleDenoiser,
    mask_from_jets: Callable[[np.ndarray], np.ndarray],
    class_onehot: np.ndarray,
    num_particles: int,
    num_particle_features: int,
    num_jet_features: int,
    num_steps: int,
    seed: int,
    schedule: Schedule,
    progress: bool = False,
    num_buckets: int = 1,
    jit_compile: bool = False,
    solver: str = "ddim",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample normalised jets and particles with DDIM, jets first.

    Args:
        jet_denoiser: ``(z [B, J], t [B], *, class_onehot [B, C]) -> x0_hat [B, J]`` (a
            :mod:`gsgm.diffusion.denoisers` denoiser, e.g. a ``VDenoiser``).
        particle_denoiser: ``(z [B, P, F], t [B], *, jets [B, J], class_onehot [B, C], mask [B, P, 1])
            -> x0_hat [B, P, F]``.
        mask_from_jets: normalised jets [B, J] -> particle mask [B, P] (0/1) from the sampled multiplicity.
        class_onehot: [B, C] conditions, one row per jet to generate.
        num_particles, num_particle_features, num_jet_features: P, F and J.
        num_steps: DDIM steps for each of the two stages (network evaluations per stage).
        seed: seed of the initial noise (same seed -> same samples).
        schedule: the noise schedule of both networks (FPCD: ``VPCosineSchedule()``).
        progress: show progress bars (CLI use).
        num_buckets: > 1 sorts the jets by sampled multiplicity into this many groups and runs the
            particle network on each group cropped to its largest multiplicity, so padded slots beyond
            it are never computed. The network is permutation-equivariant and masked, so the result
            equals the uncropped one up to float round-off; the noise is the same in both modes.
        jit_compile: compile each stage's DDIM loop with XLA (one compiled function per bucket shape,
            cached by TensorFlow); the same step count and, up to float round-off, the same samples.
        solver: ODE solver of both stages, "ddim" or "dpm++2m" (``ddim_sample``'s ``solver``).

    Returns:
        (jets_norm [B, J], particles_norm [B, P, F] with padded slots 0, mask [B, P]) as numpy arrays.
    """
    onehot = tf.convert_to_tensor(class_onehot, tf.float32)
    batch = int(onehot.shape[0])
    jet_seed, particle_seed = tf.random.experimental.stateless_split(tf.constant([seed, 0], tf.int64), 2)
    jet_noise = tf.random.stateless_normal([batch, num_jet_features], seed=jet_seed)
    jets = ddim_sample(
        jet_denoiser,
        jet_noise,
        schedule,
        num_steps,
        progress=progress,
        cond={"class_onehot": onehot},
        jit_compile=jit_compile,
        solver=solver,
    )
    jets_np = np.asarray(jets, dtype=np.float32)
    mask = np.asarray(mask_from_jets(jets_np), dtype=np.float32)
    particle_noise = tf.random.stateless_normal(
        [batch, num_particles, num_particle_features], seed=particle_seed
    )
    particles = np.zeros((batch, num_particles, num_particle_features), np.float32)
    for index in _multiplicity_buckets(mask, num_buckets):
        width = _occupied_width(mask[index])
        crop_mask = tf.convert_to_tensor(mask[index, :width, None])
        particles[index, :width] = ddim_sample(
            particle_denoiser,
            tf.gather(particle_noise, index)[:, :width],
            schedule,
            num_steps,
            mask=crop_mask,
            progress=progress,
            jit_compile=jit_compile,
            solver=solver,
            cond={
                "jets": tf.gather(jets, index),
                "class_onehot": tf.gather(onehot, index),
                "mask": crop_mask,
            },
        ).numpy()
    return jets_np, particles * mask[..., None], mask


def _multiplicity_buckets(mask: np.ndarray, num_buckets: int, min_saving: float = 0.25) -> list[np.ndarray]:
    """Split jet indices into up to ``num_buckets`` groups of similar multiplicity (largest first).

    Smaller batches run less efficiently, so the split is kept only if cropping each group to its
    widest jet removes at least ``min_saving`` of the particle slots; otherwise one group is returned
    (e.g. 30-particle jets, which nearly all fill every slot).
    """
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
    everything = [np.arange(mask.shape[0])]
    if num_buckets == 1 or mask.shape[0] == 0:
        return everything
    order = np.argsort(-mask.sum(axis=1), kind="stable")
    buckets = [chunk for chunk in np.array_split(order, num_buckets) if chunk.size]
    cropped = sum(len(chunk) * _occupied_width(mask[chunk]) for chunk in buckets)
    if cropped > (1.0 - min_saving) * mask.shape[0] * _occupied_width(mask):
        return everything
    return buckets


def _occupied_width(mask: np.ndarray) -> int:
    """Index of the last slot that is real in any jet, plus one (at least 1)."""
    occupied = np.nonzero(mask.any(axis=0))[0]
    return int(occupied[-1]) + 1 if occupied.size else 1
