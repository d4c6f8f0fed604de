"""VE SDE: noise levels, perturbation kernel, DSM loss and samplers against Gaussian data (exact score)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gsgm.diffusion.ve_sde import (
    ScoreParameterization,
    dsm_loss,
    probability_flow_step,
    sample_pc,
    sample_probability_flow,
    ve_perturb,
    ve_sigma,
    ve_sigmas,
)

MU, STD = 0.3, 0.5  # data x_0 ~ N(MU, STD^2) per element
SIGMA_MIN, SIGMA_MAX = 1e-3, 25.0


def exact_score(x, sigma):
    """grad log p_sigma for N(MU, STD^2) data: p_sigma = N(MU, STD^2 + sigma^2)."""
    variance = STD**2 + tf.reshape(tf.cast(sigma, x.dtype), (-1,) + (1,) * (x.shape.rank - 1)) ** 2
    return -(x - MU) / variance


def prior(batch: int, dim: int, seed: int = 0) -> tf.Tensor:
    """Exact marginal at sigma_max, so that only the sampler's own error remains."""
    z = tf.random.stateless_normal((batch, dim), (seed, 7), dtype=tf.float64)
    return MU + np.sqrt(STD**2 + SIGMA_MAX**2) * z


def test_sigma_schedule_is_geometric_with_exact_ends():
    t = tf.constant([0.0, 0.25, 0.5, 1.0])
    sigma = ve_sigma(t, SIGMA_MIN, SIGMA_MAX).numpy()
    assert sigma[0] == np.float32(SIGMA_MIN) and sigma[-1] == np.float32(SIGMA_MAX)
    np.testing.assert_allclose(sigma[2], np.sqrt(SIGMA_MIN * SIGMA_MAX), rtol=1e-5)
    np.testing.assert_allclose(np.diff(np.log(sigma[:3])), np.log(SIGMA_MAX / SIGMA_MIN) / 4, rtol=1e-4)
    with pytest.raises(ValueError):
        ve_sigma(t, 1.0, 0.5)


def test_sampling_grid():
    grid = ve_sigmas(15, SIGMA_MIN, SIGMA_MAX).numpy()
    assert grid.shape == (16,) and grid[0] == np.float32(SIGMA_MAX) and grid[-2] == np.float32(SIGMA_MIN)
    assert grid[-1] == 0 and np.all(np.diff(grid) < 0)
    ratios = grid[1:-1] / grid[:-2]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-5)
    assert ve_sigmas(1, SIGMA_MIN, SIGMA_MAX).numpy().tolist() == [np.float32(SIGMA_MAX), 0.0]


def test_perturbation_kernel_moments():
    x0 = tf.fill((200_000, 1), 0.7)
    sigma = ve_sigma(tf.fill((200_000,), 0.6), 0.01, 2.0)
    noise = tf.random.stateless_normal((200_000, 1), (1, 2))
    xt = ve_perturb(x0, sigma, noise).numpy()
    expected_std = 0.01 * (2.0 / 0.01) ** 0.6
    assert xt.mean() == pytest.approx(0.7, abs=4 * expected_std / np.sqrt(200_000))
    assert xt.std() == pytest.approx(expected_std, rel=0.01)


@pytest.mark.parametrize("sigma", [0.05, 0.5, 5.0])
def test_dsm_loss_at_the_exact_score(sigma):
    n = 400_000
    x0 = MU + STD * tf.random.stateless_normal((n, 1), (3, 4), dtype=tf.float64)
    z = tf.random.stateless_normal((n, 1), (5, 6), dtype=tf.float64)
    sigmas = tf.fill((n,), tf.constant(sigma, tf.float64))
    xt = ve_perturb(x0, sigmas, z)
    loss = dsm_loss(exact_score(xt, sigmas), z, sigmas).numpy()
    # Minimum of the weighted DSM loss: STD^2 / (STD^2 + sigma^2) per element.
    assert loss == pytest.approx(STD**2 / (STD**2 + sigma**2), rel=0.01)
    # It is the minimiser: a score off by delta costs sigma^2 delta^2 more (E[sigma s + z] = 0).
    wrong = dsm_loss(exact_score(xt, sigmas) + 0.3 / sigma, z, sigmas).numpy()
    assert wrong - loss == pytest.approx(0.09, rel=0.02)


