"""Variance-preserving cosine noise schedule (FPCD section II).

Diffusion time ``t`` is dimensionless and runs from 0 (data) to 1 (pure noise). The latent is
``z_t = alpha_t x + sigma_t eps`` with ``alpha_t = cos(pi t / 2)`` and ``sigma_t = sin(pi t / 2)``, so
``alpha_t**2 + sigma_t**2 = 1`` (variance preserving) and the log signal-to-noise ratio
``logsnr(t) = log(alpha_t**2 / sigma_t**2)`` decreases monotonically from +inf to -inf.

Endpoints (a deliberate choice, relied upon by :mod:`gsgm.diffusion.ddim`):

* ``alpha`` and ``sigma`` are defined on the *closed* interval ``[0, 1]`` and are exact there:
  ``alpha(1) = 0``, ``sigma(0) = 0``, ``alpha(0) = sigma(1) = 1`` bit for bit. A naive ``cos(pi/2 * 1)`` in
  float32 is ``-4.4e-8`` (negative!); we instead evaluate ``alpha = sin(pi/2 * (1 - t))``, where ``1 - t``
  is exact near ``t = 1`` and ``sin`` is accurate for small arguments, so both functions keep full
  relative precision at their small ends. ``t`` outside ``[0, 1]`` is clipped.
* No clipping of ``t`` away from the endpoints is needed for sampling or training: in the
  v-parameterisation the conversions ``x = alpha z - sigma v`` and ``eps = sigma z + alpha v`` never divide
  by ``alpha`` or ``sigma``. Only the quantities that really are singular are regularised:
  :func:`logsnr` is clipped to ``[LOGSNR_MIN, LOGSNR_MAX]`` (it is +-inf at the endpoints), and the
  conversions that divide by ``sigma`` or ``alpha`` document their domain.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

#: Range :func:`logsnr` is clipped to. ``|logsnr| = 20`` corresponds to ``t`` within ``2.9e-5`` of an
#: endpoint (signal or noise fraction ``exp(-10) = 4.5e-5``), far below any grid spacing we use.
LOGSNR_MIN = -20.0
LOGSNR_MAX = 20.0

_HALF_PI = 0.5 * math.pi


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


def cosine_alpha_sigma(t) -> tuple[tf.Tensor, tf.Tensor]:
    """Signal and noise scales of the VP cosine schedule.

    Args:
        t: diffusion time in ``[0, 1]``, any shape (typically ``[B]`` or a scalar); values outside are
            clipped. Floating dtypes are kept, anything else becomes float32.

    Returns:
        ``(alpha, sigma)``, each with the shape and dtype of ``t``: ``alpha = cos(pi t / 2)``,
        ``sigma = sin(pi t / 2)``, both in ``[0, 1]``, exact at ``t = 0`` and ``t = 1``.
    """
    t = tf.clip_by_value(as_float_tensor(t), 0.0, 1.0)
    # cos(pi/2 t) == sin(pi/2 (1 - t)); the latter is exactly 0 at t = 1 (see module docstring).
    alpha = tf.sin(_HALF_PI * (1.0 - t))
    sigma = tf.sin(_HALF_PI * t)
    return alpha, sigma


def logsnr(t) -> tf.Tensor:
    """Log signal-to-noise ratio ``log(alpha_t**2 / sigma_t**2) = -2 log tan(pi t / 2)``.

    Args:
        t: diffusion time in ``[0, 1]``, any shape.

    Returns:
        Tensor with the shape of ``t``, monotonically decreasing in ``t``, clipped to
        ``[LOGSNR_MIN, LOGSNR_MAX]`` (the exact value is +inf at ``t = 0`` and -inf at ``t = 1``).
    """
    alpha, sigma = cosine_alpha_sigma(t)
    # log of each factor separately: accurate at both ends (tan would lose the small end near t = 1).
    # log(0) = -inf is fine here; the clip maps +-inf to the finite bounds.
    value = 2.0 * (tf.math.log(alpha) - tf.math.log(sigma))
    return tf.clip_by_value(value, LOGSNR_MIN, LOGSNR_MAX)


def t_from_logsnr(lam) -> tf.Tensor:
    """Inverse of :func:`logsnr` on ``[LOGSNR_MIN, LOGSNR_MAX]``: ``t = (2 / pi) atan(exp(-lam / 2))``.

    Args:
        lam: log-SNR, any shape; values outside the clip range map to the corresponding endpoint
            neighbourhood (no clipping is applied here).

    Returns:
        Diffusion time in ``[0, 1]`` with the shape of ``lam``.
    """
    lam = as_float_tensor(lam)
    return tf.atan(tf.exp(-0.5 * lam)) / _HALF_PI


def time_grid(num_steps: int, dtype=tf.float32) -> tf.Tensor:
    """Uniform sampling grid in diffusion time, from 1 (noise) down to 0 (data).

    Args:
        num_steps: number of DDIM steps ``N >= 1`` (= number of network evaluations).
        dtype: floating dtype of the result.

    Returns:
        Tensor ``[N + 1]`` with ``grid[i] = (N - i) / N``; ``grid[0] == 1`` and ``grid[N] == 0`` exactly.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int | np.integer) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    n = int(num_steps)
    # Integer numerator / integer denominator in float64, then cast: every entry is the correctly
    # rounded (N - i) / N, so grids of N and 2N steps share their common points exactly (distillation
    # pairs two teacher steps with one student step on these grids).
    grid = (n - np.arange(n + 1, dtype=np.float64)) / n
    return tf.constant(grid, dtype=dtype)
