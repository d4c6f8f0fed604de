"""Training data on massless phase space: muon decay (eq. 15), e+e- -> q qbar g (eq. 17), antenna (eq. 21).

The first two processes live on 3-particle phase space in the CM frame with total energy 1. Their weights
depend on the invariants only, s_ij = 2 p_i . p_j = 1 - 2 E_k (k the third particle), i.e. on the
point of the Dalitz triangle (E1, E2); uniform phase space is uniform on that triangle times a
uniform (Haar) orientation of the event plane.

* **Muon decay** mu(P) -> e(p1) nu_e-bar(p2) nu_mu(p3), P = (1, 0, 0, 0), all masses neglected:
  |M|^2 ∝ (P . p2)(p1 . p3) = E2 (1 - 2 E2) / 2. Particle order (e, nu_e-bar, nu_mu) is our choice
  (the paper's labels are lost in its text); the electron spectrum is Michel's, x^2 (3 - 2x) with
  x = 2 E1. Sampled by rejection on RAMBO events (:func:`sample_muon_decay`).
* **e+e- -> q qbar g** (photon exchange, tree level): |M|^2 ∝ (x1^2 + x2^2) / ((1 - x1)(1 - x2)),
  x_i = 2 E_i, (q, qbar, g) = (1, 2, 3); equivalently s13/s23 + s23/s13 + 2 s12 / (s13 s23). It is
  made finite by the cut s_ij > y_min for every pair (the paper's minimum invariant mass cut, in units
  of the CM energy squared). We sample the Dalitz point by rejection from a proposal ∝ 1/(s13 s23)
  (exact, efficiency ~50%), orient the event uniformly and permute the particles at random, as the
  paper symmetrises its MadGraph events. Not included: the anisotropy of the event plane relative to
  the beam (it needs the beam axis and the Z couplings; eq. 17 is Lorentz invariant and carries none).
* The N = 10 antenna (APS, eq. 21) with the ratio cut max s_ij <= xi_max min s_ij: exact events from
  SARGE (Draggiotis, van Hameren, Kleiss 2000) and rejection, in :mod:`gsgm.data.antenna`; particles
  randomly permuted.

Same seed, same events. Analytic densities for tests and evaluation are in
:mod:`gsgm.data.phase_space_analytic`.
"""

from __future__ import annotations

import numpy as np

from gsgm.data.antenna import sample_antenna
from gsgm.data.rambo import minkowski_dot, rambo

__all__ = [
    "PROCESSES",
    "event_invariants",
    "events_from_energies",
    "generate_events",
    "muon_decay_weight",
    "qqg_weight",
    "random_rotations",
    "sample_muon_decay",
    "sample_qqg",
]

#: process name -> number of particles
PROCESSES: dict[str, int] = {"muon_decay": 3, "qqg": 3, "antenna": 10}


def event_invariants(p: np.ndarray) -> np.ndarray:
    """s [n, N, N] with s_ij = 2 p_i . p_j (zero on the diagonal for massless p [n, N, 4])."""
    return 2.0 * minkowski_dot(p[:, :, None, :], p[:, None, :, :])


def muon_decay_weight(energies: np.ndarray) -> np.ndarray:
    """|M|^2 (unnormalised) of muon decay at Dalitz points energies [..., 3] = (E_e, E_nuebar, E_numu)."""
    e2 = energies[..., 1]
    return e2 * (1.0 - 2.0 * e2) / 2.0


