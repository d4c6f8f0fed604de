"""Importance sampling of the DDPM time for the variational bound (Nichol & Dhariwal 2021, sec. 3.3).

``L_vlb = E_(t ~ p_t)[L_t / p_t]`` with ``p_t ~ sqrt(E[L_t^2])`` has a smaller gradient variance than
uniform t. ``E[L_t^2]`` is estimated from the last ``history`` values of ``L_t`` seen for each t;
until every t has ``history`` values, t is uniform. As in the authors' code, the distribution is mixed
with ``uniform`` of the uniform one (no p_t collapses to 0), and a batch's loss terms are weighted by
``1 / (T p_t)``, so the weighted loss has the expectation of the uniform-t loss.

:class:`LossSecondMomentSampler` is a pure function of its state ``(losses [T, H], counts [T])``: the
training model owns the state as (checkpointed) variables and assigns what :meth:`update` returns, so
an interrupted run resumes with the same history and draws the same times. Times are the integer
steps ``1..T`` of :class:`~gsgm.diffusion.schedules.DiscreteCosineSchedule`, as floats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

__all__ = ["LossSecondMomentSampler"]


@dataclass(frozen=True)
class LossSecondMomentSampler:
    """p_t ~ sqrt(mean of the last ``history`` squared losses of t), t in 1..num_steps.

    Args:
        num_steps: T.
        history: H, losses kept per t (authors: 10).
        uniform: weight of the uniform distribution in the mixture (authors: 0.001).
    """

    num_steps: int
    history: int = 10
    uniform: float = 0.001

    def __post_init__(self):
        if self.num_steps < 1 or self.history < 1 or not 0 <= self.uniform <= 1:
            raise ValueError(f"invalid importance sampler {self}")

    def initial_state(self) -> tuple[np.ndarray, np.ndarray]:
        """``(losses [T, H] float32 zeros, counts [T] int64 zeros)``."""
        return np.zeros((self.num_steps, self.history), np.float32), np.zeros(self.num_steps, np.int64)

    def warmed_up(self, counts) -> tf.Tensor:
        """Whether every t has ``history`` losses (scalar bool)."""
        return tf.reduce_all(tf.convert_to_tensor(counts) >= self.history)

    def probabilities(self, losses, counts) -> tf.Tensor:
        """``[T]`` float32 p_t (index t - 1); uniform before the warm-up."""
        losses = tf.cast(tf.convert_to_tensor(losses), tf.float32)
        moment = tf.sqrt(tf.reduce_mean(tf.square(losses), axis=1))
        total = tf.reduce_sum(moment)
        uniform = tf.fill([self.num_steps], 1.0 / self.num_steps)
        weighted = moment / tf.maximum(total, 1e-30)
        mixed = (1.0 - self.uniform) * weighted + self.uniform * uniform
        ok = tf.logical_and(self.warmed_up(counts), total > 0)
        return tf.where(ok, mixed, uniform)

    def sample(self, probabilities, batch_size, seed) -> tuple[tf.Tensor, tf.Tensor]:
        """``(t [B] float32 in 1..T, weights [B] = 1 / (T p_t))``, stateless in ``seed`` ([2] int)."""
        p = tf.convert_to_tensor(probabilities, tf.float32)
        # inverse-CDF sampling (XLA-compatible, unlike stateless_categorical)
        cdf = tf.cumsum(tf.cast(p, tf.float64))
        u = tf.random.stateless_uniform(tf.reshape(batch_size, [1]), seed=seed, dtype=tf.float64) * cdf[-1]
        index = tf.searchsorted(cdf, u, side="right", out_type=tf.int32)
        index = tf.minimum(index, self.num_steps - 1)
        weights = 1.0 / (float(self.num_steps) * tf.gather(p, index))
        return tf.cast(index + 1, tf.float32), weights

    def update(self, losses, counts, t, values) -> tuple[tf.Tensor, tf.Tensor]:
        """New ``(losses, counts)`` after recording ``values [M]`` (``L_t``) at times ``t [M]``.

        Each t's losses form a ring buffer: value number c of t goes to slot ``c mod H``. Several
        values of one t in the same call take consecutive slots in the order given; beyond H of them
        only the first H are kept (as many as the buffer holds).
        """
        losses = tf.convert_to_tensor(losses, tf.float32)
        counts = tf.convert_to_tensor(counts, tf.int64)
        index = tf.cast(tf.round(tf.reshape(t, [-1])), tf.int64) - 1
        values = tf.cast(tf.reshape(tf.stop_gradient(values), [-1]), tf.float32)
        m = tf.shape(index)[0]
        same = tf.equal(index[:, None], index[None, :])
        earlier = tf.linalg.band_part(tf.ones([m, m], tf.bool), -1, 0)  # j <= i
        earlier = tf.logical_and(earlier, tf.logical_not(tf.eye(m, dtype=tf.bool)))
        rank = tf.reduce_sum(tf.cast(tf.logical_and(same, earlier), tf.int64), axis=1)
        keep = rank < self.history
        slot = (tf.gather(counts, index) + rank) % self.history
        positions = tf.stack([index, slot], axis=1)
        losses = tf.tensor_scatter_nd_update(
            losses, tf.boolean_mask(positions, keep), tf.boolean_mask(values, keep)
        )
        added = tf.math.bincount(
            tf.cast(tf.boolean_mask(index, keep), tf.int32),
            minlength=self.num_steps,
            maxlength=self.num_steps,
            dtype=tf.int64,
        )
        return losses, counts + added
