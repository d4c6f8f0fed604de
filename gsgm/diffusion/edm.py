"""EDM training (Karras et al. 2022) and running a VE/EDM denoiser under a VP (DDPM) sampler.

* :func:`edm_training_sigmas`: noise levels ``ln sigma ~ N(p_mean, p_std^2)`` (EDM Table 1).
* :func:`edm_loss`: ``lambda(sigma) |D(x + sigma n, sigma) - x|^2`` with ``lambda = (sigma^2 +
  sigma_data^2) / (sigma sigma_data)^2``, masked over padded set elements; with a
  :class:`~gsgm.diffusion.denoisers.PreconditionedDenoiser` of kind "denoiser" it is the unweighted
  MSE of the network output (unit-variance targets at every sigma).
* :class:`VEAsVPDenoiser`: a VP state ``z = alpha x + sigma_vp n`` is the VE state ``z / alpha`` at
  noise level ``sigma_vp / alpha``, so one trained VE denoiser serves ancestral DDPM sampling
  (:func:`gsgm.diffusion.samplers.sample_ancestral`) too. A level above the trained ``sigma_max`` is
  evaluated at ``sigma_max`` with the state rescaled to that level's total variance (the estimate is
  the data mean there anyway; the network never saw larger levels).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from gsgm.diffusion.denoisers import Prediction
from gsgm.diffusion.schedules import Schedule
from gsgm.diffusion.tensors import as_float_tensor, expand_like

__all__ = ["VEAsVPDenoiser", "edm_loss", "edm_training_sigmas"]


def edm_training_sigmas(shape, seed, p_mean: float = -1.2, p_std: float = 1.2) -> tf.Tensor:
    """``exp(p_mean + p_std N(0, 1))`` of ``shape`` from a stateless ``seed`` [2]."""
    return tf.exp(p_mean + p_std * tf.random.stateless_normal(shape, seed=seed))


def edm_loss(
    denoiser: Callable[..., tf.Tensor], x, sigma, noise, sigma_data: float, mask=None, cond=None
) -> tf.Tensor:
    """EDM loss of one batch (scalar).

    Args:
        denoiser: ``(z [B, ...], sigma [B], **cond) -> x0_hat``.
        x: clean data [B, ...]; sigma: [B]; noise: standard normal, shape of x.
        sigma_data: data scale of the weighting.
        mask: optional [B, P] mask of real set elements: noise and error are zeroed on padding and the
            mean runs over real elements only.
        cond: keyword conditions of the denoiser.
    """
    x = as_float_tensor(x)
    sigma = as_float_tensor(sigma, x.dtype)
    m = tf.ones_like(x[..., :1]) if mask is None else expand_like(as_float_tensor(mask, x.dtype), x)
    z = x + expand_like(sigma, x) * as_float_tensor(noise, x.dtype) * m
    weight = (tf.square(sigma) + sigma_data**2) / tf.square(sigma * sigma_data)
    error = tf.square(denoiser(z, sigma, **(cond or {})) - x) * m
    per_example = tf.reduce_sum(tf.reshape(error, [tf.shape(x)[0], -1]), axis=1)
    count = tf.reduce_sum(tf.reshape(m * tf.ones_like(x), [tf.shape(x)[0], -1]), axis=1)
    return tf.reduce_sum(weight * per_example) / tf.maximum(tf.reduce_sum(count), 1.0)


class VEAsVPDenoiser:
    """Wrap a VE denoiser ``D(x, sigma)`` as a denoiser on the times of a VP ``schedule``.

    Args:
        ve_denoiser: ``(x, sigma [B], **cond) -> x0_hat`` (alpha = 1).
        schedule: the VP schedule the sampler runs on (e.g. DiscreteCosineSchedule).
        sigma_max: the largest VE level the denoiser was trained at.
    """

    def __init__(self, ve_denoiser: Callable[..., tf.Tensor], schedule: Schedule, sigma_max: float):
        self.ve_denoiser, self.schedule, self.sigma_max = ve_denoiser, schedule, float(sigma_max)

    def predict(self, z, t, **cond) -> Prediction:
        z = as_float_tensor(z)
        alpha, sigma = self.schedule.alpha_sigma(as_float_tensor(t, z.dtype))
        level = sigma / alpha
        clipped = tf.minimum(level, self.sigma_max)
        # keep the input's scale that of a state at the clipped level: x + sigma n has std ~ sigma
        shrink = tf.sqrt((tf.square(clipped) + 1.0) / (tf.square(level) + 1.0))
        return Prediction(self.ve_denoiser(z * expand_like(shrink / alpha, z), clipped, **cond))

    def __call__(self, z, t, **cond) -> tf.Tensor:
        return self.predict(z, t, **cond).x0
