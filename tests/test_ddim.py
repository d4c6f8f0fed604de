"""DDIM sampler (FPCD eq. 4) against the exact denoiser of Gaussian data, VP cosine and a second schedule."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import tensorflow as tf

from gsgm.diffusion import (
    DiscreteCosineSchedule,
    VDenoiser,
    VPCosineSchedule,
    ddim_sample,
    ddim_step,
    eps_from_v,
    x_from_v,
)
from gsgm.diffusion.denoisers import Prediction

VP = VPCosineSchedule()


def _posterior(z, t, mu, s):
    """E[x | z_t] and E[eps | z_t] for data x ~ N(mu, s^2) (per trailing dim), in float64 numpy.

    z = alpha x + sigma eps is jointly Gaussian with x: var(z) = alpha^2 s^2 + sigma^2,
    cov(x, z) = alpha s^2, cov(eps, z) = sigma.
    """
    alpha, sigma = np.cos(0.5 * np.pi * t), np.sin(0.5 * np.pi * t)
    var = alpha**2 * s**2 + sigma**2
    x_hat = mu + alpha * s**2 / var * (z - alpha * mu)
    eps_hat = sigma / var * (z - alpha * mu)
    return x_hat, eps_hat, alpha, sigma


def gaussian_denoiser(mu, s):
    """The exact v-denoiser v = E[alpha eps - sigma x | z_t] for x ~ N(mu, s^2), written independently of
    gsgm's schedule (plain tf.cos / tf.sin) so that the test does not check the code against itself."""
    mu = tf.constant(mu, tf.float32)
    s = tf.constant(s, tf.float32)

    def denoiser(z, t):
        t = tf.reshape(t, [-1] + [1] * (z.shape.rank - 1))
        alpha, sigma = tf.cos(0.5 * np.pi * t), tf.sin(0.5 * np.pi * t)
        var = alpha**2 * s**2 + sigma**2
        x_hat = mu + alpha * s**2 / var * (z - alpha * mu)
        eps_hat = sigma / var * (z - alpha * mu)
        return alpha * eps_hat - sigma * x_hat

    return VDenoiser(denoiser, VP)


def reference_ddim(noise, num_steps, mu, s):
    """Eq. (4) literally, in float64: z_s = alpha_s x_hat + sigma_s (z_t - alpha_t x_hat) / sigma_t."""
    z = noise.astype(np.float64)
    grid = np.linspace(1.0, 0.0, num_steps + 1)
    for t, u in zip(grid[:-1], grid[1:], strict=True):
        x_hat, _, alpha_t, sigma_t = _posterior(z, t, mu, s)
        alpha_s, sigma_s = np.cos(0.5 * np.pi * u), np.sin(0.5 * np.pi * u)
        z = alpha_s * x_hat + sigma_s * (z - alpha_t * x_hat) / sigma_t
    return z


def standard_noise(shape, seed=0):
    """N(0, 1) noise, standardised per trailing dim to sample mean 0 and variance 1 exactly.

    The sampler is an affine map for Gaussian data, so with standardised noise the output moments carry no
    sampling error and the tolerances below measure the sampler alone."""
    n = np.random.default_rng(seed).normal(size=shape)
    return ((n - n.mean(axis=0)) / n.std(axis=0)).astype(np.float32)


# 1-D data (rank-1 tensors [B]) and a vector with per-dim mean and width
CASES = [
    pytest.param(np.float32(1.5), np.float32(0.5), (20000,), id="1d"),
    pytest.param(
        np.array([0.0, 1.5, -0.7, 0.3], np.float32),
        np.array([1.0, 0.5, 2.0, 0.3], np.float32),
        (20000, 4),
        id="vec",
    ),
]


