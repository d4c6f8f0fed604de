"""RAMBO: exact conservation, uniformity (flat Dalitz plot, appendix B marginals), q <-> p maps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gsgm.data.phase_space_analytic import min_invariant
from gsgm.data.rambo import (
    EMBEDDINGS,
    conformal_parameters,
    embed,
    inverse_rambo,
    minkowski_dot,
    rambo,
    rambo_map,
    rambo_map_tf,
    sample_q,
)


@pytest.mark.parametrize("n_particles", [3, 5, 10])
def test_momentum_is_conserved_and_particles_are_massless(n_particles):
    p = rambo(np.random.default_rng(n_particles), 20_000, n_particles)
    assert p.dtype == np.float64 and p.shape == (20_000, n_particles, 4)
    np.testing.assert_allclose(p.sum(axis=1), np.tile([1.0, 0, 0, 0], (20_000, 1)), rtol=0, atol=1e-12)
    assert np.abs(minkowski_dot(p, p)).max() < 1e-12
    assert (p[..., 0] > 0).all()


def _triangle_to_square(energies: np.ndarray) -> np.ndarray:
    """Uniform on the Dalitz triangle <-> uniform on [0, 1]^2 (independent of gsgm's Dalitz code):
    a = 1/2 - E1, b = 1/2 - E2 is uniform on the standard triangle a + b <= 1/2, where (2(a+b))^2 and
    a / (a + b) are independent and uniform."""
    a, b = 0.5 - energies[:, 0], 0.5 - energies[:, 1]
    return np.stack([(2 * (a + b)) ** 2, a / (a + b)], -1)


def _chi2_pvalue(u: np.ndarray, bins: int = 10) -> float:
    counts, _, _ = np.histogram2d(u[:, 0], u[:, 1], bins=bins, range=[[0, 1], [0, 1]])
    return stats.chisquare(counts.ravel()).pvalue


def test_the_dalitz_plot_of_three_particles_is_flat():
    p = rambo(np.random.default_rng(1), 100_000, 3)
    assert _chi2_pvalue(_triangle_to_square(p[..., 0])) > 1e-3
    # negative control: with exponential instead of Gamma(2) q-energies the plot is not flat
    rng = np.random.default_rng(1)
    q = sample_q(rng, 100_000, 3)
    q = q / q[..., :1] * rng.exponential(size=q.shape[:2])[..., None]
    assert _chi2_pvalue(_triangle_to_square(rambo_map(q)[0][..., 0])) < 1e-6


@pytest.mark.parametrize("n_particles", [3, 4, 10])
def test_energy_marginals_follow_appendix_b(n_particles):
    # x = 2E ~ Beta(2, N - 2): p(E) ∝ E (1 - 2E)^(N - 3)
    p = rambo(np.random.default_rng(7), 50_000, n_particles)
    for i in (0, n_particles - 1):
        assert stats.kstest(2 * p[:, i, 0], stats.beta(2, n_particles - 2).cdf).pvalue > 1e-3


def test_min_invariant_of_uniform_three_body_phase_space_is_eq_20():
    y = min_invariant(rambo(np.random.default_rng(3), 50_000, 3))
    assert y.max() <= 1 / 3 + 1e-12
    assert stats.kstest(y, lambda v: np.clip(6 * v - 9 * v**2, 0, 1)).pvalue > 1e-3


def test_q_to_p_to_q_round_trip():
    q = sample_q(np.random.default_rng(4), 1000, 4)
    p, b, x = rambo_map(q)
    np.testing.assert_allclose(inverse_rambo(p, b, x), q, rtol=0, atol=1e-12 * np.abs(q).max())
    np.testing.assert_allclose(conformal_parameters(inverse_rambo(p, b, x))[0], b, atol=1e-12)


@pytest.mark.parametrize("kind", EMBEDDINGS)
def test_every_embedding_maps_back_to_the_same_events(kind):
    p = rambo(np.random.default_rng(5), 500, 3)
    q3, source = embed(p, kind, np.random.default_rng(6), copies=3 if kind == "copies" else 1)
    assert len(q3) == (1500 if kind == "copies" else 500)
    q = np.concatenate([np.linalg.norm(q3, axis=-1, keepdims=True), q3], -1)
    np.testing.assert_allclose(rambo_map(q)[0], p[source], atol=1e-12)
    if kind == "single":  # one (b, x) for all: the total q-momentum is the same for every event
        totals = q3.sum(axis=1)
        np.testing.assert_allclose(totals, np.broadcast_to(totals[0], totals.shape), atol=1e-10)
    if kind == "identity":
        np.testing.assert_array_equal(q3, p[..., 1:])


def test_embedding_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown q-space embedding"):
        embed(rambo(np.random.default_rng(0), 3, 3), "boost", np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"shape \[n, N, 4\]"):
        embed(np.zeros((3, 3)), "single", np.random.default_rng(0))


def test_tensorflow_map_equals_numpy():
    q = sample_q(np.random.default_rng(8), 200, 5)
    p_tf = rambo_map_tf(q[..., 1:]).numpy()
    np.testing.assert_allclose(p_tf, rambo_map(q)[0], atol=1e-13)
    p32 = rambo_map_tf(q[..., 1:].astype(np.float32)).numpy()
    assert np.abs(p32.sum(axis=1) - [1, 0, 0, 0]).max() < 1e-5
