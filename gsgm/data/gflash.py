"""GFlash photon showers in an ILD-like silicon-tungsten calorimeter: a parametrised stand-in for Geant4.

This is the parametrisation of Grindhammer & Peters, "The Parameterized Simulation of Electromagnetic
Showers in Homogeneous and Sampling Calorimeters" (hep-ex/0001020), written from its formulas; it is
**not** Geant4, and numbers on these showers do not compare with the CaloClouds papers' tables.

Physics (every number is a field of :class:`CaloGeometry` or :class:`GFlashSettings`):

* Geometry: 30 layers, each an absorber of tungsten (2.1 mm in layers 0-19, 4.2 mm in layers 20-29)
  followed by a 0.5 mm silicon sensor, read out in 5 x 5 mm cells on a 30 x 30 grid centred on the beam
  axis (the ILD ECAL layout of the CaloClouds data, without its staggering and gaps).
* Effective medium (paper sec. 4): the mass-weighted Z, X0, critical energy, Moliere radius of the
  thin-layer W/Si stack, its sampling frequency ``F_s = X0_eff / (d_W + d_Si)`` and the e/mip ratio
  ``ehat = 1 / (1 + 0.007 (Z_W - Z_Si))``.
* Longitudinal profile (paper eqs. 2, 9-13 and the sampling corrections of sec. 4):
  ``dE/dt = E f(t)``, ``f(t) = (beta t)^(alpha - 1) beta exp(-beta t) / Gamma(alpha)`` with
  ``T = (alpha - 1) / beta`` the depth of the maximum (t in X0). Per shower, ``(ln T, ln alpha)`` is
  drawn from a correlated 2-d Gaussian whose means, widths and correlation depend on ``y = E / E_c``.
  The energy of layer i is ``E [P(alpha, beta t_(i+1)) - P(alpha, beta t_i)]`` with P the regularised
  incomplete gamma function and ``t_i`` the depth (in X0 of the real materials) where layer i starts;
  what lies beyond the last layer leaks out.
* Spots (paper sec. 3.4): the energy of each layer is carried by spots. Their total number is
  ``N_spot = n1 / c_s E^n2`` (Poisson), distributed over depth by a gamma profile with
  ``T_s = T_hom (t1 + t2 Z)``, ``alpha_s = alpha_hom (a1 + a2 Z)`` (homogeneous-medium T and alpha of the
  same shower); a layer's energy is shared equally by its spots (at least one where it has energy).
* Radial profile (paper eqs. 14-21 with the sampling terms): ``f(r) = p 2 r R_C^2 / (r^2 + R_C^2)^2 +
  (1 - p) 2 r R_T^2 / (r^2 + R_T^2)^2``, r in Moliere radii, with core and tail radii and the core weight
  p depending on ``tau = t / T`` (in units of the shower's own centre of gravity), E and Z. A spot's
  radius is drawn by inverting the chosen component's CDF, ``r = R sqrt(u / (1 - u))``; phi is uniform.
* Sampling fluctuations (paper sec. 4, as GFlash): the energy of a spot is replaced by a gamma variate
  with mean e and variance ``c_i^2 e`` (c_i = the stochastic term of layer i: ``sampling_term`` for thin
  absorbers, scaled by sqrt(absorber thickness)), so a layer fluctuates with ``sigma / E = c_i /
  sqrt(E_i)``. The silicon sees the fraction ``f_i = ehat * mip_Si / (mip_W + mip_Si)`` of it (the mip
  energy losses of the layer's two slabs): the visible energy, in MeV, as a Geant4 hit would be.
* Incident photons enter at normal incidence at a point drawn uniformly within +-cell/2 of the axis.

A shower is the point cloud of its cells above threshold (``threshold_mip`` times the mip energy in the
silicon): (x [mm], y [mm], layer, visible energy [MeV]) per cell, cell centres in x and y.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

__all__ = [
    "CaloGeometry",
    "EffectiveMedium",
    "GFlashSettings",
    "LongitudinalParameters",
    "Material",
    "Shower",
    "TUNGSTEN",
    "SILICON",
    "effective_medium",
    "longitudinal_parameters",
    "mean_layer_fractions",
    "radial_parameters",
    "simulate_shower",
]

#: Scale energy of multiple scattering, MeV (Moliere radius R_M = X0 E_s / E_c).
E_SCALE_MEV = 21.2


@dataclass(frozen=True)
class Material:
    """A pure element: Z, A [g/mol], density [g/cm^3], X0 [g/cm^2], minimum-ionising dE/dx [MeV cm^2/g]."""

    name: str
    z: float
    a: float
    density: float
    x0: float
    mip_dedx: float

    @property
    def x0_mm(self) -> float:
        """Radiation length in mm."""
        return 10.0 * self.x0 / self.density

    @property
    def critical_energy(self) -> float:
        """E_c [MeV] by GFlash's fit ``2.66 (X0 Z / A)^1.1`` (X0 in g/cm^2)."""
        return 2.66 * (self.x0 * self.z / self.a) ** 1.1


