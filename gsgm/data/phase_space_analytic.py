"""Analytic distributions on massless 3-particle phase space (CM frame, total energy 1).

* Dalitz densities p(E1, E2) (normalised on the triangle, or the cut region s_ij > y_min) of uniform
  phase space (8), muon decay (96 E2 (1 - 2 E2)) and symmetrised q qbar g (numerically normalised);
* single-particle energy marginals: uniform N-particle phase space (appendix B) has x = 2E ~ Beta(2, N-2),
  i.e. p(E) = 2 (N-1)(N-2) (2E)(1-2E)^(N-3); the others by integrating the Dalitz density;
* the Rosenblatt transform (eq. 16): u1 = F(E1), u2 = F(E2 | E1), uniform on [0, 1]^2 for the true law;
* the observable y = min_{i<j} 2 p_i.p_j (eq. 18): uniform 3-body phase space p(y) = 6 (1 - 3y)
  (eq. 20, derived in appendix B), and for q qbar g the O(alpha_s) thrust distribution with tau = y
  (eq. 19, Ellis-Stirling-Webber eq. 3.43), normalised on (y_min, 1/3);
* y on uniform N-particle phase space at large N (eq. 24, appendix B eqs. 32-37): thermal energies
  E ~ Gamma(2, T = 1/(2N)), independent pairs, so with W = 2N sqrt(y) one pair has
  P(y_ij > y) = G = (W^2 / 2) K_2(W) and the minimum of the N(N-1)/2 pairs has
  p(y) = P G^(P-1) N^2 W K_1(W) (derived here: the integrals close on K_1 and K_2).

Densities are for energies [..., 3] arrays; "symmetric" q qbar g means the average over the 6 orders
of the particles (the events are randomly permuted).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import integrate, special

from gsgm.data.phase_space_processes import muon_decay_weight, qqg_weight

__all__ = [
    "DalitzLaw",
    "dalitz_law",
    "min_invariant",
    "thermal_pair_survival",
    "uniform_energy_density",
    "y_density_qqg",
    "y_density_uniform3",
    "y_density_uniform_large_n",
]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)


def uniform_energy_density(energy: np.ndarray, n_particles: int) -> np.ndarray:
    """p(E) of one particle's energy on uniform massless N-particle phase space (N >= 3), E in [0, 1/2]."""
    x = 2.0 * np.asarray(energy, np.float64)
    n = n_particles
    inside = (x >= 0) & (x <= 1)
    return np.where(inside, 2.0 * (n - 1) * (n - 2) * x * np.clip(1 - x, 0, None) ** (n - 3), 0.0)


def min_invariant(p: np.ndarray) -> np.ndarray:
    """y [n] = min over pairs of 2 p_i . p_j for events p [n, N, 4] (eq. 18)."""
    dots = 2.0 * (p[:, :, None, 0] * p[:, None, :, 0] - np.einsum("nik,njk->nij", p[..., 1:], p[..., 1:]))
    n = p.shape[1]
    iu = np.triu_indices(n, 1)
    return dots[:, iu[0], iu[1]].min(axis=1)


def y_density_uniform3(y: np.ndarray) -> np.ndarray:
    """Eq. 20: p(y) = 6 (1 - 3y) on [0, 1/3] for uniform 3-body phase space."""
    y = np.asarray(y, np.float64)
    return np.where((y >= 0) & (y <= 1 / 3), 6.0 * (1.0 - 3.0 * y), 0.0)


def thermal_pair_survival(y: np.ndarray, n_particles: int) -> np.ndarray:
    """P(2 p_1.p_2 > y) for two independent thermal particles (Gamma(2, 1/(2N)) energies, isotropic):
    (W^2 / 2) K_2(W) with W = 2N sqrt(y) (appendix B eqs. 34-35)."""
    w = 2.0 * n_particles * np.sqrt(np.clip(np.asarray(y, np.float64), 0.0, None))
    safe = np.where(w > 0, w, 1.0)
    return np.where(w > 0, 0.5 * safe**2 * special.kv(2, safe), 1.0)


def y_density_uniform_large_n(y: np.ndarray, n_particles: int) -> np.ndarray:
    """Eq. 24: p(y) of y = min 2 p_i.p_j on uniform N-particle phase space in the thermal (large-N)
    limit, the N(N-1)/2 pairs treated as independent (appendix B eq. 36; they share particles, so this
    is an approximation even for thermal particles)."""
    y = np.asarray(y, np.float64)
    n = n_particles
    pairs = n * (n - 1) // 2
    w = 2.0 * n * np.sqrt(np.clip(y, 0.0, None))
    safe = np.where(w > 0, w, 1.0)
    survive = thermal_pair_survival(y, n)
    density = pairs * survive ** (pairs - 1) * n**2 * safe * special.kv(1, safe)
    return np.where(w > 0, density, pairs * n**2)  # W K_1(W) -> 1 at W = 0


def _thrust_shape(tau: np.ndarray) -> np.ndarray:
    t = 1.0 - tau
    return 2 * (3 * t**2 - 3 * t + 2) / (t * (1 - t)) * np.log((2 * t - 1) / (1 - t)) - 3 * (3 * t - 2) * (
        2 - t
    ) / (1 - t)


@functools.lru_cache(maxsize=16)
def _thrust_norm(y_min: float) -> float:
    return integrate.quad(_thrust_shape, y_min, 1 / 3, limit=200)[0]


def y_density_qqg(y: np.ndarray, y_min: float) -> np.ndarray:
    """Eq. 19: the O(alpha_s) distribution of tau = 1 - T = y for q qbar g, normalised on (y_min, 1/3)."""
    y = np.asarray(y, np.float64)
    inside = (y > y_min) & (y < 1 / 3)
    safe = np.where(inside, y, 0.2)
    return np.where(inside, _thrust_shape(safe) / _thrust_norm(float(y_min)), 0.0)


