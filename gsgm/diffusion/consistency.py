"""Consistency models (Song, Dhariwal, Chen & Sutskever 2023; paper Alg. 2 and 3): formulas and sampler.

A consistency function maps any point ``x_sigma`` of a probability-flow ODE trajectory (VE noise
levels ``sigma`` in ``[sigma_min, sigma_max] = [eps, T]``) to the trajectory's origin at ``eps``. The
model is parameterised as

    f(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, log sigma)
    c_skip = sigma_data^2 / ((sigma - eps)^2 + sigma_data^2)
    c_out  = sigma_data (sigma - eps) / sqrt(sigma_data^2 + sigma^2)
    c_in   = 1 / sqrt(sigma^2 + sigma_data^2)

so that ``c_skip(eps) = 1`` and ``c_out(eps) = 0``: ``f(x, eps) == x`` holds exactly (bit for bit in
floating point, for any finite network output), which is the boundary condition the training relies on.

Training pairs live on the Karras et al. (2022) discretisation of ``[eps, T]`` with ``N`` points; in
consistency *training* (CT, Alg. 2) ``N`` grows with the training step ``k`` as ``N(k)`` and the target
network's EMA decay ``mu(k)`` follows it; in consistency *distillation* (CD) ``N`` and ``mu`` are fixed
and the pair is one probability-flow ODE step of a trained score model
(:func:`gsgm.diffusion.ve_sde.probability_flow_step`).

Like the rest of gsgm.diffusion these are plain functions; the sampler takes a consistency function
``f(x [B, ...], sigma [B], **extra_args) -> [B, ...]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from gsgm.diffusion.parameterization import expand_like
from gsgm.diffusion.schedule import as_float_tensor

ConsistencyFn = Callable[..., tf.Tensor]

__all__ = [
    "ConsistencyFn",
    "ConsistencyParameterization",
    "consistency_distance",
    "consistency_sampling_sigmas",
    "consistency_scalings",
    "ct_num_points",
    "ct_target_decay",
    "karras_discretization",
    "karras_sigma",
    "sample_consistency",
]


def karras_sigma(index, num_points, sigma_min: float, sigma_max: float, rho: float = 7.0) -> tf.Tensor:
    """Point ``index`` (0-based) of the Karras discretisation with ``num_points`` points, increasing.

    ``t_i = (eps^(1/rho) + i / (N - 1) (T^(1/rho) - eps^(1/rho)))^rho``; ``t_0 == sigma_min`` and
    ``t_(N-1) == sigma_max`` exactly. ``index`` and ``num_points`` may be tensors (``N`` changes during
    consistency training); the result is float32 with the shape of ``index``.
    """
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
    index = tf.cast(index, tf.float32)
    last = tf.cast(num_points, tf.float32) - 1.0
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    sigma = (lo + index / last * (hi - lo)) ** rho
    sigma = tf.where(index <= 0.0, tf.constant(sigma_min, tf.float32), sigma)
    return tf.where(index >= last, tf.constant(sigma_max, tf.float32), sigma)


def karras_discretization(
    num_points: int, sigma_min: float, sigma_max: float, rho: float = 7.0
) -> np.ndarray:
    """All ``num_points`` (>= 2) points of the Karras discretisation, increasing, float32 numpy."""
    if int(num_points) < 2:
        raise ValueError(f"num_points must be >= 2, got {num_points}")
    return karras_sigma(tf.range(int(num_points)), int(num_points), sigma_min, sigma_max, rho).numpy()


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


def consistency_scalings(
    sigma, sigma_min: float, sigma_data: float
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(c_skip, c_out, c_in)`` at noise level ``sigma`` (any shape); exactly (1, 0, .) at sigma_min."""
    sigma = as_float_tensor(sigma)
    eps = tf.constant(sigma_min, sigma.dtype)
    sd2 = tf.constant(sigma_data**2, sigma.dtype)
    shifted = sigma - eps
    c_skip = sd2 / (tf.square(shifted) + sd2)
    c_out = tf.constant(sigma_data, sigma.dtype) * shifted * tf.math.rsqrt(sd2 + tf.square(sigma))
    c_in = tf.math.rsqrt(tf.square(sigma) + sd2)
    return c_skip, c_out, c_in


