"""Time and condition embedding shared by the FPCD jet and particle networks.

The diffusion time t in [0, 1] is mapped to random Fourier features [sin(2 pi f t), cos(2 pi f t)]
with fixed Gaussian frequencies f, then through fully connected layers (paper: 32 and 64 nodes).
That time embedding is concatenated with the conditions (class one-hot, and for the particle net the
normalised jet features) and mixed by one more fully connected layer (paper: 64 nodes). Each network
concatenates the result with its own inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import ops

from gsgm.config import EmbeddingConfig

__all__ = ["GaussianFourierFeatures", "condition_embedding"]


@keras.saving.register_keras_serializable(package="gsgm")
class GaussianFourierFeatures(keras.layers.Layer):
    """Random Fourier features of a scalar: t [B] or [B, 1] -> [B, 2 * num_features].

    The frequencies are drawn once from N(0, scale^2) (cycles per unit t) with a fixed seed and kept as a
    non-trainable weight, so they are saved with the model and a reloaded model sees the same features.
    """

    def __init__(self, num_features: int, scale: float, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.num_features = int(num_features)
        self.scale = float(scale)
        self.seed = int(seed)

    def build(self, input_shape):
        self.frequencies = self.add_weight(
            name="frequencies",
            shape=(self.num_features,),
            initializer=keras.initializers.RandomNormal(stddev=self.scale, seed=self.seed),
            trainable=False,
        )

    def call(self, t):
        t = ops.reshape(ops.cast(t, self.compute_dtype), (-1, 1))
        angle = (2.0 * math.pi) * t * self.frequencies[None, :]
        return ops.concatenate([ops.sin(angle), ops.cos(angle)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * self.num_features)

    def get_config(self):
        return {
            **super().get_config(),
            "num_features": self.num_features,
            "scale": self.scale,
            "seed": self.seed,
        }


def condition_embedding(
    t,
    conditions: Sequence,
    cfg: EmbeddingConfig,
    leaky_slope: float,
    seed: int,
    prefix: str,
):
    """Functional-API block: embedding [B, cfg.cond_dim] of time ``t`` and the ``conditions``.

    Args:
        t: symbolic [B, 1] diffusion time in [0, 1].
        conditions: symbolic [B, n_i] tensors (class one-hot, normalised jet features) appended to the
            time embedding before the mixing layer.
        cfg: sizes (Fourier features, time_dims, cond_dim).
        leaky_slope: negative slope of the LeakyReLU activations (that of the host network).
        seed: seed of the fixed Fourier frequencies.
        prefix: layer-name prefix, so the two networks' layers have distinct, greppable names.
    """
    act = keras.layers.LeakyReLU(negative_slope=leaky_slope, name=f"{prefix}_time_act")
    fourier = GaussianFourierFeatures(
        cfg.fourier_features, cfg.fourier_scale, seed=seed, name=f"{prefix}_fourier"
    )
    h = fourier(t)
    # Activation between the time layers only: the last one is linear, because it is immediately
    # concatenated with the conditions and mixed by the (activated) cond layer below.
    for i, width in enumerate(cfg.time_dims):
        h = keras.layers.Dense(width, name=f"{prefix}_time_dense{i}")(h)
        if i < len(cfg.time_dims) - 1:
            h = act(h)
    h = keras.layers.Concatenate(axis=-1, name=f"{prefix}_cond_concat")([h, *conditions])
    h = keras.layers.Dense(cfg.cond_dim, name=f"{prefix}_cond_dense")(h)
    return keras.layers.LeakyReLU(negative_slope=leaky_slope, name=f"{prefix}_cond_act")(h)
