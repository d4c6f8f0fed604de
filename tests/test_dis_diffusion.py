"""The learned-variance DDPM pieces of the DIS family: the hybrid loss against a Gaussian KL computed by
hand, importance sampling of t (Nichol & Dhariwal 2021, sec. 3.3) and the x0-clipping denoiser."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gsgm.diffusion import DiscreteCosineSchedule, EpsDenoiser, diffuse
from gsgm.diffusion.clipping import ClippedDenoiser
from gsgm.diffusion.denoisers import Prediction
from gsgm.diffusion.importance import LossSecondMomentSampler
from gsgm.diffusion.vlb import hybrid_loss, hybrid_loss_terms, vlb_terms

T = 500
SCHEDULE = DiscreteCosineSchedule(num_steps=T)


def cosine_alpha_bar(t: np.ndarray) -> np.ndarray:
    """abar(t) of improved DDPM written out again (s = 0.008, betas clipped at 0.999)."""
    f = lambda u: np.cos((u / T + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    betas = np.minimum(1 - f(np.arange(1, T + 1)) / f(np.arange(T)), 0.999)
    return np.concatenate([[1.0], np.cumprod(1 - betas)])[t]


def test_learned_variance_vlb_term_equals_a_gaussian_kl_by_hand():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 4, 4, 3))
    noise = rng.normal(size=x.shape)
    x0_hat = x + rng.normal(scale=0.05, size=x.shape)
    v = rng.uniform(-0.2, 1.2, size=x.shape)  # the weight may leave [0, 1]: it is an interpolation
    t = np.array([2, 137, 480])
    z = diffuse(tf.constant(x), tf.constant(t, tf.float64), tf.constant(noise), SCHEDULE).numpy()
    terms = vlb_terms(Prediction(tf.constant(x0_hat), None, tf.constant(v)), x, z, t.astype(float), SCHEDULE)
    for i, step in enumerate(t):
        ab, ab_prev = cosine_alpha_bar(step), cosine_alpha_bar(step - 1)
        beta = 1 - ab / ab_prev
        beta_tilde = beta * (1 - ab_prev) / (1 - ab)
        # q(x_(t-1) | x_t, x_0) (Ho et al. eq. 7) and p with the learned variance (Nichol & Dhariwal eq. 15)
        c0, ct = np.sqrt(ab_prev) * beta / (1 - ab), np.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab)
        mu_q, mu_p = c0 * x[i] + ct * z[i], c0 * x0_hat[i] + ct * z[i]
        var_p = np.exp(v[i] * np.log(beta) + (1 - v[i]) * np.log(beta_tilde))
        kl = 0.5 * (np.log(var_p / beta_tilde) + beta_tilde / var_p + (mu_q - mu_p) ** 2 / var_p - 1)
        assert float(terms[i]) == pytest.approx(kl.mean() / np.log(2), rel=1e-6), step
    # the per-example hybrid terms: the same vlb terms and the per-example noise MSE
    eps_hat = noise + 0.1
    pred = Prediction(tf.constant(x0_hat), tf.constant(eps_hat), tf.constant(v))
    l_simple, l_vlb = hybrid_loss_terms(pred, x, z, t.astype(float), noise, SCHEDULE)
    np.testing.assert_allclose(l_simple.numpy(), 0.01, rtol=1e-9)
    np.testing.assert_allclose(l_vlb.numpy(), terms.numpy(), rtol=1e-12)
    total, _, _ = hybrid_loss(pred, x, z, t.astype(float), noise, SCHEDULE, vlb_weight=1e-3)
    assert float(total) == pytest.approx(0.01 + 1e-3 * T * float(np.mean(terms)), rel=1e-9)


def test_importance_sampler_is_uniform_until_every_step_has_its_history():
    sampler = LossSecondMomentSampler(num_steps=4, history=2, uniform=0.0)
    losses, counts = sampler.initial_state()
    np.testing.assert_allclose(sampler.probabilities(losses, counts).numpy(), 0.25)
    # record 1, 2 at t=1 (duplicates of one t take consecutive slots), 3 at t=2, 4 at t=3: not warm
    losses, counts = sampler.update(
        losses, counts, tf.constant([1.0, 1.0, 2.0, 3.0]), tf.constant([1.0, 2, 3, 4])
    )
    np.testing.assert_array_equal(counts.numpy(), [2, 1, 1, 0])
    np.testing.assert_array_equal(losses.numpy()[0], [1, 2])
    np.testing.assert_allclose(sampler.probabilities(losses, counts).numpy(), 0.25)
    losses, counts = sampler.update(losses, counts, tf.constant([2.0, 3, 4, 4]), tf.constant([3.0, 4, 1, 1]))
    # now warm: p_t ~ sqrt(mean L^2) = (sqrt(2.5), 3, 4, 1)
    moments = np.array([np.sqrt(2.5), 3.0, 4.0, 1.0])
    np.testing.assert_allclose(
        sampler.probabilities(losses, counts).numpy(), moments / moments.sum(), rtol=1e-6
    )
    # the ring buffer: a third value of t=1 replaces the oldest (slot 0)
    losses, counts = sampler.update(losses, counts, tf.constant([1.0]), tf.constant([5.0]))
    np.testing.assert_array_equal(losses.numpy()[0], [5, 2])
    # the uniform mixture keeps every p_t > 0
    mixed = LossSecondMomentSampler(num_steps=4, history=2, uniform=0.1)
    zero = tf.constant(np.array([[0, 0], [3, 3], [3, 3], [3, 3]], np.float32))
    assert mixed.probabilities(zero, counts).numpy()[0] == pytest.approx(0.025)


def test_importance_weights_give_an_unbiased_lower_variance_estimate():
    sampler = LossSecondMomentSampler(num_steps=50, history=3, uniform=0.001)
    true = np.geomspace(100.0, 0.01, 50)  # vlb terms fall steeply with t (as L_0 >> L_T)
    losses, counts = sampler.initial_state()
    t = np.repeat(np.arange(1, 51), 3).astype(np.float32)
    losses, counts = sampler.update(losses, counts, t, np.repeat(true, 3))
    p = sampler.probabilities(losses, counts)
    steps, weights = sampler.sample(p, 200_000, tf.constant([3, 4]))
    estimate = weights.numpy() * true[steps.numpy().astype(int) - 1]
    assert estimate.mean() == pytest.approx(true.mean(), rel=0.01)
    uniform = true[np.random.default_rng(1).integers(0, 50, 200_000)]
    assert estimate.std() < 0.1 * uniform.std()
    again, _ = sampler.sample(p, 200_000, tf.constant([3, 4]))
    np.testing.assert_array_equal(again.numpy(), steps.numpy())  # stateless in the seed
    assert steps.numpy().min() >= 1 and steps.numpy().max() <= 50


def test_clipped_denoiser_keeps_x0_in_range_and_eps_consistent():
    net = lambda z, t: tf.concat([3.0 * z, tf.zeros_like(z)], axis=-1)  # noqa: E731
    base = EpsDenoiser(net, SCHEDULE, learned_variance=True)
    clipped = ClippedDenoiser(base, SCHEDULE)
    z = tf.constant(np.random.default_rng(2).normal(size=(4, 2, 2, 3)), tf.float32)
    t = tf.constant([499.0, 300.0, 50.0, 2.0])
    pred = clipped.predict(z, t)
    assert pred.x0.numpy().min() >= -1 and pred.x0.numpy().max() <= 1
    assert np.abs(base.predict(z, t).x0.numpy()).max() > 10  # what clipping prevents
    alpha, sigma = (a.numpy()[:, None, None, None] for a in SCHEDULE.alpha_sigma(t))
    np.testing.assert_allclose(
        alpha * pred.x0.numpy() + sigma * pred.eps.numpy(), z.numpy(), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(pred.variance_weight.numpy(), 0.0)
