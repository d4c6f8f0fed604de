"""Permutation-equivariant transformer for the phase-space models of N = 10 particles (appendix A.2).

The paper uses a Point-Edge Transformer (PET, "small": 8 blocks, 8 heads, latent 128); this is a
compact transformer of the same kind, written from the FPCD particle network's blocks
(:mod:`gsgm.models.particle_transformer`)::

    c   = SiLU(Dense_d(sinusoidal(t)))                     [B, d]      time embedding
    h   = Dense_d([x_i, c])                per particle     [B, N, d]
    repeat depth: pre-LayerNorm encoder block (full self-attention over the N particles, FFN 2d)
    out = Dense_3(SiLU(Dense_d(LN(h) + h_in)))  per particle, output layer zero-initialised

Every layer acts per particle except attention, there is no positional encoding and no padding (a
phase-space event has exactly N particles), so permuting the input particles permutes the output
the same way (tested). The local (k-nearest-neighbour) attention layers of PET are not included.
"""

from __future__ import annotations

import keras

from gsgm.models.particle_transformer import SetConditionedDense, TransformerEncoderBlock
from gsgm.models.phase_space_mlp import SinusoidalEmbedding

__all__ = ["build_phase_space_transformer"]


def build_phase_space_transformer(
    num_particles: int | None,
    width: int = 128,
    depth: int = 8,
    num_heads: int = 8,
    time_dim: int = 64,
    seed: int = 0,
) -> keras.Model:
    """Functional model {"x": [B, N, 3], "t": [B]} -> [B, N, 3] (weights fixed by ``seed``).

    ``num_particles`` None accepts any N (no weight depends on N); ``width`` must be a multiple of
    ``num_heads``.
    """
    if width % num_heads:
        raise ValueError(f"width ({width}) must be a multiple of num_heads ({num_heads})")
    keras.utils.set_random_seed(seed)
    x = keras.Input((num_particles, 3), name="x")
    t = keras.Input((), name="t")
    c = keras.layers.Dense(width, activation="silu", name="time_dense")(SinusoidalEmbedding(time_dim)(t))
    h_in = SetConditionedDense(width, name="input_dense")([x, c])
    h = h_in
    for b in range(depth):
        h = TransformerEncoderBlock(width, num_heads, 2 * width, name=f"block{b}")(h, None)
    h = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(h)
    h = keras.layers.Add(name="long_skip")([h, h_in])
    h = keras.layers.Dense(width, activation="silu", name="head_dense")(h)
    out = keras.layers.Dense(3, kernel_initializer="zeros", bias_initializer="zeros", name="output")(h)
    return keras.Model({"x": x, "t": t}, out, name="phase_space_transformer")
