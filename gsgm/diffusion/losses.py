"""Forward diffusion and the regression losses: v, eps, denoising score matching (any schedule).

Shapes: data ``[B, ...]`` (batch first, any rank), times ``[B]`` in the schedule's time coordinate;
masks ``[B, P]`` or ``[B, P, 1]`` (any shape that is a prefix of the data's, optionally with trailing
unit axes) with 1 for real entries and 0 for zero-padding. The consistency loss lives in
:mod:`gsgm.diffusion.consistency`, the improved-DDPM hybrid loss in :mod:`gsgm.diffusion.vlb`.
"""

from __future__ import annotations

import tensorflow as tf

from gsgm.diffusion.schedules import Schedule, scales_like
from gsgm.diffusion.tensors import as_float_tensor, expand_like


def _mask_like(mask, x) -> tf.Tensor:
    """``mask`` cast to ``x``'s dtype with trailing unit axes so that it broadcasts against ``x``."""
    return expand_like(as_float_tensor(mask, x.dtype), x)


def _masked_noise(noise, x, mask) -> tf.Tensor:
    noise = as_float_tensor(noise, x.dtype)
    return noise if mask is None else noise * _mask_like(mask, x)


def diffuse(x, t, noise, schedule: Schedule, mask=None) -> tf.Tensor:
    """Sample ``z_t ~ q(z_t | x) = N(alpha_t x, sigma_t^2)``: ``z_t = alpha_t x + sigma_t eps``.

    Args:
        x: clean data ``[B, ...]``.
        t: times ``[B]`` (or a scalar) of ``schedule``.
        noise: standard normal ``eps`` with the shape of ``x``.
        schedule: the noise schedule.
        mask: optional ``[B, P]`` / ``[B, P, 1]`` mask. The noise is multiplied by it (FPCD section III:
            padded particles carry no noise), so ``z_t`` is exactly 0 on padding when ``x`` is.

    Returns:
        ``z_t`` with the shape and dtype of ``x``; finite on the whole time range.
    """
    x = as_float_tensor(x)
    noise = _masked_noise(noise, x, mask)
    alpha, sigma = scales_like(schedule, t, x)
    return alpha * x + sigma * noise


def diffuse_with_v_target(x, t, noise, schedule: Schedule, mask=None) -> tuple[tf.Tensor, tf.Tensor]:
    """``(z_t, v)``: :func:`diffuse` and :func:`v_target` from one evaluation of the schedule and mask.

    What a v-prediction training step needs: one evaluation of ``alpha, sigma`` and one masked noise,
    instead of two of each when :func:`diffuse` and :func:`v_target` are called separately.
    """
    x = as_float_tensor(x)
    noise = _masked_noise(noise, x, mask)
    alpha, sigma = scales_like(schedule, t, x)
    return alpha * x + sigma * noise, alpha * noise - sigma * x


def v_target(x, noise, t, schedule: Schedule, mask=None) -> tf.Tensor:
    """Velocity ``v = alpha_t eps - sigma_t x`` of the latent :func:`diffuse` draws (masked noise)."""
    x = as_float_tensor(x)
    noise = _masked_noise(noise, x, mask)
    alpha, sigma = scales_like(schedule, t, x)
    return alpha * noise - sigma * x


def masked_mse(target, prediction, mask=None) -> tf.Tensor:
    """Mean squared error, over real entries only when a mask is given.

    Args:
        target, prediction: ``[B, ...]``.
        mask: optional ``[B, P]`` / ``[B, P, 1]`` mask of real entries.

    Returns:
        Scalar: without a mask, the mean over all entries; with a mask, the sum of squared errors over
        real entries divided by the number of real entries (particles times features). The
        normalisation is over the whole batch, so every real particle has the same weight.
    """
    target = as_float_tensor(target)
    prediction = as_float_tensor(prediction, target.dtype)
    sq = tf.square(target - prediction)
    if mask is None:
        return tf.reduce_mean(sq)
    weights = tf.broadcast_to(_mask_like(mask, sq), tf.shape(sq))
    # Divide by the number of real entries, not by the padded size: with 150 slots and ~30 real
    # particles a padded mean would shrink the loss (and its gradient, i.e. the effective learning rate)
    # by the padding fraction, which varies from batch to batch. The max() guards an all-padding batch.
    count = tf.maximum(tf.reduce_sum(weights), tf.ones([], sq.dtype))
    # where() rather than sq * weights: garbage (inf/nan) predicted on padding must not leak in.
    return tf.reduce_sum(tf.where(weights > 0, sq * weights, tf.zeros_like(sq))) / count


def v_loss(v_hat, x, noise, t, schedule: Schedule, mask=None) -> tf.Tensor:
    """v-prediction loss (FPCD eq. 1): :func:`masked_mse` of ``v_hat`` against :func:`v_target`."""
    return masked_mse(v_target(x, noise, t, schedule, mask), v_hat, mask)


def eps_loss(eps_hat, noise, mask=None) -> tf.Tensor:
    """eps-prediction loss ``L_simple`` of Ho et al. (2020): :func:`masked_mse` against the (masked) noise."""
    eps_hat = as_float_tensor(eps_hat)
    return masked_mse(_masked_noise(noise, eps_hat, mask), eps_hat, mask)


def dsm_loss(score, noise, sigma, weight=None) -> tf.Tensor:
    """Denoising score matching of Song et al. (2021, Alg. 1), weighted by lambda = sigma^2.

    ``|| s(x_t, t) + z / sigma_t ||^2`` times ``sigma_t^2`` is ``|| sigma_t s + z ||^2``: the same
    minimiser at every noise level (the true score) without the ``1 / sigma_min^2 ~ 1e6`` weight that
    would let the smallest levels dominate. An optional positive ``weight`` per example
    (:meth:`gsgm.diffusion.denoisers.PreconditionedDenoiser.loss_weight`) keeps the minimiser too.

    Args:
        score: score estimate at ``x_t = alpha x_0 + sigma z``, ``[B, ...]``.
        noise: the ``z`` used, same shape.
        sigma: ``[B]`` or scalar noise levels.
        weight: optional ``[B]`` or scalar weights.

    Returns:
        Scalar mean of ``weight (sigma s + z)^2``. For VE data ``N(mu, s^2)`` and the exact score it
        equals ``s^2 / (s^2 + sigma^2)`` per element without weight (its minimum).
    """
    score = as_float_tensor(score)
    noise = as_float_tensor(noise, score.dtype)
    sigma = expand_like(as_float_tensor(sigma, score.dtype), score)
    squared = tf.square(sigma * score + noise)
    if weight is not None:
        squared = expand_like(as_float_tensor(weight, score.dtype), score) * squared
    return tf.reduce_mean(squared)
