"""Forward diffusion and the v-prediction loss (FPCD eq. 1).

Shapes: data ``[B, ...]`` (batch first, any rank), times ``[B]``; masks ``[B, P]`` or ``[B, P, 1]``
(any shape that is a prefix of the data's, optionally with trailing unit axes) with 1 for real entries
and 0 for zero-padding.
"""

from __future__ import annotations

import tensorflow as tf

from gsgm.diffusion.parameterization import expand_like
from gsgm.diffusion.schedule import as_float_tensor, cosine_alpha_sigma


def _mask_like(mask, x) -> tf.Tensor:
    """``mask`` cast to ``x``'s dtype with trailing unit axes so that it broadcasts against ``x``."""
    return expand_like(as_float_tensor(mask, x.dtype), x)


def diffuse(x, t, noise, mask=None) -> tuple[tf.Tensor, tf.Tensor]:
    """Sample ``z_t ~ q(z_t | x)`` and the velocity target for the network.

    Args:
        x: clean data ``[B, ...]``.
        t: diffusion time ``[B]`` (or a scalar) in ``[0, 1]``.
        noise: standard normal ``eps`` with the shape of ``x``.
        mask: optional ``[B, P]`` / ``[B, P, 1]`` mask. The noise is multiplied by it (FPCD section III:
            padded particles carry no noise), so ``z_t`` and ``v`` are exactly 0 on padding when ``x`` is.

    Returns:
        ``(z_t, v)`` with the shape and dtype of ``x``: ``z_t = alpha x + sigma eps`` and
        ``v = alpha eps - sigma x``. Finite for every ``t`` in ``[0, 1]`` including the endpoints.
    """
    x = as_float_tensor(x)
    noise = as_float_tensor(noise, x.dtype)
    if mask is not None:
        noise = noise * _mask_like(mask, x)
    alpha, sigma = cosine_alpha_sigma(as_float_tensor(t, x.dtype))
    alpha, sigma = expand_like(alpha, x), expand_like(sigma, x)
    return alpha * x + sigma * noise, alpha * noise - sigma * x


def v_loss(v_true, v_pred, mask=None) -> tf.Tensor:
    """Mean squared error between true and predicted velocity (FPCD eq. 1).

    Args:
        v_true: target velocity ``[B, ...]``.
        v_pred: network output, same shape.
        mask: optional ``[B, P]`` / ``[B, P, 1]`` mask of real entries.

    Returns:
        Scalar: without a mask, the mean over all entries; with a mask, the sum of squared errors over
        real entries divided by the number of real entries (particles times features), i.e. the mean
        over real entries only. The normalisation is over the whole batch, so every real particle has
        the same weight (jets with more particles weigh more).
    """
    v_true = as_float_tensor(v_true)
    v_pred = as_float_tensor(v_pred, v_true.dtype)
    sq = tf.square(v_true - v_pred)
    if mask is None:
        return tf.reduce_mean(sq)
    weights = tf.broadcast_to(_mask_like(mask, sq), tf.shape(sq))
    # Divide by the number of real entries, not by the padded size: with 150 slots and ~30 real
    # particles a padded mean would shrink the loss (and its gradient, i.e. the effective learning rate)
    # by the padding fraction, which varies from batch to batch and between the 30- and 150-particle
    # datasets. The real-count mean equals the unmasked loss when nothing is padded. The max() guards
    # an all-padding batch (loss 0 instead of 0/0).
    count = tf.maximum(tf.reduce_sum(weights), tf.ones([], sq.dtype))
    # where() rather than sq * weights: garbage (inf/nan) predicted on padding must not leak in.
    return tf.reduce_sum(tf.where(weights > 0, sq * weights, tf.zeros_like(sq))) / count
