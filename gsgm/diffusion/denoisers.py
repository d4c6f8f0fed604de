"""The one denoiser convention of gsgm.diffusion, and adapters that put networks into it.

A **denoiser** is any callable ``denoiser(z [B, ...], t [B], **cond) -> x0_hat [B, ...]`` returning the
clean-data estimate (k-diffusion style). **Time rule:** ``t`` is always the time coordinate of the
schedule the sampler runs on (:mod:`gsgm.diffusion.schedules`): diffusion time in [0, 1] for the VP
cosine schedule, the noise level sigma itself for the VE and Karras schedules (alpha = 1), the integer
step index for the discrete DDPM schedule. ``cond`` carries conditions (class labels, jet features,
masks) as keyword tensors.

Adapters wrap a network that predicts something else (v, eps, the score, a preconditioned output, a
consistency output). Besides ``__call__`` they offer ``predict(z, t, **cond) -> Prediction``, which
also returns the network's own noise estimate (and, for learned-variance DDPMs, the variance weight).
Samplers use it when present, because recovering ``eps = (z - alpha x0) / sigma`` from ``x0`` loses
digits as sigma -> 0 (a v-network's ``eps = sigma z + alpha v`` never divides); a plain callable works
everywhere, through :func:`predict`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import tensorflow as tf

from gsgm.diffusion.schedules import Schedule, scales_like
from gsgm.diffusion.tensors import as_float_tensor, expand_like

Denoiser = Callable[..., tf.Tensor]

__all__ = [
    "ConsistencyDenoiser",
    "Denoiser",
    "EpsDenoiser",
    "PreconditionedDenoiser",
    "Prediction",
    "ScoreDenoiser",
    "VDenoiser",
    "consistency_scalings",
    "eps_of",
    "predict",
    "score_of",
]


class Prediction(NamedTuple):
    """What a denoiser evaluation yields: ``x0`` always; ``eps`` and ``variance_weight`` when known."""

    x0: tf.Tensor
    eps: tf.Tensor | None = None
    #: Nichol & Dhariwal's interpolation ``v`` of ``log Sigma = v log beta + (1 - v) log beta_tilde``.
    variance_weight: tf.Tensor | None = None


def _checked(out, z: tf.Tensor, what: str) -> tf.Tensor:
    out = tf.convert_to_tensor(out)
    if not out.shape.is_compatible_with(z.shape):
        raise ValueError(f"{what} has shape {out.shape}, expected the shape of z {z.shape}")
    return tf.cast(out, z.dtype)


def predict(denoiser: Denoiser, z: tf.Tensor, t: tf.Tensor, cond: Mapping | None = None) -> Prediction:
    """Evaluate ``denoiser`` at ``(z [B, ...], t [B])``; checks shapes and casts to ``z``'s dtype."""
    cond = dict(cond or {})
    method = getattr(denoiser, "predict", None)
    if method is None:
        return Prediction(_checked(denoiser(z, t, **cond), z, "denoiser output"))
    pred = method(z, t, **cond)
    return Prediction(
        _checked(pred.x0, z, "x0"),
        None if pred.eps is None else _checked(pred.eps, z, "eps"),
        None if pred.variance_weight is None else _checked(pred.variance_weight, z, "variance_weight"),
    )


def eps_of(pred: Prediction, z: tf.Tensor, alpha, sigma) -> tf.Tensor:
    """Noise estimate: the denoiser's own, else ``(z - alpha x0) / sigma`` (singular at sigma = 0)."""
    if pred.eps is not None:
        return pred.eps
    return (z - alpha * pred.x0) / sigma


def score_of(pred: Prediction, z: tf.Tensor, alpha, sigma) -> tf.Tensor:
    """Score ``grad log p_t(z) = -eps / sigma = (alpha x0 - z) / sigma^2`` (singular at sigma = 0)."""
    if pred.eps is not None:
        return -pred.eps / sigma
    return (alpha * pred.x0 - z) / tf.square(sigma)


class _Adapter:
    """Base of the adapters: ``__call__`` is ``predict(...).x0``."""

    def predict(self, z, t, **cond) -> Prediction:
        raise NotImplementedError

    def __call__(self, z, t, **cond) -> tf.Tensor:
        return self.predict(z, t, **cond).x0


