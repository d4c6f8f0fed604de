"""Variance-exploding SDE: noise levels, score parameterisation, DSM loss and samplers (paper Alg. 1).

The VE SDE perturbs data ``x_0`` as ``x_t = x_0 + sigma(t) z`` with ``z ~ N(0, I)`` and

    sigma(t) = sigma_min (sigma_max / sigma_min)**t,     t in [0, 1]

(geometric, Song et al. 2021), so the perturbation kernel is ``N(x_0, sigma(t)^2 I)``. How gsgm picks
``sigma_min``/``sigma_max`` for jet images from the data is documented in :mod:`gsgm.config.jet_images`.

Everything here works with a *score function* ``score_fn(x [B, ...], sigma [B], **extra_args) -> [B, ...]``
(an estimate of grad_x log p_sigma(x)), k-diffusion style: samplers are plain functions over a score
function and a decreasing noise grid ``sigmas`` and know nothing about networks. Networks enter through
:class:`ScoreParameterization`, which owns the preconditioning.

Conventions: noise levels ``sigma`` are standard deviations in data units (pt_rel for jet images);
random numbers inside samplers are stateless, derived from an integer ``seed``, so a sampler call is a
deterministic function of its arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from gsgm.diffusion.parameterization import expand_like
from gsgm.diffusion.schedule import as_float_tensor

ScoreFn = Callable[..., tf.Tensor]

__all__ = [
    "PARAMETERIZATIONS",
    "ScoreFn",
    "ScoreParameterization",
    "dsm_loss",
    "probability_flow_step",
    "sample_pc",
    "sample_probability_flow",
    "ve_perturb",
    "ve_sigma",
    "ve_sigmas",
]


def _check_range(sigma_min: float, sigma_max: float) -> None:
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}")


def ve_sigma(t, sigma_min: float, sigma_max: float) -> tf.Tensor:
    """Noise level ``sigma(t) = sigma_min (sigma_max / sigma_min)**t`` of the VE SDE, t in [0, 1].

    Exact at the ends: ``sigma(0) == sigma_min`` and ``sigma(1) == sigma_max`` in the dtype of ``t``
    (float32 for non-float input). Shape of ``t``.
    """
    _check_range(sigma_min, sigma_max)
    t = as_float_tensor(t)
    lo = tf.constant(sigma_min, t.dtype)
    hi = tf.constant(sigma_max, t.dtype)
    sigma = lo * tf.exp(t * tf.constant(np.log(sigma_max / sigma_min), t.dtype))
    return tf.where(t >= 1.0, hi, tf.where(t <= 0.0, lo, sigma))


def ve_perturb(x0, sigma, noise) -> tf.Tensor:
    """Sample of the perturbation kernel ``N(x0, sigma^2 I)``: ``x0 + sigma * noise``.

    Args:
        x0: clean data ``[B, ...]``.
        sigma: noise level, scalar or ``[B]``.
        noise: standard normal, shape of ``x0``.
    """
    x0 = as_float_tensor(x0)
    sigma = expand_like(as_float_tensor(sigma, x0.dtype), x0)
    return x0 + sigma * as_float_tensor(noise, x0.dtype)


def ve_sigmas(num_steps: int, sigma_min: float, sigma_max: float, dtype=tf.float32) -> tf.Tensor:
    """Sampling grid of paper Alg. 1: ``num_steps`` geometric levels from sigma_max down to sigma_min, then 0.

    Returns:
        ``[num_steps + 1]``: ``sigmas[0] == sigma_max``, ``sigmas[num_steps - 1] == sigma_min``,
        ``sigmas[num_steps] == 0`` (the last predictor step goes to sigma = 0, i.e. it returns the
        denoised mean ``x + sigma_min^2 s(x, sigma_min)``). ``num_steps = 1`` gives ``[sigma_max, 0]``.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int | np.integer) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    _check_range(sigma_min, sigma_max)
    if num_steps == 1:
        levels = np.array([sigma_max], dtype=np.float64)
    else:
        levels = np.geomspace(sigma_max, sigma_min, int(num_steps))
        levels[0], levels[-1] = sigma_max, sigma_min
    return tf.constant(np.append(levels, 0.0), dtype=dtype)


PARAMETERIZATIONS = ("noise", "denoiser")