@pytest.mark.parametrize("mu, s, shape", CASES)
def test_matches_eq4_reference(mu, s, shape):
    noise = standard_noise(shape)
    out = ddim_sample(gaussian_denoiser(mu, s), noise, VP, 64).numpy()
    ref = reference_ddim(noise, 64, mu.astype(np.float64), s.astype(np.float64))
    np.testing.assert_allclose(out, ref, atol=2e-4 * max(1.0, float(np.max(s))))
    # the moments of the exact 64-step DDIM output, for the record: the mean is exact, the variance is
    # 4-7 % low here (the deterministic solver contracts at coarse steps); 512 steps below get within 2 %
    np.testing.assert_allclose(out.mean(axis=0), ref.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(out.var(axis=0), ref.var(axis=0), rtol=1e-3)


@pytest.mark.parametrize("mu, s, shape", CASES)
def test_reproduces_data_distribution(mu, s, shape):
    noise = standard_noise(shape, seed=1)
    out = ddim_sample(gaussian_denoiser(mu, s), noise, VP, 512).numpy()
    np.testing.assert_allclose(out.mean(axis=0), mu, atol=0.01 * np.max(s))
    np.testing.assert_allclose(out.var(axis=0), s**2, rtol=0.02)


def test_one_step_returns_the_mean():
    # From t = 1 the latent carries no information about x: one step must give E[x] = mu (to float32).
    mu, s = np.array([0.5, -2.0], np.float32), np.array([1.0, 0.3], np.float32)
    out = ddim_sample(gaussian_denoiser(mu, s), standard_noise((1000, 2)), VP, 1).numpy()
    np.testing.assert_allclose(out, np.broadcast_to(mu, out.shape), atol=1e-5)


def test_step_matches_eq4_and_last_step_is_x_hat():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(32, 5)).astype(np.float32)
    v = rng.normal(size=(32, 5)).astype(np.float32)
    t = rng.uniform(0.3, 1.0, size=32).astype(np.float32)
    s = (t * rng.uniform(0.0, 1.0, size=32)).astype(np.float32)
    alpha_t, sigma_t = (a.numpy().astype(np.float64)[:, None] for a in VP.alpha_sigma(t))
    alpha_s, sigma_s = (a.numpy().astype(np.float64)[:, None] for a in VP.alpha_sigma(s))
    x_hat = alpha_t * z - sigma_t * v
    expected = alpha_s * x_hat + sigma_s * (z - alpha_t * x_hat) / sigma_t
    pred = Prediction(x_from_v(z, v, *VP.alpha_sigma(t)), eps_from_v(z, v, *VP.alpha_sigma(t)))
    np.testing.assert_allclose(ddim_step(z, pred, t, s, VP).numpy(), expected, atol=1e-5)
    # the x0 estimate alone (eps recovered by division) gives the same step
    np.testing.assert_allclose(ddim_step(z, pred.x0, t, s, VP).numpy(), expected, atol=1e-5)
    # final step to t = 0 (sigma_0 = 0): exactly the data estimate, bit for bit
    last = ddim_step(z, pred, t, np.zeros_like(t), VP).numpy()
    np.testing.assert_array_equal(last, pred.x0.numpy())


def test_one_step_output_is_minus_v_at_t1():
    c = tf.constant([[0.25, -3.0, 7.5]])
    out = ddim_sample(
        VDenoiser(lambda z, t: -c * tf.ones_like(z), VP), np.random.default_rng(0).normal(size=(4, 3)), VP, 1
    )
    np.testing.assert_array_equal(out.numpy(), np.broadcast_to(c.numpy(), (4, 3)))


def test_deterministic():
    den = gaussian_denoiser(np.float32(0.3), np.float32(0.8))
    noise = np.random.default_rng(5).normal(size=(256, 3)).astype(np.float32)
    first = ddim_sample(den, noise, VP, 16).numpy()
    np.testing.assert_array_equal(first, ddim_sample(den, noise, VP, 16).numpy())
    np.testing.assert_array_equal(first, ddim_sample(den, noise, VP, 16, progress=True).numpy())


