"""Denoiser adapters, ancestral DDPM sampling (fixed and learned variance), the vlb terms and hybrid loss."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from gsgm.diffusion import (
    DiscreteCosineSchedule,
    EpsDenoiser,
    ScoreDenoiser,
    VDenoiser,
    VPCosineSchedule,
    diffuse,
)
from gsgm.diffusion.denoisers import Prediction, predict
from gsgm.diffusion.samplers import learned_log_variance, sample_ancestral
from gsgm.diffusion.vlb import discretized_gaussian_log_likelihood, gaussian_kl, hybrid_loss, vlb_terms

MU, S = 0.4, 0.3
SCHEDULE = DiscreteCosineSchedule(num_steps=1000)


def exact(schedule):
    """Exact E[x | z] and E[eps | z] of N(MU, S^2) data as functions of (z, t), in the schedule's time."""

    def x0_eps(z, t):
        alpha, sigma = schedule.alpha_sigma(tf.cast(t, z.dtype))
        alpha, sigma = alpha[:, None], sigma[:, None]
        var = alpha**2 * S**2 + sigma**2
        return MU + alpha * S**2 / var * (z - alpha * MU), sigma / var * (z - alpha * MU), alpha, sigma

    return x0_eps


@pytest.mark.parametrize(
    "schedule, t", [(VPCosineSchedule(), 0.4), (SCHEDULE, 300.0)], ids=["vp", "discrete"]
)
def test_adapters_agree_on_the_exact_networks(schedule, t):
    x0_eps = exact(schedule)
    z = tf.constant(np.random.default_rng(0).normal(size=(7, 1)))
    t = tf.fill([7], tf.constant(t, tf.float64))
    x0, eps, alpha, sigma = x0_eps(z, t)
    adapters = {
        "v": VDenoiser(lambda z, t: alpha * x0_eps(z, t)[1] - sigma * x0_eps(z, t)[0], schedule),
        "eps": EpsDenoiser(lambda z, t: x0_eps(z, t)[1], schedule),
        "score": ScoreDenoiser(lambda z, t: -x0_eps(z, t)[1] / sigma, schedule),
    }
    for name, adapter in adapters.items():
        pred = adapter.predict(z, t)
        np.testing.assert_allclose(pred.x0.numpy(), x0.numpy(), rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(pred.eps.numpy(), eps.numpy(), rtol=1e-10, err_msg=name)
        np.testing.assert_array_equal(adapter(z, t).numpy(), pred.x0.numpy())
    # a plain callable is a denoiser too (x0 only)
    assert predict(lambda z, t: x0_eps(z, t)[0], z, t).eps is None


def test_learned_variance_split_and_interpolation():
    net = lambda z, t: tf.concat([0.1 * z, tf.fill(tf.shape(z), 0.25)], axis=-1)  # noqa: E731
    pred = EpsDenoiser(net, SCHEDULE, learned_variance=True).predict(
        tf.ones([2, 3, 1]), tf.constant([10.0, 20.0])
    )
    assert pred.eps.shape == (2, 3, 1) and np.all(pred.variance_weight.numpy() == 0.25)
    log_var = learned_log_variance(tf.constant([0.0, 1.0, 0.5]), 0.02, 0.01).numpy()
    np.testing.assert_allclose(log_var, [np.log(0.01), np.log(0.02), 0.5 * np.log(0.02) + 0.5 * np.log(0.01)])


def test_ancestral_sampling_reproduces_gaussian_data():
    x0_eps = exact(SCHEDULE)
    noise = tf.random.stateless_normal((20_000, 1), (1, 2), dtype=tf.float64)
    out = sample_ancestral(lambda z, t: x0_eps(z, t)[0], noise, SCHEDULE, 1000, seed=3).numpy()
    assert out.mean() == pytest.approx(MU, abs=4 * S / np.sqrt(out.size) + 0.002)
    assert out.std() == pytest.approx(S, rel=0.01)


def test_exact_learned_variance_makes_few_step_sampling_exact():
    """For Gaussian data p(z_s | z_t) = N(c_z z + c_x E[x|z], beta_tilde + c_x^2 Var[x|z]) exactly.

    With 20 respaced steps the fixed choices bracket the data std (beta_tilde too small, beta too large,
    Nichol & Dhariwal's motivation); the interpolation weight v that gives the exact variance samples
    the exact marginal up to sampling noise. The last step returns the posterior mean without noise (as
    DDPM does), so the output variance is ``S^2 - Var[x | z_(t_1)]``, not ``S^2``.
    """
    num_steps, T = 20, SCHEDULE.num_steps
    x0_eps = exact(SCHEDULE)

    def network(z, t):
        x0, eps, alpha, sigma = x0_eps(z, t)
        s = t - T / num_steps
        _, c_x, var, beta = (a[:, None] for a in SCHEDULE.posterior(t, s))
        exact_var = var + c_x**2 * S**2 * sigma**2 / (alpha**2 * S**2 + sigma**2)
        v = (tf.math.log(exact_var) - tf.math.log(var)) / (tf.math.log(beta) - tf.math.log(var))
        return tf.concat([eps, v * tf.ones_like(z)], axis=-1)

    learned = EpsDenoiser(network, SCHEDULE, learned_variance=True)
    noise = tf.random.stateless_normal((40_000, 1), (7, 8), dtype=tf.float64)
    std = {
        kind: sample_ancestral(learned, noise, SCHEDULE, num_steps, variance=kind, seed=4).numpy().std()
        for kind in ("posterior", "beta", "learned")
    }
    abar_1 = SCHEDULE.alphas_cumprod[T // num_steps]
    expected = np.sqrt(S**2 - S**2 * (1 - abar_1) / (abar_1 * S**2 + 1 - abar_1))
    assert std["posterior"] < 0.97 * expected and std["beta"] > 1.03 * expected
    assert std["learned"] == pytest.approx(expected, rel=0.01)


def test_learned_variance_endpoints_equal_the_fixed_choices():
    x0_eps = exact(SCHEDULE)

    def network(weight):
        def net(z, t):
            return tf.concat([x0_eps(z, t)[1], tf.fill(tf.shape(z), tf.constant(weight, z.dtype))], axis=-1)

        return EpsDenoiser(net, SCHEDULE, learned_variance=True)

    noise = tf.random.stateless_normal((500, 1), (5, 6), dtype=tf.float64)
    for weight, variance in ((0.0, "posterior"), (1.0, "beta")):
        fixed = sample_ancestral(network(weight), noise, SCHEDULE, 50, variance=variance, seed=9).numpy()
        learned = sample_ancestral(network(weight), noise, SCHEDULE, 50, variance="learned", seed=9).numpy()
        np.testing.assert_allclose(learned, fixed, rtol=1e-9, atol=1e-9)
    a = sample_ancestral(network(0.0), noise, SCHEDULE, 50, variance="posterior", seed=9).numpy()
    b = sample_ancestral(network(1.0), noise, SCHEDULE, 50, variance="beta", seed=9).numpy()
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="variance_weight"):
        sample_ancestral(lambda z, t: z, noise, SCHEDULE, 5, variance="learned")


def test_gaussian_kl_closed_form():
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=50), rng.normal(size=50)
    v1, v2 = rng.uniform(0.1, 3, 50), rng.uniform(0.1, 3, 50)
    expected = np.log(np.sqrt(v2 / v1)) + (v1 + (m1 - m2) ** 2) / (2 * v2) - 0.5
    np.testing.assert_allclose(gaussian_kl(m1, np.log(v1), m2, np.log(v2)).numpy(), expected, rtol=1e-10)
    assert np.all(gaussian_kl(m1, np.log(v1), m1, np.log(v1)).numpy() == 0.0)
    # Monte Carlo check of one case: E_q[log q - log p]
    x = stats.norm(0.3, 0.5).rvs(size=400_000, random_state=2)
    mc = np.mean(stats.norm(0.3, 0.5).logpdf(x) - stats.norm(-0.2, 0.8).logpdf(x))
    assert float(gaussian_kl(0.3, np.log(0.25), -0.2, np.log(0.64))) == pytest.approx(mc, abs=0.01)


