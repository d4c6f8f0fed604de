"""The score / noise / velocity MLP of the phase-space paper's 3-particle models (appendix A.1).

x [B, N, 3] (flattened to 3N inputs) and time t [B] in [0, 1] -> [B, N, 3]. The time enters through
a sinusoidal embedding (dimension 64 in the paper, geometric frequencies as in transformers) appended
to the inputs; ``depth`` hidden layers of ``width`` (paper: 4 x 256) with SiLU; the output layer
starts at zero (the paper zero-initialises the last layer), so an untrained model predicts 0.
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = ["SinusoidalEmbedding", "build_phase_space_mlp"]


@keras.saving.register_keras_serializable(package="gsgm")
class SinusoidalEmbedding(keras.layers.Layer):
    """t [B] -> [B, dim]: sin and cos of t * 1000 * 10000^(-k / (dim/2)), k = 0 .. dim/2 - 1."""

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        if dim < 2 or dim % 2:
            raise ValueError(f"the time embedding dimension must be even and >= 2, got {dim}")
        self.dim = int(dim)

    def call(self, t):
        half = self.dim // 2
        freqs = ops.exp(-math.log(10000.0) * ops.arange(half, dtype="float32") / half)
        # scaled by 1000: t in [0, 1] plays the role of a step index in [0, 1000]
        angle = ops.reshape(ops.cast(t, "float32"), (-1, 1)) * 1000.0 * freqs[None, :]
        return ops.concatenate([ops.sin(angle), ops.cos(angle)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


def build_phase_space_mlp(
    num_particles: int, width: int = 256, depth: int = 4, time_dim: int = 64, seed: int = 0
) -> keras.Model:
    """Functional model {"x": [B, N, 3], "t": [B]} -> [B, N, 3] (weights fixed by ``seed``)."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((num_particles, 3), name="x")
    t = keras.Input((), name="t")
    h = keras.layers.Concatenate()([keras.layers.Flatten()(x), SinusoidalEmbedding(time_dim)(t)])
    for _ in range(depth):
        h = keras.layers.Dense(width, activation="silu")(h)
    out = keras.layers.Dense(3 * num_particles, kernel_initializer="zeros", bias_initializer="zeros")(h)
    return keras.Model(
        {"x": x, "t": t}, keras.layers.Reshape((num_particles, 3))(out), name="phase_space_mlp"
    )
