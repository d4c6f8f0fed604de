"""Cosine VP schedule (``VPCosineSchedule``), log-SNR, time grid and the x / eps / v conversions."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gsgm.diffusion import (
    LOGSNR_MAX,
    LOGSNR_MIN,
    VPCosineSchedule,
    eps_from_v,
    eps_from_x,
    expand_like,
    score_from_v,
    v_from_x,
    v_from_x_eps,
    x_from_eps,
    x_from_v,
)

VP = VPCosineSchedule()
cosine_alpha_sigma, logsnr, t_from_logsnr = VP.alpha_sigma, VP.logsnr, VP.t_from_logsnr


def time_grid(n):
    """The sampler's grid as the network sees it (float32)."""
    return tf.constant(VP.sampling_times(n), tf.float32)


T_CLOSED = np.linspace(0.0, 1.0, 1001, dtype=np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_variance_preserving_and_cosine(dtype):
    t = T_CLOSED.astype(dtype)
    alpha, sigma = (a.numpy() for a in cosine_alpha_sigma(t))
    assert alpha.dtype == dtype and sigma.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(alpha**2 + sigma**2, 1.0, atol=tol)
    t64 = t.astype(np.float64)
    np.testing.assert_allclose(alpha, np.cos(0.5 * np.pi * t64), atol=tol)
    np.testing.assert_allclose(sigma, np.sin(0.5 * np.pi * t64), atol=tol)
    assert (alpha >= 0).all() and (sigma >= 0).all()


def test_endpoints_exact_and_clipped():
    alpha, sigma = (a.numpy() for a in cosine_alpha_sigma(np.array([-0.5, 0.0, 1.0, 1.5], np.float32)))
    # cos(pi/2) in float32 is -4.4e-8: the schedule must give exactly 0 instead.
    np.testing.assert_array_equal(alpha, [1.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(sigma, [0.0, 0.0, 1.0, 1.0])


def test_small_end_relative_precision():
    # Near t = 1 alpha is tiny; it must still be accurate in relative terms (not a cancellation residue).
    t = np.float32(1.0) - np.float32(2.0**-20)
    alpha, _ = cosine_alpha_sigma(t)
    exact = np.sin(0.5 * np.pi * (1.0 - np.float64(t)))
    assert abs(alpha.numpy() / exact - 1.0) < 1e-6


def test_logsnr_monotone_and_clipped():
    lam = logsnr(T_CLOSED).numpy()
    assert np.all(np.isfinite(lam))
    assert lam[0] == LOGSNR_MAX and lam[-1] == LOGSNR_MIN
    assert np.all(np.diff(lam) < 0)  # strictly decreasing on a 1e-3 grid
    interior = T_CLOSED[1:-1].astype(np.float64)
    np.testing.assert_allclose(lam[1:-1], -2.0 * np.log(np.tan(0.5 * np.pi * interior)), rtol=1e-4, atol=1e-4)


def test_logsnr_inverse():
    t = np.linspace(0.01, 0.99, 50)
    np.testing.assert_allclose(t_from_logsnr(logsnr(t)).numpy(), t, atol=1e-10)


@pytest.mark.parametrize("n", [1, 2, 8, 64, 512])
def test_time_grid(n):
    grid = time_grid(n).numpy()
    assert grid.shape == (n + 1,) and grid.dtype == np.float32
    assert grid[0] == 1.0 and grid[-1] == 0.0
    assert np.all(np.diff(grid) < 0)
    # every other point of the 2N grid is the N grid, exactly (distillation relies on it)
    np.testing.assert_array_equal(time_grid(2 * n).numpy()[::2], grid)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_time_grid_rejects(bad):
    with pytest.raises(ValueError):
        time_grid(bad)


def test_expand_like():
    x = tf.zeros([4, 3, 2])
    assert expand_like(tf.ones([4]), x).shape == (4, 1, 1)
    assert expand_like(tf.ones([4, 3]), x).shape == (4, 3, 1)
    assert expand_like(tf.ones([4, 3, 1]), x).shape == (4, 3, 1)
    assert expand_like(tf.constant(2.0), x).shape == ()
    assert expand_like(np.ones(4), np.zeros([4, 7])).shape == (4, 1)


def _random(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    eps = rng.normal(size=shape)
    t = rng.uniform(0.02, 0.98, size=shape[0])
    alpha, sigma = (a.numpy() for a in cosine_alpha_sigma(t))
    z = (
        alpha.reshape((-1,) + (1,) * (len(shape) - 1)) * x
        + sigma.reshape((-1,) + (1,) * (len(shape) - 1)) * eps
    )
    return x.astype(np.float32), eps.astype(np.float32), z.astype(np.float32), alpha, sigma


@pytest.mark.parametrize("shape", [(256,), (64, 5), (16, 30, 3), (4, 8, 8, 2)])
def test_round_trips(shape):
    x, eps, z, alpha, sigma = _random(shape)
    v = v_from_x_eps(x, eps, alpha, sigma)
    assert v.shape == shape and v.dtype == tf.float32
    np.testing.assert_allclose(x_from_v(z, v, alpha, sigma).numpy(), x, atol=1e-5)
    np.testing.assert_allclose(eps_from_v(z, v, alpha, sigma).numpy(), eps, atol=1e-5)
    np.testing.assert_allclose(eps_from_x(z, x, alpha, sigma).numpy(), eps, atol=1e-4)
    np.testing.assert_allclose(x_from_eps(z, eps, alpha, sigma).numpy(), x, atol=1e-4)
    np.testing.assert_allclose(v_from_x(z, x, alpha, sigma).numpy(), v.numpy(), atol=1e-4)
    # v_from_x is the target whose DDIM x-estimate is the given x (any x, not only the true one)
    x_tilde = x + 0.3
    v_tilde = v_from_x(z, x_tilde, alpha, sigma)
    np.testing.assert_allclose(x_from_v(z, v_tilde, alpha, sigma).numpy(), x_tilde, atol=1e-4)


def test_v_conversions_finite_at_endpoints():
    z = np.array([[0.3, -1.2]], np.float32)
    v = np.array([[0.7, 0.1]], np.float32)
    for t, x_expected, eps_expected in [(1.0, -v, z), (0.0, z, v)]:
        alpha, sigma = cosine_alpha_sigma([t])
        np.testing.assert_array_equal(x_from_v(z, v, alpha, sigma).numpy(), x_expected)
        np.testing.assert_array_equal(eps_from_v(z, v, alpha, sigma).numpy(), eps_expected)


def test_score_from_v_gaussian():
    # data x ~ N(mu, s^2): z_t ~ N(alpha mu, alpha^2 s^2 + sigma^2), exact score -(z - alpha mu) / var
    mu, s = 0.8, 0.6
    t = np.array([0.1, 0.4, 0.7, 0.95])
    alpha, sigma = np.cos(0.5 * np.pi * t), np.sin(0.5 * np.pi * t)
    z = np.array([-1.0, 0.2, 1.3, 0.5])
    var = alpha**2 * s**2 + sigma**2
    x_hat = mu + alpha * s**2 / var * (z - alpha * mu)
    eps_hat = sigma / var * (z - alpha * mu)
    v = alpha * eps_hat - sigma * x_hat
    np.testing.assert_allclose(score_from_v(z, v, alpha, sigma).numpy(), -(z - alpha * mu) / var, rtol=1e-10)
    # standard normal data: v = 0 and the score is -z (eq. 2 as printed has +z)
    np.testing.assert_allclose(score_from_v(z, 0 * z, alpha, sigma).numpy(), -z)