def test_discretized_decoder_is_a_normalised_distribution_over_256_bins():
    centres = np.linspace(-1, 1, 256)
    for mean, std in ((0.1, 0.05), (-0.98, 0.2), (0.5, 1e-3)):
        logp = discretized_gaussian_log_likelihood(centres, mean, np.log(std**2) * np.ones(256)).numpy()
        assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-6)
        inner = 100
        half = 1 / 255
        dist = stats.norm(mean, std)
        expected = dist.cdf(centres[inner] + half) - dist.cdf(centres[inner] - half)
        floor = 1e-12  # probabilities are floored before the log
        assert np.exp(logp[inner]) == pytest.approx(max(expected, floor), rel=1e-6)
        assert np.exp(logp[0]) == pytest.approx(max(dist.cdf(-1 + half), floor), rel=1e-6)
        assert np.exp(logp[-1]) == pytest.approx(max(dist.sf(1 - half), floor), rel=1e-6)


def test_vlb_terms_vanish_for_the_true_posterior_and_decoder_matches_numpy():
    rng = np.random.default_rng(4)
    x = tf.constant(np.round((rng.uniform(-1, 1, (6, 8)) + 1) * 127.5) / 127.5 - 1)
    noise = tf.constant(rng.normal(size=(6, 8)))
    t = tf.constant([1.0, 2.0, 10.0, 300.0, 999.0, 1000.0], tf.float64)
    z_t = diffuse(x, t, noise, SCHEDULE)
    # x0_hat = x and v = 0 (beta tilde): the model posterior is the true one, KL = 0 for t > 1
    exact_pred = Prediction(x, noise, tf.zeros_like(x))
    terms = vlb_terms(exact_pred, x, z_t, t, SCHEDULE).numpy()
    np.testing.assert_allclose(terms[1:], 0.0, atol=1e-9)
    # t = 1: decoder NLL with mean = coef1 x + coef2 z_1 = x and the clipped variance, in bits per dim
    std = np.sqrt(np.exp(SCHEDULE.posterior_log_variance_clipped[1]))
    half = 1 / 255
    xs = x.numpy()[0]
    p = stats.norm.cdf((xs + half - xs) / std) - stats.norm.cdf((xs - half - xs) / std)
    p = np.where(
        xs < -1 + half, stats.norm.cdf(half / std), np.where(xs > 1 - half, stats.norm.sf(-half / std), p)
    )
    assert terms[0] == pytest.approx(-np.mean(np.log(p)) / np.log(2), rel=1e-6)
    # a mean shifted by coef1 * 0.1 costs KL = (coef1 0.1)^2 / (2 beta_tilde) nats per element
    wrong = vlb_terms(Prediction(x + 0.1, noise, tf.zeros_like(x)), x, z_t, t, SCHEDULE).numpy()
    index = t.numpy().astype(int)[1:]
    coef1, log_var = SCHEDULE.posterior_mean_coef1[index], SCHEDULE.posterior_log_variance_clipped[index]
    np.testing.assert_allclose(wrong[1:], (0.1 * coef1) ** 2 / (2 * np.exp(log_var)) / np.log(2), rtol=1e-6)


