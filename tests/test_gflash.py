"""The GFlash stand-in generator against its analytic forms (Grindhammer & Peters, hep-ex/0001020)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from gsgm.data.calo_generation import generate_showers
from gsgm.data.gflash import (
    CaloGeometry,
    GFlashSettings,
    effective_medium,
    longitudinal_parameters,
    mean_layer_fractions,
    radial_parameters,
    simulate_shower,
)

GEOMETRY = CaloGeometry()
MEDIUM = effective_medium(GEOMETRY)


def test_effective_medium_of_the_tungsten_silicon_stack():
    # Hand calculation for 2.1 mm W + 0.5 mm Si: mass fractions 0.972 / 0.028.
    assert MEDIUM.z == pytest.approx(0.9721 * 74 + 0.0279 * 14, abs=0.05)
    assert MEDIUM.ehat == pytest.approx(1 / 1.42)
    assert MEDIUM.x0_mm == pytest.approx(4.30, abs=0.02)
    assert MEDIUM.sampling_frequency == pytest.approx(MEDIUM.x0_mm / 2.6)
    # 20 layers of 2.1 mm W (0.599 X0) + 10 of 4.2 mm (1.199 X0), plus 0.5 mm Si (0.0053 X0) each.
    assert GEOMETRY.layer_depths_x0()[-1] == pytest.approx(20 * 0.6047 + 10 * 1.2039, abs=0.01)


def test_layer_energies_without_fluctuations_integrate_the_gamma_profile():
    settings = GFlashSettings(fluctuations=False, sampling_fluctuations=False)
    depths = GEOMETRY.layer_depths_x0()
    for energy in (10.0, 50.0, 90.0):
        par = longitudinal_parameters(energy, MEDIUM)
        t_max, alpha = math.exp(par.mean_log_t), math.exp(par.mean_log_alpha)
        beta = (alpha - 1) / t_max
        shower = simulate_shower(energy, np.random.default_rng(0), settings=settings)

        def profile(t, alpha=alpha, beta=beta):  # paper eq. 2: (1/E) dE/dt
            return (beta * t) ** (alpha - 1) * beta * math.exp(-beta * t) / math.gamma(alpha)

        expected = [integrate.quad(profile, a, b)[0] for a, b in zip(depths[:-1], depths[1:], strict=True)]
        np.testing.assert_allclose(shower.layer_deposit / (1000 * energy), expected, rtol=1e-6, atol=1e-9)
        # The maximum of the profile is at T, the centre of gravity at alpha / beta = T alpha / (alpha - 1).
        assert integrate.quad(lambda t, a=alpha, b=beta: t * profile(t, a, b), 0, np.inf)[0] == pytest.approx(
            t_max * alpha / (alpha - 1)
        )
        fine = np.linspace(0.01, 30, 30000)
        assert fine[np.argmax([profile(t) for t in fine])] == pytest.approx(t_max, abs=2e-3)
        # Containment: what the 30 layers hold is the incomplete gamma function at the back.
        containment = shower.layer_deposit.sum() / (1000 * energy)
        assert containment == pytest.approx(special.gammainc(alpha, beta * depths[-1]), rel=1e-9)
        # Without sampling fluctuations the sensors see exactly the sampling fraction of each layer.
        fractions = GEOMETRY.sampling_fractions(MEDIUM.ehat)
        np.testing.assert_allclose(shower.layer_visible, shower.layer_deposit * fractions, rtol=1e-9)


def test_t_and_alpha_fluctuate_with_the_papers_widths_and_correlation():
    rng = np.random.default_rng(1)
    energy, n = 50.0, 1500
    showers = [simulate_shower(energy, rng) for _ in range(n)]
    log_t = np.array([s.log_t for s in showers])
    log_a = np.array([s.log_alpha for s in showers])
    par = longitudinal_parameters(energy, MEDIUM)
    assert abs(log_t.mean() - par.mean_log_t) < 4 * par.sigma_log_t / math.sqrt(n)
    assert abs(log_a.mean() - par.mean_log_alpha) < 4 * par.sigma_log_alpha / math.sqrt(n)
    assert log_t.std() == pytest.approx(par.sigma_log_t, rel=0.08)
    assert log_a.std() == pytest.approx(par.sigma_log_alpha, rel=0.08)
    assert np.corrcoef(log_t, log_a)[0, 1] == pytest.approx(par.rho, abs=0.05)

    # Mean longitudinal profile and containment: the sample mean against the expectation over the
    # correlated log-normal (T, alpha), by Gauss-Hermite quadrature (independent of the sampler).
    nodes, weights = np.polynomial.hermite_e.hermegauss(16)
    weights = weights / weights.sum()
    depths = GEOMETRY.layer_depths_x0()
    c1, c2 = math.sqrt((1 + par.rho) / 2), math.sqrt((1 - par.rho) / 2)
    expected = np.zeros(GEOMETRY.num_layers)
    for g1, w1 in zip(nodes, weights, strict=True):
        for g2, w2 in zip(nodes, weights, strict=True):
            t = math.exp(par.mean_log_t + par.sigma_log_t * (c1 * g1 + c2 * g2))
            a = math.exp(par.mean_log_alpha + par.sigma_log_alpha * (c1 * g1 - c2 * g2))
            expected += w1 * w2 * mean_layer_fractions(max(a, 1.01), max(t, 0.1), depths)
    deposits = np.array([s.layer_deposit for s in showers]) / (1000 * energy)
    error = deposits.std(axis=0) / math.sqrt(n)
    assert (np.abs(deposits.mean(axis=0) - expected) < 4 * error + 1e-6).all()
    assert deposits.sum(axis=1).mean() == pytest.approx(
        expected.sum(), abs=4 * deposits.sum(axis=1).std() / math.sqrt(n)
    )

    # Energy conservation within sampling fluctuations: the visible energy over the sampling fraction
    # scatters around the deposited energy with the variance sum_i c_i^2 E_i of the gamma spots.
    fractions = GEOMETRY.sampling_fractions(MEDIUM.ehat)
    c2_layer = (0.166 * np.sqrt(np.asarray(GEOMETRY.absorber_mm) / 2.1)) ** 2 * 1000  # MeV
    dep = np.array([s.layer_deposit for s in showers])
    rec = np.array([s.layer_visible for s in showers]) / fractions
    pull = (rec.sum(axis=1) - dep.sum(axis=1)) / np.sqrt((c2_layer * dep).sum(axis=1))
    assert abs(pull.mean()) < 4 / math.sqrt(n)
    assert pull.std() == pytest.approx(1.0, rel=0.08)


def test_radial_profile_parameters_behave_as_in_the_paper():
    tau = np.linspace(0.0, 3.0, 31)
    r_core, r_tail, weight = radial_parameters(tau, 50.0, MEDIUM)
    assert (np.diff(r_core) > 0).all()  # the core widens with depth
    assert (r_tail > r_core).all() and ((weight >= 0) & (weight <= 1)).all()
    assert r_tail[-1] > r_tail[10]  # the tail grows late in the shower
    # r = R sqrt(u / (1 - u)) has the CDF r^2 / (r^2 + R^2) of each component: median R.
    u = np.random.default_rng(0).uniform(size=200_000)
    assert np.median(np.sqrt(u / (1 - u))) == pytest.approx(1.0, rel=0.01)


def test_points_are_cells_above_threshold_inside_the_grid():
    shower = simulate_shower(30.0, np.random.default_rng(5))
    x, y, layer, energy = shower.points.T
    assert len(shower.points) > 50
    assert (energy > 0.5 * GEOMETRY.mip_mev()).all()
    assert (np.abs(x) < 75).all() and (np.abs(y) < 75).all()
    assert np.allclose((x + 75 - 2.5) / 5, np.round((x + 75 - 2.5) / 5))
    assert set(np.unique(layer)) <= set(range(30))
    assert energy.sum() <= shower.layer_visible.sum() + 1e-3


def test_the_same_seed_gives_the_same_showers_for_any_worker_count():
    one = generate_showers(24, seed=3, chunk_size=8, workers=1, progress=False)
    two = generate_showers(24, seed=3, chunk_size=8, workers=2, progress=False)
    np.testing.assert_array_equal(one.energies, two.energies)
    np.testing.assert_array_equal(one.points, two.points)
    assert ((one.energies >= 10) & (one.energies <= 90)).all()
    other = generate_showers(8, seed=4, chunk_size=8, workers=1, progress=False)
    assert not np.array_equal(other.energies, one.energies[:8])
    with pytest.raises(ValueError, match="energy_min"):
        generate_showers(2, seed=0, energy_min=50, energy_max=10)
