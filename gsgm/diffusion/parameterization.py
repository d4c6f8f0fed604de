"""Conversions between the data ``x``, the noise ``eps`` and the velocity ``v`` (FPCD eqs. 1-2).

With ``z = alpha x + sigma eps`` and ``alpha**2 + sigma**2 = 1`` the velocity is
``v = alpha eps - sigma x`` (Salimans & Ho), and ``(z, v)`` is a rotation of ``(x, eps)``::

    x   = alpha z - sigma v          eps = sigma z + alpha v

These two never divide, so they are finite for every ``t`` in ``[0, 1]``; samplers and losses use only
them. The conversions from an ``x`` (or ``eps``) estimate back to ``eps``/``v`` (or ``x``) divide by
``sigma`` (or ``alpha``) and are singular at ``t = 0`` (or ``t = 1``); their docstrings say so.

Shapes: data tensors ``z, x, eps, v`` are ``[B, ...]`` (batch first, any rank). ``alpha`` and
``sigma`` are scalars, ``[B]``, or already broadcastable to the data; a ``[B]`` vector is expanded to
``[B, 1, ..., 1]`` with :func:`gsgm.diffusion.tensors.expand_like`. All functions accept numpy arrays
and return tf tensors; ``alpha``/``sigma`` are cast to the dtype of the data.
"""

from __future__ import annotations

import tensorflow as tf

from gsgm.diffusion.tensors import as_float_tensor, expand_like


def _prepare(data, alpha, sigma):
    """Data as a float tensor and ``alpha``/``sigma`` cast and expanded to broadcast against it."""
    data = as_float_tensor(data)
    alpha = expand_like(as_float_tensor(alpha, data.dtype), data)
    sigma = expand_like(as_float_tensor(sigma, data.dtype), data)
    return data, alpha, sigma


def v_from_x_eps(x, eps, alpha, sigma) -> tf.Tensor:
    """Velocity ``v = alpha eps - sigma x`` (training target of eq. 1). Shape of ``x``."""
    x, alpha, sigma = _prepare(x, alpha, sigma)
    eps = as_float_tensor(eps, x.dtype)
    return alpha * eps - sigma * x


def x_from_v(z, v, alpha, sigma) -> tf.Tensor:
    """Data estimate ``x = alpha z - sigma v``; finite for all ``t`` (at ``t = 1``: ``x = -v``)."""
    z, alpha, sigma = _prepare(z, alpha, sigma)
    return alpha * z - sigma * as_float_tensor(v, z.dtype)


def eps_from_v(z, v, alpha, sigma) -> tf.Tensor:
    """Noise estimate ``eps = sigma z + alpha v``; finite for all ``t`` (at ``t = 0``: ``eps = v``)."""
    z, alpha, sigma = _prepare(z, alpha, sigma)
    return sigma * z + alpha * as_float_tensor(v, z.dtype)


def eps_from_x(z, x, alpha, sigma) -> tf.Tensor:
    """Noise implied by a data estimate: ``eps = (z - alpha x) / sigma``.

    Singular at ``sigma = 0`` (``t = 0``), where ``z = x`` carries no information about the noise: the
    result is then inf/nan. Callers must keep ``t > 0``; progressive distillation does, since its
    targets live on student grid points ``t = i / N`` with ``i >= 1``. Not clamped on purpose: a silent
    floor on ``sigma`` would turn the singularity into large but plausible-looking numbers.
    """
    z, alpha, sigma = _prepare(z, alpha, sigma)
    return (z - alpha * as_float_tensor(x, z.dtype)) / sigma


def x_from_eps(z, eps, alpha, sigma) -> tf.Tensor:
    """Data implied by a noise estimate: ``x = (z - sigma eps) / alpha``; singular at ``t = 1``."""
    z, alpha, sigma = _prepare(z, alpha, sigma)
    return (z - sigma * as_float_tensor(eps, z.dtype)) / alpha


def v_from_x(z, x, alpha, sigma) -> tf.Tensor:
    """Velocity whose DDIM data estimate at ``z`` is exactly ``x`` (the progressive-distillation target).

    ``v = alpha eps(z, x) - sigma x`` with ``eps = (z - alpha x) / sigma``, so that
    ``x_from_v(z, v_from_x(z, x, ...), ...) == x``. Written in this general form rather than the
    VP-simplified ``(alpha z - x) / sigma`` so that it holds for any schedule. Divides by ``sigma``:
    singular at ``t = 0`` (see :func:`eps_from_x`); keep ``t > 0``.
    """
    z, alpha, sigma = _prepare(z, alpha, sigma)
    x = as_float_tensor(x, z.dtype)
    eps = (z - alpha * x) / sigma
    return alpha * eps - sigma * x


def score_from_v(z, v, alpha, sigma) -> tf.Tensor:
    """Score ``grad_z log p_t(z) = -eps / sigma = -z - (alpha / sigma) v`` (FPCD eq. 2).

    Note the sign of the ``z`` term: for data ``x ~ N(0, 1)`` the exact velocity is ``v = 0`` and the
    score of ``z_t ~ N(0, 1)`` is ``-z``; eq. (2) as printed in the paper reads ``+z``. Singular at
    ``t = 0`` (``sigma = 0``), like the score itself.
    """
    z, alpha, sigma = _prepare(z, alpha, sigma)
    return -z - alpha / sigma * as_float_tensor(v, z.dtype)
