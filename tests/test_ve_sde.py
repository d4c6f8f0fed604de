"""VE SDE: noise levels, perturbation kernel, DSM loss, preconditioning and samplers against Gaussian data
(exact score, through the ScoreDenoiser adapter)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gsgm.diffusion import PreconditionedDenoiser, ScoreDenoiser, VEGeometricSchedule, diffuse, dsm_loss
from gsgm.diffusion.denoisers import predict, score_of
from gsgm.diffusion.samplers import probability_flow_step, sample_pc, sample_probability_flow

MU, STD = 0.3, 0.5  # data x_0 ~ N(MU, STD^2) per element
SIGMA_MIN, SIGMA_MAX = 1e-3, 25.0
VE = VEGeometricSchedule(SIGMA_MIN, SIGMA_MAX)


def ve_perturb(x0, sigma, noise):
    return diffuse(x0, sigma, noise, VEGeometricSchedule(1e-3, 1e3))


def score(denoiser, x, sigma):
    """The score a sampler derives from ``denoiser`` (alpha = 1)."""
    return score_of(predict(denoiser, x, sigma), x, 1.0, tf.reshape(sigma, (-1,) + (1,) * (x.shape.rank - 1)))


def exact_score(x, sigma):
    """grad log p_sigma for N(MU, STD^2) data: p_sigma = N(MU, STD^2 + sigma^2)."""
    variance = STD**2 + tf.reshape(tf.cast(sigma, x.dtype), (-1,) + (1,) * (x.shape.rank - 1)) ** 2
    return -(x - MU) / variance


EXACT = ScoreDenoiser(exact_score, VE)


def prior(batch: int, dim: int, seed: int = 0) -> tf.Tensor:
    """Exact marginal at sigma_max, so that only the sampler's own error remains."""
    z = tf.random.stateless_normal((batch, dim), (seed, 7), dtype=tf.float64)
    return MU + np.sqrt(STD**2 + SIGMA_MAX**2) * z


def test_sigma_schedule_is_geometric_with_exact_ends():
    t = tf.constant([0.0, 0.25, 0.5, 1.0])
    sigma = VE.sigma_at(t).numpy()
    assert sigma[0] == np.float32(SIGMA_MIN) and sigma[-1] == np.float32(SIGMA_MAX)
    np.testing.assert_allclose(sigma[2], np.sqrt(SIGMA_MIN * SIGMA_MAX), rtol=1e-5)
    np.testing.assert_allclose(np.diff(np.log(sigma[:3])), np.log(SIGMA_MAX / SIGMA_MIN) / 4, rtol=1e-4)
    # training draws sigma = sigma_at(u), u ~ U(0, 1): log sigma uniform on [log min, log max]
    drawn = VE.training_times([100_000], tf.constant([1, 2])).numpy()
    assert drawn.min() >= np.float32(SIGMA_MIN) and drawn.max() <= np.float32(SIGMA_MAX)
    u = np.log(drawn / SIGMA_MIN) / np.log(SIGMA_MAX / SIGMA_MIN)
    assert u.mean() == pytest.approx(0.5, abs=0.005) and u.var() == pytest.approx(1 / 12, rel=0.02)
    alpha, sigma_t = VE.alpha_sigma(tf.constant([0.5, 2.0]))
    assert alpha.numpy().tolist() == [1.0, 1.0] and sigma_t.numpy().tolist() == [0.5, 2.0]
    with pytest.raises(ValueError):
        VEGeometricSchedule(1.0, 0.5)


def test_sampling_grid():
    grid = VE.sampling_times(15)
    assert grid.shape == (16,) and grid[0] == SIGMA_MAX and grid[-2] == SIGMA_MIN
    assert grid[-1] == 0 and np.all(np.diff(grid) < 0)
    ratios = grid[1:-1] / grid[:-2]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-12)
    assert VE.sampling_times(1).tolist() == [SIGMA_MAX, 0.0]


