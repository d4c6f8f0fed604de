"""Progressive distillation targets (Salimans & Ho 2022; FPCD section II) for any schedule DDIM accepts.

A student that samples with ``N`` DDIM steps learns from a teacher that samples with ``2 N``. For a
student step from ``t`` to ``s`` the teacher takes two DDIM steps, ``t -> t_mid -> s``, and the student
is trained to reproduce the teacher's end point ``z_s`` in ONE step. Since a DDIM step from ``z_t`` is
fixed once its data estimate is, the target is the ``x~`` for which

    alpha_s x~ + sigma_s (z_t - alpha_t x~) / sigma_t = z_s^teacher        (FPCD eq. 4 with x_hat = x~)

and a v-network is trained on the ``v~`` whose data estimate at ``z_t`` is ``x~``
(:func:`gsgm.diffusion.parameterization.v_from_x`).

The times are those of the samplers: the teacher's grid is ``schedule.sampling_times(2 N)`` and the
student's must be every other point of it (nested grids: the VP cosine uniform grid, the discrete DDPM
grid when ``2 N`` divides ``T``), checked by :func:`student_step_times`.

Step index convention: student step ``i`` (0 <= i < N) ends at the ``i``-th grid time counted from the
data end, so ``i = 0`` is the *last* sampling step, the one that lands on the data.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from gsgm.diffusion.ddim import ddim_step
from gsgm.diffusion.denoisers import Denoiser, predict
from gsgm.diffusion.parameterization import v_from_x
from gsgm.diffusion.schedules import Schedule, scales_like
from gsgm.diffusion.tensors import as_float_tensor, batch_times, expand_like


def student_step_times(
    step_index, num_steps: int, schedule: Schedule, dtype=tf.float32
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Start, teacher midpoint and end of student step ``i`` on the ``num_steps`` grid.

    Args:
        step_index: integer tensor of any shape (typically ``[B]``) with values in ``[0, N)``.
        num_steps: the student's number of sampling steps ``N >= 1``.
        schedule: the schedule; its N-step grid must be every other point of its 2N-step grid.
        dtype: floating dtype of the times.

    Returns:
        ``(t, t_mid, s)`` with the shape of ``step_index``, bit for bit the times at which the student's
        and the teacher's samplers evaluate their networks (for VP cosine: ``(i + 1) / N``,
        ``(2 i + 1) / (2 N)``, ``i / N``).
    """
    n = int(num_steps)
    teacher = schedule.sampling_times(2 * n)
    if not np.array_equal(schedule.sampling_times(n), teacher[::2]):
        raise ValueError(f"{schedule} has no nested grids for {n} and {2 * n} steps: cannot distil on it")
    grid = tf.constant(teacher, dtype)
    i = tf.cast(step_index, tf.int32)
    # grid[k] is the k-th time from the noise end; student step i starts at k = 2 (N - 1 - i).
    start = 2 * (n - 1 - i)
    return tf.gather(grid, start), tf.gather(grid, start + 1), tf.gather(grid, start + 2)


def teacher_two_steps(
    teacher: Denoiser,
    z_t,
    t,
    t_mid,
    s,
    schedule: Schedule,
    mask=None,
    *,
    cond: Mapping[str, tf.Tensor] | None = None,
) -> tf.Tensor:
    """Two deterministic DDIM steps of the teacher, ``t -> t_mid -> s`` (two denoiser evaluations).

    Args:
        teacher: ``teacher(z [B, ...], t [B], **cond) -> x0_hat`` (or an adapter).
        z_t: latent ``[B, ...]`` at time ``t`` (already masked when ``mask`` is given).
        t, t_mid, s: times, scalars or ``[B]``, with ``t > t_mid > s``.
        schedule: the noise schedule.
        mask: optional ``[B, P]`` / ``[B, P, 1]`` mask; intermediate and final latents are multiplied
            by it, exactly as :func:`~gsgm.diffusion.ddim.ddim_sample` does between steps.
        cond: tensors forwarded to ``teacher`` as keyword arguments.

    Returns:
        ``z_s`` of the teacher, shape and dtype of ``z_t``.
    """
    z_t = as_float_tensor(z_t)
    mask = None if mask is None else expand_like(as_float_tensor(mask, z_t.dtype), z_t)
    z = z_t
    for start, end in ((t, t_mid), (t_mid, s)):
        z = ddim_step(z, predict(teacher, z, batch_times(start, z), cond), start, end, schedule)
        if mask is not None:
            z = z * mask
    return z


