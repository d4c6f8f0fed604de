"""Consistency models: boundary condition, Karras schedule, CT schedule, distances, loss, samplers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gsgm.diffusion import ConsistencyDenoiser, KarrasSchedule, ScoreDenoiser
from gsgm.diffusion.consistency import (
    consistency_distance,
    consistency_loss,
    ct_num_points,
    ct_target_decay,
    sample_consistency,
)
from gsgm.diffusion.denoisers import consistency_scalings
from gsgm.diffusion.samplers import probability_flow_step

EPS, T, SIGMA_DATA = 0.0014, 1.36, 0.024
KARRAS = KarrasSchedule(EPS, T, 7.0)
MU, STD = 0.3, 0.5


def wild_network(x_in, log_sigma, *, label=None):
    """A stand-in network with large, input-dependent outputs."""
    return 1e3 * tf.sin(7.0 * x_in) + tf.reshape(log_sigma, (-1, 1, 1, 1)) * 50.0


def test_boundary_condition_is_exact():
    f = ConsistencyDenoiser(wild_network, EPS, SIGMA_DATA)
    x = tf.random.stateless_normal((4, 25, 25, 1), (1, 2)) * 0.3
    out = f(x, tf.fill((4,), tf.constant(EPS, tf.float32)))
    np.testing.assert_array_equal(out.numpy(), x.numpy())  # bit for bit, not approximately
    c_skip, c_out, _ = consistency_scalings(tf.constant([EPS, T], tf.float32), EPS, SIGMA_DATA)
    assert c_skip.numpy()[0] == 1.0 and c_out.numpy()[0] == 0.0
    # Away from eps the network matters.
    assert np.abs(f(x, tf.fill((4,), 0.01)).numpy() - x.numpy()).max() > 1.0


def test_scalings_values():
    sigma = tf.constant([0.01, 0.5, T], tf.float64)
    c_skip, c_out, c_in = (c.numpy() for c in consistency_scalings(sigma, EPS, SIGMA_DATA))
    s = sigma.numpy()
    np.testing.assert_allclose(c_skip, SIGMA_DATA**2 / ((s - EPS) ** 2 + SIGMA_DATA**2))
    np.testing.assert_allclose(c_out, SIGMA_DATA * (s - EPS) / np.sqrt(SIGMA_DATA**2 + s**2))
    np.testing.assert_allclose(c_in, 1 / np.sqrt(s**2 + SIGMA_DATA**2))
    # c_skip -> 0 and c_out -> sigma_data at large sigma: the network does all the work there.
    assert c_skip[-1] < 1e-3 and c_out[-1] == pytest.approx(SIGMA_DATA, rel=0.01)


def test_karras_discretization():
    grid = KARRAS.discretization(18)
    assert grid[0] == np.float32(EPS) and grid[-1] == np.float32(T) and np.all(np.diff(grid) > 0)
    i = np.arange(18)
    expected = (EPS ** (1 / 7) + i / 17 * (T ** (1 / 7) - EPS ** (1 / 7))) ** 7
    np.testing.assert_allclose(grid, expected, rtol=1e-5)
    # Tensors for index and N (N changes during training).
    assert KARRAS.point(tf.constant([0, 4]), tf.constant(5)).numpy()[1] == np.float32(T)
    alpha, sigma = KARRAS.alpha_sigma(tf.constant([0.1, 1.0]))
    assert alpha.numpy().tolist() == [1.0, 1.0] and sigma.numpy().tolist() == pytest.approx([0.1, 1.0])


def test_ct_schedule():
    total = 1000
    steps = np.arange(0, total + 1, 10)
    n = ct_num_points(steps, total, 2, 150).numpy()
    assert n[0] == 2 and n[-1] == 151 and np.all(np.diff(n) >= 0)
    k = 250
    expected = int(np.ceil(np.sqrt(k / total * (151**2 - 4) + 4) - 1) + 1)
    assert int(ct_num_points(k, total, 2, 150)) == expected
    mu = ct_target_decay(n, 2, 0.9).numpy()
    np.testing.assert_allclose(mu, np.exp(2 * np.log(0.9) / n), rtol=1e-6)
    assert mu[0] == pytest.approx(0.9) and np.all(np.diff(mu) >= 0)  # the target slows down as N grows


def test_distances():
    a, b = tf.constant([[1.0, 2.0], [3.0, 4.0]]), tf.constant([[1.0, 0.0], [3.0, 5.0]])
    assert consistency_distance(a, b, "l2").numpy() == pytest.approx((4 + 1) / 4)
    assert consistency_distance(a, b, "l1").numpy() == pytest.approx((2 + 1) / 4)
    assert consistency_distance(a, a, "l2").numpy() == 0
    with pytest.raises(ValueError):
        consistency_distance(a, b, "lpips")


def test_sampling_levels():
    # a K-step sampler uses every point of the (K + 1)-point grid but eps itself
    assert KARRAS.sampling_times(1)[:-1].tolist() == [np.float32(T)]
    levels = KARRAS.sampling_times(15)[:-1]
    assert levels.shape == (15,) and levels[0] == np.float32(T) and levels[-1] > EPS
    np.testing.assert_allclose(levels, KARRAS.discretization(16)[::-1][:-1])
    assert KARRAS.sampling_times(15)[-1] == np.float32(EPS)


def test_one_step_sampler_is_deterministic_for_fixed_noise():
    f = ConsistencyDenoiser(wild_network, EPS, SIGMA_DATA)
    noise = tf.random.stateless_normal((3, 25, 25, 1), (4, 5)) * T
    a = sample_consistency(f, noise, KARRAS, 1, seed=0).numpy()
    b = sample_consistency(f, noise, KARRAS, 1, seed=99).numpy()  # no re-noising in one step
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, f(noise, tf.fill((3,), np.float32(T))).numpy())
    other = tf.random.stateless_normal((3, 25, 25, 1), (4, 6)) * T
    assert not np.allclose(sample_consistency(f, other, KARRAS, 1).numpy(), a)


def test_multistep_sampler_calls_and_seed():
    calls = []

    def f(x, sigma, **_):
        calls.append(float(sigma[0]))
        return 0.5 * x

    noise = tf.ones((2, 3))
    levels = KARRAS.sampling_times(4)[:-1]
    a = sample_consistency(f, noise, KARRAS, 4, seed=1).numpy()
    assert calls == pytest.approx(levels.tolist())
    b = sample_consistency(f, noise, KARRAS, 4, seed=1).numpy()
    c = sample_consistency(f, noise, KARRAS, 4, seed=2).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def exact_consistency(x, sigma, **_):
    """f* for N(MU, STD^2) data: maps x at sigma along the ODE trajectory to sigma = EPS."""
    sigma = tf.reshape(tf.cast(sigma, x.dtype), (-1, 1))
    return MU + (x - MU) * tf.sqrt((STD**2 + EPS**2) / (STD**2 + sigma**2))


def exact_score(x, sigma, **_):
    sigma = tf.reshape(tf.cast(sigma, x.dtype), (-1, 1))
    return -(x - MU) / (STD**2 + sigma**2)


def test_distillation_pairs_are_consistent_under_the_exact_consistency_function():
    """One Heun step of the exact teacher along the 18-point grid keeps f* (nearly) constant.

    The distillation loss of the exact consistency function is > 1000 times below the CT estimator's.
    """
    grid = KARRAS.discretization(18).astype(np.float64)
    teacher = ScoreDenoiser(exact_score, KARRAS)
    x0 = MU + STD * tf.random.stateless_normal((1000, 1), (1, 1), dtype=tf.float64)
    z = tf.random.stateless_normal((1000, 1), (2, 2), dtype=tf.float64)
    for n in (0, 8, 16):
        lo, hi = tf.fill((1000,), grid[n]), tf.fill((1000,), grid[n + 1])
        x_hi = x0 + grid[n + 1] * z
        x_lo = probability_flow_step(teacher, x_hi, hi, lo, KARRAS, "heun")
        cd = consistency_distance(exact_consistency(x_hi, hi), exact_consistency(x_lo, lo)).numpy()
        # The consistency-training pair (same noise, no teacher) is not consistent: its loss is large.
        ct = consistency_distance(
            exact_consistency(x_hi, hi), exact_consistency(x0 + grid[n] * z, lo)
        ).numpy()
        assert cd < 1e-3 * ct
    # f* itself obeys the boundary condition.
    np.testing.assert_allclose(exact_consistency(x0, tf.fill((1000,), EPS)).numpy(), x0.numpy())


def test_consistency_loss_matches_its_definition_and_vanishes_for_cd_with_the_exact_pair():
    x0 = MU + STD * tf.random.stateless_normal((500, 1), (3, 3), dtype=tf.float64)
    z = tf.random.stateless_normal((500, 1), (4, 4), dtype=tf.float64)
    index = tf.random.stateless_uniform((500,), (5, 5), minval=0, maxval=17, dtype=tf.int32)
    grid = KARRAS.discretization(18).astype(np.float64)
    lo, hi = grid[index.numpy()][:, None], grid[index.numpy() + 1][:, None]

    def f(x, sigma):
        return 0.5 * x + tf.reshape(sigma, (-1, 1))  # a simple non-consistent function

    ct = consistency_loss(f, f, x0, index, 18, z, KARRAS).numpy()
    x_hi, x_lo = x0.numpy() + hi * z.numpy(), x0.numpy() + lo * z.numpy()
    expected = np.mean(((0.5 * x_hi + hi) - (0.5 * x_lo + lo)) ** 2)
    assert ct == pytest.approx(expected, rel=1e-5)
    l1 = consistency_loss(f, f, x0, index, 18, z, KARRAS, distance="l1").numpy()
    assert l1 == pytest.approx(np.mean(np.abs((0.5 * x_hi + hi) - (0.5 * x_lo + lo))), rel=1e-5)
    # CD with the exact teacher and the exact consistency function: nearly zero, far below CT.
    teacher = ScoreDenoiser(exact_score, KARRAS)
    cd = consistency_loss(exact_consistency, exact_consistency, x0, index, 18, z, KARRAS, teacher=teacher)
    ct_exact = consistency_loss(exact_consistency, exact_consistency, x0, index, 18, z, KARRAS)
    assert cd.numpy() < 1e-3 * ct_exact.numpy()