def test_perturbation_kernel_moments():
    x0 = tf.fill((200_000, 1), 0.7)
    sigma = VEGeometricSchedule(0.01, 2.0).sigma_at(tf.fill((200_000,), 0.6))
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
    noise_kind = PreconditionedDenoiser(network, sigma_data=0.5)
    pred = noise_kind.predict(x, sigma, label=None)
    np.testing.assert_allclose(
        score_of(pred, x, 1.0, sigma[:, None]).numpy(), [[-2.0] * 3, [-1.0] * 3]
    )  # -F / sigma
    np.testing.assert_allclose(pred.x0.numpy(), [[2.0] * 3, [0.0] * 3])  # x - sigma F
    np.testing.assert_allclose(seen["x_in"].numpy()[:, 0], 4.0 / np.sqrt([1.25, 4.25]), rtol=1e-6)
    np.testing.assert_allclose(seen["log_sigma"].numpy(), np.log([1.0, 2.0]))
    np.testing.assert_allclose(noise_kind.loss_weight(sigma).numpy(), [1.0, 1.0])

    denoiser = PreconditionedDenoiser(network, sigma_data=0.5, kind="denoiser")
    s = np.array([1.0, 2.0])
    c_skip, c_out = 0.25 / (s**2 + 0.25), s * 0.5 / np.sqrt(s**2 + 0.25)
    expected = (c_skip * 4.0 + c_out * 2.0 - 4.0) / s**2  # (D - x) / sigma^2
    denoiser_score = score_of(denoiser.predict(x, sigma, label=None), x, 1.0, sigma[:, None])
    np.testing.assert_allclose(denoiser_score.numpy()[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(
        denoiser(x, sigma, label=None).numpy()[:, 0], c_skip * 4.0 + c_out * 2.0, rtol=1e-6
    )
    np.testing.assert_allclose(denoiser.loss_weight(sigma).numpy(), (s**2 + 0.25) / 0.25, rtol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        PreconditionedDenoiser(network, 0.5, kind="velocity")


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
    kind = PreconditionedDenoiser(lambda x_in, log_sigma: f_net, sigma_data, "denoiser")
    s = sigma.numpy()[:, None]
    c_skip, c_out = sigma_data**2 / (s**2 + sigma_data**2), s * sigma_data / np.sqrt(s**2 + sigma_data**2)
    target = (x0.numpy() - c_skip * x.numpy()) / c_out
    loss = dsm_loss(score(kind, x, sigma), z, sigma, kind.loss_weight(sigma)).numpy()
    assert loss == pytest.approx(np.mean((f_net.numpy() - target) ** 2), rel=1e-6)
    assert np.var(target) == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize(
    ("sampler", "levels", "tolerance"),
    [
        (lambda n: sample_pc(EXACT, prior(20_000, 2), VE, n, seed=1), 200, 0.02),
        # The predictor alone converges more slowly (std +2.4 % at 200 levels, +1.3 % at 400).
        (lambda n: sample_pc(EXACT, prior(20_000, 2), VE, n, corrector_steps=0, seed=2), 400, 0.025),
        (lambda n: sample_probability_flow(EXACT, prior(20_000, 2), VE, n), 100, 0.01),
    ],
    ids=["pc", "predictor-only", "ode-heun"],
)
def test_samplers_reproduce_mean_and_variance_with_the_exact_score(sampler, levels, tolerance):
    x = sampler(levels).numpy()
    assert x.mean() == pytest.approx(MU, abs=4 * STD / np.sqrt(x.size))
    assert x.std() == pytest.approx(STD, rel=tolerance)


def test_fifteen_levels_are_too_few_even_for_the_exact_score():
    """Documents the paper's setting: 15 PC levels over a 25,000-fold noise range overshoot the variance.

    Each reverse-diffusion step is exact in mean but adds variance of order (sigma_i^2 - sigma_(i-1)^2)^2
    / sigma_i^2 when the levels are far apart; with 15 levels the output std is ~30 % too large.
    """
    x = sample_pc(EXACT, prior(20_000, 2), VE, 15, seed=3).numpy()
    assert x.mean() == pytest.approx(MU, abs=4 * x.std() / np.sqrt(x.size))
    assert x.std() > 1.15 * STD


def test_samplers_are_deterministic_given_the_seed():
    start = tf.cast(prior(4, 3), tf.float32)
    a, b = sample_pc(EXACT, start, VE, 5, seed=5), sample_pc(EXACT, start, VE, 5, seed=5)
    c = sample_pc(EXACT, start, VE, 5, seed=6)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(a.numpy(), c.numpy())
    calls = []

    def counting(x, sigma, **_):
        calls.append(float(sigma[0]))
        return exact_score(x, sigma)

    sample_pc(ScoreDenoiser(counting, VE), start, VE, 5, corrector_steps=2)
    assert len(calls) == 5 * 3  # N levels x (M corrector + 1 predictor) score calls
    calls.clear()
    sample_probability_flow(ScoreDenoiser(counting, VE), start, VE, 5)
    assert len(calls) == 2 * 5 - 1  # Heun, the last step (to 0) Euler


def test_probability_flow_step_follows_the_exact_trajectory():
    # For Gaussian data the ODE maps x at sigma to MU + (x - MU) sqrt((STD^2 + s'^2) / (STD^2 + sigma^2)).
    x = tf.constant([[1.0], [-2.0]], tf.float64)
    for sigma, sigma_next in [(3.0, 2.5), (0.2, 0.15)]:
        expected = MU + (x.numpy() - MU) * np.sqrt((STD**2 + sigma_next**2) / (STD**2 + sigma**2))
        heun = probability_flow_step(EXACT, x, sigma, sigma_next, VE, "heun").numpy()
        euler = probability_flow_step(EXACT, x, sigma, sigma_next, VE, "euler").numpy()
        assert np.abs(heun - expected).max() < np.abs(euler - expected).max()
        np.testing.assert_allclose(heun, expected, rtol=2e-3)
    # Per-example levels.
    per_example = probability_flow_step(
        EXACT, x, tf.constant([3.0, 0.2], tf.float64), tf.constant([2.5, 0.15], tf.float64), VE
    )
    np.testing.assert_allclose(
        per_example.numpy()[0], probability_flow_step(EXACT, x[:1], 3.0, 2.5, VE).numpy()[0]
    )
