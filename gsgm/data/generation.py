"""Generate JetNet-format jets with Pythia 8 and FastJet.

Physics (defaults; every number is a field of :class:`GenerationSettings`):

* pp collisions at sqrt(s) = 13 TeV, Pythia 8 default tune (Monash 2013) with multi-parton interactions,
  initial- and final-state showers and hadronisation. Particles with c*tau > 10 mm are stable (the usual
  LHC generator-level convention: K0_S and Lambda do not decay).
* Hard processes (2 -> 2), one per class:
  g: ``HardQCD:gg2gg`` + ``HardQCD:qqbar2gg``;
  q: ``HardQCD:qq2qq`` + ``HardQCD:qqbar2qqbarNew``, keeping jets matched to u, d or s;
  t: ``Top:gg2ttbar`` + ``Top:qqbar2ttbar`` with W -> quarks only;
  w: ``WeakDoubleBoson:ffbar2WW`` with W -> quarks only;
  z: ``WeakDoubleBoson:ffbar2gmZgmZ`` with pure Z (``WeakZ0:gmZmode = 2``) and Z -> quarks only.
* The transverse momentum of the hard process is restricted to 990 < pTHat < 1010 GeV. This follows
  JetNet, whose partons and undecayed bosons were generated in a window of relative width 1 % around
  1 TeV; the jet spectrum is then broadened by showering and by migration in and out of the cone.
* Resonance masses (t, W, Z) are limited to m0 +- 15 widths, like MadGraph's default bwcutoff; without
  a limit Pythia's ffbar2WW puts ~5 % of the W bosons far off shell (masses of 1 TeV and more).
  ``PhaseSpace:increaseMaximum = on`` lets Pythia raise its sampling maximum when it is violated.
* All final-state visible particles (everything but neutrinos) are clustered with anti-kt, R = 0.8
  (FastJet). The particles are made massless for the clustering (E := |p|), so that the rapidity FastJet
  clusters in equals the pseudorapidity stored in the files; jet pt, eta and phi depend only on the
  summed 3-momentum and are therefore the same with or without masses, while the stored jet mass uses
  the true particle energies.
* The jet kept per event is the hardest jet with |eta| < 2.5; the event is kept if that jet has
  800 <= pt <= 1600 GeV (JetNet's loose window that removes extreme events) and is matched:
  g/q: the nearer of the two outgoing hard-process partons lies within dR < 0.8 of the jet axis and has
  the right flavour (gluon, or u/d/s quark or antiquark);
  t/w/z: the nearer of the two top quarks / bosons (its last copy before the decay) lies within dR < 0.8
  and, when ``require_containment`` is on (default), all its quark-level decay products (b q q' for the
  top, q q' for W and Z) lie within dR < 0.8 of the jet axis.

Output per jet, JetNet layout: particles sorted by decreasing pt, the leading P kept and zero-padded,
(eta_rel, phi_rel, pt_rel, mask) with eta_rel = eta_particle - eta_jet, phi_rel = phi_particle - phi_jet
wrapped to [-pi, pi), pt_rel = pt_particle / pt_jet, and jet features (pt [GeV], eta, mass [GeV],
num_particles) where pt/eta/mass describe the full jet (all constituents) and num_particles counts the
kept particles.

Things to know when using the output:

* The stored jet mass uses the true particle energies. A mass rebuilt from the particle features
  (which treat particles as massless) is lower, by ~4 % at the median (2-8 % depending on the class);
  compare like with like.
* pt_jet is the magnitude of the vector sum, so the scalar sum of pt_rel over all constituents is >= 1
  (median ~1.002-1.008 for 150 particles); it is below 1 only because of truncation.
* Anti-kt puts a particle within R of the pseudojet it joins, not of the final axis: ~0.05-0.2 % of the
  particles (carrying < 0.02 % of the jet pt) lie slightly beyond dR = 0.8, up to ~1.05.

Reproducibility: the jets of one class are produced in fixed-size chunks (``chunk_size`` jets). Chunk k
of class c runs its own Pythia instance seeded with :func:`chunk_seed` (seed, c, k), and the chunks are
concatenated in order. The arrays therefore depend on (seed, chunk_size, settings) but not on the number
of worker processes, and asking for more jets only appends to the same jets.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime
import json
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from gsgm.data.jetnet_format import JET_CLASSES, check_class, class_file_name, write_jetnet_file

# Process switches per class; all other settings are common (see pythia_settings).
PROCESS_SETTINGS: dict[str, tuple[str, ...]] = {
    "g": ("HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on"),
    "q": ("HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on"),
    "t": (
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        # hadronic W decays only (u, d, s, c, b), so that both tops give fully hadronic jets
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
    ),
    "w": ("WeakDoubleBoson:ffbar2WW = on", "24:onMode = off", "24:onIfAny = 1 2 3 4 5"),
    "z": (
        "WeakDoubleBoson:ffbar2gmZgmZ = on",
        # pure Z, no photon contribution
        "WeakZ0:gmZmode = 2",
        "23:onMode = off",
        "23:onIfAny = 1 2 3 4 5",
    ),
}

# Pole mass and width [GeV] of the resonances (Pythia 8.317 defaults; make_pythia checks them). Without
# an upper mass limit Pythia samples the Breit-Wigner up to the kinematic limit, and at pTHat ~ 1 TeV
# ffbar2WW then puts ~5 % of the W bosons at masses of 1 TeV and more (off-shell tails without the
# gauge cancellations); those are not W jets. Masses are limited to m0 +- width_cut * width instead,
# as MadGraph does with its default bwcutoff = 15 (JetNet's parton-level generator).
RESONANCE_MASS_WIDTH: dict[int, tuple[float, float]] = {
    6: (173.0, 1.4),
    23: (91.1876, 2.4952),
    24: (80.385, 2.085),
}
RESONANCES_IN_CLASS: dict[str, tuple[int, ...]] = {"g": (), "q": (), "t": (6, 24), "w": (24,), "z": (23,)}

# PDG ids the matched object must have: a resonance (followed to its decay) or hard partons.
RESONANCE_ID: dict[str, int] = {"t": 6, "w": 24, "z": 23}
PARTON_IDS: dict[str, tuple[int, ...]] = {"g": (21,), "q": (1, 2, 3)}
NEUTRINO_IDS: tuple[int, ...] = (12, 14, 16)

# Pythia accepts seeds 1..900,000,000 (0 means "from the clock", which would break reproducibility).
_MAX_PYTHIA_SEED = 900_000_000


@dataclass(frozen=True)
class GenerationSettings:
    """Everything that defines the generated jets besides class, seed and number of jets.

    Energies and momenta in GeV, lengths in mm, angles in radians / units of (pseudo)rapidity.
    ``resonance_width_cut``: t/W/Z masses are generated within m0 +- resonance_width_cut * width.
    ``chunk_size``: jets per independently seeded chunk; the arrays depend on it (not on the workers).
    """

    sqrt_s: float = 13000.0
    pt_hat_min: float = 990.0
    pt_hat_max: float = 1010.0
    jet_radius: float = 0.8
    jet_pt_min: float = 800.0
    jet_pt_max: float = 1600.0
    jet_abs_eta_max: float = 2.5
    match_radius: float = 0.8
    require_containment: bool = True
    tau0_max_mm: float = 10.0
    resonance_width_cut: float = 15.0
    chunk_size: int = 250

    def __post_init__(self) -> None:
        if not 0 < self.pt_hat_min < self.pt_hat_max:
            raise ValueError(f"need 0 < pt_hat_min < pt_hat_max, got {self.pt_hat_min}, {self.pt_hat_max}")
        if not 0 <= self.jet_pt_min < self.jet_pt_max:
            raise ValueError(f"need 0 <= jet_pt_min < jet_pt_max, got {self.jet_pt_min}, {self.jet_pt_max}")
        if self.jet_radius <= 0 or self.match_radius <= 0 or self.jet_abs_eta_max <= 0:
            raise ValueError("jet_radius, match_radius and jet_abs_eta_max must be positive")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class GeneratedJets:
    """Jets of one class before truncation to a JetNet particle count.

    Attributes:
        particles: [N, P, 4] float32 (eta_rel, phi_rel, pt_rel, mask), P = the largest count asked for.
        jets: [N, 4] float32 (pt [GeV], eta, mass [GeV], num_particles kept out of P).
        num_constituents: [N] int32, constituents of the full jet (before truncation to P).
        events: number of Pythia events needed for these N jets (for the selection efficiency).
    """

    particles: np.ndarray
    jets: np.ndarray
    num_constituents: np.ndarray
    events: int

    def __len__(self) -> int:
        return int(self.jets.shape[0])

    def truncated(self, num_particles: int) -> tuple[np.ndarray, np.ndarray]:
        """JetNet arrays with only the leading ``num_particles`` particles (<= P).

        Returns:
            (particle_features [N, num_particles, 4], jet_features [N, 4]); jet pt/eta/mass are those
            of the full jet, num_particles is recounted from the mask.
        """
        if num_particles > self.particles.shape[1]:
            raise ValueError(f"asked for {num_particles} particles, only {self.particles.shape[1]} stored")
        pf = np.ascontiguousarray(self.particles[:, :num_particles])
        jf = self.jets.copy()
        jf[:, 3] = pf[..., 3].sum(axis=1)
        return pf, jf


def chunk_seed(seed: int, jet_class: str, chunk_index: int) -> int:
    """Pythia seed (1..900,000,000) for chunk ``chunk_index`` of ``jet_class`` under base ``seed``.

    Hashed with numpy's SeedSequence so that neighbouring (seed, class, chunk) triples give unrelated
    streams (seed + chunk would make seed 1 chunk 1 equal seed 2 chunk 0).
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    state = np.random.SeedSequence([seed, JET_CLASSES.index(check_class(jet_class)), chunk_index])
    return int(state.generate_state(1, dtype=np.uint64)[0] % _MAX_PYTHIA_SEED) + 1


