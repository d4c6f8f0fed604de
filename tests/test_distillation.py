"""Progressive-distillation targets against the exact denoiser of Gaussian data (independent float64 DDIM)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gsgm.diffusion import (
    DiscreteCosineSchedule,
    VDenoiser,
    VEGeometricSchedule,
    VPCosineSchedule,
    ddim_step,
)
from gsgm.diffusion.distillation import (
    distillation_targets,
    student_step_times,
    teacher_two_steps,
    x_target,
)

VP = VPCosineSchedule()
MU = np.array([0.5, -1.0, 2.0, 0.0])
SCALE = np.array([1.0, 0.3, 2.0, 0.05])


def exact_denoiser(mu, s, dtype):
    """v = E[alpha eps - sigma x | z_t] for x ~ N(mu, s^2) per trailing dim, in plain tf.cos / tf.sin (not
    gsgm's schedule), so the tests do not check the code against itself."""
    mu, s = tf.constant(mu, dtype), tf.constant(s, dtype)

    def denoiser(z, t, **_):
        t = tf.reshape(tf.cast(t, dtype), [-1] + [1] * (z.shape.rank - 1))
        alpha, sigma = tf.cos(0.5 * np.pi * t), tf.sin(0.5 * np.pi * t)
        var = alpha**2 * s**2 + sigma**2
        x_hat = mu + alpha * s**2 / var * (z - alpha * mu)
        eps_hat = sigma / var * (z - alpha * mu)
        return alpha * eps_hat - sigma * x_hat

    return VDenoiser(denoiser, VP)


def v_step(z, v, t, s):
    """The library's DDIM step for a given velocity ``v`` at ``(z, t)``."""
    z = tf.convert_to_tensor(z)
    t = tf.broadcast_to(tf.cast(t, z.dtype), tf.shape(z)[:1])
    return ddim_step(z, VDenoiser(lambda *_: v, VP).predict(z, t), t, s, VP)


def time_grid(n):
    return tf.constant(VP.sampling_times(n), tf.float32)


def eq4_step(z, x_hat, t, u):
    """FPCD eq. (4) literally in float64 numpy; t, u: [B] broadcast over the trailing dim."""
    t, u = t[:, None], u[:, None]
    alpha_t, sigma_t = np.cos(0.5 * np.pi * t), np.sin(0.5 * np.pi * t)
    alpha_u, sigma_u = np.cos(0.5 * np.pi * u), np.sin(0.5 * np.pi * u)
    return alpha_u * x_hat + sigma_u * (z - alpha_t * x_hat) / sigma_t


def exact_x_hat(z, t):
    """Posterior mean E[x | z_t] for x ~ N(MU, SCALE^2), float64 numpy."""
    t = t[:, None]
    alpha, sigma = np.cos(0.5 * np.pi * t), np.sin(0.5 * np.pi * t)
    return MU + alpha * SCALE**2 / (alpha**2 * SCALE**2 + sigma**2) * (z - alpha * MU)


def random_steps(num_steps, batch, rng):
    """Random student step indices that always include the first (t = 1) and the last (s = 0) step."""
    steps = rng.integers(0, num_steps, size=batch)
    steps[0], steps[-1] = 0, num_steps - 1
    return steps


@pytest.mark.parametrize("num_steps", [1, 2, 8, 256])
@pytest.mark.parametrize("dtype, rtol", [(tf.float64, 1e-13), (tf.float32, 2e-6)])
def test_one_student_step_equals_two_teacher_steps(num_steps, dtype, rtol):
    rng = np.random.default_rng(num_steps)
    steps = random_steps(num_steps, 64, rng)
    z_t = rng.normal(size=(64, 4)) * np.sqrt(SCALE**2 + 1.0)
    t, t_mid, s = (np.asarray(a, np.float64) for a in student_step_times(steps, num_steps, VP, dtype))
    np.testing.assert_allclose(t_mid, (2 * steps + 1) / (2 * num_steps), rtol=1e-7)

    v_tilde, x_tilde = distillation_targets(
        exact_denoiser(MU, SCALE, dtype), tf.constant(z_t, dtype), t, t_mid, s, VP
    )
    assert v_tilde.dtype == dtype and v_tilde.shape == (64, 4)
    # Teacher: two eq. (4) steps with the exact posterior mean, all in float64 and independent of gsgm.
    z_mid = eq4_step(z_t, exact_x_hat(z_t, t), t, t_mid)
    z_teacher = eq4_step(z_mid, exact_x_hat(z_mid, t_mid), t_mid, s)
    # Student: ONE eq. (4) step whose data estimate is read off the v-target, x = alpha z - sigma v.
    alpha_t, sigma_t = np.cos(0.5 * np.pi * t)[:, None], np.sin(0.5 * np.pi * t)[:, None]
    x_from_target = alpha_t * z_t - sigma_t * np.asarray(v_tilde, np.float64)
    z_student = eq4_step(z_t, x_from_target, t, s)
    scale = np.abs(z_teacher).max()
    np.testing.assert_allclose(z_student, z_teacher, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(np.asarray(x_tilde), x_from_target, rtol=0, atol=50 * rtol * scale)
    # The library's own DDIM step with the student's v agrees too (this is what sampling does).
    z_library = np.asarray(v_step(tf.constant(z_t, dtype), v_tilde, t, s), np.float64)
    np.testing.assert_allclose(z_library, z_teacher, rtol=0, atol=rtol * scale)
    # The last step lands on the data: x~ is the teacher's two-step result itself.
    last = steps == 0
    np.testing.assert_allclose(np.asarray(x_tilde)[last], z_teacher[last], rtol=0, atol=rtol * scale)

    # The test can fail: the teacher's own one-step estimate (no distillation) misses by far more.
    naive = eq4_step(z_t, exact_x_hat(z_t, t), t, s)
    assert np.abs(naive - z_teacher).max() > 10 * rtol * scale


def test_teacher_two_steps_is_two_sampler_steps_and_respects_the_mask():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5, 7, 3)).astype(np.float32)
    mask = (np.arange(7)[None, :] < rng.integers(1, 8, size=5)[:, None]).astype(np.float32)
    z *= mask[..., None]
    calls = []

    def velocity(z, t, *, scale):
        calls.append(t)
        return scale * (z + 1.0)  # nonzero on padding, so a missing mask would show

    teacher = VDenoiser(velocity, VP)
    t, t_mid, s = student_step_times(np.array([3, 0, 1, 2, 3]), 4, VP)
    scale = tf.constant(0.3)
    z_s = teacher_two_steps(teacher, z, t, t_mid, s, VP, mask, cond={"scale": scale})
    assert len(calls) == 2 and calls[0].shape == (5,)
    v1 = 0.3 * (z + 1.0)
    z_mid = np.asarray(v_step(z, v1, t, t_mid)) * mask[..., None]
    expected = np.asarray(v_step(z_mid, 0.3 * (z_mid + 1.0), t_mid, s)) * mask[..., None]
    np.testing.assert_allclose(np.asarray(z_s), expected, rtol=1e-6, atol=1e-6)

    v_tilde, x_tilde = distillation_targets(teacher, z, t, t_mid, s, VP, mask, cond={"scale": scale})
    padded = mask == 0
    assert np.all(np.asarray(v_tilde)[padded] == 0) and np.all(np.asarray(x_tilde)[padded] == 0)
    assert np.all(np.isfinite(np.asarray(v_tilde)))


