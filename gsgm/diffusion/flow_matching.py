"""Conditional flow matching with straight paths (Lipman et al. 2023; phase-space paper eqs. 12-13).

x_t = (1 - t) x_0 + t x_1 with x_0 from the prior and x_1 from the data; the network regresses the
conditional velocity x_1 - x_0. Sampling integrates dx/dt = v_theta(x, t) from t = 0 (prior) to 1.
A fitted Gaussian prior (mean and covariance of the training data, as in OmniLearn) is
:class:`GaussianPrior`. Tensors in, tensors out; ``x`` may have any shape ``[B, ...]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from gsgm.diffusion.tensors import expand_like

__all__ = ["GaussianPrior", "flow_matching_loss", "interpolate", "sample_flow"]


def interpolate(x0, x1, t) -> tuple[tf.Tensor, tf.Tensor]:
    """Eq. 12: (x_t, target velocity x_1 - x_0) for times t [B] in [0, 1]."""
    t = expand_like(tf.cast(t, x0.dtype), x0)
    return (1.0 - t) * x0 + t * x1, x1 - x0


def flow_matching_loss(v_hat, target) -> tf.Tensor:
    """Eq. 13: mean squared error of the velocity (mean over every component)."""
    return tf.reduce_mean(tf.square(v_hat - target))


def sample_flow(
    velocity: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], x0, num_steps: int, method: str = "heun"
) -> tf.Tensor:
    """Integrate dx/dt = velocity(x, t) from t = 0 to 1 in ``num_steps`` uniform steps (Euler or Heun)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if method not in ("euler", "heun"):
        raise ValueError(f"method must be 'euler' or 'heun', got {method!r}")
    x = tf.convert_to_tensor(x0)
    batch = tf.shape(x)[0]
    h = 1.0 / num_steps
    for i in range(num_steps):
        t = tf.fill([batch], tf.cast(i * h, x.dtype))
        v = velocity(x, t)
        if method == "euler":
            x = x + h * v
        else:
            x_pred = x + h * v
            v_next = velocity(x_pred, t + h)
            x = x + 0.5 * h * (v + v_next)
    return x


@dataclass(frozen=True, eq=False)
class GaussianPrior:
    """N(mean, cov) over flattened samples: mean [D], cholesky factor [D, D] (float64 arrays)."""

    mean: np.ndarray
    cholesky: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, jitter: float = 1e-6) -> GaussianPrior:
        """Fit to data x [n, ...] (flattened to [n, D]); ``jitter`` times the mean variance keeps cov PD."""
        flat = np.asarray(x, np.float64).reshape(len(x), -1)
        cov = np.cov(flat, rowvar=False)
        cov = cov + jitter * np.mean(np.diag(cov)) * np.eye(len(cov))
        return cls(flat.mean(axis=0), np.linalg.cholesky(cov))

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "cholesky": self.cholesky.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> GaussianPrior:
        return cls(np.asarray(data["mean"], np.float64), np.asarray(data["cholesky"], np.float64))

    def sample(self, shape, seed, dtype=tf.float32) -> tf.Tensor:
        """Draws of shape ``shape`` = [n, *event_shape] (a tensor or list; prod(event_shape) = D)."""
        shape = tf.convert_to_tensor(shape, tf.int32)
        z = tf.random.stateless_normal(tf.stack([shape[0], len(self.mean)]), seed=seed, dtype=tf.float64)
        x = tf.constant(self.mean) + tf.matmul(z, tf.constant(self.cholesky), transpose_b=True)
        return tf.reshape(tf.cast(x, dtype), shape)
