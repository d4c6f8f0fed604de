"""Fixed inputs of the redesign reference (tests/data/redesign_reference.npz): tiny seeded models and batches.

Shared by ``make_redesign_reference.py`` (which recorded the reference on the pre-redesign code) and
``tests/test_redesign_reference.py`` (which recomputes it with the current code). Only APIs that the
redesign keeps (config loaders, ``build_model``, ``build_image_model``, the models' constructors and
Keras steps) are used here, so both sides build bit-identical models and batches.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

REPO = Path(__file__).resolve().parents[2]

# Gaussian data N(MU, S^2) per element: its exact denoisers are known in closed form.
MU, S = 0.3, 0.5
# Noise range and data scale of the tiny image models (shipped-sample-like magnitudes).
SIGMA_MIN, SIGMA_MAX, SIGMA_DATA = 0.002, 1.3, 0.05


def exact_x0(z, alpha, sigma):
    """E[x | z] for x ~ N(MU, S^2) and z = alpha x + sigma eps (any schedule), elementwise."""
    return MU + alpha * S**2 / (alpha**2 * S**2 + sigma**2) * (z - alpha * MU)


def vp_cosine(t):
    t = tf.clip_by_value(tf.cast(t, tf.float32), 0.0, 1.0)
    return tf.sin(0.5 * np.pi * (1.0 - t)), tf.sin(0.5 * np.pi * t)


def exact_v_denoiser(z, t, **_):
    """Exact velocity of Gaussian data under the VP cosine schedule; t [B] in (0, 1]."""
    alpha, sigma = vp_cosine(t)
    shape = [-1] + [1] * (len(z.shape) - 1)
    alpha, sigma = tf.reshape(alpha, shape), tf.reshape(sigma, shape)
    x0 = exact_x0(z, alpha, sigma)
    eps = (z - alpha * x0) / sigma
    return alpha * eps - sigma * x0


def exact_ve_score(x, sigma, **_):
    """Score of N(MU, S^2 + sigma^2) (VE perturbation of the Gaussian data)."""
    sigma = tf.reshape(tf.cast(sigma, tf.float32), [-1] + [1] * (len(x.shape) - 1))
    return -(x - MU) / (S**2 + sigma**2)


def gaussian_noise(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def random_mask(batch, slots, seed):
    """[B, P] 0/1 mask with a leading block of real slots (at least one) per row."""
    counts = np.random.default_rng(seed).integers(1, slots + 1, size=batch)
    return (np.arange(slots)[None, :] < counts[:, None]).astype(np.float32)


def tiny_fpcd_config():
    from gsgm.config import load_config

    cfg = load_config(REPO / "configs" / "quick.json")
    cfg.embedding.fourier_features, cfg.embedding.time_dims, cfg.embedding.cond_dim = 4, [8, 8], 8
    cfg.jet_net.num_blocks, cfg.jet_net.width = 1, 16
    pn = cfg.particle_net
    pn.embed_dim, pn.num_transformer_blocks, pn.num_heads, pn.ffn_dim, pn.output_hidden_dim = 8, 1, 1, 16, 8
    cfg.training.seed = 3
    return cfg


def tiny_fpcd_model():
    from gsgm.families.fpcd import build_model

    cfg = tiny_fpcd_config()
    return build_model(cfg, cfg.data.num_particles, seed=3), cfg


def fpcd_batch(batch: int = 6, slots: int = 10, seed: int = 21) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(seed)
    mask = random_mask(batch, slots, seed + 1)[..., None]
    labels = rng.integers(0, 5, size=batch)
    return {
        "particles": tf.constant(rng.standard_normal((batch, slots, 3)).astype(np.float32) * mask),
        "jets": tf.constant(rng.standard_normal((batch, 4)).astype(np.float32)),
        "class_onehot": tf.constant(np.eye(5, dtype=np.float32)[labels]),
        "mask": tf.constant(mask),
    }


def multiplicity_mask(jets: np.ndarray, slots: int = 10) -> np.ndarray:
    """Particle mask [B, slots] from the (normalised) multiplicity feature jets[:, 3]."""
    counts = np.clip(np.round(jets[:, 3] * 2.0 + 5.0), 1, slots)
    return (np.arange(slots)[None, :] < counts[:, None]).astype(np.float32)


def tiny_image_config():
    from gsgm.config import load_images_config

    cfg = load_images_config(REPO / "configs" / "images_quick.json")
    for section in (cfg.score, cfg.consistency):
        unet = section.unet
        unet.base_channels, unet.channel_multipliers, unet.norm_groups, unet.time_features = 8, [1], 4, 8
    cfg.consistency.final_discretization = 10
    cfg.training.seed = 5
    cfg.noise.sigma_min, cfg.noise.sigma_max, cfg.noise.sigma_data = SIGMA_MIN, SIGMA_MAX, SIGMA_DATA
    return cfg


def tiny_image_model(kind: str, parameterization: str = "denoiser", **kwargs):
    """A tiny untrained ScoreImageModel ("score") or ConsistencyImageModel ("consistency")."""
    from gsgm.families.jet_images import build_image_model

    cfg = tiny_image_config()
    cfg.score.parameterization = parameterization
    return build_image_model(cfg.for_model(kind), **kwargs)


def image_batch(batch: int = 4, seed: int = 31) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(seed)
    occupied = rng.random((batch, 25, 25, 1)) < 0.08
    images = np.where(occupied, rng.exponential(0.1, (batch, 25, 25, 1)), 0.0).astype(np.float32)
    return {"images": tf.constant(images), "labels": tf.constant(rng.integers(0, 5, size=batch), tf.int32)}


def train_and_record(model, batch, prefix: str, out: dict, steps: int = 2) -> None:
    """Validation loss on a fresh eval counter, ``steps`` train steps, then weight checksums.

    Records ``{prefix}/val_loss``, ``{prefix}/train_losses`` and ``{prefix}/weights`` (per-variable
    sums of every weight the model saves, raw and EMA networks, in ``model.weights`` order).
    """
    model.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0))
    model.eval_counter.assign(0)
    logs = model.test_step(batch)
    out[f"{prefix}/val_loss"] = np.float32(logs["loss"])
    losses = []
    for _ in range(steps):
        for metric in model.metrics:
            metric.reset_state()
        losses.append(float(model.train_step(batch)["loss"]))
    out[f"{prefix}/train_losses"] = np.asarray(losses, np.float32)
    out[f"{prefix}/weights"] = np.asarray([np.sum(w.numpy()) for w in model.weights], np.float64)