class ScoreParameterization:
    """Score function around a network ``F(c_in x, log sigma)``, in one of two parameterisations.

    ``"noise"`` (Score SDE's "scale by sigma"): ``F`` predicts the noise ``z`` of ``x = x_0 + sigma z``
    and ``s = -F / sigma``. Well conditioned at small sigma; at large sigma a relative error ``e`` of
    ``F`` becomes an error ``sigma e`` of the denoised image, which for sparse jet images
    (sigma_data ~ 0.024, sigma_max ~ 1.3) exceeds the whole signal: a quickly trained network
    denoises worse than an empty image at sigma > 0.3, and its samples are mostly noise.

    ``"denoiser"`` (Karras et al. 2022 preconditioning): ``D = c_skip x + c_out F`` estimates ``x_0``
    with ``c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)``, ``c_out = sigma sigma_data /
    sqrt(sigma^2 + sigma_data^2)``, and ``s = (D - x) / sigma^2``. The network's regression target has
    unit variance at every sigma, and at large sigma its error is measured against sigma_data.

    Both scale the input by ``c_in = 1 / sqrt(sigma^2 + sigma_data^2)`` and are exact for the same
    ``F``-independent quantity, the true score, so they share the loss (:func:`dsm_loss`) and every
    sampler; :meth:`loss_weight` is the per-level weight that makes the DSM loss an unweighted mean
    squared error of ``F``.

    Args:
        network: ``network(x_in [B, ...], log_sigma [B], **extra_args) -> F [B, ...]``.
        sigma_data: data scale of the preconditioning.
        kind: "noise" or "denoiser".
    """

    def __init__(self, network: Callable[..., tf.Tensor], sigma_data: float, kind: str = "noise"):
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        if kind not in PARAMETERIZATIONS:
            raise ValueError(f"kind must be one of {PARAMETERIZATIONS}, got {kind!r}")
        self.network = network
        self.sigma_data = float(sigma_data)
        self.kind = kind

    def c_in(self, sigma) -> tf.Tensor:
        sigma = as_float_tensor(sigma)
        return tf.math.rsqrt(tf.square(sigma) + self.sigma_data**2)

    def loss_weight(self, sigma) -> tf.Tensor:
        """Weight of :func:`dsm_loss` at ``sigma`` that gives ``F`` a unit-variance target.

        1 for "noise" (``sigma s + z = z - F``); ``(sigma^2 + sigma_data^2) / sigma_data^2`` for
        "denoiser" (``sigma s + z = c_out (F - F_target) / sigma``). Same shape as ``sigma``.
        """
        sigma = as_float_tensor(sigma)
        if self.kind == "noise":
            return tf.ones_like(sigma)
        return (tf.square(sigma) + self.sigma_data**2) / self.sigma_data**2

    def __call__(self, x, sigma, **extra_args) -> tf.Tensor:
        """Score at ``x [B, ...]`` and noise level ``sigma [B]``."""
        x = as_float_tensor(x)
        sigma = as_float_tensor(sigma, x.dtype)
        sigma_x = expand_like(sigma, x)
        out = self.network(expand_like(self.c_in(sigma), x) * x, tf.math.log(sigma), **extra_args)
        out = tf.cast(out, x.dtype)
        if self.kind == "noise":
            return -out / sigma_x
        sd2 = self.sigma_data**2
        c_skip = sd2 / (tf.square(sigma_x) + sd2)
        c_out = sigma_x * self.sigma_data * tf.math.rsqrt(tf.square(sigma_x) + sd2)
        return (c_skip * x + c_out * out - x) / tf.square(sigma_x)


