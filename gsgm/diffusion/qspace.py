"""Langevin diffusion in RAMBO's q-space (phase-space paper, section II.4, appendix A).

The forward process drives q-space points towards RAMBO's q-distribution (eq. 8),

    f(q) ∝ prod_i exp(-|q_i|) / |q_i|,   score s(q)_i = -q_i (1 / |q_i| + 1 / |q_i|^2)   (eq. 9),

by discretised Langevin dynamics (eq. 10), step t = 0 .. T-1 with step size gamma_t:

    q_{t+1} = q_t + gamma_t s(q_t) + sqrt(2 gamma_t) eps_t,

so that the RAMBO map of the end point is uniform on phase space. For very singular data the first
``gaussian_steps`` steps use the score of a unit Gaussian, -q, instead (section IV.1), which pushes
points away from the origin where s(q) diverges. The reverse process (eq. 11) is

    q_t = q_{t+1} + gamma_t (2 s_theta(q_{t+1}, t+1) - s(q_{t+1})) + sqrt(2 gamma_t) z.

Training uses the scalable loss of appendix A.2 (eqs. 25-28): run the forward process to a random
step t, take one more step with noise eps, and regress eps from q_{t+1}; the score of p_{t+1} is then
s_theta = -eps_theta / sqrt(2 gamma_t). With that, the reverse update reads
q_t = q_{t+1} - gamma_t s(q_{t+1}) - sqrt(2 gamma_t) eps_theta + sqrt(2 gamma_t) z.

Shapes: q is ``[B, N, 3]`` (any leading batch shape where noted); step indices are int32 ``[B]``.
Tensors only: nothing here knows networks or data files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

__all__ = [
    "LangevinSchedule",
    "forward_step",
    "forward_to",
    "gaussian_score",
    "rambo_score",
    "reference_score",
    "reverse_sample",
    "sample_rambo_q",
    "score_from_eps",
]

# |q| below this is treated as this: the score's 1/|q|^2 must stay finite in float32
_R_MIN = 1e-6


@dataclass(frozen=True, eq=False)
class LangevinSchedule:
    """Step sizes gamma_t [T] of the forward Langevin process; the first ``gaussian_steps`` are Gaussian."""

    step_sizes: np.ndarray
    gaussian_steps: int = 0

    def __post_init__(self):
        sizes = np.asarray(self.step_sizes, np.float64)
        if sizes.ndim != 1 or len(sizes) < 1 or not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
            raise ValueError(f"step sizes must be a non-empty 1-d array of positive numbers, got {sizes}")
        if not 0 <= self.gaussian_steps < len(sizes):
            raise ValueError(f"gaussian_steps must lie in [0, {len(sizes)}), got {self.gaussian_steps}")
        object.__setattr__(self, "step_sizes", sizes)

    @classmethod
    def linear(
        cls,
        num_steps: int,
        step_min: float = 0.002,
        step_max: float = 0.01,
        gaussian_steps: int = 0,
        gaussian_step_size: float = 0.01,
    ) -> LangevinSchedule:
        """Appendix A's schedule: ``gaussian_steps`` constant Gaussian steps, then step sizes linear
        from ``step_min`` to ``step_max`` over the remaining steps (500 steps, 0.002 -> 0.01 for N = 3)."""
        rest = num_steps - gaussian_steps
        if rest < 1:
            raise ValueError(f"num_steps ({num_steps}) must exceed gaussian_steps ({gaussian_steps})")
        sizes = np.concatenate(
            [np.full(gaussian_steps, gaussian_step_size), np.linspace(step_min, step_max, rest)]
        )
        return cls(sizes, gaussian_steps)

    @property
    def num_steps(self) -> int:
        return len(self.step_sizes)

    def gamma(self, index, dtype=tf.float32) -> tf.Tensor:
        """gamma_t at step indices ``index`` (int tensor)."""
        return tf.gather(tf.constant(self.step_sizes, dtype), index)


def rambo_score(q) -> tf.Tensor:
    """Eq. 9: the score of eq. 8 per particle, q [..., 3] -> [..., 3]."""
    r = tf.maximum(tf.norm(q, axis=-1, keepdims=True), tf.cast(_R_MIN, q.dtype))
    return -q * (1.0 / r + 1.0 / (r * r))


def gaussian_score(q) -> tf.Tensor:
    """Score of a unit Gaussian, -q (the warm-up steps of section IV.1)."""
    return -q


def reference_score(q, index, schedule: LangevinSchedule) -> tf.Tensor:
    """The forward drift at q [B, N, 3] for step indices ``index`` [B]: Gaussian in the warm-up steps."""
    if schedule.gaussian_steps == 0:
        return rambo_score(q)
    gaussian = tf.reshape(index < schedule.gaussian_steps, [-1] + [1] * (len(q.shape) - 1))
    return tf.where(gaussian, gaussian_score(q), rambo_score(q))


def _expand(v, q) -> tf.Tensor:
    return tf.reshape(v, [-1] + [1] * (len(q.shape) - 1))


def forward_step(q, index, noise, schedule: LangevinSchedule) -> tf.Tensor:
    """Eq. 10: one forward step from q [B, N, 3] at step indices ``index`` [B] with noise like q."""
    gamma = _expand(schedule.gamma(index, q.dtype), q)
    return q + gamma * reference_score(q, index, schedule) + tf.sqrt(2.0 * gamma) * noise


def forward_to(q0, index, seed, schedule: LangevinSchedule) -> tf.Tensor:
    """q_t: each row of q0 [B, N, 3] run forward ``index[b]`` steps (stateless noise from ``seed`` [2]).

    Step k draws its noise from ``fold_in(seed, k)`` for the whole batch, so a row's path does not
    depend on how far the others go. Cost: max(index) steps on the whole batch.
    """
    q0 = tf.convert_to_tensor(q0)
    index = tf.cast(index, tf.int32)
    steps = tf.reduce_max(index)

    def body(k, q):
        noise = tf.random.stateless_normal(
            tf.shape(q), seed=tf.random.experimental.stateless_fold_in(seed, k), dtype=q.dtype
        )
        k_vec = tf.fill(tf.shape(index), k)
        stepped = forward_step(q, k_vec, noise, schedule)
        return k + 1, tf.where(_expand(k < index, q), stepped, q)

    _, q = tf.while_loop(lambda k, q: k < steps, body, (tf.constant(0, tf.int32), q0))
    return q


def score_from_eps(eps_hat, index, schedule: LangevinSchedule) -> tf.Tensor:
    """s_theta(q_{t+1}) = -eps_theta / sqrt(2 gamma_t) (eq. 26), for step indices t = ``index`` [B]."""
    return -eps_hat / tf.sqrt(2.0 * _expand(schedule.gamma(index, eps_hat.dtype), eps_hat))


def sample_rambo_q(shape, seed, dtype=tf.float32) -> tf.Tensor:
    """[*shape, 3] draws from eq. 8 (isotropic, |q| ~ Gamma(2, 1)): the reverse process's start."""
    seeds = tf.random.experimental.stateless_split(tf.convert_to_tensor(seed, tf.int64), 2)
    direction = tf.random.stateless_normal([*shape, 3], seed=seeds[0], dtype=dtype)
    direction = direction / tf.norm(direction, axis=-1, keepdims=True)
    u = tf.random.stateless_uniform([*shape, 2], seed=seeds[1], minval=1e-12, maxval=1.0, dtype=dtype)
    radius = -tf.reduce_sum(tf.math.log(u), axis=-1, keepdims=True)
    return radius * direction


def reverse_sample(
    eps_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    q_end,
    schedule: LangevinSchedule,
    seed: int,
    *,
    final_noise: bool = False,
) -> tf.Tensor:
    """Eq. 11 from q_T = ``q_end`` [B, N, 3] down to q_0.

    ``eps_fn(q, time)`` is the noise network at q_{t+1} with ``time`` = (t + 1) / T [B]. Step t draws
    its noise from ``(seed, t)``; the last step (t = 0) adds none unless ``final_noise``.
    """
    q = tf.convert_to_tensor(q_end)
    steps = schedule.num_steps
    batch = tf.shape(q)[0]
    for t in range(steps - 1, -1, -1):
        index = tf.fill([batch], t)
        gamma = schedule.step_sizes[t]
        eps_hat = eps_fn(q, tf.fill([batch], tf.cast((t + 1) / steps, q.dtype)))
        q = q - gamma * reference_score(q, index, schedule) - np.sqrt(2.0 * gamma) * eps_hat
        if t > 0 or final_noise:
            q = q + np.sqrt(2.0 * gamma) * tf.random.stateless_normal(
                tf.shape(q), seed=[seed, t], dtype=q.dtype
            )
    return q