def _counting_denoiser():
    calls = tf.Variable(0, dtype=tf.int64)

    def denoiser(z, t):
        calls.assign_add(1)  # a graph op: counts real evaluations, not Python traces
        return 0.1 * z + tf.reshape(t, [-1, 1])

    return denoiser, calls


@pytest.mark.parametrize("num_steps", [1, 2, 8])
@pytest.mark.parametrize("progress", [False, True])
def test_number_of_evaluations(num_steps, progress):
    den, calls = _counting_denoiser()
    for repeat in (1, 2):  # the second call reuses the compiled loop and must count again
        ddim_sample(den, np.ones((3, 2), np.float32), VP, num_steps, progress=progress)
        assert calls.numpy() == repeat * num_steps


def test_jit_compile_agrees():
    den, calls = _counting_denoiser()
    noise = np.random.default_rng(2).normal(size=(64, 2)).astype(np.float32)
    plain = ddim_sample(den, noise, VP, 8).numpy()
    xla = ddim_sample(den, noise, VP, 8, jit_compile=True).numpy()
    np.testing.assert_allclose(xla, plain, rtol=1e-5, atol=1e-6)
    assert calls.numpy() == 16


@pytest.mark.parametrize("trailing_axis", [False, True])
@pytest.mark.parametrize("progress", [False, True])
def test_mask_keeps_padding_zero(trailing_axis, progress):
    rng = np.random.default_rng(4)
    b, p, f = 16, 10, 3
    mask = (np.arange(p)[None, :] < rng.integers(1, p + 1, size=b)[:, None]).astype(np.float32)
    noise = rng.normal(size=(b, p, f)).astype(np.float32)

    def den(z, t):  # elementwise and non-zero at z = 0: padding would fill up without the mask
        return 0.5 - 0.3 * z

    out = ddim_sample(
        den, noise, VP, 8, mask=mask[..., None] if trailing_axis else mask, progress=progress
    ).numpy()
    pad = mask == 0
    assert pad.any() and np.all(out[pad] == 0.0)
    # real entries are untouched by the mask (the denoiser acts elementwise)
    free = ddim_sample(den, noise, VP, 8).numpy()
    np.testing.assert_allclose(out[~pad], free[~pad], rtol=1e-6)


def test_extra_args_do_not_retrace():
    traces = []

    def den(z, t, cond):
        traces.append(1)  # Python side effect: runs at trace time only
        return z * 0.0 + cond[:, None]  # x0 = cond: one step returns it

    noise = np.zeros((4, 2), np.float32)
    for value in (1.0, -2.0):
        out = ddim_sample(den, noise, VP, 1, cond={"cond": tf.fill([4], value)})
        np.testing.assert_array_equal(out.numpy(), value)
    ddim_sample(den, noise, VP, 5, cond={"cond": tf.fill([4], 1.0)})  # another grid length
    assert len(traces) <= 2  # at most one relaxed retrace for the new grid length


def test_cache_does_not_keep_denoiser_alive():
    def make():
        scale = tf.constant(0.5)
        return lambda z, t: scale * z

    den = make()
    ddim_sample(den, np.ones((2, 2), np.float32), VP, 2)
    ref = weakref.ref(den)
    del den
    gc.collect()
    assert ref() is None


def test_rejects_bad_denoiser_shape():
    with pytest.raises(ValueError, match="shape"):
        ddim_sample(lambda z, t: z[:, :1] * 0 + z[:, :1], np.ones((2, 3, 2), np.float32), VP, 2)


def test_bound_method_reuses_trace():
    class Wrapper:
        def __init__(self):
            self.traces = 0

        def denoise(self, z, t):
            self.traces += 1  # trace-time only
            return 0.5 * z

    w = Wrapper()
    noise = np.ones((3, 2), np.float32)
    for _ in range(3):
        np.testing.assert_allclose(
            ddim_sample(w.denoise, noise, VP, 4).numpy(), ddim_sample(w.denoise, noise, VP, 4).numpy()
        )
    assert w.traces == 1
    ref = weakref.ref(w)
    del w
    gc.collect()
    assert ref() is None