class VDenoiser(_Adapter):
    """A velocity network ``v = alpha eps - sigma x`` (FPCD, Salimans & Ho): ``x0 = alpha z - sigma v``.

    Args:
        network: ``network(z [B, ...], t [B], **cond) -> v_hat [B, ...]``.
        schedule: the schedule whose time the network takes.
    """

    def __init__(self, network: Callable[..., tf.Tensor], schedule: Schedule):
        self.network, self.schedule = network, schedule

    def predict(self, z, t, **cond) -> Prediction:
        z = as_float_tensor(z)
        v = _checked(self.network(z, t, **cond), z, "network output")
        alpha, sigma = scales_like(self.schedule, t, z)
        # Neither conversion divides: finite on the whole closed time interval.
        return Prediction(alpha * z - sigma * v, sigma * z + alpha * v)


class EpsDenoiser(_Adapter):
    """A noise-predicting network (Ho et al. 2020): ``x0 = (z - sigma eps) / alpha``.

    With ``learned_variance`` the network returns ``2 C`` channels on the last axis, ``[eps, v]``, and
    ``v`` is the variance interpolation of Nichol & Dhariwal (used as the network outputs it).

    Args:
        network: ``network(z [B, ..., C], t [B], **cond) -> [B, ..., C]`` (or ``2 C``).
        schedule: the schedule whose time the network takes; needs alpha > 0 at every t used.
        learned_variance: split the output into eps and the variance weight.
    """

    def __init__(self, network: Callable[..., tf.Tensor], schedule: Schedule, learned_variance: bool = False):
        self.network, self.schedule, self.learned_variance = network, schedule, bool(learned_variance)

    def predict(self, z, t, **cond) -> Prediction:
        z = as_float_tensor(z)
        out = tf.cast(self.network(z, t, **cond), z.dtype)
        weight = None
        if self.learned_variance:
            out, weight = tf.split(out, 2, axis=-1)
        eps = _checked(out, z, "eps")
        alpha, sigma = scales_like(self.schedule, t, z)
        return Prediction((z - sigma * eps) / alpha, eps, weight)


class ScoreDenoiser(_Adapter):
    """A score network ``s = grad log p_t(z)``: ``eps = -sigma s``, ``x0 = (z + sigma^2 s) / alpha``."""

    def __init__(self, network: Callable[..., tf.Tensor], schedule: Schedule):
        self.network, self.schedule = network, schedule

    def predict(self, z, t, **cond) -> Prediction:
        z = as_float_tensor(z)
        score = _checked(self.network(z, t, **cond), z, "score")
        alpha, sigma = scales_like(self.schedule, t, z)
        return Prediction((z + tf.square(sigma) * score) / alpha, -sigma * score)


PARAMETERIZATIONS = ("noise", "denoiser")


