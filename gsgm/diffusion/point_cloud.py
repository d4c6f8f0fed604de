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
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample normalised jets and particles with DDIM, jets first.

    Args:
        jet_denoiser: ``(z [B, J], t [B], *, class_onehot [B, C]) -> v_hat [B, J]``.
        particle_denoiser: ``(z [B, P, F], t [B], *, jets [B, J], class_onehot [B, C], mask [B, P, 1])
            -> v_hat [B, P, F]``.
        mask_from_jets: normalised jets [B, J] -> particle mask [B, P] (0/1) from the sampled multiplicity.
        class_onehot: [B, C] conditions, one row per jet to generate.
        num_particles, num_particle_features, num_jet_features: P, F and J.
        num_steps: DDIM steps for each of the two stages (network evaluations per stage).
        seed: seed of the initial noise (same seed -> same samples).
        progress: show progress bars (CLI use).

    Returns:
        (jets_norm [B, J], particles_norm [B, P, F] with padded slots 0, mask [B, P]) as numpy arrays.
    """
    onehot = tf.convert_to_tensor(class_onehot, tf.float32)
    batch = int(onehot.shape[0])
    jet_seed, particle_seed = tf.random.experimental.stateless_split(tf.constant([seed, 0], tf.int64), 2)
    jet_noise = tf.random.stateless_normal([batch, num_jet_features], seed=jet_seed)
    jets = ddim_sample(
        jet_denoiser, jet_noise, num_steps, progress=progress, extra_args={"class_onehot": onehot}
    )
    jets_np = np.asarray(jets, dtype=np.float32)
    mask = np.asarray(mask_from_jets(jets_np), dtype=np.float32)
    mask_tf = tf.convert_to_tensor(mask[..., None])
    particle_noise = tf.random.stateless_normal(
        [batch, num_particles, num_particle_features], seed=particle_seed
    )
    particles = ddim_sample(
        particle_denoiser,
        particle_noise,
        num_steps,
        mask=mask_tf,
        progress=progress,
        extra_args={"jets": jets, "class_onehot": onehot, "mask": mask_tf},
    )
    return jets_np, np.asarray(particles, dtype=np.float32) * mask[..., None], mask
