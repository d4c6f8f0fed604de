"""Muon decay and q qbar g samplers against analytic marginals; the analytic laws against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from gsgm.data.phase_space_analytic import (
    dalitz_law,
    min_invariant,
    uniform_energy_density,
    y_density_qqg,
    y_density_uniform3,
)
from gsgm.data.phase_space_processes import event_invariants, generate_events, sample_muon_decay, sample_qqg


@pytest.fixture(scope="module")
def muon():
    return sample_muon_decay(40_000, seed=11)


@pytest.fixture(scope="module")
def qqg():
    return sample_qqg(40_000, seed=12, y_min=0.01)


def _valid(p):
    np.testing.assert_allclose(p.sum(axis=1), np.tile([1.0, 0, 0, 0], (len(p), 1)), atol=1e-12)
    s = event_invariants(p)
    assert np.abs(s[:, range(3), range(3)]).max() < 1e-12


def test_muon_decay_energies_follow_michel_spectra(muon):
    _valid(muon)
    x = 2 * muon[..., 0]
    # electron and nu_mu: p(x) = 2 x^2 (3 - 2x); nu_e-bar: p(x) = 12 x^2 (1 - x)
    for i in (0, 2):
        assert stats.kstest(x[:, i], lambda v: 2 * v**3 - v**4).pvalue > 1e-3
    assert stats.kstest(x[:, 1], lambda v: 4 * v**3 - 3 * v**4).pvalue > 1e-3
    # against the uniform phase-space marginal (8E) the same test fails clearly
    assert stats.kstest(x[:, 1], lambda v: v**2).pvalue < 1e-10
    # isotropic: cos(theta) of the electron uniform
    cos = muon[:, 0, 3] / muon[:, 0, 0]
    assert stats.kstest(cos, stats.uniform(-1, 2).cdf).pvalue > 1e-3


def test_numerical_dalitz_law_matches_closed_forms():
    law = dalitz_law("muon_decay")
    e = np.array([[0.3, 0.4, 0.3], [0.45, 0.1, 0.45], [0.2, 0.25, 0.55]])
    np.testing.assert_allclose(law.density(e), [96 * 0.4 * 0.2, 96 * 0.1 * 0.8, 0.0], rtol=1e-6)
    grid = np.linspace(0.01, 0.49, 7)
    np.testing.assert_allclose(law.marginal(grid, 0), 2 * (2 * grid) ** 2 * (3 - 4 * grid) * 2, rtol=1e-6)
    np.testing.assert_allclose(law.marginal(grid, 1), 12 * (2 * grid) ** 2 * (1 - 2 * grid) * 2, rtol=1e-6)
    # Rosenblatt (eq. 16) in closed form: u1 = 2 x^3 - x^4,
    # u2 = int_{1-x}^{u} v (1 - v) dv / (x^2 (3 - 2x) / 6)
    x1, v = 2 * e[:2, 0], 2 * e[:2, 1]
    g = lambda w: w**2 / 2 - w**3 / 3  # noqa: E731
    u2 = (g(v) - g(1 - x1)) / (x1**2 * (3 - 2 * x1) / 6)
    np.testing.assert_allclose(law.rosenblatt(e[:2]), np.stack([2 * x1**3 - x1**4, u2], -1), atol=1e-5)
    uni = dalitz_law("uniform")
    np.testing.assert_allclose(uni.marginal(grid, 2), uniform_energy_density(grid, 3), rtol=1e-6)


def test_rosenblatt_of_muon_events_is_uniform_on_the_square(muon):
    u = dalitz_law("muon_decay").rosenblatt(muon[..., 0])
    counts, _, _ = np.histogram2d(u[:, 0], u[:, 1], bins=8, range=[[0, 1], [0, 1]])
    assert stats.chisquare(counts.ravel()).pvalue > 1e-3
    # uniform phase-space events are not uniform under the muon law's transform
    from gsgm.data.rambo import rambo

    u_flat = dalitz_law("muon_decay").rosenblatt(rambo(np.random.default_rng(0), 40_000, 3)[..., 0])
    counts, _, _ = np.histogram2d(u_flat[:, 0], u_flat[:, 1], bins=8, range=[[0, 1], [0, 1]])
    assert stats.chisquare(counts.ravel()).pvalue < 1e-10


def test_qqg_respects_the_cut_and_follows_eq_19(qqg):
    _valid(qqg)
    y = min_invariant(qqg)
    assert y.min() > 0.01 and y.max() <= 1 / 3 + 1e-12
    grid = np.linspace(0.01 + 1e-12, 1 / 3 - 1e-12, 4001)
    cdf = integrate.cumulative_trapezoid(y_density_qqg(grid, 0.01), grid, initial=0.0)
    assert abs(cdf[-1] - 1) < 1e-3
    assert stats.kstest(y, lambda v: np.interp(v, grid, cdf / cdf[-1])).pvalue > 1e-3
    # eq. 20 (uniform phase space) is a different law
    assert stats.kstest(y, lambda v: np.clip(6 * v - 9 * v**2, 0, 1)).pvalue < 1e-10
    assert y_density_uniform3(np.array([0.0, 1 / 3])) == pytest.approx([6.0, 0.0])


def test_qqg_energy_marginals_and_symmetry(qqg):
    law = dalitz_law("qqg", 0.01)
    grid = np.linspace(law.e_min, law.e_max, 4001)
    for i in range(3):
        cdf = integrate.cumulative_trapezoid(law.marginal(grid, i), grid, initial=0.0)
        assert stats.kstest(qqg[:, i, 0], lambda v, c=cdf: np.interp(v, grid, c / c[-1])).pvalue > 1e-3
    # the events are permuted: no particle slot is special
    means = qqg[..., 0].mean(axis=0)
    assert np.ptp(means) < 0.005


def test_same_seed_same_events_and_bad_input():
    np.testing.assert_array_equal(generate_events("qqg", 50, 3, 0.05), generate_events("qqg", 50, 3, 0.05))
    assert not np.array_equal(generate_events("muon_decay", 50, 3), generate_events("muon_decay", 50, 4))
    with pytest.raises(ValueError, match="y_min must lie in"):
        sample_qqg(10, 0, y_min=0.4)
    with pytest.raises(ValueError, match="unknown phase-space process"):
        generate_events("aps", 10, 0)
