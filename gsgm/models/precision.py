"""Mixed-precision copies of trained networks, for fast sampling (FPCD networks, U-Nets).

A copy computes its matmuls, convolutions and activations in 16 bits (Keras' ``mixed_bfloat16`` /
``mixed_float16`` policies: float32 variables, 16-bit compute) and holds the original's weights.
Layers for which 16 bits are too coarse stay float32; which ones is the caller's rule, since it knows
the network: time features (a 16-bit angle ``2 pi f t`` of ~100 rad is off by ~1 rad) and output
layers (cheap, and the sampler's update uses them). Keras' normalisation layers already compute their
statistics in float32 under a mixed policy.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

__all__ = ["MIXED_PRECISIONS", "mixed_precision_copy"]

#: precision -> Keras dtype policy of the copy.
MIXED_PRECISIONS = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def mixed_precision_copy(
    network: keras.Model, precision: str, keep_float32: Callable[[keras.layers.Layer], bool]
) -> keras.Model:
    """A copy of the functional ``network`` computing in ``precision`` ("bfloat16" or "float16").

    Args:
        network: a functional Keras model (its layers are rebuilt from their configs).
        precision: "bfloat16" or "float16".
        keep_float32: ``layer -> True`` for the layers that stay float32.

    Returns:
        A new model with the same inputs, outputs and weight values; its outputs are float32 where
        the output layers are kept float32, else 16-bit.
    """
    if precision not in MIXED_PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(MIXED_PRECISIONS)}, got {precision!r}")
    policy = MIXED_PRECISIONS[precision]

    def clone(layer):
        dtype = "float32" if keep_float32(layer) else policy
        return layer.__class__.from_config({**layer.get_config(), "dtype": dtype})

    previous = keras.config.dtype_policy()
    # Layers that create sublayers (an encoder block, MultiHeadAttention) give them the global policy.
    keras.config.set_dtype_policy(policy)
    try:
        copy = keras.models.clone_model(network, clone_function=clone)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(network.get_weights())
    return copy
