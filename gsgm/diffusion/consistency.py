"""Consistency models (Song, Dhariwal, Chen & Sutskever 2023; paper Alg. 2 and 3): training and sampling.

A consistency function maps any point ``x_sigma`` of a probability-flow ODE trajectory (VE noise
levels in ``[sigma_min, sigma_max] = [eps, T]``) to the trajectory's origin at ``eps``; networks enter
through :class:`gsgm.diffusion.denoisers.ConsistencyDenoiser`, whose boundary condition
``f(x, eps) == x`` is exact. Noise levels follow a :class:`gsgm.diffusion.schedules.KarrasSchedule`
(time t = sigma). In consistency *training* (CT, Alg. 2) the number of discretisation points ``N``
grows with the training step as ``N(k)`` and the target network's EMA decay ``mu(k)`` follows it; in
consistency *distillation* (CD) ``N`` and ``mu`` are fixed and the pair is one probability-flow ODE step
of a trained teacher denoiser (:func:`gsgm.diffusion.samplers.probability_flow_step`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from gsgm.diffusion.denoisers import Denoiser
from gsgm.diffusion.losses import diffuse
from gsgm.diffusion.samplers import probability_flow_step
from gsgm.diffusion.schedules import KarrasSchedule
from gsgm.diffusion.tensors import as_float_tensor

__all__ = [
    "consistency_distance",
    "consistency_loss",
    "ct_num_points",
    "ct_target_decay",
    "sample_consistency",
]


def ct_num_points(step, total_steps: int, initial: int = 2, final: int = 150) -> tf.Tensor:
    """Discretisation schedule ``N(k)`` of consistency training (Song et al. 2023, appendix C).

    ``N(k) = ceil(sqrt(k / K ((s1 + 1)^2 - s0^2) + s0^2) - 1) + 1`` with ``s0 = initial``,
    ``s1 = final``, ``K = total_steps``: ``N(0) = s0`` and ``N(K) = s1 + 1``. ``step`` may be a tensor
    (the optimizer's iteration counter); the result is int32, clipped to ``[s0, s1 + 1]``.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    k = tf.cast(step, tf.float64)
    inner = k / float(total_steps) * ((final + 1.0) ** 2 - initial**2) + initial**2
    n = tf.math.ceil(tf.sqrt(inner) - 1.0) + 1.0
    return tf.cast(tf.clip_by_value(n, float(initial), final + 1.0), tf.int32)


def ct_target_decay(num_points, initial: int = 2, initial_decay: float = 0.9) -> tf.Tensor:
    """Target-network EMA decay ``mu(k) = exp(s0 log(mu0) / N(k))`` of consistency training (float32)."""
    return tf.exp(initial * np.log(initial_decay) / tf.cast(num_points, tf.float32))


def consistency_distance(a, b, kind: str = "l2") -> tf.Tensor:
    """Distance d(a, b) of the consistency loss, averaged over the batch.

    "l2": mean over elements of ``(a - b)^2`` (the squared L2 norm divided by the dimension);
    "l1": mean of ``|a - b|``. Returns a scalar.
    """
    a = as_float_tensor(a)
    b = as_float_tensor(b, a.dtype)
    if kind == "l2":
        return tf.reduce_mean(tf.square(a - b))
    if kind == "l1":
        return tf.reduce_mean(tf.abs(a - b))
    raise ValueError(f"distance must be 'l2' or 'l1', got {kind!r}")


def consistency_loss(
    online: Denoiser,
    target: Denoiser,
    x,
    index,
    num_points,
    noise,
    schedule: KarrasSchedule,
    *,
    teacher: Denoiser | None = None,
    solver: str = "heun",
    distance: str = "l2",
    cond: Mapping | None = None,
) -> tf.Tensor:
    """Consistency loss of one batch: ``d(f_online(x_hi, t_(n+1)), stopgrad f_target(x_lo, t_n))``.

    ``t_n`` is point ``n = index`` of the ``num_points`` Karras discretisation and
    ``x_hi = x + t_(n+1) z``. CT (``teacher=None``): ``x_lo = x + t_n z`` with the same ``z``; CD:
    ``x_lo`` is one probability-flow step of the teacher from ``x_hi`` to ``t_n``.

    Args:
        online, target: consistency denoisers ``(x, sigma [B], **cond)``.
        x: clean data ``[B, ...]``.
        index: int ``[B]`` in ``[0, num_points - 2]``.
        num_points: N (int or int tensor).
        noise: standard normal, shape of ``x``.
        schedule: the Karras schedule (sigma_min, sigma_max, rho).
        teacher: teacher denoiser for distillation.
        solver: ODE solver of the distillation step ("heun" or "euler").
        distance: "l2" or "l1" (:func:`consistency_distance`).
        cond: forwarded to every denoiser.

    Returns:
        Scalar loss.
    """
    cond = dict(cond or {})
    x = as_float_tensor(x)
    sigma_lo = tf.cast(schedule.point(index, num_points), x.dtype)
    sigma_hi = tf.cast(schedule.point(index + 1, num_points), x.dtype)
    x_hi = diffuse(x, sigma_hi, noise, schedule)
    if teacher is not None:
        x_lo = probability_flow_step(teacher, x_hi, sigma_hi, sigma_lo, schedule, solver, cond)
    else:
        x_lo = diffuse(x, sigma_lo, noise, schedule)
    prediction = online(x_hi, sigma_hi, **cond)
    reference = tf.stop_gradient(target(x_lo, sigma_lo, **cond))
    return consistency_distance(prediction, reference, distance)


def sample_consistency(
    denoiser: Denoiser,
    x_T,
    schedule: KarrasSchedule,
    num_steps: int,
    *,
    seed: int = 0,
    cond: Mapping | None = None,
) -> tf.Tensor:
    """Multistep consistency sampling (Song et al. 2023, Alg. 1; paper Alg. 3).

    Levels are ``schedule.sampling_times(K)[:-1]`` = ``[T, tau_1, ..., tau_(K-1)]``: every point of the
    ``K + 1``-point discretisation but eps itself (re-noising to eps and applying ``f(., eps)``, the
    identity, would be a wasted call). ``x <- f(x_T, T)``; then for each further level:
    ``x <- f(x + sqrt(tau^2 - eps^2) z, tau)``. Paper Alg. 3 as printed re-noises to ``tau_(i-1)``,
    which for ``i = 2`` is T again; we follow the original algorithm (each level once).

    Args:
        denoiser: consistency function ``f(x, sigma [B], **cond) -> x_0 estimate``.
        x_T: starting point ``T N(0, I)``, ``[B, ...]``.
        schedule: the Karras schedule of the model.
        num_steps: K, the number of network calls.
        seed: seed of the re-noising (unused for one step).
        cond: forwarded to ``denoiser``.

    Returns:
        The sample, shape and dtype of ``x_T``.
    """
    x = as_float_tensor(x_T)
    sigmas = schedule.sampling_times(num_steps)[:-1]
    sigma_min = schedule.sigma_min
    cond = dict(cond or {})
    batch = tf.shape(x)[:1]
    x = denoiser(x, tf.fill(batch, tf.cast(sigmas[0], x.dtype)), **cond)
    if sigmas.size > 1:
        seeds = tf.random.experimental.stateless_split(
            tf.constant([int(seed), 0xC0], tf.int64), num=sigmas.size - 1
        )
        for i, tau in enumerate(sigmas[1:]):
            z = tf.random.stateless_normal(tf.shape(x), seeds[i], dtype=x.dtype)
            x = denoiser(
                x + float(np.sqrt(tau**2 - sigma_min**2)) * z, tf.fill(batch, tf.cast(tau, x.dtype)), **cond
            )
    return x