#: PDG values (X0, minimum dE/dx).
TUNGSTEN = Material("W", 74.0, 183.84, 19.30, 6.76, 1.145)
SILICON = Material("Si", 14.0, 28.0855, 2.329, 21.82, 1.664)


@dataclass(frozen=True)
class CaloGeometry:
    """The layered calorimeter: absorber thickness per layer [mm], sensor [mm], cell size [mm], grid."""

    absorber_mm: tuple[float, ...] = (2.1,) * 20 + (4.2,) * 10
    sensor_mm: float = 0.5
    cell_mm: float = 5.0
    cells_per_side: int = 30
    absorber: Material = TUNGSTEN
    sensor: Material = SILICON

    @property
    def num_layers(self) -> int:
        return len(self.absorber_mm)

    @property
    def half_width_mm(self) -> float:
        return 0.5 * self.cell_mm * self.cells_per_side

    def layer_depths_x0(self) -> np.ndarray:
        """[L + 1] depth in X0 where each layer starts (absorber front), and the back of the last."""
        thickness = np.asarray(self.absorber_mm) / self.absorber.x0_mm + self.sensor_mm / self.sensor.x0_mm
        return np.concatenate([[0.0], np.cumsum(thickness)])

    def mip_mev(self) -> float:
        """Mean energy [MeV] a minimum-ionising particle leaves in one sensor."""
        return self.sensor.mip_dedx * self.sensor.density * self.sensor_mm / 10.0

    def sampling_fractions(self, ehat: float) -> np.ndarray:
        """[L] fraction of a layer's shower energy seen by its sensor: ehat * mip_sensor / mip_layer."""
        absorber = self.absorber.mip_dedx * self.absorber.density * np.asarray(self.absorber_mm) / 10.0
        return ehat * self.mip_mev() / (absorber + self.mip_mev())

    def cell_centres_mm(self) -> np.ndarray:
        """[cells_per_side] centre coordinate of each cell column (the same in x and y)."""
        return -self.half_width_mm + self.cell_mm * (np.arange(self.cells_per_side) + 0.5)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class EffectiveMedium:
    """The effective medium of a sampling structure (paper sec. 4); lengths in mm, energies in MeV."""

    z: float
    x0_mm: float
    critical_energy: float
    moliere_mm: float
    sampling_frequency: float
    ehat: float


def effective_medium(geometry: CaloGeometry, layer: int = 0) -> EffectiveMedium:
    """Mass-weighted Z, X0, E_c and R_M of the absorber + sensor stack of ``layer`` (paper eqs. 22-27)."""
    a, s = geometry.absorber, geometry.sensor
    d_a, d_s = geometry.absorber_mm[layer], geometry.sensor_mm
    mass_a, mass_s = d_a * a.density, d_s * s.density
    w_a, w_s = mass_a / (mass_a + mass_s), mass_s / (mass_a + mass_s)
    density = (mass_a + mass_s) / (d_a + d_s)
    x0 = 1.0 / (w_a / a.x0 + w_s / s.x0)  # g/cm^2
    ec_over_x0 = w_a * a.critical_energy / a.x0 + w_s * s.critical_energy / s.x0
    x0_mm = 10.0 * x0 / density
    return EffectiveMedium(
        z=w_a * a.z + w_s * s.z,
        x0_mm=x0_mm,
        critical_energy=x0 * ec_over_x0,
        moliere_mm=10.0 * E_SCALE_MEV / ec_over_x0 / density,
        sampling_frequency=x0_mm / (d_a + d_s),
        ehat=1.0 / (1.0 + 0.007 * (a.z - s.z)),
    )