def pythia_settings(jet_class: str, pythia_seed: int, settings: GenerationSettings) -> list[str]:
    """The ``readString`` lines for one Pythia instance."""
    return [
        f"Beams:eCM = {settings.sqrt_s}",
        *PROCESS_SETTINGS[check_class(jet_class)],
        f"PhaseSpace:pTHatMin = {settings.pt_hat_min}",
        f"PhaseSpace:pTHatMax = {settings.pt_hat_max}",
        *resonance_mass_limits(jet_class, settings.resonance_width_cut),
        # raise the sampling maximum when it is violated (WW violates it in ~4 % of events otherwise,
        # which undersamples those phase-space points; with this on, ~0.5 % while the maximum adapts)
        "PhaseSpace:increaseMaximum = on",
        # stable if c*tau > tau0Max (mm): the generator-level definition of a final-state particle
        "ParticleDecays:limitTau0 = on",
        f"ParticleDecays:tau0Max = {settings.tau0_max_mm}",
        "Random:setSeed = on",
        f"Random:seed = {pythia_seed}",
        # keep stdout clean: no init/statistics listings and no "event N" counters
        "Print:quiet = on",
        "Next:numberCount = 0",
    ]


def resonance_mass_limits(jet_class: str, width_cut: float) -> list[str]:
    """``id:mMin`` / ``id:mMax`` lines restricting the class's resonances to m0 +- width_cut * width."""
    lines = []
    for pid in RESONANCES_IN_CLASS[jet_class]:
        m0, width = RESONANCE_MASS_WIDTH[pid]
        lines += [f"{pid}:mMin = {m0 - width_cut * width:.4f}", f"{pid}:mMax = {m0 + width_cut * width:.4f}"]
    return lines


