"""Implicit score matching (Hyvarinen 2005; phase-space paper eq. 5), for low-dimensional data.

J(theta) = E_x [ |s_theta(x)|^2 / 2 + div_x s_theta(x) ] is minimised by the score of the data law
without knowing it. The divergence is the exact trace of the Jacobian (one backward pass per input
dimension), so this is for small D (the paper uses it for 3 particles, D = 9; for large D it uses the
noise-prediction loss of :mod:`gsgm.diffusion.qspace`). Works on any ``[B, ...]`` shape.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

__all__ = ["implicit_score_matching_terms"]


def implicit_score_matching_terms(score_fn: Callable[[tf.Tensor], tf.Tensor], x) -> tf.Tensor:
    """Per-sample ``|s(x)|^2 / 2 + div s(x)`` [B] for ``score_fn: [B, ...] -> [B, ...]``.

    Differentiable in the parameters of ``score_fn`` (the Jacobian is taken in an inner tape).
    """
    x = tf.convert_to_tensor(x)
    shape = tf.shape(x)
    flat = tf.reshape(x, [shape[0], -1])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        s = tf.reshape(score_fn(tf.reshape(flat, shape)), tf.shape(flat))
    jacobian = tape.batch_jacobian(s, flat)  # [B, D, D]
    return 0.5 * tf.reduce_sum(tf.square(s), axis=-1) + tf.linalg.trace(jacobian)
