"""Variational bound terms and the improved-DDPM hybrid loss (Ho et al. 2020; Nichol & Dhariwal 2021).

For a discrete schedule with T steps the negative ELBO is ``L_vlb = L_0 + sum_(t>1) L_(t-1) + L_T``:
``L_(t-1) = KL(q(z_(t-1) | z_t, x) || p(z_(t-1) | z_t))`` between two Gaussians for t > 1, and
``L_0 = -log p(x | z_1)`` under a discretised Gaussian decoder for data scaled to [-1, 1] in 256 bins.
Nichol & Dhariwal learn the variance with ``L_hybrid = L_simple + lambda L_vlb`` (lambda = 0.001), with
a stop-gradient on the mean in the vlb term, so the vlb trains the variance only. Units: nats per
element divided by log 2, i.e. bits per dimension, averaged over the element axes.
"""

from __future__ import annotations

import math

import tensorflow as tf

from gsgm.diffusion.denoisers import Prediction
from gsgm.diffusion.samplers import learned_log_variance
from gsgm.diffusion.schedules import DiscreteCosineSchedule
from gsgm.diffusion.tensors import as_float_tensor, expand_like

__all__ = [
    "discretized_gaussian_log_likelihood",
    "gaussian_kl",
    "hybrid_loss",
    "hybrid_loss_terms",
    "vlb_terms",
]

_LOG2 = math.log(2.0)


def gaussian_kl(mean1, log_var1, mean2, log_var2) -> tf.Tensor:
    """Elementwise ``KL(N(mean1, exp(log_var1)) || N(mean2, exp(log_var2)))`` in nats (broadcasting)."""
    mean1 = as_float_tensor(mean1)
    mean2, log_var1, log_var2 = (as_float_tensor(a, mean1.dtype) for a in (mean2, log_var1, log_var2))
    return 0.5 * (
        log_var2 - log_var1 + tf.exp(log_var1 - log_var2) + tf.square(mean1 - mean2) * tf.exp(-log_var2) - 1.0
    )


def discretized_gaussian_log_likelihood(x, mean, log_var, bins: int = 256) -> tf.Tensor:
    """Elementwise log-probability (nats) of data ``x`` in [-1, 1] under a Gaussian discretised to ``bins``.

    Bin ``k`` of width ``2 / (bins - 1)`` is centred on ``x``; the two outer bins extend to -inf and
    +inf (Ho et al. 2020, eq. 13). Probabilities are floored at 1e-12 before the log, as in the paper's
    code, so that the result is finite. The normal CDF is ``erfc(-u / sqrt 2) / 2``, accurate in the
    lower tail (where ``1 - erfc`` forms would cancel).
    """
    x = as_float_tensor(x)
    mean, log_var = as_float_tensor(mean, x.dtype), as_float_tensor(log_var, x.dtype)
    half_bin = 1.0 / (bins - 1)
    inv_std = tf.exp(-0.5 * log_var)
    upper = (x - mean + half_bin) * inv_std
    lower = (x - mean - half_bin) * inv_std

    def cdf(u):
        return 0.5 * tf.math.erfc(-u / math.sqrt(2.0))

    def log_floor(p):
        return tf.math.log(tf.maximum(p, 1e-12))

    at_left, at_right = x < -1.0 + half_bin, x > 1.0 - half_bin
    prob = tf.where(at_left, cdf(upper), tf.where(at_right, cdf(-lower), cdf(upper) - cdf(lower)))
    return log_floor(prob)