class ConsistencyParameterization:
    """Consistency function ``f(x, sigma) = c_skip x + c_out F(c_in x, log sigma)`` around a network.

    Args:
        network: ``network(x_in [B, ...], log_sigma [B], **extra_args) -> F [B, ...]``.
        sigma_min: the boundary ``eps`` where ``f(x, eps) == x``.
        sigma_data: data scale of the scalings.
    """

    def __init__(self, network: Callable[..., tf.Tensor], sigma_min: float, sigma_data: float):
        if not (sigma_min > 0 and sigma_data > 0):
            raise ValueError(f"sigma_min and sigma_data must be > 0, got {sigma_min}, {sigma_data}")
        self.network = network
        self.sigma_min = float(sigma_min)
        self.sigma_data = float(sigma_data)

    def __call__(self, x, sigma, **extra_args) -> tf.Tensor:
        x = as_float_tensor(x)
        sigma = as_float_tensor(sigma, x.dtype)
        c_skip, c_out, c_in = (
            expand_like(c, x) for c in consistency_scalings(sigma, self.sigma_min, self.sigma_data)
        )
        out = tf.cast(self.network(c_in * x, tf.math.log(sigma), **extra_args), x.dtype)
        return c_skip * x + c_out * out


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


def consistency_sampling_sigmas(
    num_steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0
) -> np.ndarray:
    """Noise levels of multistep consistency sampling, decreasing: ``[T, tau_1, ..., tau_(K-1)]``.

    One step is ``[T]``. For ``K`` steps the levels are the first ``K`` points of the (decreasing)
    Karras discretisation with ``K + 1`` points, i.e. every point but ``eps`` itself (re-noising to
    ``eps`` and applying ``f(., eps)``, the identity, would be a wasted network call).
    """
    if isinstance(num_steps, bool) or int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    if num_steps == 1:
        return np.array([sigma_max], dtype=np.float32)
    return karras_discretization(int(num_steps) + 1, sigma_min, sigma_max, rho)[::-1][:-1].copy()


def sample_consistency(
    consistency_fn: ConsistencyFn,
    x,
    sigmas,
    sigma_min: float,
    *,
    seed: int = 0,
    extra_args: Mapping | None = None,
) -> tf.Tensor:
    """Multistep consistency sampling (Song et al. 2023, Alg. 1; paper Alg. 3).

    ``x <- f(x_T, T)``; then for each further level ``tau``: ``x <- f(x + sqrt(tau^2 - eps^2) z, tau)``.
    Paper Alg. 3 as printed re-noises to ``tau_(i-1)`` in iteration ``i``, which for ``i = 2`` is ``T``
    again; we follow the original algorithm (each level once, in decreasing order).

    Args:
        consistency_fn: ``f(x, sigma [B], **extra_args) -> x_0 estimate``.
        x: starting point ``T * N(0, I)``, ``[B, ...]``.
        sigmas: decreasing levels ``[T, tau_1, ...]`` (:func:`consistency_sampling_sigmas`); one
            network call per entry.
        sigma_min: eps.
        seed: seed of the re-noising (unused for one step); same inputs and seed -> same output.
        extra_args: forwarded to ``consistency_fn``.

    Returns:
        The sample, shape and dtype of ``x``.
    """
    x = as_float_tensor(x)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.ndim != 1 or sigmas.size < 1 or np.any(np.diff(sigmas) >= 0) or sigmas[-1] <= sigma_min:
        raise ValueError("sigmas must be strictly decreasing and above sigma_min")
    extra_args = dict(extra_args or {})
    batch = tf.shape(x)[:1]
    x = consistency_fn(x, tf.fill(batch, tf.cast(sigmas[0], x.dtype)), **extra_args)
    if sigmas.size > 1:
        seeds = tf.random.experimental.stateless_split(
            tf.constant([int(seed), 0xC0], tf.int64), num=sigmas.size - 1
        )
        for i, tau in enumerate(sigmas[1:]):
            z = tf.random.stateless_normal(tf.shape(x), seeds[i], dtype=x.dtype)
            x_tau = x + float(np.sqrt(tau**2 - sigma_min**2)) * z
            x = consistency_fn(x_tau, tf.fill(batch, tf.cast(tau, x.dtype)), **extra_args)
    return x