def dsm_loss(score, noise, sigma, weight=None) -> tf.Tensor:
    """Denoising score matching loss of paper Alg. 1, weighted by lambda = sigma^2 (Song et al. 2021).

    Alg. 1 writes ``|| s(x_t, t) + z / sigma_t ||^2``; multiplied by ``sigma_t^2`` it becomes
    ``|| sigma_t s + z ||^2``, the same minimiser at every noise level (the true score) but without the
    ``1 / sigma_min^2 ~ 1e6`` weight that would let the smallest noise levels dominate the average.
    An optional further positive ``weight`` per example (:meth:`ScoreParameterization.loss_weight`)
    keeps the minimiser too.

    Args:
        score: score estimate at ``x_t = x_0 + sigma z``, ``[B, ...]``.
        noise: the ``z`` used, same shape.
        sigma: ``[B]`` or scalar noise levels.
        weight: optional ``[B]`` or scalar weights.

    Returns:
        Scalar: mean over the batch and all elements of ``weight (sigma s + z)^2``. For data ``N(mu, s^2)``
        and the exact score it equals ``s^2 / (s^2 + sigma^2)`` per element without weight (its minimum).
    """
    score = as_float_tensor(score)
    noise = as_float_tensor(noise, score.dtype)
    sigma = expand_like(as_float_tensor(sigma, score.dtype), score)
    squared = tf.square(sigma * score + noise)
    if weight is not None:
        squared = expand_like(as_float_tensor(weight, score.dtype), score) * squared
    return tf.reduce_mean(squared)


def _seeds(seed: int, count: int) -> tf.Tensor:
    """``[count, 2]`` independent stateless seeds derived from ``seed``."""
    return tf.random.experimental.stateless_split(tf.constant([int(seed), 0x5EED], tf.int64), num=count)


def _score(score_fn: ScoreFn, x: tf.Tensor, sigma, extra_args: Mapping) -> tf.Tensor:
    sigma_batch = tf.fill(tf.shape(x)[:1], tf.cast(sigma, x.dtype))
    score = tf.convert_to_tensor(score_fn(x, sigma_batch, **extra_args))
    if not score.shape.is_compatible_with(x.shape):
        raise ValueError(f"score function returned shape {score.shape}, expected the shape of x {x.shape}")
    return tf.cast(score, x.dtype)


def sample_pc(
    score_fn: ScoreFn,
    x,
    sigmas,
    *,
    snr: float = 0.16,
    corrector_steps: int = 1,
    seed: int = 0,
    extra_args: Mapping | None = None,
    callback: Callable[[int, tf.Tensor], None] | None = None,
) -> tf.Tensor:
    """Predictor-corrector sampler of paper Alg. 1 (reverse-diffusion predictor, Langevin corrector).

    For each level ``sigma_i = sigmas[i]`` (from the largest), first ``corrector_steps`` Langevin steps

        x <- x + eps s(x, sigma_i) + sqrt(2 eps) z,      eps = 2 (snr sigma_i)^2,

    then one reverse-diffusion step to ``sigma_next = sigmas[i + 1]``

        x <- x + (sigma_i^2 - sigma_next^2) s(x, sigma_i) + sqrt(sigma_i^2 - sigma_next^2) z,

    with ``z = 0`` in the last step (Alg. 1 line 20), so with a grid ending at 0 (:func:`ve_sigmas`)
    the result is the denoised mean. The step size is the one printed in Alg. 1; Score SDE's
    implementation uses ``2 (snr ||z|| / ||s||)^2``, which equals it when ``||s|| = sqrt(d) / sigma``.

    Args:
        score_fn: ``score_fn(x, sigma [B], **extra_args) -> score``.
        x: starting point at ``sigmas[0]``, e.g. ``sigma_max * N(0, I)`` (Alg. 1 line 12), ``[B, ...]``.
        sigmas: decreasing noise levels ``[N + 1]``; makes ``N * (corrector_steps + 1)`` score calls.
        snr: signal-to-noise ratio r of the corrector.
        corrector_steps: M; 0 gives the reverse-diffusion predictor alone.
        seed: seed of the sampler's noise (same inputs and seed -> same output).
        extra_args: forwarded to ``score_fn`` (e.g. class labels).
        callback: called as ``callback(i, x)`` after each level.

    Returns:
        ``x`` at ``sigmas[-1]``, shape and dtype of the input.
    """
    x = as_float_tensor(x)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if corrector_steps < 0:
        raise ValueError(f"corrector_steps must be >= 0, got {corrector_steps}")
    if sigmas.ndim != 1 or sigmas.size < 2 or np.any(np.diff(sigmas) >= 0):
        raise ValueError("sigmas must be a strictly decreasing 1-D grid with at least two levels")
    extra_args = dict(extra_args or {})
    num_levels = sigmas.size - 1
    seeds = _seeds(seed, num_levels * (corrector_steps + 1))
    for i in range(num_levels):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        for j in range(corrector_steps):
            z = tf.random.stateless_normal(tf.shape(x), seeds[i * (corrector_steps + 1) + j], dtype=x.dtype)
            step = 2.0 * (snr * sigma) ** 2
            x = x + step * _score(score_fn, x, sigma, extra_args) + np.sqrt(2.0 * step) * z
        variance = sigma**2 - sigma_next**2
        x = x + variance * _score(score_fn, x, sigma, extra_args)
        if i < num_levels - 1:
            z = tf.random.stateless_normal(
                tf.shape(x), seeds[i * (corrector_steps + 1) + corrector_steps], dtype=x.dtype
            )
            x = x + np.sqrt(variance) * z
        if callback is not None:
            callback(i, x)
    return x