def test_step_times_are_the_sampler_grids_bit_for_bit():
    for n in (1, 2, 3, 8, 256):
        steps = np.arange(n)
        t, t_mid, s = student_step_times(steps, n, VP)
        student, teacher = time_grid(n).numpy(), time_grid(2 * n).numpy()
        # Student step i is sampler step N - 1 - i; the teacher evaluates at its grid points 2k and 2k+1.
        np.testing.assert_array_equal(t.numpy()[::-1], student[:-1])
        np.testing.assert_array_equal(s.numpy()[::-1], student[1:])
        np.testing.assert_array_equal(t_mid.numpy()[::-1], teacher[1::2])
        np.testing.assert_array_equal(t.numpy()[::-1], teacher[0:-1:2])


def test_x_target_at_the_data_end_is_exact_and_finite_at_t_one():
    z_t = tf.constant(np.random.default_rng(0).normal(size=(3, 2)), tf.float32)
    z_s = tf.constant(np.random.default_rng(1).normal(size=(3, 2)), tf.float32)
    t = tf.constant([1.0, 0.5, 0.25])
    s = tf.constant([0.0, 0.0, 0.125])
    x = x_target(z_t, z_s, t, s, VP).numpy()
    np.testing.assert_array_equal(x[:2], z_s.numpy()[:2])  # bit for bit where sigma_s == 0
    assert np.all(np.isfinite(x))


@pytest.mark.parametrize("num_steps", [1, 4, 16])
def test_distillation_on_the_discrete_cosine_schedule(num_steps):
    """Second schedule: respaced DDPM times; exact Gaussian x0 teacher; float64 reference of eq. (4)."""
    schedule = DiscreteCosineSchedule(num_steps=1024)
    abar = schedule.alphas_cumprod

    def teacher(z, t):  # plain x0 denoiser in float64: E[x | z_t]
        a = tf.sqrt(tf.gather(tf.constant(abar), tf.cast(tf.round(t), tf.int32)))[:, None]
        return MU + a * SCALE**2 / (a**2 * SCALE**2 + 1.0 - a**2) * (z - a * MU)

    def step(z, t, u):
        a_t, a_u = np.sqrt(abar[t])[:, None], np.sqrt(abar[u])[:, None]
        s_t, s_u = np.sqrt(1 - abar[t])[:, None], np.sqrt(1 - abar[u])[:, None]
        x_hat = MU + a_t * SCALE**2 / (a_t**2 * SCALE**2 + s_t**2) * (z - a_t * MU)
        return a_u * x_hat + s_u * (z - a_t * x_hat) / s_t, a_t, s_t, a_u, s_u

    rng = np.random.default_rng(num_steps)
    steps = random_steps(num_steps, 32, rng)
    t, t_mid, s = (
        np.asarray(a).astype(int) for a in student_step_times(steps, num_steps, schedule, tf.float64)
    )
    np.testing.assert_array_equal(t, 1024 * (steps + 1) // num_steps)
    z_t = rng.normal(size=(32, 4))
    _, x_tilde = distillation_targets(teacher, tf.constant(z_t), t, t_mid, s, schedule)
    z_mid = step(z_t, t, t_mid)[0]
    z_teacher = step(z_mid, t_mid, s)[0]
    _, a_t, s_t, a_u, s_u = step(z_t, t, s)
    z_student = a_u * np.asarray(x_tilde) + s_u * (z_t - a_t * np.asarray(x_tilde)) / s_t
    np.testing.assert_allclose(z_student, z_teacher, rtol=0, atol=1e-9)
    naive = step(z_t, t, s)[0]
    assert np.abs(naive - z_teacher).max() > 1e-4


def test_non_nested_grids_are_rejected():
    with pytest.raises(ValueError, match="nested"):
        student_step_times(np.arange(3), 3, VEGeometricSchedule(0.01, 10.0))