def x_target(z_t, z_s, t, s, schedule: Schedule) -> tf.Tensor:
    """The data estimate ``x~`` that makes one DDIM step from ``(z_t, t)`` land exactly on ``(z_s, s)``.

    Solving eq. (4) for ``x_hat`` and multiplying by ``sigma_t`` (so nothing divides by it)::

        x~ = (sigma_t z_s - sigma_s z_t) / (alpha_s sigma_t - sigma_s alpha_t)

    The denominator is ``sin(pi (t - s) / 2) > 0`` for the cosine schedule, and ``alpha_s sigma_t
    (1 - SNR-ratio^(1/2)) > 0`` for any schedule whose SNR decreases. For short steps both are
    differences of nearly equal numbers: float32 targets carry a relative error of about
    ``1e-7 / (t - s)``, far below what a network fits. Where ``sigma_s = 0`` (the step ends on the
    data) the student's step returns its data estimate itself, so ``x~ = z_s`` exactly.

    Args:
        z_t: latent ``[B, ...]`` at time ``t``.
        z_s: target latent at time ``s``, shape of ``z_t``.
        t, s: times, scalars or ``[B]``, with ``s < t``.
        schedule: the noise schedule.

    Returns:
        ``x~`` with the shape and dtype of ``z_t``.
    """
    z_t = as_float_tensor(z_t)
    z_s = as_float_tensor(z_s, z_t.dtype)
    alpha_t, sigma_t = scales_like(schedule, t, z_t)
    alpha_s, sigma_s = scales_like(schedule, s, z_t)
    general = (sigma_t * z_s - sigma_s * z_t) / (alpha_s * sigma_t - sigma_s * alpha_t)
    at_data = tf.broadcast_to(tf.equal(sigma_s, 0.0), tf.shape(z_t))
    return tf.where(at_data, z_s, general)


def distillation_targets(
    teacher: Denoiser,
    z_t,
    t,
    t_mid,
    s,
    schedule: Schedule,
    mask=None,
    *,
    cond: Mapping[str, tf.Tensor] | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Velocity and data targets of a student step ``t -> s`` distilled from two teacher steps.

    Args:
        teacher: the teacher's denoiser, see :func:`teacher_two_steps`.
        z_t: latent ``[B, ...]`` at time ``t`` (:func:`gsgm.diffusion.losses.diffuse`; masked when
            ``mask`` is given).
        t, t_mid, s: times, scalars or ``[B]`` (:func:`student_step_times`); ``sigma_t > 0`` because
            ``v~`` divides by it.
        schedule: the noise schedule.
        mask: optional ``[B, P]`` / ``[B, P, 1]`` particle mask; padded entries of both targets are 0.
        cond: conditions forwarded to the teacher.

    Returns:
        ``(v~, x~)``, each with the shape and dtype of ``z_t``, without gradient. A student predicting
        ``v~`` at ``(z_t, t)`` takes one DDIM step to the teacher's two-step ``z_s``.
    """
    z_t = as_float_tensor(z_t)
    z_s = teacher_two_steps(teacher, z_t, t, t_mid, s, schedule, mask, cond=cond)
    x_tilde = x_target(z_t, z_s, t, s, schedule)
    alpha_t, sigma_t = schedule.alpha_sigma(as_float_tensor(t, z_t.dtype))
    v_tilde = v_from_x(z_t, x_tilde, alpha_t, sigma_t)
    if mask is not None:
        v_tilde = v_tilde * expand_like(as_float_tensor(mask, z_t.dtype), z_t)
    return tf.stop_gradient(v_tilde), tf.stop_gradient(x_tilde)