@dataclass(frozen=True)
class GFlashSettings:
    """Knobs of the generator (defaults: the paper's parameters, an ILD-like stochastic term).

    Attributes:
        sampling_term: stochastic term c_s [sqrt(GeV)] of a thin-absorber layer (ILD SiW: ~0.166).
        threshold_mip: cells with less visible energy than this many mips are dropped (0.5, as ILD).
        fluctuations: draw (ln T, ln alpha) per shower; False uses the means (for analytic tests).
        sampling_fluctuations: gamma-fluctuate the spot energies; False keeps them exact.
        spot_scale: multiplies the number of spots (more spots = smoother radial sampling, slower).
    """

    sampling_term: float = 0.166
    threshold_mip: float = 0.5
    fluctuations: bool = True
    sampling_fluctuations: bool = True
    spot_scale: float = 1.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LongitudinalParameters:
    """Means, widths and correlation of (ln T, ln alpha) at one energy (sampling and homogeneous)."""

    mean_log_t: float
    mean_log_alpha: float
    sigma_log_t: float
    sigma_log_alpha: float
    rho: float
    mean_log_t_hom: float
    mean_log_alpha_hom: float
    sigma_log_t_hom: float
    sigma_log_alpha_hom: float
    rho_hom: float


def longitudinal_parameters(energy_gev: float, medium: EffectiveMedium) -> LongitudinalParameters:
    """The paper's fits (eqs. 9-13, homogeneous; sec. 4, sampling) at ``energy_gev``."""
    log_y = math.log(1000.0 * energy_gev / medium.critical_energy)
    t_hom = max(log_y - 0.812, 0.1)  # T_hom = ln y + t1
    alpha_hom = max(0.81 + (0.458 + 2.26 / medium.z) * log_y, 0.1)
    t_sam = max(t_hom - 0.55 / medium.sampling_frequency - 0.69 * (1.0 - medium.ehat), 0.1)
    alpha_sam = max(alpha_hom - 0.476 / medium.sampling_frequency, 1.01)
    return LongitudinalParameters(
        mean_log_t=math.log(t_sam),
        mean_log_alpha=math.log(alpha_sam),
        sigma_log_t=min(0.5, 1.0 / (-2.5 + 1.25 * log_y)),
        sigma_log_alpha=min(0.5, 1.0 / (-0.82 + 0.79 * log_y)),
        rho=0.784 - 0.023 * log_y,
        mean_log_t_hom=math.log(t_hom),
        mean_log_alpha_hom=math.log(alpha_hom),
        sigma_log_t_hom=min(0.5, 1.0 / (-1.4 + 1.26 * log_y)),
        sigma_log_alpha_hom=min(0.5, 1.0 / (-0.58 + 0.86 * log_y)),
        rho_hom=0.705 - 0.023 * log_y,
    )


def mean_layer_fractions(alpha: float, t_max: float, depths_x0: np.ndarray) -> np.ndarray:
    """[L] fraction of the energy deposited in each layer by the gamma profile with (alpha, T)."""
    beta = (alpha - 1.0) / t_max
    return np.diff(special.gammainc(alpha, beta * np.asarray(depths_x0)))