def qqg_weight(energies: np.ndarray) -> np.ndarray:
    """|M|^2 (unnormalised) of q(1) qbar(2) g(3) at Dalitz points energies [..., 3]."""
    x1, x2 = 2.0 * energies[..., 0], 2.0 * energies[..., 1]
    return (x1**2 + x2**2) / ((1.0 - x1) * (1.0 - x2))


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 3, 3] rotation matrices uniform on SO(3) (Haar), from normalised Gaussian quaternions."""
    quat = rng.standard_normal((n, 4))
    w, x, y, z = (quat / np.linalg.norm(quat, axis=1, keepdims=True)).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def events_from_energies(energies: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """3-particle events [n, 3, 4] with the given energies [n, 3] (summing to 1), uniformly oriented.

    Particle 1 along z, particle 2 in the x-z plane at the angle fixed by s12 = 2 E1 E2 (1 - cos),
    particle 3 balances the momentum; then a Haar-random rotation.
    """
    e1, e2, e3 = energies[:, 0], energies[:, 1], energies[:, 2]
    cos12 = np.clip(1.0 - (1.0 - 2.0 * e3) / (2.0 * e1 * e2), -1.0, 1.0)
    sin12 = np.sqrt(1.0 - cos12**2)
    zero = np.zeros_like(e1)
    p1 = np.stack([zero, zero, e1], -1)
    p2 = np.stack([e2 * sin12, zero, e2 * cos12], -1)
    three = np.stack([p1, p2, -(p1 + p2)], axis=1)
    three = np.einsum("nij,npj->npi", random_rotations(rng, len(e1)), three)
    # massless by construction; E3 = |p3| equals 1 - E1 - E2 up to round-off
    return np.concatenate([np.linalg.norm(three, axis=-1, keepdims=True), three], axis=-1)


def _energies(p: np.ndarray) -> np.ndarray:
    return p[..., 0]


def sample_muon_decay(n_events: int, seed: int, batch: int = 100_000) -> np.ndarray:
    """[n_events, 3, 4] muon-decay events by rejection on uniform (RAMBO) phase space (float64)."""
    rng = np.random.default_rng(seed)
    w_max = 1.0 / 16.0  # max of E2 (1 - 2 E2) / 2, at E2 = 1/4
    kept, have = [], 0
    while have < n_events:
        p = rambo(rng, batch, 3)
        accept = rng.random(batch) * w_max < muon_decay_weight(_energies(p))
        kept.append(p[accept])
        have += int(accept.sum())
    return np.concatenate(kept)[:n_events]


def sample_qqg(n_events: int, seed: int, y_min: float = 0.01, batch: int = 100_000) -> np.ndarray:
    """[n_events, 3, 4] e+e- -> q qbar g events with s_ij > y_min for all pairs, particles permuted.

    Dalitz point: proposal s13, s23 log-uniform on [y_min, 1] (density ∝ 1/(s13 s23)), kept inside
    the cut region with probability (s13^2 + s23^2 + 2 s12) / 2 = |M|^2 s13 s23 / 2 <= 1.
    """
    if not 0.0 < y_min < 1.0 / 3.0:
        raise ValueError(f"y_min must lie in (0, 1/3), got {y_min}")
    rng = np.random.default_rng(seed)
    kept, have = [], 0
    while have < n_events:
        s13, s23 = np.exp(np.log(y_min) * rng.random((2, batch)))
        s12 = 1.0 - s13 - s23
        ratio = (s13**2 + s23**2 + 2.0 * s12) / 2.0
        accept = (s12 > y_min) & (rng.random(batch) < ratio)
        kept.append(np.stack([(1.0 - s23[accept]) / 2, (1.0 - s13[accept]) / 2, (1.0 - s12[accept]) / 2], -1))
        have += int(accept.sum())
    energies = np.concatenate(kept)[:n_events]
    events = events_from_energies(energies, rng)
    order = np.argsort(rng.random((n_events, 3)), axis=1)
    return np.take_along_axis(events, order[:, :, None], axis=1)


def generate_events(
    process: str, n_events: int, seed: int, y_min: float = 0.01, xi_max: float = 1000.0
) -> np.ndarray:
    """[n_events, N, 4] events of ``process`` ("muon_decay", "qqg" with cut ``y_min``, or "antenna",
    N = 10, with the ratio cut ``xi_max``)."""
    if n_events < 1:
        raise ValueError(f"number of events must be >= 1, got {n_events}")
    if process == "muon_decay":
        return sample_muon_decay(n_events, seed)
    if process == "qqg":
        return sample_qqg(n_events, seed, y_min)
    if process == "antenna":
        if not xi_max > 1.0:
            raise ValueError(f"xi_max must exceed 1, got {xi_max}")
        return sample_antenna(n_events, seed, PROCESSES["antenna"], xi_max)
    raise ValueError(f"unknown phase-space process {process!r}; known: {', '.join(PROCESSES)}")
