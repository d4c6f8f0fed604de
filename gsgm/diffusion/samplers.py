"""Stochastic and ODE samplers: predictor-corrector (VE), probability-flow ODE, ancestral DDPM.

All are plain functions ``(denoiser, x_T, schedule, num_steps, **options) -> x_0`` over the denoiser
convention of :mod:`gsgm.diffusion.denoisers` (``t`` = the schedule's time) and run on
``schedule.sampling_times(num_steps)``. Random numbers are stateless, derived from an integer ``seed``,
so a call is a deterministic function of its arguments. The deterministic DDIM sampler, with its
compiled loop, is in :mod:`gsgm.diffusion.ddim`.

The grids are used as float32 values (what the network sees as its time input), also in the
float64 step-size arithmetic, so that both agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from gsgm.diffusion.denoisers import Denoiser, eps_of, predict, score_of
from gsgm.diffusion.schedules import Schedule, scales_like
from gsgm.diffusion.tensors import as_float_tensor, batch_times, expand_like

__all__ = ["probability_flow_step", "sample_ancestral", "sample_pc", "sample_probability_flow"]


def _grid(schedule: Schedule, num_steps: int) -> np.ndarray:
    return schedule.sampling_times(num_steps).astype(np.float32).astype(np.float64)


def _seeds(seed: int, salt: int, count: int) -> tf.Tensor:
    """``[count, 2]`` independent stateless seeds derived from ``seed``."""
    return tf.random.experimental.stateless_split(tf.constant([int(seed), salt], tf.int64), num=max(count, 1))


def _score(denoiser: Denoiser, x: tf.Tensor, t, schedule: Schedule, cond) -> tf.Tensor:
    t_batch = tf.fill(tf.shape(x)[:1], tf.cast(t, x.dtype))
    alpha, sigma = scales_like(schedule, t_batch, x)
    return score_of(predict(denoiser, x, t_batch, cond), x, alpha, sigma)


def sample_pc(
    denoiser: Denoiser,
    x_T,
    schedule: Schedule,
    num_steps: int,
    *,
    snr: float = 0.16,
    corrector_steps: int = 1,
    seed: int = 0,
    cond: Mapping | None = None,
    callback: Callable[[int, tf.Tensor], None] | None = None,
) -> tf.Tensor:
    """Predictor-corrector sampler of Song et al. (2021, Alg. 1) for VE schedules (alpha = 1, t = sigma).

    For each level ``sigma_i`` (from the largest), ``corrector_steps`` Langevin steps

        x <- x + eps s(x, sigma_i) + sqrt(2 eps) z,      eps = 2 (snr sigma_i)^2,

    then one reverse-diffusion step to ``sigma_next``

        x <- x + (sigma_i^2 - sigma_next^2) s(x, sigma_i) + sqrt(sigma_i^2 - sigma_next^2) z,

    with ``z = 0`` in the last step (Alg. 1 line 20), so with a grid ending at 0 the result is the
    denoised mean. The step size is the one printed in Alg. 1 (Score SDE's code uses
    ``2 (snr ||z|| / ||s||)^2``, equal when ``||s|| = sqrt(d) / sigma``).

    Args:
        denoiser: ``(x, sigma [B], **cond) -> x0_hat`` (adapters give the score without division).
        x_T: starting point ``sigma_max N(0, I)``, ``[B, ...]``.
        schedule: a schedule with ``alpha_is_one`` (:class:`~gsgm.diffusion.schedules.VEGeometricSchedule`).
        num_steps: noise levels N; ``N (corrector_steps + 1)`` denoiser calls.
        snr: signal-to-noise ratio r of the corrector.
        corrector_steps: M; 0 gives the reverse-diffusion predictor alone.
        seed: seed of the sampler's noise.
        cond: forwarded to the denoiser (e.g. class labels).
        callback: called as ``callback(i, x)`` after each level.

    Returns:
        ``x`` at the last grid level, shape and dtype of ``x_T``.
    """
    if not schedule.alpha_is_one:
        raise ValueError("the predictor-corrector sampler is written for VE schedules (alpha = 1)")
    if corrector_steps < 0:
        raise ValueError(f"corrector_steps must be >= 0, got {corrector_steps}")
    x = as_float_tensor(x_T)
    sigmas = _grid(schedule, num_steps)
    num_levels = sigmas.size - 1
    seeds = _seeds(seed, 0x5EED, num_levels * (corrector_steps + 1))
    for i in range(num_levels):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        for j in range(corrector_steps):
            z = tf.random.stateless_normal(tf.shape(x), seeds[i * (corrector_steps + 1) + j], dtype=x.dtype)
            step = 2.0 * (snr * sigma) ** 2
            x = x + step * _score(denoiser, x, sigma, schedule, cond) + np.sqrt(2.0 * step) * z
        variance = sigma**2 - sigma_next**2
        x = x + variance * _score(denoiser, x, sigma, schedule, cond)
        if i < num_levels - 1:
            z = tf.random.stateless_normal(
                tf.shape(x), seeds[i * (corrector_steps + 1) + corrector_steps], dtype=x.dtype
            )
            x = x + np.sqrt(variance) * z
        if callback is not None:
            callback(i, x)
    return x


def probability_flow_step(
    denoiser: Denoiser,
    z,
    t,
    s,
    schedule: Schedule,
    solver: str = "heun",
    cond: Mapping | None = None,
) -> tf.Tensor:
    """One step of the probability-flow ODE from time ``t`` to ``s`` (Karras et al. 2022, Alg. 1).

    In the scaled variables ``x~ = z / alpha``, ``sigma~ = sigma / alpha`` the ODE is
    ``dx~ / dsigma~ = eps_hat`` for every schedule (for VE, ``dx / dsigma = -sigma s(x, sigma)``).
    ``"euler"`` makes one denoiser call; ``"heun"`` two, except where ``sigma_s = 0`` (there the
    slope is not defined and the Euler result is kept). Needs ``alpha_t > 0`` (not the VP t = 1 end).

    Args:
        denoiser, cond: as for :func:`sample_pc`.
        z: state ``[B, ...]`` at ``t``.
        t, s: Python floats or scalar / ``[B]`` tensors of the schedule's time (per-example for
            consistency distillation).
        schedule: the noise schedule.
        solver: "heun" or "euler".

    Returns:
        ``z_s``, shape and dtype of ``z``.
    """
    if solver not in ("euler", "heun"):
        raise ValueError(f"solver must be 'euler' or 'heun', got {solver!r}")
    z = as_float_tensor(z)
    t_b, s_b = batch_times(t, z), batch_times(s, z)
    alpha_t, sigma_t = scales_like(schedule, t_b, z)
    alpha_s, sigma_s = scales_like(schedule, s_b, z)
    slope = eps_of(predict(denoiser, z, t_b, cond), z, alpha_t, sigma_t)
    scaled = z / alpha_t
    dsigma = sigma_s / alpha_s - sigma_t / alpha_t
    z_euler = alpha_s * (scaled + dsigma * slope)
    # Time 0 is sigma = 0 in every schedule here: known statically, skip the wasted second call.
    if solver == "euler" or (isinstance(s, int | float) and s == 0):
        return z_euler
    # Heun where sigma_s > 0; evaluating at sigma_s = 0 would divide by zero, so those examples use a
    # dummy time and keep the Euler result.
    data_end = tf.equal(sigma_s, 0.0)
    safe_s = tf.where(tf.reshape(data_end, tf.shape(s_b)), t_b, s_b)
    alpha_safe, sigma_safe = scales_like(schedule, safe_s, z)
    slope_next = eps_of(predict(denoiser, z_euler, safe_s, cond), z_euler, alpha_safe, sigma_safe)
    z_heun = alpha_s * (scaled + dsigma * 0.5 * (slope + slope_next))
    return tf.where(tf.broadcast_to(data_end, tf.shape(z)), z_euler, z_heun)


def sample_probability_flow(
    denoiser: Denoiser,
    x_T,
    schedule: Schedule,
    num_steps: int,
    *,
    solver: str = "heun",
    cond: Mapping | None = None,
    callback: Callable[[int, tf.Tensor], None] | None = None,
) -> tf.Tensor:
    """Deterministic sampler: integrate the probability-flow ODE along ``schedule.sampling_times(N)``.

    A grid ending at sigma = 0 (VE) ends with the Euler step to the denoised estimate. Heun makes
    ``2 N - 1`` denoiser calls for such a grid, Euler ``N``. The first grid time needs alpha > 0.
    """
    x = as_float_tensor(x_T)
    times = _grid(schedule, num_steps)
    alpha0, _ = schedule.alpha_sigma(tf.constant(times[0], x.dtype))
    if float(alpha0) <= 0.0:
        raise ValueError(
            "the probability-flow sampler needs alpha > 0 at the first time (use DDIM from t = 1)"
        )
    for i in range(times.size - 1):
        x = probability_flow_step(denoiser, x, float(times[i]), float(times[i + 1]), schedule, solver, cond)
        if callback is not None:
            callback(i, x)
    return x


def learned_log_variance(variance_weight, beta, beta_tilde) -> tf.Tensor:
    """``log Sigma = v log beta + (1 - v) log beta_tilde`` (Nichol & Dhariwal 2021, eq. 15).

    Args:
        variance_weight: the network's ``v`` ``[B, ...]``.
        beta, beta_tilde: step variance and posterior variance, broadcastable (``beta_tilde > 0``).
    """
    v = as_float_tensor(variance_weight)
    return v * tf.math.log(as_float_tensor(beta, v.dtype)) + (1.0 - v) * tf.math.log(
        as_float_tensor(beta_tilde, v.dtype)
    )


def sample_ancestral(
    denoiser: Denoiser,
    x_T,
    schedule: Schedule,
    num_steps: int,
    *,
    variance: str = "posterior",
    seed: int = 0,
    cond: Mapping | None = None,
    mask=None,
) -> tf.Tensor:
    """Ancestral DDPM sampling (Ho et al. 2020), optionally with a learned variance (Nichol & Dhariwal).

    Each step ``t -> s`` on ``schedule.sampling_times(N)`` (respaced when ``N < T``) draws
    ``z_s ~ N(c_z z_t + c_x x0_hat, Sigma)`` from the Gaussian posterior ``q(z_s | z_t, x0_hat)``
    (:meth:`~gsgm.diffusion.schedules.Schedule.posterior`); the last step, to sigma = 0, returns the mean.

    Args:
        denoiser: ``(z, t [B], **cond) -> x0_hat``; for ``variance="learned"`` an adapter whose
            ``predict`` returns ``variance_weight`` (:class:`~gsgm.diffusion.denoisers.EpsDenoiser`
            with ``learned_variance=True``).
        x_T: standard normal ``[B, ...]``.
        schedule: a VP schedule (typically :class:`~gsgm.diffusion.schedules.DiscreteCosineSchedule`).
        num_steps: number of steps (= denoiser calls).
        variance: "posterior" (``Sigma = beta_tilde``), "beta" (``Sigma = beta`` of the step) or
            "learned" (:func:`learned_log_variance`).
        seed: seed of the noise.
        cond: forwarded to the denoiser.
        mask: optional particle mask, multiplied into the state after every step.

    Returns:
        The sample, shape and dtype of ``x_T``.
    """
    if variance not in ("posterior", "beta", "learned"):
        raise ValueError(f"variance must be 'posterior', 'beta' or 'learned', got {variance!r}")
    z = as_float_tensor(x_T)
    mask = None if mask is None else expand_like(as_float_tensor(mask, z.dtype), z)
    if mask is not None:
        z = z * mask
    times = _grid(schedule, num_steps)
    seeds = _seeds(seed, 0xDD, times.size - 1)
    for i in range(times.size - 1):
        t = tf.fill(tf.shape(z)[:1], tf.constant(times[i], z.dtype))
        s = tf.fill(tf.shape(z)[:1], tf.constant(times[i + 1], z.dtype))
        pred = predict(denoiser, z, t, cond)
        c_z, c_x, var, beta = (expand_like(c, z) for c in schedule.posterior(t, s))
        mean = c_z * z + c_x * pred.x0
        _, sigma_s = schedule.alpha_sigma(tf.constant(times[i + 1], z.dtype))
        if float(sigma_s) == 0.0:
            z = mean
        else:
            if variance == "learned":
                if pred.variance_weight is None:
                    raise ValueError(
                        "variance='learned' needs a denoiser whose predict() returns variance_weight"
                    )
                log_var = learned_log_variance(pred.variance_weight, beta, var)
            else:
                log_var = tf.math.log(beta if variance == "beta" else var) * tf.ones_like(z)
            noise = tf.random.stateless_normal(tf.shape(z), seeds[i], dtype=z.dtype)
            z = mean + tf.exp(0.5 * log_var) * noise
        if mask is not None:
            z = z * mask
    return z