def radial_parameters(
    tau: np.ndarray, energy_gev: float, medium: EffectiveMedium
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R_C, R_T [Moliere radii], p) at ``tau = t / T`` (paper eqs. 16-21 plus the sampling terms)."""
    tau = np.asarray(tau, dtype=np.float64)
    log_e, z = math.log(energy_gev), medium.z
    inv_fs, one_minus_ehat = 1.0 / medium.sampling_frequency, 1.0 - medium.ehat
    r_core = (0.0251 + 0.00319 * log_e) + (0.1162 - 0.000381 * z) * tau
    k1, k2, k3, k4 = 0.659 - 0.00309 * z, 0.645, -2.59, 0.3585 + 0.0412 * log_e
    r_tail = k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2)))
    p1, p2, p3 = 2.632 - 0.00094 * z, 0.401 + 0.00187 * z, 1.313 - 0.0686 * log_e
    arg = (p2 - tau) / p3
    weight = p1 * np.exp(arg - np.exp(arg))
    r_core = r_core - 0.0203 * one_minus_ehat + 0.0397 * inv_fs * np.exp(-tau)
    r_tail = r_tail - 0.14 * one_minus_ehat - 0.495 * inv_fs * np.exp(-tau)
    weight = weight + one_minus_ehat * (0.348 - 0.642 * inv_fs * np.exp(-((tau - 1.0) ** 2)))
    return np.maximum(r_core, 1e-3), np.maximum(r_tail, r_core), np.clip(weight, 0.0, 1.0)


@dataclass
class Shower:
    """One simulated shower.

    Attributes:
        energy_gev: incident energy.
        points: [n, 4] float32 (x [mm], y [mm], layer, visible energy [MeV]) of the cells above threshold.
        layer_deposit: [L] shower energy deposited in each layer's depth [MeV] (before sampling).
        layer_visible: [L] visible energy in each sensor [MeV], all cells (also below threshold and
            outside the grid).
        log_t, log_alpha: the shower's drawn ln T and ln alpha (sampling medium).
    """

    energy_gev: float
    points: np.ndarray
    layer_deposit: np.ndarray
    layer_visible: np.ndarray
    log_t: float
    log_alpha: float
    extra: dict = field(default_factory=dict)


def simulate_shower(
    energy_gev: float,
    rng: np.random.Generator,
    geometry: CaloGeometry | None = None,
    settings: GFlashSettings | None = None,
) -> Shower:
    """Simulate one photon shower of ``energy_gev`` with random numbers from ``rng``."""
    geometry = geometry or CaloGeometry()
    settings = settings or GFlashSettings()
    medium = effective_medium(geometry)
    par = longitudinal_parameters(energy_gev, medium)
    depths = geometry.layer_depths_x0()
    energy_mev = 1000.0 * energy_gev

    # Correlated (ln T, ln alpha): the paper's two-normal construction, shared by the sampling and the
    # homogeneous-medium values (the latter steer the spot profile).
    g1, g2 = rng.standard_normal(2) if settings.fluctuations else (0.0, 0.0)

    def draw(mean_t, mean_a, sig_t, sig_a, rho):
        c1, c2 = math.sqrt((1.0 + rho) / 2.0), math.sqrt((1.0 - rho) / 2.0)
        return mean_t + sig_t * (c1 * g1 + c2 * g2), mean_a + sig_a * (c1 * g1 - c2 * g2)

    log_t, log_alpha = draw(par.mean_log_t, par.mean_log_alpha, par.sigma_log_t, par.sigma_log_alpha, par.rho)
    log_t_h, log_a_h = draw(
        par.mean_log_t_hom, par.mean_log_alpha_hom, par.sigma_log_t_hom, par.sigma_log_alpha_hom, par.rho_hom
    )
    t_max, alpha = max(math.exp(log_t), 0.1), max(math.exp(log_alpha), 1.01)
    layer_deposit = energy_mev * mean_layer_fractions(alpha, t_max, depths)

    # Spots: total number, then over layers by the spot profile (plus a leakage bin that is dropped).
    z = medium.z
    t_spot = max(0.5, math.exp(log_t_h) * (0.813 + 0.0019 * z))
    alpha_spot = max(1.01, math.exp(log_a_h) * (0.844 + 0.0026 * z))
    mean_spots = settings.spot_scale * 10.3 / settings.sampling_term * energy_gev**0.959
    spot_profile = mean_layer_fractions(alpha_spot, t_spot, depths)
    spot_profile = np.append(spot_profile, max(0.0, 1.0 - spot_profile.sum()))
    spots = rng.multinomial(rng.poisson(mean_spots), spot_profile / spot_profile.sum())[:-1]
    spots = np.where(layer_deposit > 0.0, np.maximum(spots, 1), 0)
    layer_of_spot = np.repeat(np.arange(geometry.num_layers), spots)
    spot_energy = np.repeat(layer_deposit / np.maximum(spots, 1), spots)  # MeV

    # Sampling fluctuations: gamma with mean e and variance c^2 e (c in sqrt(GeV) -> c^2 in MeV units).
    c_layer = settings.sampling_term * np.sqrt(np.asarray(geometry.absorber_mm) / geometry.absorber_mm[0])
    if settings.sampling_fluctuations:
        scale = 1000.0 * c_layer[layer_of_spot] ** 2
        spot_energy = rng.gamma(spot_energy / scale, scale)
    fraction = geometry.sampling_fractions(medium.ehat)
    visible = spot_energy * fraction[layer_of_spot]

    # Radial position at the layer's centre depth, tau in units of the shower's centre of gravity.
    centre = 0.5 * (depths[:-1] + depths[1:])[layer_of_spot]
    mean_alpha = math.exp(par.mean_log_alpha)
    tau = centre * ((alpha - 1.0) / t_max) / alpha * mean_alpha / (mean_alpha - 1.0)
    r_core, r_tail, weight = radial_parameters(tau, energy_gev, medium)
    u = rng.uniform(size=(2, len(visible)))
    radius = np.where(u[0] < weight, r_core, r_tail) * medium.moliere_mm * np.sqrt(u[1] / (1.0 - u[1]))
    phi = rng.uniform(0.0, 2.0 * math.pi, size=len(visible))
    offset = rng.uniform(-0.5, 0.5, size=2) * geometry.cell_mm
    x = offset[0] + radius * np.cos(phi)
    y = offset[1] + radius * np.sin(phi)

    return Shower(
        energy_gev=float(energy_gev),
        points=cells_above_threshold(x, y, layer_of_spot, visible, geometry, settings),
        layer_deposit=layer_deposit,
        layer_visible=np.bincount(layer_of_spot, weights=visible, minlength=geometry.num_layers),
        log_t=float(np.log(t_max)),
        log_alpha=float(np.log(alpha)),
    )


def cells_above_threshold(
    x: np.ndarray,
    y: np.ndarray,
    layer: np.ndarray,
    energy: np.ndarray,
    geometry: CaloGeometry,
    settings: GFlashSettings,
) -> np.ndarray:
    """Sum depositions (x, y [mm], layer, energy [MeV]) into cells; [n, 4] of the cells above threshold.

    Depositions outside the grid are lost (lateral leakage). Rows are sorted by layer, then cell index.
    """
    n = geometry.cells_per_side
    ix = np.floor((x + geometry.half_width_mm) / geometry.cell_mm).astype(np.int64)
    iy = np.floor((y + geometry.half_width_mm) / geometry.cell_mm).astype(np.int64)
    inside = (ix >= 0) & (ix < n) & (iy >= 0) & (iy < n)
    flat = (np.asarray(layer, np.int64)[inside] * n + ix[inside]) * n + iy[inside]
    cells = np.bincount(flat, weights=np.asarray(energy)[inside], minlength=geometry.num_layers * n * n)
    hit = np.nonzero(cells > settings.threshold_mip * geometry.mip_mev())[0]
    centres = geometry.cell_centres_mm()
    lay, rest = np.divmod(hit, n * n)
    cx, cy = np.divmod(rest, n)
    return np.stack([centres[cx], centres[cy], lay.astype(np.float64), cells[hit]], axis=1).astype(np.float32)
