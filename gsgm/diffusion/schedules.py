"""Noise schedules: objects that samplers, losses and distillation take instead of hard-wired formulas.

Every schedule describes ``z_t = alpha(t) x + sigma(t) eps`` on its own time coordinate ``t``, and that
coordinate is what denoisers receive (the one time rule of gsgm.diffusion, see :mod:`.denoisers`):

====================  =====================  ===========================================  ==============
schedule              time ``t``             alpha, sigma                                 data end
====================  =====================  ===========================================  ==============
VPCosineSchedule      [0, 1], dimensionless  cos(pi t / 2), sin(pi t / 2)                 t = 0
VEGeometricSchedule   t = sigma (data units) 1, t; trained on sigma_min..sigma_max        t = 0
KarrasSchedule        t = sigma (data units) 1, t; Karras grid with exponent rho          t = sigma_min
DiscreteCosineSchedule step index 0..T       sqrt(abar_t), sqrt(1 - abar_t) (Nichol)      t = 0
====================  =====================  ===========================================  ==============

A schedule offers ``alpha_sigma(t)`` (exact at the ends), ``sampling_times(N)`` (the decreasing grid of
an N-step sampler, float64 numpy, so that grids of N and 2N steps share their common points bit for bit
after the cast) and ``training_times(shape, seed)`` (the training distribution of t, stateless).
Schedules are frozen dataclasses: equal parameters compare and hash equal, so compiled samplers are
cached per schedule value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from gsgm.diffusion.tensors import as_float_tensor, expand_like

#: Range :meth:`VPCosineSchedule.logsnr` is clipped to (t within 2.9e-5 of an endpoint).
LOGSNR_MIN = -20.0
LOGSNR_MAX = 20.0

_HALF_PI = 0.5 * math.pi


def _check_steps(num_steps) -> int:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int | np.integer) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    return int(num_steps)


def _check_range(sigma_min: float, sigma_max: float) -> None:
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}")


class Schedule:
    """Protocol of a noise schedule (base class; see the module docstring for the instances)."""

    #: True where alpha == 1 for every t (variance exploding: the time *is* sigma).
    alpha_is_one: bool = False

    def alpha_sigma(self, t) -> tuple[tf.Tensor, tf.Tensor]:
        """``(alpha, sigma)`` at time ``t`` (any shape), each with the shape and float dtype of ``t``."""
        raise NotImplementedError

    def sampling_times(self, num_steps: int) -> np.ndarray:
        """``[N + 1]`` float64 times, strictly decreasing from the noise end to the data end."""
        raise NotImplementedError

    def training_times(self, shape, seed, dtype=tf.float32) -> tf.Tensor:
        """Times drawn from the training distribution, stateless in ``seed`` ([2] int)."""
        raise NotImplementedError

    def posterior(self, t, s) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Gaussian ``q(z_s | z_t, x) = N(c_z z_t + c_x x, var)`` for ``s < t`` (Kingma et al. 2021, VDM).

        With ``alpha_ts = alpha_t / alpha_s`` and the step variance ``beta_ts = sigma_t^2 - alpha_ts^2
        sigma_s^2`` (the "beta" of the step t -> s, ``beta_t`` for adjacent DDPM steps)::

            c_z = alpha_ts sigma_s^2 / sigma_t^2,  c_x = alpha_s beta_ts / sigma_t^2,
            var = beta_ts sigma_s^2 / sigma_t^2 (the "beta tilde" of the step)

        Args:
            t, s: times of the same shape (scalars or ``[B]``), ``sigma_t > 0``.

        Returns:
            ``(c_z, c_x, var, beta_ts)``, each with the shape and dtype of ``t``.
        """
        t = as_float_tensor(t)
        alpha_t, sigma_t = self.alpha_sigma(t)
        alpha_s, sigma_s = self.alpha_sigma(as_float_tensor(s, t.dtype))
        alpha_ts = alpha_t / alpha_s
        var_t, var_s = tf.square(sigma_t), tf.square(sigma_s)
        beta_ts = var_t - tf.square(alpha_ts) * var_s
        return alpha_ts * var_s / var_t, alpha_s * beta_ts / var_t, beta_ts * var_s / var_t, beta_ts