def make_pythia(jet_class: str, pythia_seed: int, settings: GenerationSettings):
    """An initialised ``pythia8mc.Pythia`` for ``jet_class`` (about 0.3 s and 180 MB)."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)  # printBanner=False
    for pid in RESONANCES_IN_CLASS[check_class(jet_class)]:
        expected = RESONANCE_MASS_WIDTH[pid]
        found = (pythia.particleData.m0(pid), pythia.particleData.mWidth(pid))
        if not np.allclose(found, expected):
            raise RuntimeError(
                f"Pythia's mass/width of {pid} is {found}, gsgm assumes {expected}: "
                "update RESONANCE_MASS_WIDTH"
            )
    for line in pythia_settings(jet_class, pythia_seed, settings):
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia initialisation failed for class {jet_class!r}")
    return pythia


@contextlib.contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    """Redirect the process-level stdout (file descriptor 1) to /dev/null, C and C++ writes included."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        # C stdio buffers stdout when it is a pipe: flush it while fd 1 still points to /dev/null,
        # otherwise the banner would appear later on the real stdout.
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


_BANNER_DONE = False


def silence_fastjet_banner() -> None:
    """Let FastJet print its banner (once per process) into /dev/null instead of stdout."""
    global _BANNER_DONE
    if _BANNER_DONE:
        return
    import awkward as ak
    import fastjet

    dummy = ak.Array([[{"px": 1.0, "py": 0.0, "pz": 0.0, "E": 1.0}]])
    with _stdout_to_devnull():
        fastjet.ClusterSequence(dummy, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.8)).inclusive_jets()
    _BANNER_DONE = True