def probability_flow_step(
    score_fn: ScoreFn,
    x,
    sigma: float,
    sigma_next: float,
    solver: str = "heun",
    extra_args: Mapping | None = None,
) -> tf.Tensor:
    """One step of the probability-flow ODE ``dx / dsigma = -sigma s(x, sigma)`` from sigma to sigma_next.

    ``solver="euler"`` makes one score call; ``"heun"`` (Karras et al. 2022, Alg. 1) makes two, except
    for a step to ``sigma_next = 0``, which is an Euler step (there the slope is not defined). ``sigma``
    and ``sigma_next`` are Python floats or scalar tensors (for a per-example level see
    :func:`gsgm.diffusion.consistency` distillation, which calls this with ``[B]`` tensors).
    """
    if solver not in ("euler", "heun"):
        raise ValueError(f"solver must be 'euler' or 'heun', got {solver!r}")
    if isinstance(sigma_next, int | float) and sigma_next == 0:
        solver = "euler"  # known statically: skip the wasted second call
    x = as_float_tensor(x)
    extra_args = dict(extra_args or {})
    sigma = as_float_tensor(sigma, x.dtype)
    sigma_next = as_float_tensor(sigma_next, x.dtype)
    batch = tf.shape(x)[:1]
    sigma_b = tf.broadcast_to(sigma, batch) if sigma.shape.rank == 0 else sigma
    sigma_next_b = tf.broadcast_to(sigma_next, batch) if sigma_next.shape.rank == 0 else sigma_next
    slope = -expand_like(sigma_b, x) * score_fn(x, sigma_b, **extra_args)
    dsigma = expand_like(sigma_next_b - sigma_b, x)
    x_euler = x + dsigma * slope
    if solver == "euler":
        return x_euler
    # Heun where sigma_next > 0; evaluating at sigma_next = 0 would divide by zero, so those examples
    # use a dummy level and keep the Euler result.
    safe_next = tf.where(sigma_next_b > 0, sigma_next_b, sigma_b)
    slope_next = -expand_like(safe_next, x) * score_fn(x_euler, safe_next, **extra_args)
    x_heun = x + dsigma * 0.5 * (slope + slope_next)
    return tf.where(expand_like(sigma_next_b > 0, x), x_heun, x_euler)


def sample_probability_flow(
    score_fn: ScoreFn,
    x,
    sigmas,
    *,
    solver: str = "heun",
    extra_args: Mapping | None = None,
    callback: Callable[[int, tf.Tensor], None] | None = None,
) -> tf.Tensor:
    """Deterministic sampler: integrate the probability-flow ODE along ``sigmas`` (decreasing).

    With a grid ending at 0 (:func:`ve_sigmas`) the last step is the Euler step
    ``x + sigma_min^2 s(x, sigma_min)``, the same denoising as the PC sampler's last step. Heun makes
    ``2 N - 1`` score calls for ``N`` levels, Euler ``N``.

    Args:
        score_fn, extra_args, callback: as for :func:`sample_pc`.
        x: starting point at ``sigmas[0]`` (``sigma_max * N(0, I)``).
        sigmas: ``[N + 1]`` decreasing noise levels.
        solver: "heun" or "euler".
    """
    x = as_float_tensor(x)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.ndim != 1 or sigmas.size < 2 or np.any(np.diff(sigmas) >= 0):
        raise ValueError("sigmas must be a strictly decreasing 1-D grid with at least two levels")
    for i in range(sigmas.size - 1):
        x = probability_flow_step(score_fn, x, float(sigmas[i]), float(sigmas[i + 1]), solver, extra_args)
        if callback is not None:
            callback(i, x)
    return x
