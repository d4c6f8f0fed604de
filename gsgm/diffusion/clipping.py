"""A denoiser wrapper that clips the data estimate to the data range (improved DDPM's clip_denoised).

Data in [-1, 1] (DIS images): far from the data the network's ``x0 = (z - sigma eps) / alpha`` can
leave the range by orders of magnitude (alpha ~ 1e-4 at the last step of the cosine schedule), and
both the ancestral and the DDIM step would carry that into the next state. Clipping ``x0`` and
recomputing ``eps = (z - alpha x0_clipped) / sigma`` keeps the two consistent (as Nichol & Dhariwal's
code does); the variance weight passes through unchanged.
"""

from __future__ import annotations

import tensorflow as tf

from gsgm.diffusion.denoisers import Denoiser, Prediction, predict
from gsgm.diffusion.schedules import Schedule, scales_like
from gsgm.diffusion.tensors import as_float_tensor

__all__ = ["ClippedDenoiser"]


class ClippedDenoiser:
    """``denoiser`` with ``x0`` clipped to ``[low, high]`` and the matching ``eps`` (needs sigma > 0).

    Args:
        denoiser: any denoiser of the gsgm convention.
        schedule: the schedule whose time the denoiser takes.
        low, high: the data range.
    """

    def __init__(self, denoiser: Denoiser, schedule: Schedule, low: float = -1.0, high: float = 1.0):
        if not low < high:
            raise ValueError(f"need low < high, got {low}, {high}")
        self.denoiser, self.schedule, self.low, self.high = denoiser, schedule, float(low), float(high)

    def predict(self, z, t, **cond) -> Prediction:
        z = as_float_tensor(z)
        pred = predict(self.denoiser, z, t, cond)
        x0 = tf.clip_by_value(pred.x0, self.low, self.high)
        alpha, sigma = scales_like(self.schedule, t, z)
        return Prediction(x0, (z - alpha * x0) / sigma, pred.variance_weight)

    def __call__(self, z, t, **cond) -> tf.Tensor:
        return self.predict(z, t, **cond).x0