def test_score_parameterizations():
    seen = {}

    def network(x_in, log_sigma, *, label):
        seen["x_in"], seen["log_sigma"] = x_in, log_sigma
        return tf.ones_like(x_in) * 2.0

    x = tf.fill((2, 3), 4.0)
    sigma = tf.constant([1.0, 2.0])
    noise_kind = ScoreParameterization(network, sigma_data=0.5)
    np.testing.assert_allclose(
        noise_kind(x, sigma, label=None).numpy(), [[-2.0] * 3, [-1.0] * 3]
    )  # -F / sigma
    np.testing.assert_allclose(seen["x_in"].numpy()[:, 0], 4.0 / np.sqrt([1.25, 4.25]), rtol=1e-6)
    np.testing.assert_allclose(seen["log_sigma"].numpy(), np.log([1.0, 2.0]))
    np.testing.assert_allclose(noise_kind.loss_weight(sigma).numpy(), [1.0, 1.0])

    denoiser = ScoreParameterization(network, sigma_data=0.5, kind="denoiser")
    s = np.array([1.0, 2.0])
    c_skip, c_out = 0.25 / (s**2 + 0.25), s * 0.5 / np.sqrt(s**2 + 0.25)
    expected = (c_skip * 4.0 + c_out * 2.0 - 4.0) / s**2  # (D - x) / sigma^2
    np.testing.assert_allclose(denoiser(x, sigma, label=None).numpy()[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(denoiser.loss_weight(sigma).numpy(), (s**2 + 0.25) / 0.25, rtol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        ScoreParameterization(network, 0.5, kind="velocity")


def test_denoiser_weight_gives_a_unit_target_for_the_network():
    """With loss_weight, the DSM loss of the "denoiser" score is the plain MSE of F against
    F_target = (x0 - c_skip x) / c_out, a target of unit variance for data of std sigma_data."""
    sigma_data = 0.5
    rng = np.random.default_rng(0)
    x0 = tf.constant(rng.normal(0, sigma_data, (4000, 3)))
    z = tf.constant(rng.normal(size=(4000, 3)))
    sigma = tf.constant(np.exp(rng.uniform(np.log(0.01), np.log(20), 4000)))
    x = ve_perturb(x0, sigma, z)
    f_net = tf.constant(rng.normal(size=(4000, 3)))
    kind = ScoreParameterization(lambda x_in, log_sigma: f_net, sigma_data, "denoiser")
    s = sigma.numpy()[:, None]
    c_skip, c_out = sigma_data**2 / (s**2 + sigma_data**2), s * sigma_data / np.sqrt(s**2 + sigma_data**2)
    target = (x0.numpy() - c_skip * x.numpy()) / c_out
    loss = dsm_loss(kind(x, sigma), z, sigma, kind.loss_weight(sigma)).numpy()
    assert loss == pytest.approx(np.mean((f_net.numpy() - target) ** 2), rel=1e-6)
    assert np.var(target) == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize(
    ("sampler", "levels", "tolerance"),
    [
        (lambda grid: sample_pc(exact_score, prior(20_000, 2), grid, seed=1), 200, 0.02),
        # The predictor alone converges more slowly (std +2.4 % at 200 levels, +1.3 % at 400).
        (lambda grid: sample_pc(exact_score, prior(20_000, 2), grid, corrector_steps=0, seed=2), 400, 0.025),
        (lambda grid: sample_probability_flow(exact_score, prior(20_000, 2), grid), 100, 0.01),
    ],
    ids=["pc", "predictor-only", "ode-heun"],
)
def test_samplers_reproduce_mean_and_variance_with_the_exact_score(sampler, levels, tolerance):
    x = sampler(ve_sigmas(levels, SIGMA_MIN, SIGMA_MAX, tf.float64)).numpy()
    assert x.mean() == pytest.approx(MU, abs=4 * STD / np.sqrt(x.size))
    assert x.std() == pytest.approx(STD, rel=tolerance)


def test_fifteen_levels_are_too_few_even_for_the_exact_score():
    """Documents the paper's setting: 15 PC levels over a 25,000-fold noise range overshoot the variance.

    Each reverse-diffusion step is exact in mean but adds variance of order (sigma_i^2 - sigma_(i-1)^2)^2
    / sigma_i^2 when the levels are far apart; with 15 levels the output std is ~30 % too large.
    """
    x = sample_pc(
        exact_score, prior(20_000, 2), ve_sigmas(15, SIGMA_MIN, SIGMA_MAX, tf.float64), seed=3
    ).numpy()
    assert x.mean() == pytest.approx(MU, abs=4 * x.std() / np.sqrt(x.size))
    assert x.std() > 1.15 * STD


def test_samplers_are_deterministic_given_the_seed():
    grid = ve_sigmas(5, SIGMA_MIN, SIGMA_MAX)
    start = tf.cast(prior(4, 3), tf.float32)
    a, b = sample_pc(exact_score, start, grid, seed=5), sample_pc(exact_score, start, grid, seed=5)
    c = sample_pc(exact_score, start, grid, seed=6)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(a.numpy(), c.numpy())
    calls = []

    def counting(x, sigma, **_):
        calls.append(float(sigma[0]))
        return exact_score(x, sigma)

    sample_pc(counting, start, grid, corrector_steps=2)
    assert len(calls) == 5 * 3  # N levels x (M corrector + 1 predictor) score calls
    calls.clear()
    sample_probability_flow(counting, start, grid)
    assert len(calls) == 2 * 5 - 1  # Heun, the last step (to 0) Euler


def test_probability_flow_step_follows_the_exact_trajectory():
    # For Gaussian data the ODE maps x at sigma to MU + (x - MU) sqrt((STD^2 + s'^2) / (STD^2 + sigma^2)).
    x = tf.constant([[1.0], [-2.0]], tf.float64)
    for sigma, sigma_next in [(3.0, 2.5), (0.2, 0.15)]:
        expected = MU + (x.numpy() - MU) * np.sqrt((STD**2 + sigma_next**2) / (STD**2 + sigma**2))
        heun = probability_flow_step(exact_score, x, sigma, sigma_next, "heun").numpy()
        euler = probability_flow_step(exact_score, x, sigma, sigma_next, "euler").numpy()
        assert np.abs(heun - expected).max() < np.abs(euler - expected).max()
        np.testing.assert_allclose(heun, expected, rtol=2e-3)
    # Per-example levels.
    per_example = probability_flow_step(
        exact_score, x, tf.constant([3.0, 0.2], tf.float64), tf.constant([2.5, 0.15], tf.float64)
    )
    np.testing.assert_allclose(
        per_example.numpy()[0], probability_flow_step(exact_score, x[:1], 3.0, 2.5).numpy()[0]
    )
