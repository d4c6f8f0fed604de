"""The antenna (APS, eq. 21) sampler: SARGE's density, the cut, symmetries, conservation, seeds.

Independent checks: RAMBO (uniform phase space) reweighted by the claimed densities, and for N = 3 a
direct numerical integration of A(p) over the Dalitz triangle.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gsgm.data.antenna import (
    _phase_space_volume,
    antenna_acceptance,
    log_aps_weight,
    massless_dot,
    pair_invariants,
    ratio_cut,
    sample_antenna,
    sarge_density,
    sarge_events,
)
from gsgm.data.rambo import minkowski_dot, rambo


def test_ten_particle_events_conserve_four_momentum_and_are_massless():
    p = sample_antenna(2000, seed=3, n_particles=10, xi_max=1e4, batch=40_000)
    assert p.shape == (2000, 10, 4) and p.dtype == np.float64
    np.testing.assert_allclose(p.sum(axis=1), np.tile([1.0, 0, 0, 0], (2000, 1)), rtol=0, atol=1e-12)
    assert (np.abs(minkowski_dot(p, p)) / p[..., 0] ** 2).max() < 1e-12 and (p[..., 0] > 0).all()
    assert ratio_cut(p, 1e4).all()
    # the singular corners are populated: the smallest invariant reaches far below uniform phase space's
    assert np.median(pair_invariants(p).min(axis=1)) < 0.3 * np.median(
        pair_invariants(rambo(np.random.default_rng(0), 2000, 10)).min(axis=1)
    )


def test_same_seed_same_events():
    a = sample_antenna(50, seed=7, n_particles=6, xi_max=100.0, batch=5000)
    np.testing.assert_array_equal(a, sample_antenna(50, seed=7, n_particles=6, xi_max=100.0, batch=5000))
    assert not np.array_equal(a, sample_antenna(50, seed=8, n_particles=6, xi_max=100.0, batch=5000))


def test_massless_dot_equals_the_minkowski_product_without_cancellation():
    p = rambo(np.random.default_rng(2), 1000, 4)
    np.testing.assert_allclose(massless_dot(p[:, 0], p[:, 1]), minkowski_dot(p[:, 0], p[:, 1]), rtol=1e-9)
    # nearly collinear pair: the naive product loses every digit, the stable one keeps them
    angle = 1e-9
    a = np.array([[1.0, 0.0, 0.0, 1.0]])
    b = np.array([[1.0, np.sin(angle), 0.0, np.cos(angle)]])
    np.testing.assert_allclose(
        massless_dot(a, b), 1.0 - np.cos(angle) if angle > 1e-7 else angle**2 / 2, rtol=1e-6
    )


@pytest.mark.parametrize(("n", "xi"), [(3, 20.0), (4, 10.0), (5, 30.0)])
def test_sarge_density_is_normalised_on_uniform_phase_space(n, xi):
    """Vol(Phi_N) E_uniform[phi] = 1: the constant and the region of the claimed density."""
    p = rambo(np.random.default_rng(n), 400_000, n)
    phi = sarge_density(p, xi) * _phase_space_volume(n)
    error = phi.std() / np.sqrt(len(phi))
    assert abs(phi.mean() - 1.0) < 4 * error + 1e-3, (phi.mean(), error)


@pytest.mark.parametrize(("n", "xi"), [(4, 10.0), (5, 30.0)])
def test_sarge_events_follow_their_density_and_the_cut_keeps_the_predicted_fraction(n, xi):
    rng = np.random.default_rng(10 + n)
    raw = sarge_events(rng, 200_000, n, xi)
    assert (sarge_density(raw, xi) > 0).all()  # every event lies in SARGE's region
    uniform = rambo(rng, 400_000, n)
    # raw events vs uniform phase space reweighted by phi: the means of a few observables agree
    weight = sarge_density(uniform, xi)
    for observable in (
        lambda p: p[:, 0, 0],
        lambda p: p[:, 1, 0],
        lambda p: np.log(pair_invariants(p).min(1)),
    ):
        f_raw, f_uni = observable(raw), observable(uniform)
        mean_w = np.sum(weight * f_uni) / np.sum(weight)
        err_w = np.sqrt(np.sum(weight**2 * (f_uni - mean_w) ** 2)) / np.sum(weight)
        err = np.hypot(err_w, f_raw.std() / np.sqrt(len(f_raw)))
        assert abs(f_raw.mean() - mean_w) < 4.5 * err, (f_raw.mean(), mean_w, err)
    # kept fraction = Vol * E_uniform[A Theta_cut] / SARGE's normalisation
    kept = ratio_cut(raw, xi).mean()
    a_cut = np.exp(log_aps_weight(uniform)) * ratio_cut(uniform, xi)
    predicted = antenna_acceptance(n, xi, a_cut.mean())
    err = predicted * a_cut.std() / a_cut.mean() / np.sqrt(len(a_cut))
    assert abs(kept - predicted) < 4 * np.hypot(err, np.sqrt(kept / len(raw))), (kept, predicted)


def _three_particle_energy_cdf(xi: float):
    """CDF of one particle's energy for A Theta_cut on 3-body phase space, by a midpoint sum over the
    Dalitz triangle (uniform measure dE1 dE2), independent of the sampler."""
    m = 3000
    e = (np.arange(m) + 0.5) / m * 0.5
    e1, e2 = np.meshgrid(e, e, indexing="ij")
    e3 = 1.0 - e1 - e2
    s23, s13, s12 = 1 - 2 * e1, 1 - 2 * e2, 1 - 2 * e3
    inside = (e3 > 0) & (e3 < 0.5)
    s = np.stack([s12, s13, s23])
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = inside & (s.max(0) <= xi * s.min(0)) & (s.min(0) > 0)
        w = np.where(keep, 1.0 / np.where(keep, s12 * s13 * s23, 1.0), 0.0)
    marginal = w.sum(axis=1)
    cdf = np.cumsum(marginal) / marginal.sum()
    return lambda x: np.interp(x, e + 0.25 / m, cdf, left=0.0, right=1.0)


def test_three_particle_energies_follow_the_integrated_antenna():
    xi = 30.0
    p = sample_antenna(20_000, seed=5, n_particles=3, xi_max=xi)
    cdf = _three_particle_energy_cdf(xi)
    for i in range(3):  # permuted: every particle has the same law
        assert stats.kstest(p[:, i, 0], cdf).pvalue > 1e-3
    # negative control: uniform phase space with the same cut does not
    u = rambo(np.random.default_rng(1), 20_000, 3)
    assert stats.kstest(u[ratio_cut(u, xi), 0, 0], cdf).pvalue < 1e-6


def test_antenna_order_has_the_cyclic_and_reflection_symmetry_of_eq_21():
    p = sample_antenna(6000, seed=11, n_particles=6, xi_max=100.0, permute=False)
    adjacent = massless_dot(p, np.roll(p, -1, axis=1))  # [n, 6]: p1.p2, p2.p3, ..., p6.p1
    log_adj = np.log(adjacent)
    for k in range(1, 6):  # SARGE treats particles 1 and N specially; the law must not
        assert stats.ks_2samp(log_adj[:, 0], log_adj[:, k]).pvalue > 1e-3, k
        assert stats.ks_2samp(p[:, 0, 0], p[:, k, 0]).pvalue > 1e-3, k
    # negative control: a non-adjacent invariant has another law (the test can see differences)
    assert stats.ks_2samp(log_adj[:, 0], np.log(massless_dot(p[:, 0], p[:, 2]))).pvalue < 1e-6
    # permuted events: every pair has the same law
    q = sample_antenna(6000, seed=12, n_particles=6, xi_max=100.0)
    assert (
        stats.ks_2samp(np.log(massless_dot(q[:, 0], q[:, 1])), np.log(massless_dot(q[:, 0], q[:, 2]))).pvalue
        > 1e-3
    )


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="N >= 3"):
        sarge_events(np.random.default_rng(0), 5, 2, 10.0)
    with pytest.raises(ValueError, match="xi_max must exceed 1"):
        sarge_events(np.random.default_rng(0), 5, 4, 0.5)
    with pytest.raises(ValueError, match="number of events"):
        sample_antenna(0, seed=1)


def test_eq_24_rests_on_the_exact_law_of_one_thermal_pair():
    """Appendix B's building block, sampled directly: two independent particles with Gamma(2, 1/(2N))
    energies and isotropic directions have P(2 p1.p2 > y) = (W^2 / 2) K_2(W), W = 2N sqrt(y); eq. 24
    (the minimum over pairs taken as independent) is normalised."""
    from scipy import integrate

    from gsgm.data.phase_space_analytic import thermal_pair_survival, y_density_uniform_large_n

    n = 10
    total = integrate.quad(lambda y: y_density_uniform_large_n(y, n), 0, 0.05, limit=200)[0]
    assert total == pytest.approx(1, abs=1e-6)
    rng = np.random.default_rng(4)
    energy = rng.gamma(2.0, 1.0 / (2 * n), size=(50_000, 2))
    direction = rng.normal(size=(50_000, 2, 3))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    p = np.concatenate([energy[..., None], energy[..., None] * direction], axis=-1)
    y = pair_invariants(p)[:, 0]
    assert stats.kstest(y, lambda v: 1.0 - thermal_pair_survival(v, n)).pvalue > 1e-3
    # negative control: the law of N = 8 thermal particles is another one
    assert stats.kstest(y, lambda v: 1.0 - thermal_pair_survival(v, 8)).pvalue < 1e-6
