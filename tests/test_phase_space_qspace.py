"""q-space Langevin process (exact score, forward convergence, reverse process) and flow matching."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from gsgm.data.phase_space_processes import sample_muon_decay
from gsgm.data.rambo import embed, massless, rambo_map
from gsgm.diffusion.flow_matching import GaussianPrior, interpolate, sample_flow
from gsgm.diffusion.qspace import (
    LangevinSchedule,
    forward_step,
    forward_to,
    rambo_score,
    reference_score,
    reverse_sample,
    sample_rambo_q,
)


def _log_f(q: np.ndarray) -> float:
    """log of eq. 8, prod_i exp(-|q_i|) / |q_i|."""
    r = np.linalg.norm(q, axis=-1)
    return float(np.sum(-r - np.log(r)))


def test_drift_is_the_exact_score_of_eq_8():
    q = np.random.default_rng(0).normal(size=(3, 3)) * np.array([[0.1], [1.0], [3.0]])
    score = rambo_score(tf.constant(q[None], tf.float64)).numpy()[0]
    h = 1e-6
    numeric = np.zeros_like(q)
    for i in range(3):
        for k in range(3):
            d = np.zeros_like(q)
            d[i, k] = h
            numeric[i, k] = (_log_f(q + d) - _log_f(q - d)) / (2 * h)
    np.testing.assert_allclose(score, numeric, rtol=1e-6, atol=1e-6)


def test_prior_sample_maps_to_uniform_phase_space():
    q = sample_rambo_q([20_000, 3], tf.constant([1, 2], tf.int64), tf.float64).numpy()
    assert stats.kstest(np.linalg.norm(q, axis=-1).ravel(), stats.gamma(2).cdf).pvalue > 1e-3
    p = rambo_map(massless(q))[0]
    assert stats.kstest(2 * p[:, 0, 0], stats.beta(2, 1).cdf).pvalue > 1e-3


def test_schedule_and_gaussian_warm_up():
    s = LangevinSchedule.linear(10, 0.002, 0.01, gaussian_steps=3, gaussian_step_size=0.05)
    np.testing.assert_allclose(s.step_sizes, [0.05] * 3 + list(np.linspace(0.002, 0.01, 7)))
    q = tf.constant(np.random.default_rng(1).normal(size=(2, 3, 3)), tf.float32)
    drift = reference_score(q, tf.constant([2, 3]), s).numpy()
    np.testing.assert_allclose(drift[0], -q.numpy()[0])
    np.testing.assert_allclose(drift[1], rambo_score(q).numpy()[1], rtol=1e-6)
    with pytest.raises(ValueError, match="must exceed gaussian_steps"):
        LangevinSchedule.linear(5, gaussian_steps=5)


def test_forward_process_approaches_uniform_phase_space_from_muon_decay():
    events = sample_muon_decay(5_000, seed=2)
    q0, _ = embed(events, "single", np.random.default_rng(3))
    s = LangevinSchedule.linear(300, 0.02, 0.06)
    run = tf.function(lambda q: forward_to(q, tf.fill([len(q0)], 300), tf.constant([4, 5], tf.int64), s))
    p = rambo_map(massless(run(tf.constant(q0, tf.float64)).numpy()))[0]
    # uniform phase space: x = 2E ~ Beta(2, 1) (appendix B). The nu_e-bar starts far from it
    # (12 x^2 (1 - x)); after a diffusion time of 12 every energy is within a small KS distance.
    # (Not exactly: the paper, too, finds its 500-step forward process not fully converged.)
    ks = lambda x: stats.kstest(x, stats.beta(2, 1).cdf).statistic  # noqa: E731
    assert ks(2 * events[:, 1, 0]) > 0.15
    assert max(ks(2 * p[:, i, 0]) for i in range(3)) < 0.04


def test_forward_to_runs_each_row_its_own_number_of_steps():
    s = LangevinSchedule.linear(20)
    q0 = tf.constant(np.random.default_rng(6).normal(size=(3, 2, 3)), tf.float32)
    seed = tf.constant([7, 8], tf.int64)
    q = forward_to(q0, tf.constant([0, 5, 20]), seed, s).numpy()
    np.testing.assert_array_equal(q[0], q0.numpy()[0])
    # a row's path does not depend on how far the other rows go
    other = forward_to(q0, tf.constant([3, 5, 1]), seed, s).numpy()
    np.testing.assert_array_equal(q[1], other[1])
    assert not np.allclose(q[1], q0.numpy()[1])
    step = forward_step(q0, tf.constant([0, 0, 0]), tf.zeros_like(q0), s).numpy()
    np.testing.assert_allclose(step, q0.numpy() + 0.002 * rambo_score(q0).numpy(), rtol=1e-6)


def test_reverse_process_with_the_exact_noise_keeps_the_stationary_law():
    # If the data law is eq. 8 itself, the exact noise prediction is -sqrt(2 gamma) s(q) at every step;
    # eq. 11 then has eq. 8 as its stationary law, and samples stay there.
    s = LangevinSchedule.linear(100, 0.002, 0.01)  # appendix A's step sizes: small discretisation bias

    def exact_eps(q, time):
        index = tf.cast(tf.round(time * s.num_steps), tf.int32) - 1
        return -tf.sqrt(2.0 * s.gamma(index, q.dtype))[:, None, None] * rambo_score(q)

    q_end = sample_rambo_q([10_000, 3], tf.constant([9, 9], tf.int64), tf.float64)
    q = reverse_sample(exact_eps, q_end, s, seed=3, final_noise=True).numpy()
    assert stats.kstest(np.linalg.norm(q, axis=-1).ravel(), stats.gamma(2).cdf).pvalue > 1e-3
    # a wrong sign of the learned term drives points outwards: a clearly different law
    q_bad = reverse_sample(lambda q, t: -exact_eps(q, t), q_end, s, seed=3).numpy()
    assert stats.kstest(np.linalg.norm(q_bad, axis=-1).ravel(), stats.gamma(2).cdf).pvalue < 1e-10


def test_flow_matching_pieces():
    x0, x1 = tf.zeros([4, 3, 3]), tf.ones([4, 3, 3])
    xt, v = interpolate(x0, x1, tf.constant([0.0, 0.25, 0.5, 1.0]))
    np.testing.assert_allclose(xt.numpy()[:, 0, 0], [0, 0.25, 0.5, 1])
    np.testing.assert_allclose(v.numpy(), 1.0)
    # the exact velocity of a straight path integrates to its end point, Euler and Heun alike
    shift = tf.constant(np.arange(9.0).reshape(1, 3, 3), tf.float32)
    for method in ("euler", "heun"):
        out = sample_flow(lambda x, t: tf.broadcast_to(shift, tf.shape(x)), x0, 7, method)
        np.testing.assert_allclose(out.numpy(), np.broadcast_to(shift.numpy(), (4, 3, 3)), rtol=1e-5)
    data = np.random.default_rng(2).multivariate_normal([1, -2], [[2.0, 0.6], [0.6, 0.5]], size=20_000)
    prior = GaussianPrior.fit(data)
    draw = prior.sample([50_000, 2], tf.constant([1, 1])).numpy()
    np.testing.assert_allclose(np.cov(draw, rowvar=False), [[2.0, 0.6], [0.6, 0.5]], atol=0.06)
    back = GaussianPrior.from_dict(prior.to_dict())
    np.testing.assert_array_equal(back.cholesky, prior.cholesky)


def test_implicit_score_matching_is_smallest_at_the_true_score():
    from gsgm.diffusion.score_matching import implicit_score_matching_terms

    x = tf.constant(np.random.default_rng(4).normal(size=(20_000, 3, 3)) * 2.0, tf.float32)
    # data N(0, sigma^2 I), D = 9, sigma^2 = 4; for s = -x / (sigma^2 a) the objective is
    # (D / sigma^2)(1 / (2 a^2) - 1 / a): -9/8 at the true score (a = 1), 0 at a = 1/2, -0.84 at a = 2
    true = tf.reduce_mean(implicit_score_matching_terms(lambda q: -q / 4.0, x)).numpy()
    assert true == pytest.approx(-9 / 8, rel=0.03)
    for scale in (0.5, 2.0):
        worse = tf.reduce_mean(implicit_score_matching_terms(lambda q, a=scale: -q / (4.0 * a), x)).numpy()
        assert worse > true + 0.1