class DalitzLaw:
    """A normalised density on the Dalitz triangle with its marginals and Rosenblatt transform.

    Args:
        weight: unnormalised density of energies [..., 3] (zero outside the support is applied here).
        e_max: the support is every E_k <= e_max ((1 - y_min) / 2 for the cut s_ij > y_min; 1/2 none).
    """

    def __init__(self, weight, e_max: float = 0.5):
        self.weight = weight
        self.e_max = float(e_max)
        self.e_min = 1.0 - 2.0 * self.e_max  # E_k >= 1 - 2 e_max follows from the other two
        self.norm = integrate.dblquad(
            lambda e2, e1: float(weight(np.array([e1, e2, 1 - e1 - e2]))),
            self.e_min, self.e_max, lambda e1: 1.0 - self.e_max - e1, lambda e1: self.e_max,
        )[0]  # fmt: skip
        grid = np.linspace(self.e_min, self.e_max, 2001)
        self._grid = grid
        self._cdf = integrate.cumulative_trapezoid(self.marginal(grid, 0), grid, initial=0.0)
        self._cdf /= self._cdf[-1]

    def inside(self, energies: np.ndarray) -> np.ndarray:
        """Bool [...]: the point lies in the support (energies summing to 1, each in [e_min, e_max])."""
        e = np.asarray(energies)
        return np.all((e >= self.e_min) & (e <= self.e_max), axis=-1)

    def density(self, energies: np.ndarray) -> np.ndarray:
        """Normalised p(E1, E2) at energies [..., 3] (third = 1 - E1 - E2); 0 outside the support."""
        e = np.asarray(energies, np.float64)
        e = np.concatenate([e[..., :2], 1.0 - e[..., :1] - e[..., 1:2]], axis=-1)
        inside = self.inside(e)
        safe = np.where(inside[..., None], e, 1.0 / 3.0)
        return np.where(inside, self.weight(safe) / self.norm, 0.0)

    def _conditional_integral(self, e1: np.ndarray, upper: np.ndarray | None = None) -> np.ndarray:
        """int_{lo(E1)}^{upper} p(E1, E2) dE2 (Gauss-Legendre, 64 nodes); upper None = the whole range."""
        lo = np.maximum(1.0 - self.e_max - e1, self.e_min)
        hi = np.full_like(e1, self.e_max) if upper is None else np.clip(upper, lo, self.e_max)
        half = (hi - lo) / 2.0
        e2 = lo[..., None] + half[..., None] * (_NODES + 1.0)
        e = np.stack([np.broadcast_to(e1[..., None], e2.shape), e2, 1.0 - e1[..., None] - e2], -1)
        return half * np.sum(_WEIGHTS * self.density(e), axis=-1)

    def marginal(self, energy: np.ndarray, particle: int) -> np.ndarray:
        """p(E_particle) (particle 0, 1 or 2) by integrating the density over the other energy."""
        energy = np.asarray(energy, np.float64)
        if particle == 0:
            inner = lambda e: self._conditional_integral(e)  # noqa: E731
        else:
            # swap roles: integrate over the energy of another particle with E_particle fixed
            def inner(e):
                lo = np.maximum(1.0 - self.e_max - e, self.e_min)
                half = (self.e_max - lo) / 2.0
                other = lo[..., None] + half[..., None] * (_NODES + 1.0)
                rest = 1.0 - e[..., None] - other
                fixed = np.broadcast_to(e[..., None], other.shape)
                stack = [other, fixed, rest] if particle == 1 else [other, rest, fixed]
                return half * np.sum(_WEIGHTS * self.density(np.stack(stack, -1)), axis=-1)

        inside = (energy >= self.e_min) & (energy <= self.e_max)
        return np.where(inside, inner(np.clip(energy, self.e_min, self.e_max)), 0.0)

    def rosenblatt(self, energies: np.ndarray) -> np.ndarray:
        """Eq. 16: [n, 2] (u1, u2) = (F(E1), F(E2 | E1)); uniform on [0, 1]^2 for events of this law."""
        e1 = np.clip(np.asarray(energies, np.float64)[:, 0], self.e_min, self.e_max)
        u1 = np.interp(e1, self._grid, self._cdf)
        total = self._conditional_integral(e1)
        part = self._conditional_integral(e1, np.asarray(energies, np.float64)[:, 1])
        u2 = np.clip(part / np.where(total > 0, total, 1.0), 0.0, 1.0)
        return np.stack([u1, u2], -1)


def _uniform_weight(energies):
    return np.ones(np.shape(energies)[:-1])


def _qqg_symmetric(energies):
    e = energies
    perms = ((0, 1, 2), (1, 2, 0), (2, 0, 1))  # gluon third, first, second (q <-> qbar is symmetric)
    return sum(qqg_weight(e[..., list(p)]) for p in perms) / 3.0


@functools.lru_cache(maxsize=16)
def dalitz_law(process: str, y_min: float = 0.0) -> DalitzLaw:
    """The Dalitz law of "uniform", "muon_decay" or "qqg" (symmetrised, with the cut ``y_min``)."""
    if process == "uniform":
        return DalitzLaw(_uniform_weight, 0.5 * (1.0 - y_min))
    if process == "muon_decay":
        return DalitzLaw(muon_decay_weight, 0.5)
    if process == "qqg":
        if not 0.0 < y_min < 1.0 / 3.0:
            raise ValueError(f"qqg needs y_min in (0, 1/3), got {y_min}")
        return DalitzLaw(_qqg_symmetric, 0.5 * (1.0 - y_min))
    raise ValueError(f"no Dalitz law for process {process!r}")