class PreconditionedDenoiser(_Adapter):
    """VE network ``F(c_in z, log sigma)`` in one of two parameterisations (time t = sigma, alpha = 1).

    ``"noise"`` (Score SDE's "scale by sigma"): ``F`` predicts the noise, ``x0 = z - sigma F``. Well
    conditioned at small sigma; at large sigma a relative error ``e`` of ``F`` becomes an error
    ``sigma e`` of the denoised image, which for sparse jet images (sigma_data ~ 0.024, sigma_max ~ 1.3)
    exceeds the whole signal.

    ``"denoiser"`` (Karras et al. 2022): ``x0 = c_skip z + c_out F`` with ``c_skip = sigma_data^2 /
    (sigma^2 + sigma_data^2)``, ``c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2)``: the
    regression target of ``F`` has unit variance at every sigma.

    Both feed ``c_in = 1 / sqrt(sigma^2 + sigma_data^2)`` times z to the network, and :meth:`loss_weight`
    is the weight of :func:`gsgm.diffusion.losses.dsm_loss` that makes it an unweighted MSE of ``F``.

    Args:
        network: ``network(z_in [B, ...], log_sigma [B], **cond) -> F [B, ...]``.
        sigma_data: data scale of the preconditioning.
        kind: "noise" or "denoiser".
    """

    def __init__(self, network: Callable[..., tf.Tensor], sigma_data: float, kind: str = "noise"):
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        if kind not in PARAMETERIZATIONS:
            raise ValueError(f"kind must be one of {PARAMETERIZATIONS}, got {kind!r}")
        self.network, self.sigma_data, self.kind = network, float(sigma_data), kind

    def c_in(self, sigma) -> tf.Tensor:
        return tf.math.rsqrt(tf.square(as_float_tensor(sigma)) + self.sigma_data**2)

    def loss_weight(self, sigma) -> tf.Tensor:
        """1 for "noise"; ``(sigma^2 + sigma_data^2) / sigma_data^2`` for "denoiser" (shape of sigma)."""
        sigma = as_float_tensor(sigma)
        if self.kind == "noise":
            return tf.ones_like(sigma)
        return (tf.square(sigma) + self.sigma_data**2) / self.sigma_data**2

    def predict(self, z, t, **cond) -> Prediction:
        z = as_float_tensor(z)
        sigma = as_float_tensor(t, z.dtype)
        sigma_z = expand_like(sigma, z)
        out = tf.cast(self.network(expand_like(self.c_in(sigma), z) * z, tf.math.log(sigma), **cond), z.dtype)
        if self.kind == "noise":
            return Prediction(z - sigma_z * out, out)
        sd2 = self.sigma_data**2
        c_skip = sd2 / (tf.square(sigma_z) + sd2)
        c_out = sigma_z * self.sigma_data * tf.math.rsqrt(tf.square(sigma_z) + sd2)
        return Prediction(c_skip * z + c_out * out)


def consistency_scalings(
    sigma, sigma_min: float, sigma_data: float
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(c_skip, c_out, c_in)`` of a consistency model (Song et al. 2023) at ``sigma`` (any shape).

    ``c_skip = sigma_data^2 / ((sigma - eps)^2 + sigma_data^2)``, ``c_out = sigma_data (sigma - eps) /
    sqrt(sigma_data^2 + sigma^2)``, ``c_in = 1 / sqrt(sigma^2 + sigma_data^2)``: exactly (1, 0, .) at
    ``sigma = eps = sigma_min``, so ``f(x, eps) == x`` bit for bit for any finite network output.
    """
    sigma = as_float_tensor(sigma)
    eps = tf.constant(sigma_min, sigma.dtype)
    sd2 = tf.constant(sigma_data**2, sigma.dtype)
    shifted = sigma - eps
    c_skip = sd2 / (tf.square(shifted) + sd2)
    c_out = tf.constant(sigma_data, sigma.dtype) * shifted * tf.math.rsqrt(sd2 + tf.square(sigma))
    c_in = tf.math.rsqrt(tf.square(sigma) + sd2)
    return c_skip, c_out, c_in


class ConsistencyDenoiser(_Adapter):
    """Consistency function ``f(z, sigma) = c_skip z + c_out F(c_in z, log sigma)`` (time t = sigma).

    Args:
        network: ``network(z_in [B, ...], log_sigma [B], **cond) -> F [B, ...]``.
        sigma_min: the boundary eps where ``f(z, eps) == z``.
        sigma_data: data scale of the scalings.
    """

    def __init__(self, network: Callable[..., tf.Tensor], sigma_min: float, sigma_data: float):
        if not (sigma_min > 0 and sigma_data > 0):
            raise ValueError(f"sigma_min and sigma_data must be > 0, got {sigma_min}, {sigma_data}")
        self.network, self.sigma_min, self.sigma_data = network, float(sigma_min), float(sigma_data)

    def predict(self, z, t, **cond) -> Prediction:
        z = as_float_tensor(z)
        sigma = as_float_tensor(t, z.dtype)
        c_skip, c_out, c_in = (
            expand_like(c, z) for c in consistency_scalings(sigma, self.sigma_min, self.sigma_data)
        )
        out = tf.cast(self.network(c_in * z, tf.math.log(sigma), **cond), z.dtype)
        return Prediction(c_skip * z + c_out * out)