def _wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Map angles to [-pi, pi)."""
    return (phi + np.pi) % (2.0 * np.pi) - np.pi


def _delta_r(eta1: np.ndarray, phi1: np.ndarray, eta2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    return np.hypot(eta1 - eta2, _wrap_phi(phi1 - phi2))


def _eta_phi(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pseudorapidity and azimuth of 3-momenta (pt = 0 gives +-inf, which never passes a cut)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(pz / np.hypot(px, py))
    return eta, np.arctan2(py, px)


class _FlatRecord:
    """The Pythia event records of a batch as flat numpy arrays; ``offsets[e]`` is event e's entry 0."""

    def __init__(self, prt) -> None:
        import awkward as ak

        counts = ak.to_numpy(ak.num(prt, axis=1)).astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.counts = counts
        self.id = ak.to_numpy(ak.flatten(prt.id)).astype(np.int64)
        self.status = ak.to_numpy(ak.flatten(prt.status)).astype(np.int64)
        self.daughter1 = ak.to_numpy(ak.flatten(prt.daughter1)).astype(np.int64)
        self.daughter2 = ak.to_numpy(ak.flatten(prt.daughter2)).astype(np.int64)
        self.px = ak.to_numpy(ak.flatten(prt.p.px))
        self.py = ak.to_numpy(ak.flatten(prt.p.py))
        self.pz = ak.to_numpy(ak.flatten(prt.p.pz))
        self.e = ak.to_numpy(ak.flatten(prt.p.e))

    def bottom_copy(self, index: np.ndarray, event: np.ndarray) -> np.ndarray:
        """Follow each entry (global index) down its chain of copies to the last one before the decay.

        A particle is continued by a daughter with the same PDG id: a recoil copy (single daughter) or
        the particle after an emission (daughters W + photon, t + gluon). Only the two ends of the
        daughter range are inspected; emissions and copies have at most two daughters.
        """
        index = index.copy()
        offset = self.offsets[event]
        for _ in range(10_000):
            d1, d2 = self.daughter1[index], self.daughter2[index]
            has = d1 > 0
            first = np.where(has, offset + d1, index)
            second = np.where(has & (d2 > 0), offset + d2, first)
            same1 = has & (self.id[first] == self.id[index])
            same2 = has & (second != first) & (self.id[second] == self.id[index])
            # exactly one daughter continues the particle; two same-id daughters would be a split
            step = same1 ^ same2
            if not step.any():
                return index
            index = np.where(step, np.where(same1, first, second), index)
        raise RuntimeError("copy chain in the Pythia event record did not end")

    def two_daughters(
        self, index: np.ndarray, event: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Global indices of the two decay products of each entry, and whether it decays to exactly two."""
        d1, d2 = self.daughter1[index], self.daughter2[index]
        ok = (d1 > 0) & (d2 == d1 + 1)
        first = np.where(ok, self.offsets[event] + d1, index)
        return first, np.where(ok, first + 1, index), ok

    def eta_phi(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _eta_phi(self.px[index], self.py[index], self.pz[index])


def _decay_quarks(rec: _FlatRecord, res: np.ndarray, event: np.ndarray, jet_class: str):
    """Quark-level decay products of resonances (global indices of their last copies).

    Returns:
        (products [n, k] global indices, ok [n]) with k = 3 for tops (b q q') and 2 for W/Z (q q').
        ok is False where the decay was not the expected two-body chain.
    """
    a, b, ok = rec.two_daughters(res, event)
    if jet_class != "t":
        ok &= (np.abs(rec.id[a]) <= 5) & (np.abs(rec.id[b]) <= 5)
        return np.stack([a, b], axis=1), ok
    # t -> W q: find the W among the two daughters, follow it to its decay into q q'
    a_is_w = np.abs(rec.id[a]) == 24
    w = np.where(a_is_w, a, b)
    quark = np.where(a_is_w, b, a)
    ok &= (np.abs(rec.id[w]) == 24) & (np.abs(rec.id[quark]) <= 5)
    w_last = rec.bottom_copy(w, event)
    q1, q2, ok_w = rec.two_daughters(w_last, event)
    ok_w &= (np.abs(rec.id[q1]) <= 5) & (np.abs(rec.id[q2]) <= 5)
    return np.stack([quark, q1, q2], axis=1), ok & ok_w


@dataclass
class _BatchResult:
    particles: np.ndarray  # [n, P, 4] float32
    jets: np.ndarray  # [n, 4] float32
    num_constituents: np.ndarray  # [n] int32
    event_index: np.ndarray  # [n] int64, event number of each kept jet inside the batch


def select_jets(events, jet_class: str, settings: GenerationSettings, max_particles: int) -> _BatchResult:
    """Cluster, select and match the jets of a batch of Pythia events (``Pythia.nextBatch`` output).

    Vectorised over events: the event records come as awkward arrays filled in C++, FastJet clusters the
    whole batch in one call, and the matching runs on flat numpy arrays.

    Returns:
        at most one jet per event, in event order, with particles [n, max_particles, 4] and jets [n, 4].
    """
    import awkward as ak
    import fastjet

    prt = events.prt
    rec = _FlatRecord(prt)

    # --- final-state visible particles, made massless for the clustering -----------------------------
    visible = (prt.status > 0) & (abs(prt.id) != 12) & (abs(prt.id) != 14) & (abs(prt.id) != 16)
    fs = prt[visible].p
    px, py, pz, e_true = fs.px, fs.py, fs.pz, fs.e
    p_abs = np.sqrt(px * px + py * py + pz * pz)
    inputs = ak.zip({"px": px, "py": py, "pz": pz, "E": p_abs})
    jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, settings.jet_radius)
    sequence = fastjet.ClusterSequence(inputs, jet_def)
    # Jets below jet_pt_min cannot pass the window, so dropping them does not change which jet is the
    # hardest central one of the events that are kept.
    jets = sequence.inclusive_jets(min_pt=settings.jet_pt_min)
    constituent_index = sequence.constituent_index(min_pt=settings.jet_pt_min)

    # --- hardest jet with |eta| < eta_max, inside the pt window ---------------------------------------
    jet_pt = np.hypot(jets.px, jets.py)
    jet_eta = np.arcsinh(jets.pz / jet_pt)
    central_pt = ak.where(abs(jet_eta) < settings.jet_abs_eta_max, jet_pt, -1.0)
    best = ak.argmax(central_pt, axis=1, keepdims=True)
    best_pt = ak.to_numpy(ak.fill_none(ak.firsts(central_pt[best]), -1.0))
    keep = (best_pt >= settings.jet_pt_min) & (best_pt <= settings.jet_pt_max)
    if not keep.any():
        return _empty_result(max_particles)
    kept_events = np.nonzero(keep)[0]

    # constituents of the chosen jet, with true energies (for the mass) and massless directions
    # drop_none: every kept event has a jet, and without the option type ak.to_numpy gives plain arrays
    cidx = ak.drop_none(ak.firsts(constituent_index[best])[keep])
    cpx, cpy, cpz, ce = px[keep][cidx], py[keep][cidx], pz[keep][cidx], e_true[keep][cidx]
    sum_px, sum_py, sum_pz, sum_e = (ak.to_numpy(ak.sum(x, axis=1)) for x in (cpx, cpy, cpz, ce))
    pt_j = np.hypot(sum_px, sum_py)
    eta_j, phi_j = _eta_phi(sum_px, sum_py, sum_pz)
    mass_j = np.sqrt(np.maximum(sum_e**2 - sum_px**2 - sum_py**2 - sum_pz**2, 0.0))
    # the constituent lists must describe the jets they were chosen with (same order in FastJet's output)
    if not np.allclose(pt_j, best_pt[keep], rtol=1e-9, atol=1e-6):
        raise RuntimeError("FastJet constituents do not add up to the selected jets")

    # --- matching to the hard process ----------------------------------------------------------------
    event = kept_events
    # Pythia's event record keeps the outgoing particles of the 2 -> 2 hard process at entries 5 and 6
    hard = np.stack([rec.offsets[event] + 5, rec.offsets[event] + 6], axis=1)
    if not np.all(np.isin(np.abs(rec.status[hard]), (22, 23))):
        raise RuntimeError("entries 5 and 6 of a Pythia event are not the outgoing hard-process particles")
    if jet_class in RESONANCE_ID:
        hard = np.stack([rec.bottom_copy(hard[:, k], event) for k in range(2)], axis=1)
    h_eta, h_phi = rec.eta_phi(hard)
    dr = _delta_r(h_eta, h_phi, eta_j[:, None], phi_j[:, None])
    nearest = np.argmin(dr, axis=1)
    rows = np.arange(len(event))
    matched_obj = hard[rows, nearest]
    matched = dr[rows, nearest] < settings.match_radius
    matched_id = np.abs(rec.id[matched_obj])
    if jet_class in RESONANCE_ID:
        matched &= matched_id == RESONANCE_ID[jet_class]
        if settings.require_containment:
            products, ok = _decay_quarks(rec, matched_obj, event, jet_class)
            q_eta, q_phi = rec.eta_phi(products)
            q_dr = _delta_r(q_eta, q_phi, eta_j[:, None], phi_j[:, None])
            matched &= ok & np.all(q_dr < settings.match_radius, axis=1)
    else:
        matched &= np.isin(matched_id, PARTON_IDS[jet_class])
    if not matched.any():
        return _empty_result(max_particles)

    # --- particle features, sorted by pt, truncated and zero-padded ----------------------------------
    sel = np.nonzero(matched)[0]
    cpx, cpy, cpz = cpx[sel], cpy[sel], cpz[sel]
    pt_j, eta_j, phi_j, mass_j = pt_j[sel], eta_j[sel], phi_j[sel], mass_j[sel]
    c_pt = np.hypot(cpx, cpy)
    c_eta = np.arcsinh(cpz / c_pt)
    c_phi = np.arctan2(cpy, cpx)
    order = ak.argsort(c_pt, axis=1, ascending=False, stable=True)
    c_pt, c_eta, c_phi = c_pt[order], c_eta[order], c_phi[order]
    features = [
        c_eta - eta_j,
        _wrap_phi(c_phi - phi_j),
        c_pt / pt_j,
    ]
    n_const = ak.to_numpy(ak.num(c_pt, axis=1)).astype(np.int32)
    out = np.zeros((len(sel), max_particles, 4), dtype=np.float32)
    for k, feature in enumerate(features):
        padded = ak.fill_none(ak.pad_none(feature, max_particles, axis=1, clip=True), 0.0)
        out[..., k] = ak.to_numpy(padded)
    kept = np.minimum(n_const, max_particles)
    out[..., 3] = np.arange(max_particles)[None, :] < kept[:, None]
    jet_features = np.stack([pt_j, eta_j, mass_j, kept.astype(np.float64)], axis=1).astype(np.float32)
    return _BatchResult(out, jet_features, n_const, kept_events[sel].astype(np.int64))


def _empty_result(max_particles: int) -> _BatchResult:
    return _BatchResult(
        np.zeros((0, max_particles, 4), np.float32),
        np.zeros((0, 4), np.float32),
        np.zeros(0, np.int32),
        np.zeros(0, np.int64),
    )


@dataclass(frozen=True)
class ChunkTask:
    """One unit of work: ``num_jets`` jets of ``jet_class`` from chunk ``chunk_index``."""

    jet_class: str
    chunk_index: int
    num_jets: int
    seed: int
    max_particles: int
    settings: GenerationSettings


def generate_chunk(task: ChunkTask) -> GeneratedJets:
    """Run one Pythia instance (seeded by :func:`chunk_seed`) until ``task.num_jets`` jets pass.

    Events are generated in batches whose size adapts to the observed efficiency; because jets are kept
    in event order and the random stream does not depend on the batch boundaries, the result does not
    depend on the batch sizes either.
    """
    silence_fastjet_banner()
    pythia = make_pythia(
        task.jet_class, chunk_seed(task.seed, task.jet_class, task.chunk_index), task.settings
    )
    parts: list[_BatchResult] = []
    have = events_done = 0
    events_needed = 0
    batch = max(8, int(task.num_jets * 1.5))
    # a selection efficiency below 1 % means a broken setup, not bad luck: stop instead of looping on
    max_events = 100 * task.num_jets + 1000
    while have < task.num_jets:
        if events_done > max_events:
            raise RuntimeError(
                f"class {task.jet_class!r}: only {have} of {task.num_jets} jets passed in {events_done} "
                "events; check the generation settings"
            )
        events = pythia.nextBatch(batch)
        result = select_jets(events, task.jet_class, task.settings, task.max_particles)
        take = min(len(result.jets), task.num_jets - have)
        if take:
            parts.append(_BatchResult(*(a[:take] for a in dataclasses.astuple(result))))
            events_needed = events_done + int(result.event_index[take - 1]) + 1
        have += take
        events_done += len(events)
        efficiency = max(have / events_done, 0.05)
        batch = int(min(max((task.num_jets - have) / efficiency * 1.1 + 4, 8), 500))
    del pythia
    return GeneratedJets(
        particles=np.concatenate([p.particles for p in parts]),
        jets=np.concatenate([p.jets for p in parts]),
        num_constituents=np.concatenate([p.num_constituents for p in parts]),
        events=events_needed,
    )


def chunk_tasks(
    classes: Sequence[str], jets_per_class: int, max_particles: int, seed: int, settings: GenerationSettings
) -> list[ChunkTask]:
    """Split the work into chunks of ``settings.chunk_size`` jets (the last chunk of a class may be short)."""
    tasks = []
    for jet_class in classes:
        for k, start in enumerate(range(0, jets_per_class, settings.chunk_size)):
            n = min(settings.chunk_size, jets_per_class - start)
            tasks.append(ChunkTask(jet_class, k, n, seed, max_particles, settings))
    return tasks


def generate_jets(
    classes: Sequence[str],
    jets_per_class: int,
    max_particles: int = 150,
    seed: int = 0,
    workers: int | None = None,
    settings: GenerationSettings | None = None,
    progress: bool = True,
) -> dict[str, GeneratedJets]:
    """Generate ``jets_per_class`` jets for each class, with up to ``max_particles`` particles each.

    Args:
        classes: jet classes from JET_CLASSES.
        jets_per_class: N, jets per class.
        max_particles: P, particle slots per jet (use the largest count you want to write).
        seed: base seed (>= 0); each chunk derives its own Pythia seed from it.
        workers: processes (default: number of cores); the arrays do not depend on it.
        settings: physics and chunking settings (default GenerationSettings()).
        progress: show a tqdm bar on stderr.

    With workers > 1 the chunks run in a ``spawn`` pool (fresh interpreters, no inherited Pythia or
    thread state), so a calling script needs the usual ``if __name__ == "__main__":`` guard.

    Returns:
        {class: GeneratedJets} with particles [N, P, 4] and jets [N, 4].
    """
    settings = settings or GenerationSettings()
    classes = [check_class(c) for c in classes]
    if jets_per_class < 1:
        raise ValueError(f"jets_per_class must be >= 1, got {jets_per_class}")
    if max_particles < 1:
        raise ValueError(f"max_particles must be >= 1, got {max_particles}")
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    from tqdm import tqdm

    tasks = chunk_tasks(classes, jets_per_class, max_particles, seed, settings)
    results: list[GeneratedJets] = []
    bar = tqdm(
        total=jets_per_class * len(classes),
        unit="jet",
        file=sys.stderr,
        disable=not progress,
        desc="generating",
    )
    with bar:
        if workers == 1 or len(tasks) == 1:
            for task in tasks:
                results.append(generate_chunk(task))
                bar.update(task.num_jets)
        else:
            # spawn: a fresh interpreter per worker, no Pythia/FastJet state inherited from the parent
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(workers, len(tasks)), initializer=silence_fastjet_banner) as pool:
                for task, result in zip(tasks, pool.imap(generate_chunk, tasks, chunksize=1), strict=True):
                    results.append(result)
                    bar.update(task.num_jets)
    output = {}
    for jet_class in classes:
        mine = [r for t, r in zip(tasks, results, strict=True) if t.jet_class == jet_class]
        output[jet_class] = GeneratedJets(
            particles=np.concatenate([r.particles for r in mine]),
            jets=np.concatenate([r.jets for r in mine]),
            num_constituents=np.concatenate([r.num_constituents for r in mine]),
            events=sum(r.events for r in mine),
        )
    return output


def software_versions() -> dict[str, str]:
    """Versions of the packages that define the generated events."""
    import gsgm

    versions = {"gsgm": gsgm.__version__}
    for package in ("pythia8mc", "fastjet", "numpy", "awkward"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def provenance(
    jet_class: str, seed: int, settings: GenerationSettings, command: str, jets: GeneratedJets
) -> dict[str, Any]:
    """HDF5 root attributes describing how a file was made (scalars and strings only)."""
    versions = software_versions()
    return {
        "generator": "gsgm.data.generation (Pythia 8 + FastJet)",
        "command": command,
        "jet_class": jet_class,
        "seed": int(seed),
        "chunk_seed_rule": "numpy SeedSequence([seed, class index, chunk index]) -> 1..900000000",
        "settings": json.dumps(settings.to_dict(), sort_keys=True),
        # the per-chunk "Random:seed" line is left out: it follows from seed and chunk_seed_rule
        "pythia_settings": json.dumps(
            [s for s in pythia_settings(jet_class, 1, settings) if not s.startswith("Random:seed ")]
        ),
        "events_generated": int(jets.events),
        "selection_efficiency": float(len(jets) / max(jets.events, 1)),
        "mean_num_constituents": float(jets.num_constituents.mean()),
        **{f"version_{name}": value for name, value in versions.items()},
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def write_class_files(
    out_dir: str | os.PathLike,
    generated: dict[str, GeneratedJets],
    particle_counts: Sequence[int],
    seed: int,
    settings: GenerationSettings,
    command: str,
) -> list[Path]:
    """Write ``class_file_name(c, P)`` for every class and particle count (atomic; JetNet validated)."""
    written = []
    for jet_class, jets in generated.items():
        attributes = provenance(jet_class, seed, settings, command, jets)
        for count in particle_counts:
            pf, jf = jets.truncated(count)
            path = Path(out_dir) / class_file_name(jet_class, count)
            written.append(write_jetnet_file(path, pf, jf, {**attributes, "num_particles": int(count)}))
    return written
