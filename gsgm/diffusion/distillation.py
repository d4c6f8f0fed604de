"""Progressive distillation targets (Salimans & Ho 2022; FPCD section II), as plain functions.

A student that samples with ``N`` DDIM steps learns from a teacher that samples with ``2 N``. For a
student step from ``t`` to ``s = t - 1/N`` the teacher takes two steps, ``t -> t_mid -> s`` with
``t_mid = t - 1/(2N)``, and the student is trained to reproduce the teacher's end point ``z_s`` in ONE
step. Since a DDIM step from ``z_t`` is fixed once its data estimate ``x_hat`` is, the target is the
``x~`` for which

    alpha_s x~ + sigma_s (z_t - alpha_t x~) / sigma_t = z_s^teacher        (FPCD eq. 4 with x_hat = x~)

and the network, which predicts velocities, is trained on the ``v~`` whose data estimate at ``z_t`` is
``x~`` (:func:`gsgm.diffusion.parameterization.v_from_x`).

Like the sampler, these functions take denoiser callables ``denoiser(z [B, ...], t [B], **extra_args)
-> v_hat [B, ...]`` and know nothing about networks. Times are per example (``[B]``) because training
draws one student step per example; scalars work too.

Step index convention: student step ``i`` (0 <= i < N) runs from ``t = (i + 1) / N`` to ``s = i / N``, so
``i = 0`` is the *last* sampling step, the one that lands on the data (``s = 0``, ``sigma_s = 0``).
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from gsgm.diffusion.ddim import Denoiser, ddim_step
from gsgm.diffusion.parameterization import expand_like, v_from_x
from gsgm.diffusion.schedule import as_float_tensor, cosine_alpha_sigma, time_grid


def student_step_times(
    step_index, num_steps: int, dtype=tf.float32
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Start, teacher midpoint and end of student step ``i`` on the ``num_steps`` grid.

    The values are taken from :func:`~gsgm.diffusion.schedule.time_grid` of ``N`` (for ``t`` and ``s``)
    and of ``2 N`` (for ``t_mid``), so they are bit for bit the times at which the student's and the
    teacher's samplers evaluate their networks: training and sampling see the same inputs.

    Args:
        step_index: integer tensor of any shape (typically ``[B]``) with values in ``[0, N)``; values
            outside are not checked (``tf.gather`` on CPU would raise, on GPU return 0).
        num_steps: the student's number of sampling steps ``N >= 1``.
        dtype: floating dtype of the times.

    Returns:
        ``(t, t_mid, s)`` with the shape of ``step_index``: ``(i + 1) / N``, ``(2 i + 1) / (2 N)``, ``i / N``.
    """
    n = int(num_steps)
    student, teacher = time_grid(n, dtype), time_grid(2 * n, dtype)
    i = tf.cast(step_index, tf.int32)
    # time_grid(N)[k] = (N - k) / N, so time (i + 1) / N sits at k = N - 1 - i.
    return tf.gather(student, n - 1 - i), tf.gather(teacher, 2 * n - 1 - 2 * i), tf.gather(student, n - i)


def teacher_two_steps(
    teacher: Denoiser,
    z_t,
    t,
    t_mid,
    s,
    mask=None,
    *,
    extra_args: Mapping[str, tf.Tensor] | None = None,
) -> tf.Tensor:
    """Two deterministic DDIM steps of the teacher, ``t -> t_mid -> s`` (two denoiser evaluations).

    Args:
        teacher: ``teacher(z [B, ...], t [B], **extra_args) -> v_hat [B, ...]``.
        z_t: latent ``[B, ...]`` at time ``t`` (already masked when ``mask`` is given).
        t, t_mid, s: times, scalars or ``[B]``, with ``t > t_mid > s``.
        mask: optional ``[B, P]`` / ``[B, P, 1]`` mask; the intermediate and final latents are multiplied
            by it, exactly as :func:`~gsgm.diffusion.ddim.ddim_sample` does between steps.
        extra_args: tensors forwarded to ``teacher`` as keyword arguments (conditions).

    Returns:
        ``z_s`` of the teacher, shape and dtype of ``z_t``.
    """
    z_t = as_float_tensor(z_t)
    extra_args = dict(extra_args or {})
    mask = None if mask is None else expand_like(as_float_tensor(mask, z_t.dtype), z_t)
    z = z_t
    for start, end in ((t, t_mid), (t_mid, s)):
        start_batch = tf.broadcast_to(as_float_tensor(start, z.dtype), tf.shape(z)[:1])
        v_hat = tf.cast(teacher(z, start_batch, **extra_args), z.dtype)
        z = ddim_step(z, v_hat, start, end)
        if mask is not None:
            z = z * mask
    return z