def test_hybrid_loss_values_and_stop_gradient_on_the_mean():
    rng = np.random.default_rng(5)
    x = tf.constant(rng.uniform(-1, 1, (4, 3)), tf.float32)
    noise = tf.constant(rng.normal(size=(4, 3)), tf.float32)
    t = tf.constant([3.0, 50.0, 400.0, 900.0])
    z_t = diffuse(x, t, noise, SCHEDULE)
    eps_var = tf.Variable(noise + 0.05)
    weight = tf.Variable(tf.fill([4, 3], 0.3))
    with tf.GradientTape(persistent=True) as tape:
        alpha, sigma = (a[:, None] for a in SCHEDULE.alpha_sigma(t))
        pred = Prediction((z_t - sigma * eps_var) / alpha, eps_var, weight)
        loss, l_simple, l_vlb = hybrid_loss(pred, x, z_t, t, noise, SCHEDULE, vlb_weight=1e-3)
    assert float(l_simple) == pytest.approx(0.05**2, rel=1e-4)
    assert float(loss) == pytest.approx(float(l_simple) + 1e-3 * float(l_vlb), rel=1e-6)
    expected_vlb = 1000 * np.mean(vlb_terms(pred, x, z_t, t, SCHEDULE).numpy())
    assert float(l_vlb) == pytest.approx(expected_vlb, rel=1e-5)
    # the vlb trains the variance only: no gradient reaches eps through it
    grad_eps = tape.gradient(l_vlb, eps_var)
    assert grad_eps is None or np.all(grad_eps.numpy() == 0)
    assert np.any(tape.gradient(l_vlb, weight).numpy() != 0)
    np.testing.assert_allclose(tape.gradient(loss, eps_var).numpy(), tape.gradient(l_simple, eps_var).numpy())