def test_ddim_on_discrete_cosine_schedule_matches_eq4_reference():
    """Second schedule: DDIM over the respaced DDPM times with a plain x0 denoiser (no adapter)."""
    schedule = DiscreteCosineSchedule(num_steps=1000)
    abar = schedule.alphas_cumprod
    mu, s = 0.7, 0.4

    def exact_x0(z, t):
        index = tf.cast(tf.round(t), tf.int32)
        a = tf.sqrt(tf.gather(tf.constant(abar, tf.float32), index))[:, None]
        sig2 = 1.0 - a**2
        return mu + a * s**2 / (a**2 * s**2 + sig2) * (z - a * mu)

    noise = standard_noise((4000, 2), seed=7)
    out = ddim_sample(exact_x0, noise, schedule, 20).numpy()
    z = noise.astype(np.float64)
    times = np.round(np.linspace(1000, 0, 21)).astype(int)
    for t, u in zip(times[:-1], times[1:], strict=True):
        a_t, a_s = np.sqrt(abar[t]), np.sqrt(abar[u])
        sig_t, sig_s = np.sqrt(1 - abar[t]), np.sqrt(1 - abar[u])
        x_hat = mu + a_t * s**2 / (a_t**2 * s**2 + sig_t**2) * (z - a_t * mu)
        z = a_s * x_hat + sig_s * (z - a_t * x_hat) / sig_t
    np.testing.assert_allclose(out, z, atol=1e-4)
    np.testing.assert_allclose(out.mean(axis=0), mu, atol=0.01)
    np.testing.assert_allclose(out.std(axis=0), s, rtol=0.1)


def test_schedule_is_part_of_the_cache_key():
    """Same denoiser, same time grid, different alpha(t): the compiled loop must not be reused."""
    noise = np.random.default_rng(1).normal(size=(8, 2)).astype(np.float32)

    def x0(z, t):
        return 0.5 * z

    a = ddim_sample(x0, noise, DiscreteCosineSchedule(num_steps=10), 2).numpy()
    b = ddim_sample(x0, noise, DiscreteCosineSchedule(num_steps=10, offset=0.2), 2).numpy()
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, ddim_sample(x0, noise, DiscreteCosineSchedule(num_steps=10), 2).numpy())


# --- DPM-Solver++(2M): the second-order solver on the same grid and network evaluations ---------------


def test_ddim_narrows_a_unit_gaussian_by_cos_of_the_step_angle_per_step():
    # x ~ N(0, 1) under VP: z_t ~ N(0, 1) at every t, so the exact probability-flow map is the identity;
    # a DDIM step from angle theta_t to theta_s multiplies z by cos(theta_t - theta_s) instead.
    noise = standard_noise((2000, 3))
    unit = gaussian_denoiser(np.float32(0.0), np.float32(1.0))
    for num_steps in (4, 16, 64):
        out = ddim_sample(unit, noise, VP, num_steps).numpy()
        shrink = np.cos(np.pi / (2 * num_steps)) ** num_steps  # 0.981 at 64 steps
        np.testing.assert_allclose(out, shrink * noise, rtol=1e-4, atol=1e-6)
        if num_steps >= 16:  # at 4 steps half the steps are first order (first, after alpha = 0, last)
            second_order = ddim_sample(unit, noise, VP, num_steps, solver="dpm++2m").numpy()
            assert abs(second_order.std() - 1.0) < 0.2 * (1.0 - shrink)


