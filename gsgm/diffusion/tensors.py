"""Two tensor helpers every module of gsgm.diffusion uses: dtype normalisation and batch broadcasting."""

from __future__ import annotations

import tensorflow as tf


def as_float_tensor(x, dtype=None) -> tf.Tensor:
    """``x`` (tensor, numpy array or Python number) as a floating tensor.

    Floating inputs keep their dtype unless ``dtype`` is given; integer and Python inputs become
    ``dtype`` or float32.
    """
    x = tf.convert_to_tensor(x)
    if dtype is not None:
        return tf.cast(x, dtype) if x.dtype != dtype else x
    if not x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    return x


def expand_like(a, x) -> tf.Tensor:
    """Append trailing unit axes to ``a`` so that it broadcasts against ``x`` along the batch axis.

    Args:
        a: tensor of rank ``r <= rank(x)`` whose shape is a prefix of ``x``'s (e.g. ``[B]`` against
            ``[B, P, F]``), or a scalar (returned unchanged: it already broadcasts).
        x: reference tensor ``[B, ...]``.

    Returns:
        ``a`` reshaped to ``shape(a) + [1] * (rank(x) - r)``.
    """
    a = tf.convert_to_tensor(a)
    x = tf.convert_to_tensor(x)
    rank_a, rank_x = a.shape.rank, x.shape.rank
    if rank_a is None or rank_x is None:
        # Unknown static rank (rare inside tf.function): do it dynamically.
        extra = tf.maximum(tf.rank(x) - tf.rank(a), 0)
        return tf.reshape(a, tf.concat([tf.shape(a), tf.ones([extra], tf.int32)], axis=0))
    if rank_a == 0 or rank_a >= rank_x:
        return a
    return tf.reshape(a, tf.concat([tf.shape(a), tf.ones([rank_x - rank_a], tf.int32)], axis=0))


def batch_times(t, x) -> tf.Tensor:
    """``t`` (scalar or ``[B]``) as a ``[B]`` tensor in ``x``'s dtype, ``B = shape(x)[0]``."""
    t = as_float_tensor(t, x.dtype)
    return tf.broadcast_to(t, tf.shape(x)[:1]) if t.shape.rank == 0 else t