def _mean_over_elements(a: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(a, axis=tf.range(1, tf.rank(a)))


def vlb_terms(prediction: Prediction, x, z_t, t, schedule: DiscreteCosineSchedule) -> tf.Tensor:
    """Per-example ``L_(t-1)`` in bits per dimension: KL for t > 1, decoder NLL for t = 1.

    The model's mean is ``coef1 x0_hat + coef2 z_t`` with ``x0_hat`` from the (caller-detached)
    prediction; its variance is ``exp(v log beta_t + (1 - v) log beta_tilde_t)`` with the clipped
    ``log beta_tilde`` of the schedule, or ``beta_tilde`` itself when the prediction has no
    variance weight.

    Args:
        prediction: the denoiser's prediction at ``(z_t, t)`` (``x0``, optional ``variance_weight``).
        x: clean data ``[B, ...]`` in [-1, 1].
        z_t: latent ``[B, ...]``.
        t: int-valued times ``[B]`` in ``{1, ..., T}``.
        schedule: the discrete schedule.

    Returns:
        ``[B]`` terms.
    """
    x = as_float_tensor(x)
    z_t = as_float_tensor(z_t, x.dtype)

    def table(values):
        return expand_like(tf.cast(schedule.lookup(values, t), x.dtype), x)

    coef1, coef2 = table(schedule.posterior_mean_coef1), table(schedule.posterior_mean_coef2)
    log_var_true = table(schedule.posterior_log_variance_clipped)
    true_mean = coef1 * x + coef2 * z_t
    model_mean = coef1 * prediction.x0 + coef2 * z_t
    if prediction.variance_weight is None:
        model_log_var = log_var_true * tf.ones_like(x)
    else:
        model_log_var = learned_log_variance(
            prediction.variance_weight, table(schedule.betas), tf.exp(log_var_true)
        )
    kl = _mean_over_elements(gaussian_kl(true_mean, log_var_true, model_mean, model_log_var)) / _LOG2
    nll = -_mean_over_elements(discretized_gaussian_log_likelihood(x, model_mean, model_log_var)) / _LOG2
    return tf.where(tf.equal(tf.round(as_float_tensor(t, x.dtype)), 1.0), nll, kl)


def hybrid_loss(
    prediction: Prediction,
    x,
    z_t,
    t,
    noise,
    schedule: DiscreteCosineSchedule,
    vlb_weight: float = 1e-3,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``L_hybrid = L_simple + lambda L_vlb`` of Nichol & Dhariwal (2021, section 3.1).

    ``L_simple`` is the mean squared error of the predicted noise. ``L_vlb`` is estimated from the
    sampled steps as ``T E_t[L_(t-1)]`` (:func:`vlb_terms`, so it estimates the sum over all steps)
    with ``stop_gradient`` on ``x0_hat``: only the variance learns from it.

    Args:
        prediction: of an :class:`~gsgm.diffusion.denoisers.EpsDenoiser` (``eps`` required).
        x, z_t, noise: data, latent and the noise used ``[B, ...]``.
        t: times ``[B]`` from ``schedule.training_times``.
        schedule: the discrete schedule.
        vlb_weight: lambda.

    Returns:
        ``(L_hybrid, L_simple, L_vlb)`` scalars.
    """
    if prediction.eps is None:
        raise ValueError("hybrid_loss needs the denoiser's eps prediction (EpsDenoiser)")
    x = as_float_tensor(x)
    l_simple = tf.reduce_mean(tf.square(as_float_tensor(noise, x.dtype) - prediction.eps))
    detached = Prediction(tf.stop_gradient(prediction.x0), None, prediction.variance_weight)
    l_vlb = float(schedule.num_steps) * tf.reduce_mean(vlb_terms(detached, x, z_t, t, schedule))
    return l_simple + vlb_weight * l_vlb, l_simple, l_vlb


def hybrid_loss_terms(
    prediction: Prediction, x, z_t, t, noise, schedule: DiscreteCosineSchedule
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-example ``(L_simple [B], L_(t-1) [B])`` of :func:`hybrid_loss`, for weighted estimates.

    ``L_simple`` is the per-example mean squared error of the noise; ``L_(t-1)`` the vlb term in bits
    per dimension (:func:`vlb_terms`) with the data estimate detached, so that it trains the variance
    only. ``hybrid_loss`` is ``mean(L_simple) + lambda T mean(L_(t-1))``; with importance-sampled t
    (:mod:`gsgm.diffusion.importance`) weight both by ``1 / (T p_t)`` before the means.
    """
    if prediction.eps is None:
        raise ValueError("hybrid_loss_terms needs the denoiser's eps prediction (EpsDenoiser)")
    x = as_float_tensor(x)
    l_simple = _mean_over_elements(tf.square(as_float_tensor(noise, x.dtype) - prediction.eps))
    detached = Prediction(tf.stop_gradient(prediction.x0), None, prediction.variance_weight)
    return l_simple, vlb_terms(detached, x, z_t, t, schedule)
