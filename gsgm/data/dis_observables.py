"""Event-level observables of DIS events: the leading electron, Q^2, x and y, the sum of z.

Frame: proton along +z, electron beam along -z with energy E_e (the centre-of-mass frame of
:mod:`gsgm.data.dis_generation` by default: E_e = sqrt(s) / 2). From the scattered (leading) electron
with transverse momentum pt and pseudorapidity eta, treated as massless:

    Q^2 = 2 E_e (E' + p'_z) = 2 E_e pt exp(eta),   y = 1 - pt exp(-eta) / (2 E_e),   x = Q^2 / (s y)

(the paper writes exp(-y) because it measures eta along the electron beam). Reduced cross-section
(paper eq. 18): ``sigma_red = d sigma / dx dQ^2 * Q^4 x / (2 pi alpha^2 Y_+)``, ``Y_+ = 1 + (1 - y)^2``;
with events in place of a cross-section it is known up to one overall factor, which is all that
Q^2 scaling needs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gsgm.data.dis_format import SPECIES, SPECIES_KEYS, DisEvents
from gsgm.data.dis_images import events_to_images, images_to_events

__all__ = [
    "DisComparison",
    "dis_kinematics",
    "dis_observables",
    "leading_electron",
    "leading_pairs",
    "multiplicities",
    "reduced_cross_section",
]

ELECTRON = 11


def leading_electron(events: DisEvents) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(has, z, pt, eta)`` [N] of the e- with the largest z (``has`` False: no electron, others NaN)."""
    z = np.where(events.particles[..., 3] == ELECTRON, events.z(), -1.0)
    index = np.argmax(z, axis=1)
    rows = np.arange(len(events))
    has = z[rows, index] > 0
    pick = events.particles[rows, index].astype(np.float64)
    nan = np.full(len(events), np.nan)
    return (
        has,
        np.where(has, z[rows, index], nan),
        np.where(has, pick[:, 0], nan),
        np.where(has, pick[:, 1], nan),
    )


def dis_kinematics(events: DisEvents, electron_energy: float | None = None) -> dict[str, np.ndarray]:
    """``{"Q2", "x", "y"}`` [N] from the leading electron (NaN where the event has none); GeV^2.

    ``electron_energy`` [GeV]: the beam energy (default sqrt(s) / 2, the centre-of-mass frame).
    """
    e_beam = events.sqrt_s / 2.0 if electron_energy is None else float(electron_energy)
    _, _, pt, eta = leading_electron(events)
    q2 = 2.0 * e_beam * pt * np.exp(eta)
    y = 1.0 - pt * np.exp(-eta) / (2.0 * e_beam)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = q2 / (events.sqrt_s**2 * y)
    return {"Q2": q2, "x": x, "y": y}


def multiplicities(events: DisEvents) -> dict[int, np.ndarray]:
    """Particles per event of each species, ``{pid: [N] int}``."""
    pid = events.particles[..., 3]
    return {s: (pid == s).sum(axis=1) for s in SPECIES}


def reduced_cross_section(
    x: np.ndarray, q2: np.ndarray, y: np.ndarray, x_edges: np.ndarray, q2_edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(sigma_red [nQ2, nx], stat. error)`` per (Q^2, x) bin in units of the per-event cross-section.

    Each event contributes ``Q^4 x / Y_+`` divided by the bin area ``dx dQ^2`` and by the number of
    events (the overall 2 pi alpha^2 and sigma_total factors are left out).
    """
    ok = np.isfinite(x) & np.isfinite(q2) & (y > 0) & (y <= 1)
    x, q2, y = x[ok], q2[ok], y[ok]
    weight = q2**2 * x / (1.0 + (1.0 - y) ** 2)
    total = max(len(ok), 1)
    sums, _, _ = np.histogram2d(q2, x, bins=(q2_edges, x_edges), weights=weight)
    squares, _, _ = np.histogram2d(q2, x, bins=(q2_edges, x_edges), weights=weight**2)
    area = np.outer(np.diff(q2_edges), np.diff(x_edges))
    return sums / area / total, np.sqrt(squares) / area / total


def dis_observables(events: DisEvents) -> dict[str, np.ndarray]:
    """The 1D observables of the paper's Figs. 5-7, 9 as flat arrays, keyed by name.

    Per species k in (pi+, e-, K+): ``log10_z_k``, ``eta_k``, ``phi_k`` of every particle (e-: without
    the leading electron, as in Fig. 5), ``multiplicity_k`` per event; per event ``sum_z`` and, from
    the leading electron, ``log10_Q2``, ``log10_x``, ``log10_z_lead_e``, ``eta_lead_e``.
    """
    pid = events.particles[..., 3]
    z = events.z()
    has, z_e, _, eta_e = leading_electron(events)
    lead = np.zeros(pid.shape, bool)
    rows = np.nonzero(has)[0]
    lead[rows, np.argmax(np.where(pid == 11, z, -1.0), axis=1)[rows]] = True
    out: dict[str, np.ndarray] = {}
    counts = multiplicities(events)
    for species in SPECIES:
        key = SPECIES_KEYS[species]
        mine = pid == species
        out[f"log10_z_{key}"] = np.log10(z[mine])
        out[f"eta_{key}"] = events.particles[..., 1][mine].astype(np.float64)
        out[f"phi_{key}"] = events.particles[..., 2][mine & ~lead].astype(np.float64)
        out[f"multiplicity_{key}"] = counts[species].astype(np.float64)
    out["sum_z"] = z.sum(axis=1)
    kin = dis_kinematics(events)
    ok = has & (kin["Q2"] > 0) & (kin["x"] > 0) & np.isfinite(kin["x"])
    out["log10_Q2"] = np.log10(kin["Q2"][ok])
    out["log10_x"] = np.log10(kin["x"][ok])
    out["log10_z_lead_e"] = np.log10(z_e[has])
    out["eta_lead_e"] = eta_e[has]
    return out


def leading_pairs(events: DisEvents, species: int) -> tuple[np.ndarray, np.ndarray]:
    """z of the leading and subleading particle of ``species`` in events with at least two (Fig. 8)."""
    z = np.where(events.particles[..., 3] == species, events.z(), 0.0)
    top = -np.sort(-z, axis=1)[:, :2]
    both = top[:, 1] > 0 if top.shape[1] > 1 else np.zeros(len(z), bool)
    return top[both, 0], top[both, 1]


class DisComparison:
    """Truth events and generated image samples on one geometry, ready for metrics and plots.

    Args:
        truth: Pythia events (the test split: never trained on).
        samples: ``{name: z images [M, n, n, 3]}`` (from :mod:`gsgm.generation.dis` files).
        num_pixels: image size n; every sample must have it.
        seed: the split of the truth into halves.
    """

    def __init__(self, truth: DisEvents, samples: Mapping[str, np.ndarray], num_pixels: int, seed: int = 0):
        for name, images in samples.items():
            if images.shape[1] != num_pixels:
                raise ValueError(f"sample {name!r} has {images.shape[1]} pixels, the comparison {num_pixels}")
        self.num_pixels = int(num_pixels)
        self.truth = truth
        self.truth_pixelated = images_to_events(
            events_to_images(truth, num_pixels), truth.eta_max, truth.sqrt_s
        )
        self.models = {
            name: images_to_events(images, truth.eta_max, truth.sqrt_s) for name, images in samples.items()
        }
        order = np.random.default_rng(seed).permutation(len(truth))
        half = len(truth) // 2
        self.half_a, self.half_b = np.sort(order[:half]), np.sort(order[half : 2 * half])