def x_target(z_t, z_s, t, s) -> tf.Tensor:
    """The data estimate ``x~`` that makes one DDIM step from ``(z_t, t)`` land exactly on ``(z_s, s)``.

    Solving eq. (4) for ``x_hat`` and multiplying numerator and denominator by ``sigma_t`` (so nothing
    divides by ``sigma_t``)::

        x~ = (sigma_t z_s - sigma_s z_t) / (alpha_s sigma_t - sigma_s alpha_t)

    The denominator is ``sin(pi (t - s) / 2) > 0`` for the cosine schedule and every ``s < t``. Both
    numerator and denominator are differences of nearly equal numbers when the step is short, so
    float32 targets carry a relative error of about ``1e-7 / (t - s)`` (2e-5 for 256 steps), far below
    what a network fits; the round trip one-student-step(x~) = z_s is accurate to a few ulp.

    Special case ``sigma_s = 0`` (the step ends on the data, ``s = 0``): the student's step returns its
    data estimate itself, so ``x~ = z_s`` exactly (Salimans & Ho, and the released GSGM code); the
    general formula agrees there up to round-off, ``tf.where`` makes it exact.

    Args:
        z_t: latent ``[B, ...]`` at time ``t``.
        z_s: target latent at time ``s`` (the teacher's two-step result), shape of ``z_t``.
        t, s: times, scalars or ``[B]``, with ``s < t``.

    Returns:
        ``x~`` with the shape and dtype of ``z_t``.
    """
    z_t = as_float_tensor(z_t)
    z_s = as_float_tensor(z_s, z_t.dtype)
    alpha_t, sigma_t = (expand_like(a, z_t) for a in cosine_alpha_sigma(as_float_tensor(t, z_t.dtype)))
    alpha_s, sigma_s = (expand_like(a, z_t) for a in cosine_alpha_sigma(as_float_tensor(s, z_t.dtype)))
    general = (sigma_t * z_s - sigma_s * z_t) / (alpha_s * sigma_t - sigma_s * alpha_t)
    at_data = tf.broadcast_to(tf.equal(sigma_s, 0.0), tf.shape(z_t))
    return tf.where(at_data, z_s, general)


def distillation_targets(
    teacher: Denoiser,
    z_t,
    t,
    t_mid,
    s,
    mask=None,
    *,
    extra_args: Mapping[str, tf.Tensor] | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Velocity and data targets of a student step ``t -> s`` distilled from two teacher steps.

    Args:
        teacher: the teacher's denoiser, see :func:`teacher_two_steps`.
        z_t: latent ``[B, ...]`` at time ``t`` (e.g. from :func:`gsgm.diffusion.losses.diffuse`; masked
            when ``mask`` is given).
        t, t_mid, s: times, scalars or ``[B]`` (see :func:`student_step_times`); ``t > 0`` because ``v~``
            divides by ``sigma_t``.
        mask: optional ``[B, P]`` / ``[B, P, 1]`` particle mask; padded entries of both targets are 0.
        extra_args: conditions forwarded to the teacher.

    Returns:
        ``(v~, x~)``, each with the shape and dtype of ``z_t``, without gradient (they are targets).
        A student predicting ``v~`` at ``(z_t, t)`` takes one DDIM step to the teacher's two-step ``z_s``.
    """
    z_t = as_float_tensor(z_t)
    z_s = teacher_two_steps(teacher, z_t, t, t_mid, s, mask, extra_args=extra_args)
    x_tilde = x_target(z_t, z_s, t, s)
    alpha_t, sigma_t = cosine_alpha_sigma(as_float_tensor(t, z_t.dtype))
    v_tilde = v_from_x(z_t, x_tilde, alpha_t, sigma_t)
    if mask is not None:
        v_tilde = v_tilde * expand_like(as_float_tensor(mask, z_t.dtype), z_t)
    return tf.stop_gradient(v_tilde), tf.stop_gradient(x_tilde)
