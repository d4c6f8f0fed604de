"""Schedule objects against analytic values: discrete cosine-beta DDPM, posteriors, grids, Karras."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gsgm.diffusion import (
    DiscreteCosineSchedule,
    KarrasSchedule,
    VEGeometricSchedule,
    VPCosineSchedule,
)


def f(t, T, s=0.008):
    return np.cos((t / T + s) / (1 + s) * np.pi / 2) ** 2


@pytest.mark.parametrize("T", [50, 1000, 4000])
def test_discrete_cosine_betas_and_alpha_bar(T):
    sch = DiscreteCosineSchedule(num_steps=T)
    t = np.arange(T + 1)
    abar_exact = f(t, T) / f(0, T)
    assert sch.betas.shape == (T + 1,) and sch.alphas_cumprod.shape == (T + 1,)
    assert sch.betas[0] == 0.0 and sch.alphas_cumprod[0] == 1.0
    # f(T) = 0 would make beta_T = 1: it is clipped to 0.999, every other beta is unclipped
    assert sch.betas[T] == pytest.approx(0.999) and np.all(sch.betas <= 0.999)
    np.testing.assert_allclose(sch.betas[1:T], 1 - abar_exact[1:T] / abar_exact[: T - 1], rtol=1e-10)
    np.testing.assert_allclose(sch.alphas_cumprod[:T], abar_exact[:T], rtol=1e-10)
    assert 0 < sch.alphas_cumprod[T] < 1e-6
    np.testing.assert_allclose(sch.alphas_cumprod, np.cumprod(1 - sch.betas), rtol=1e-12)


def test_discrete_cosine_posterior_tables():
    sch = DiscreteCosineSchedule(num_steps=200)
    b, ab = sch.betas, sch.alphas_cumprod
    t = np.arange(1, 201)
    np.testing.assert_allclose(sch.posterior_variance[t], b[t] * (1 - ab[t - 1]) / (1 - ab[t]), rtol=1e-12)
    np.testing.assert_allclose(
        sch.posterior_mean_coef1[t], b[t] * np.sqrt(ab[t - 1]) / (1 - ab[t]), rtol=1e-12
    )
    np.testing.assert_allclose(
        sch.posterior_mean_coef2[t], (1 - ab[t - 1]) * np.sqrt(1 - b[t]) / (1 - ab[t]), rtol=1e-12
    )
    assert sch.posterior_variance[1] == 0.0
    clipped = sch.posterior_log_variance_clipped
    assert clipped[1] == pytest.approx(np.log(sch.posterior_variance[2]))
    np.testing.assert_allclose(clipped[2:], np.log(sch.posterior_variance[2:]))
    # the posterior of an adjacent step from the generic formula is the table
    c_z, c_x, var, beta = (a.numpy() for a in sch.posterior(t.astype(np.float32), (t - 1).astype(np.float32)))
    np.testing.assert_allclose(c_x, sch.posterior_mean_coef1[t], rtol=1e-6)
    np.testing.assert_allclose(c_z, sch.posterior_mean_coef2[t], rtol=1e-6)
    np.testing.assert_allclose(var[1:], sch.posterior_variance[t][1:], rtol=1e-6)
    np.testing.assert_allclose(beta, b[t], rtol=1e-6)


@pytest.mark.parametrize(
    "schedule, t, s",
    [
        (VPCosineSchedule(), [0.9, 0.5, 0.3], [0.6, 0.1, 0.0]),
        (VEGeometricSchedule(0.01, 10.0), [5.0, 1.0, 0.3], [2.0, 0.1, 0.0]),
        (DiscreteCosineSchedule(num_steps=100), [100.0, 40.0, 7.0], [60.0, 20.0, 0.0]),
    ],
    ids=["vp", "ve", "discrete"],
)
def test_posterior_is_the_conditional_of_the_joint_gaussian(schedule, t, s):
    """q(z_s | z_t, x) from Bayes: prior N(alpha_s x, sigma_s^2), likelihood N(alpha_ts z_s, beta_ts)."""
    t, s = np.asarray(t, np.float64), np.asarray(s, np.float64)
    a_t, s_t = (a.numpy() for a in schedule.alpha_sigma(tf.constant(t)))
    a_s, s_s = (a.numpy() for a in schedule.alpha_sigma(tf.constant(s)))
    a_ts = a_t / a_s
    beta_ts = s_t**2 - a_ts**2 * s_s**2
    c_z, c_x, var, beta = (a.numpy() for a in schedule.posterior(tf.constant(t), tf.constant(s)))
    np.testing.assert_allclose(beta, beta_ts, rtol=1e-6)
    with np.errstate(divide="ignore"):
        precision = np.where(s_s > 0, 1 / s_s**2, np.inf) + a_ts**2 / beta_ts
    np.testing.assert_allclose(var, 1 / precision, rtol=1e-6, atol=1e-12)
    # mean = var (alpha_s x / sigma_s^2 + alpha_ts z / beta_ts): coefficient of z; of x where sigma_s > 0
    np.testing.assert_allclose(c_z, var * a_ts / beta_ts, rtol=1e-6, atol=1e-12)
    inner = s_s > 0
    np.testing.assert_allclose(c_x[inner], var[inner] * a_s[inner] / s_s[inner] ** 2, rtol=1e-6)
    np.testing.assert_allclose(c_x[~inner], a_s[~inner], rtol=1e-6)  # the step to the data: mean = x


def test_discrete_grids_training_times_and_endpoints():
    sch = DiscreteCosineSchedule(num_steps=1000)
    grid = sch.sampling_times(8)
    np.testing.assert_array_equal(grid, [1000, 875, 750, 625, 500, 375, 250, 125, 0])
    np.testing.assert_array_equal(sch.sampling_times(16)[::2], grid)  # nested: distillation works
    with pytest.raises(ValueError):
        sch.sampling_times(1001)
    t = sch.training_times([200_000], tf.constant([3, 4])).numpy()
    assert t.min() == 1 and t.max() == 1000 and np.all(t == np.round(t))
    assert t.mean() == pytest.approx(500.5, rel=0.01)
    alpha, sigma = (a.numpy() for a in sch.alpha_sigma(tf.constant([0.0, 1000.0])))
    assert alpha[0] == 1.0 and sigma[0] == 0.0 and sigma[1] == pytest.approx(1.0, abs=1e-6)
    assert sch == DiscreteCosineSchedule(num_steps=1000) and hash(sch) == hash(DiscreteCosineSchedule())


def test_vp_training_times_are_uniform_and_grids_exact():
    vp = VPCosineSchedule()
    t = vp.training_times([100_000], tf.constant([1, 1])).numpy()
    assert 0 <= t.min() and t.max() < 1 and t.mean() == pytest.approx(0.5, abs=0.005)
    assert vp.sampling_times(4).tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_karras_points_and_grid():
    sch = KarrasSchedule(0.002, 80.0, 7.0)
    i = np.arange(10)
    expected = (0.002 ** (1 / 7) + i / 9 * (80 ** (1 / 7) - 0.002 ** (1 / 7))) ** 7
    np.testing.assert_allclose(sch.discretization(10), expected, rtol=1e-5)
    grid = sch.sampling_times(9)
    assert grid[0] == np.float32(80.0) and grid[-1] == np.float32(0.002) and np.all(np.diff(grid) < 0)
    with pytest.raises(ValueError):
        KarrasSchedule(1.0, 0.5)