@dataclass(frozen=True)
class VPCosineSchedule(Schedule):
    """Continuous variance-preserving cosine schedule of FPCD (``alpha^2 + sigma^2 = 1``, t in [0, 1]).

    Exact endpoints: ``alpha(1) = 0``, ``sigma(0) = 0``, ``alpha(0) = sigma(1) = 1`` bit for bit. A naive
    ``cos(pi/2)`` in float32 is ``-4.4e-8``; ``alpha`` is evaluated as ``sin(pi/2 (1 - t))`` instead,
    accurate at its small end. ``t`` outside [0, 1] is clipped. Training times are ``U(0, 1)``; the
    sampling grid is uniform, ``(N - i) / N``.
    """

    def alpha_sigma(self, t) -> tuple[tf.Tensor, tf.Tensor]:
        t = tf.clip_by_value(as_float_tensor(t), 0.0, 1.0)
        return tf.sin(_HALF_PI * (1.0 - t)), tf.sin(_HALF_PI * t)

    def sampling_times(self, num_steps: int) -> np.ndarray:
        n = _check_steps(num_steps)
        # Integer numerator / integer denominator: every entry is the correctly rounded (N - i) / N, so
        # the grids of N and 2N steps share their common points exactly (progressive distillation).
        return (n - np.arange(n + 1, dtype=np.float64)) / n

    def training_times(self, shape, seed, dtype=tf.float32) -> tf.Tensor:
        return tf.random.stateless_uniform(shape, seed=seed, dtype=dtype)

    def logsnr(self, t) -> tf.Tensor:
        """``log(alpha^2 / sigma^2)``, decreasing in t, clipped to ``[LOGSNR_MIN, LOGSNR_MAX]``."""
        alpha, sigma = self.alpha_sigma(t)
        # log of each factor separately: accurate at both ends; +-inf at the ends is clipped.
        return tf.clip_by_value(2.0 * (tf.math.log(alpha) - tf.math.log(sigma)), LOGSNR_MIN, LOGSNR_MAX)

    def t_from_logsnr(self, lam) -> tf.Tensor:
        """Inverse of :meth:`logsnr`: ``t = (2 / pi) atan(exp(-lam / 2))`` (no clipping)."""
        return tf.atan(tf.exp(-0.5 * as_float_tensor(lam))) / _HALF_PI


@dataclass(frozen=True)
class VEGeometricSchedule(Schedule):
    """Variance-exploding SDE of Song et al. (2021) for jet images: alpha = 1, time t = sigma.

    Training noise levels are ``sigma = sigma_min (sigma_max / sigma_min)^u``, ``u ~ U(0, 1)`` (exact at
    both ends); the sampling grid (paper Alg. 1) is N geometric levels from sigma_max to sigma_min, then
    0, so the last step of a sampler returns the denoised mean.
    """

    sigma_min: float
    sigma_max: float
    alpha_is_one = True

    def __post_init__(self):
        _check_range(self.sigma_min, self.sigma_max)

    def alpha_sigma(self, t) -> tuple[tf.Tensor, tf.Tensor]:
        t = as_float_tensor(t)
        return tf.ones_like(t), t

    def sigma_at(self, u) -> tf.Tensor:
        """``sigma_min (sigma_max / sigma_min)^u`` for u in [0, 1], exact at u = 0 and 1 (shape of u)."""
        u = as_float_tensor(u)
        lo, hi = tf.constant(self.sigma_min, u.dtype), tf.constant(self.sigma_max, u.dtype)
        sigma = lo * tf.exp(u * tf.constant(np.log(self.sigma_max / self.sigma_min), u.dtype))
        return tf.where(u >= 1.0, hi, tf.where(u <= 0.0, lo, sigma))

    def sampling_times(self, num_steps: int) -> np.ndarray:
        n = _check_steps(num_steps)
        if n == 1:
            levels = np.array([self.sigma_max], dtype=np.float64)
        else:
            levels = np.geomspace(self.sigma_max, self.sigma_min, n)
            levels[0], levels[-1] = self.sigma_max, self.sigma_min
        return np.append(levels, 0.0)

    def training_times(self, shape, seed, dtype=tf.float32) -> tf.Tensor:
        return self.sigma_at(tf.random.stateless_uniform(shape, seed=seed, dtype=dtype))


