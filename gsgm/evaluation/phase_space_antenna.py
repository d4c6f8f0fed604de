"""Metrics of generated N = 10 antenna events (eq. 21) against truth (phase-space paper, section IV).

The particles are randomly permuted, so per-particle laws are pooled over the particles. Observables:

* energies: every particle's E (pooled), the hardest and the softest energy, log10 of the softest
  (Fig. 11 shows the energies);
* the IRC-safe y = min_{i<j} 2 p_i.p_j (eq. 18) as log10 y (Fig. 12 spans orders of magnitude), every
  pair invariant log10 s_ij (pooled), and log10 of the cut variable max s_ij / min s_ij;
* angles: cos(theta) and phi of every particle (pooled; isotropy, Fig. 9);
* the fraction of events outside the truth's cut (max s_ij > xi_max min s_ij) and the conservation
  violation (Fig. 14, Table 1), as for N = 3.

Arrays in, numbers out; events are [n, N, 4] (E, px, py, pz) with total energy 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gsgm.data.antenna import pair_invariants

__all__ = ["ANTENNA_METRICS", "antenna_observables", "outside_cut"]

#: metric keys, in table order
ANTENNA_METRICS: tuple[str, ...] = (
    "E", "E_max", "E_min", "log10_E_min", "log10_y", "log10_s", "log10_ratio", "cos_theta", "phi",
)  # fmt: skip


def _safe_invariants(events: np.ndarray) -> np.ndarray:
    # p-space samples can have E = |p| = 0 or NaN-free but tiny vectors: keep logs finite
    return np.maximum(pair_invariants(events), 1e-300)


def antenna_observables(events: np.ndarray) -> dict[str, np.ndarray]:
    """Observables of events [n, N, 4]: pooled ones have n N (or n N(N-1)/2) entries, the rest n."""
    e = events[..., 0]
    s = _safe_invariants(events)
    three = events[..., 1:]
    norm = np.maximum(np.linalg.norm(three, axis=-1), 1e-300)
    return {
        "E": e.ravel(),
        "E_max": e.max(axis=1),
        "E_min": e.min(axis=1),
        "log10_E_min": np.log10(np.maximum(e.min(axis=1), 1e-300)),
        "log10_y": np.log10(s.min(axis=1)),
        "log10_s": np.log10(s).ravel(),
        "log10_ratio": np.log10(s.max(axis=1) / s.min(axis=1)),
        "cos_theta": (three[..., 2] / norm).ravel(),
        "phi": np.arctan2(three[..., 1], three[..., 0]).ravel(),
    }


def outside_cut(events: np.ndarray, xi_max: float) -> float:
    """Fraction of events [n, N, 4] violating the antenna cut max s_ij <= xi_max min s_ij."""
    s = _safe_invariants(events)
    return float(np.mean(s.max(axis=1) > xi_max * s.min(axis=1)))


def antenna_report_fields(xi_max: float) -> dict[str, Any]:
    """The report fields that differ from the 3-particle report (process description, metric keys)."""
    return {"xi_max": float(xi_max), "metric_keys": list(ANTENNA_METRICS)}