@pytest.mark.parametrize("mu, s, shape", CASES)
def test_dpm_solver_2m_reaches_the_data_distribution_at_64_steps(mu, s, shape):
    noise = standard_noise(shape, seed=2)
    den = gaussian_denoiser(mu, s)
    out = ddim_sample(den, noise, VP, 64, solver="dpm++2m").numpy()
    np.testing.assert_allclose(out.mean(axis=0), mu, atol=1e-3 * np.max(s))
    error = np.abs(out.var(axis=0) / s**2 - 1.0)  # up to 1.2 % here
    assert np.all(error < 0.015)
    ddim = ddim_sample(den, noise, VP, 64).numpy()  # 4-7 % low (test_matches_eq4_reference)
    assert np.all(error < 0.25 * np.abs(ddim.var(axis=0) / s**2 - 1.0))
    # faster than first order: 4x the steps cut the error by more than 4x (DDIM: about 4x)
    finer = ddim_sample(den, noise, VP, 256, solver="dpm++2m").numpy()
    assert np.max(np.abs(finer.var(axis=0) / s**2 - 1.0)) < 0.2 * np.max(error)


def test_dpm_solver_2m_is_exact_for_a_point_mass_like_ddim():
    # x0_hat constant: the second-order correction x0 - x0_prev vanishes, every step is DDIM's
    c = tf.constant([[0.25, -3.0, 7.5]])
    noise = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    for num_steps in (1, 3, 16):
        out = ddim_sample(lambda z, t: c * tf.ones_like(z), noise, VP, num_steps, solver="dpm++2m")
        np.testing.assert_array_equal(out.numpy(), np.broadcast_to(c.numpy(), (4, 3)))


def test_multistep_coefficients_are_ddim_plus_the_log_snr_step_ratio():
    from gsgm.diffusion import multistep_coefficients

    grid = VP.sampling_times(8)
    coefficients = multistep_coefficients(VP, grid)
    assert coefficients.shape == (8, 3)
    theta = 0.5 * np.pi * grid  # alpha = cos(theta), sigma = sin(theta)
    np.testing.assert_allclose(coefficients[:, 0], np.sin(theta[1:]) / np.sin(theta[:-1]), rtol=1e-12)
    expected_b = np.cos(theta[1:]) - np.sin(theta[1:]) * np.cos(theta[:-1]) / np.sin(theta[:-1])
    np.testing.assert_allclose(coefficients[:, 1], expected_b, rtol=1e-12, atol=1e-15)
    # first order on the first step (no previous estimate), on the step after alpha = 0 (infinite h)
    # and on the last step (to sigma = 0); elsewhere h / (2 h_prev), lambda = log cot(theta)
    log_snr = np.log(1.0 / np.tan(theta[1:-1]))
    h = np.diff(log_snr)
    np.testing.assert_array_equal(coefficients[[0, 1, 7], 2], 0.0)
    np.testing.assert_allclose(coefficients[2:7, 2], h[1:] / (2.0 * h[:-1]), rtol=1e-12)
    assert np.all(coefficients[2:7, 2] > 0.0)


@pytest.mark.parametrize("progress", [False, True])
def test_dpm_solver_2m_counts_evaluations_keeps_padding_zero_and_agrees_with_progress_mode(progress):
    den, calls = _counting_denoiser()
    rng = np.random.default_rng(6)
    mask = (np.arange(6)[None, :] < rng.integers(1, 7, size=8)[:, None]).astype(np.float32)
    noise = rng.normal(size=(8, 6)).astype(np.float32)
    out = ddim_sample(den, noise, VP, 8, mask=mask, progress=progress, solver="dpm++2m").numpy()
    assert calls.numpy() == 8
    assert np.all(out[mask == 0] == 0.0)
    loop = ddim_sample(den, noise, VP, 8, mask=mask, solver="dpm++2m").numpy()
    np.testing.assert_allclose(out, loop, rtol=1e-6, atol=1e-7)
    # and it is not DDIM: the correction changes the result of a z-dependent denoiser
    assert np.max(np.abs(loop - ddim_sample(den, noise, VP, 8, mask=mask).numpy())) > 1e-4


def test_unknown_solver_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'heun'"):
        ddim_sample(lambda z, t: z, np.zeros((2, 2), np.float32), VP, 4, solver="heun")