@dataclass(frozen=True)
class KarrasSchedule(Schedule):
    """Karras et al. (2022) noise levels, alpha = 1, time t = sigma, on [sigma_min, sigma_max].

    Point ``i`` of the ``M``-point discretisation is
    ``(sigma_min^(1/rho) + i / (M - 1) (sigma_max^(1/rho) - sigma_min^(1/rho)))^rho``. Consistency models
    (Song et al. 2023) train on pairs of neighbouring points and sample on ``sampling_times(K)[:-1]``;
    the grid ends at sigma_min, the boundary where a consistency function is the identity.
    """

    sigma_min: float
    sigma_max: float
    rho: float = 7.0
    alpha_is_one = True

    def __post_init__(self):
        _check_range(self.sigma_min, self.sigma_max)

    def alpha_sigma(self, t) -> tuple[tf.Tensor, tf.Tensor]:
        t = as_float_tensor(t)
        return tf.ones_like(t), t

    def point(self, index, num_points) -> tf.Tensor:
        """Point ``index`` (0-based, increasing) of the ``num_points`` grid; float32, shape of ``index``.

        ``index`` and ``num_points`` may be tensors (N grows during consistency training); the ends
        are exact: point 0 is sigma_min, point ``M - 1`` is sigma_max.
        """
        index = tf.cast(index, tf.float32)
        last = tf.cast(num_points, tf.float32) - 1.0
        lo, hi = self.sigma_min ** (1.0 / self.rho), self.sigma_max ** (1.0 / self.rho)
        sigma = (lo + index / last * (hi - lo)) ** self.rho
        sigma = tf.where(index <= 0.0, tf.constant(self.sigma_min, tf.float32), sigma)
        return tf.where(index >= last, tf.constant(self.sigma_max, tf.float32), sigma)

    def discretization(self, num_points: int) -> np.ndarray:
        """All ``num_points`` (>= 2) points, increasing, float32 numpy."""
        if int(num_points) < 2:
            raise ValueError(f"num_points must be >= 2, got {num_points}")
        return self.point(tf.range(int(num_points)), int(num_points)).numpy()

    def sampling_times(self, num_steps: int) -> np.ndarray:
        """The ``N + 1``-point discretisation, decreasing (float32 values held in float64)."""
        n = _check_steps(num_steps)
        return self.discretization(n + 1)[::-1].astype(np.float64)


def _cosine_alphas_cumprod(num_steps: int, offset: float, max_beta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(betas [T + 1], alphas_cumprod [T + 1])`` in float64; index 0 is the data (beta 0, abar 1)."""
    steps = np.arange(num_steps + 1, dtype=np.float64)
    f = np.cos((steps / num_steps + offset) / (1.0 + offset) * _HALF_PI) ** 2
    betas = np.minimum(1.0 - f[1:] / f[:-1], max_beta)
    betas = np.concatenate([[0.0], betas])
    return betas, np.cumprod(1.0 - betas)


@dataclass(frozen=True)
class DiscreteCosineSchedule(Schedule):
    """Discrete cosine-beta DDPM schedule (Nichol & Dhariwal 2021, improved DDPM), T steps.

    ``abar(t) = f(t) / f(0)`` with ``f(t) = cos^2(((t / T + s) / (1 + s)) pi / 2)``, ``s = 0.008``; the
    betas ``beta_t = 1 - abar(t) / abar(t - 1)`` are clipped at ``max_beta = 0.999`` (so the last abar
    stays > 0) and ``abar`` is then recomputed as the product of ``1 - beta``, as the paper does.

    The time is the step index ``t in {0, ..., T}`` held in a float tensor (0 = data); arrays below are
    float64 numpy of length ``T + 1`` indexed by ``t`` (entry 0 is the data: beta 0, abar 1, posterior
    quantities 0). Sampling with ``N <= T`` steps uses the evenly spaced (respaced) integer times
    ``round(linspace(T, 0, N + 1))``; training draws ``t`` uniformly from ``{1, ..., T}``.
    """

    num_steps: int = 1000
    offset: float = 0.008
    max_beta: float = 0.999
    betas: np.ndarray = field(init=False, repr=False, compare=False)
    alphas_cumprod: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        _check_steps(self.num_steps)
        betas, abar = _cosine_alphas_cumprod(int(self.num_steps), self.offset, self.max_beta)
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "alphas_cumprod", abar)

    def __hash__(self) -> int:
        return hash((type(self), self.num_steps, self.offset, self.max_beta))

    @property
    def posterior_variance(self) -> np.ndarray:
        """``beta tilde_t = beta_t (1 - abar_(t-1)) / (1 - abar_t)`` ([T + 1], entry 0 = 0)."""
        abar_prev = np.concatenate([[1.0], self.alphas_cumprod[:-1]])
        out = np.zeros_like(self.betas)
        out[1:] = self.betas[1:] * (1.0 - abar_prev[1:]) / (1.0 - self.alphas_cumprod[1:])
        return out

    @property
    def posterior_log_variance_clipped(self) -> np.ndarray:
        """``log beta tilde_t``; entry 1 (where beta tilde = 0) replaced by entry 2, as Nichol & Dhariwal."""
        var = self.posterior_variance.copy()
        var[:2] = var[2] if var.size > 2 else self.betas[1]
        return np.log(var)

    @property
    def posterior_mean_coef1(self) -> np.ndarray:
        """Coefficient of x in the posterior mean: ``beta_t sqrt(abar_(t-1)) / (1 - abar_t)``."""
        abar_prev = np.concatenate([[1.0], self.alphas_cumprod[:-1]])
        out = np.zeros_like(self.betas)
        out[1:] = self.betas[1:] * np.sqrt(abar_prev[1:]) / (1.0 - self.alphas_cumprod[1:])
        return out

    @property
    def posterior_mean_coef2(self) -> np.ndarray:
        """Coefficient of z_t in the posterior mean: ``(1 - abar_(t-1)) sqrt(1 - beta_t) / (1 - abar_t)``."""
        abar_prev = np.concatenate([[1.0], self.alphas_cumprod[:-1]])
        out = np.zeros_like(self.betas)
        out[1:] = (1.0 - abar_prev[1:]) * np.sqrt(1.0 - self.betas[1:]) / (1.0 - self.alphas_cumprod[1:])
        return out

    def lookup(self, table: np.ndarray, t) -> tf.Tensor:
        """``table[t]`` (float64) for int-valued times ``t`` of any shape (clipped to 0..T)."""
        index = tf.cast(tf.round(as_float_tensor(t)), tf.int32)
        return tf.gather(tf.constant(table, tf.float64), tf.clip_by_value(index, 0, int(self.num_steps)))

    def alpha_sigma(self, t) -> tuple[tf.Tensor, tf.Tensor]:
        t = as_float_tensor(t)
        abar = self.lookup(self.alphas_cumprod, t)
        return tf.cast(tf.sqrt(abar), t.dtype), tf.cast(tf.sqrt(1.0 - abar), t.dtype)

    def sampling_times(self, num_steps: int) -> np.ndarray:
        n = _check_steps(num_steps)
        if n > self.num_steps:
            raise ValueError(f"at most T = {self.num_steps} sampling steps, got {n}")
        return np.round(np.linspace(self.num_steps, 0, n + 1))

    def training_times(self, shape, seed, dtype=tf.float32) -> tf.Tensor:
        index = tf.random.stateless_uniform(
            shape, seed=seed, minval=1, maxval=int(self.num_steps) + 1, dtype=tf.int32
        )
        return tf.cast(index, dtype)

    def posterior(self, t, s) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """As :meth:`Schedule.posterior`, in float64 from the abar table (no float32 cancellation)."""
        t = as_float_tensor(t)
        abar_t, abar_s = self.lookup(self.alphas_cumprod, t), self.lookup(self.alphas_cumprod, s)
        beta_ts = 1.0 - abar_t / abar_s
        var_t, var_s = 1.0 - abar_t, 1.0 - abar_s
        out = (
            tf.sqrt(abar_t / abar_s) * var_s / var_t,
            tf.sqrt(abar_s) * beta_ts / var_t,
            beta_ts * var_s / var_t,
        )
        return (*(tf.cast(o, t.dtype) for o in out), tf.cast(beta_ts, t.dtype))


def scales_like(schedule: Schedule, t, x) -> tuple[tf.Tensor, tf.Tensor]:
    """``alpha(t), sigma(t)`` in ``x``'s dtype, expanded to broadcast against ``x [B, ...]``."""
    alpha, sigma = schedule.alpha_sigma(as_float_tensor(t, x.dtype))
    return expand_like(alpha, x), expand_like(sigma, x)
