"""Generate neutral-current DIS events (e- p) with Pythia 8 in the layout of :mod:`gsgm.data.dis_format`.

Physics (defaults; every number is a field of :class:`DisSettings`), as in the ep-scattering paper:

* e- p at sqrt(s) = 105 GeV (EIC energies) in the centre-of-mass frame, proton along +z, electron along
  -z (``Beams:frameType = 1``), so that the energy fractions of all final-state particles sum to 2
  exactly (paper eq. 11). Neutral-current DIS: ``WeakBosonExchange:ff2ff(t:gmZ)`` (gamma*/Z exchange)
  with ``PhaseSpace:Q2Min = 25`` (paper: Q^2 > 25 GeV^2, no photoproduction), the dipole recoil
  scheme for the initial-state shower, no PDF for the lepton and no QED shower off it (the Pythia
  authors' DIS settings, example main36).
* Kept: final-state pi+, e- and K+ with |eta| < 10 (no pt cut), as (pt, eta, phi, pid); eta is the
  pseudorapidity along the proton direction. Electrons reach down to eta ~ -3 (the Q^2 cut).
* Rotation: every event is rotated about the beam axis so that its leading electron (the e- of largest
  z = 2 pt cosh(eta) / sqrt(s)) sits at phi = -pi; phi = 0 is then the recoiling hadronic system.
* Generator-level Q^2 = -t_hat and x (the struck parton's momentum fraction) are stored per event.
* Checked on every event: the energy fractions of all final-state particles sum to 2 (to 1e-6), and
  the kept particles' z sum to at most 2 (paper eq. 11); a violation stops the generation.

Reproducibility: events come in chunks of ``chunk_size``; chunk k runs its own Pythia instance seeded
from numpy's SeedSequence([seed, DIS_STREAM, k]), and chunks are concatenated in order, so the file
depends on (seed, chunk_size, settings) and not on the number of worker processes.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gsgm.data.dis_format import SPECIES, DisEvents
from gsgm.data.generation import _MAX_PYTHIA_SEED, _wrap_phi, software_versions

__all__ = [
    "DisChunk",
    "DisSettings",
    "dis_chunk_seed",
    "dis_provenance",
    "generate_dis_chunk",
    "generate_dis_events",
    "pythia_dis_settings",
    "run_chunks",
]

#: Second entry of the seed sequence, so that DIS chunk seeds never equal the jet chunks' (class < 5).
DIS_STREAM = 1001
#: Where the leading electron is put (the lower phi edge of the images).
ELECTRON_PHI = -np.pi


@dataclass(frozen=True)
class DisSettings:
    """Everything that defines the generated events besides the seed and their number.

    sqrt_s [GeV]; q2_min [GeV^2]; eta_max (|eta| < eta_max kept); electron_energy: None for the
    centre-of-mass frame (default), else beam energies E_e and E_p = s / (4 E_e) along -z / +z
    (a collider frame: the energy fractions then sum to 2 (E_e + E_p) / sqrt(s), not 2);
    chunk_size: events per seeded chunk.
    """

    sqrt_s: float = 105.0
    q2_min: float = 25.0
    eta_max: float = 10.0
    electron_energy: float | None = None
    chunk_size: int = 1000

    def __post_init__(self):
        if not (self.sqrt_s > 0 and self.q2_min > 0 and self.eta_max > 0 and self.chunk_size >= 1):
            raise ValueError(f"invalid DIS settings {self}")
        if self.electron_energy is not None and not self.electron_energy > 0:
            raise ValueError(f"electron_energy must be > 0 or None, got {self.electron_energy}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def total_energy(self) -> float:
        """Sum of the beam energies [GeV]: sqrt(s) in the CM frame."""
        if self.electron_energy is None:
            return self.sqrt_s
        return self.electron_energy + self.sqrt_s**2 / (4.0 * self.electron_energy)


def dis_chunk_seed(seed: int, chunk_index: int) -> int:
    """Pythia seed (1..900,000,000) of chunk ``chunk_index`` under base ``seed`` (SeedSequence hash)."""
    if seed < 0 or chunk_index < 0:
        raise ValueError(f"seed and chunk index must be >= 0, got {seed}, {chunk_index}")
    state = np.random.SeedSequence([seed, DIS_STREAM, chunk_index])
    return int(state.generate_state(1, dtype=np.uint64)[0] % _MAX_PYTHIA_SEED) + 1


def pythia_dis_settings(pythia_seed: int, settings: DisSettings) -> list[str]:
    """The ``readString`` lines of one Pythia instance."""
    if settings.electron_energy is None:
        beams = ["Beams:frameType = 1", f"Beams:eCM = {settings.sqrt_s}"]
    else:
        e_p = settings.sqrt_s**2 / (4.0 * settings.electron_energy)
        beams = ["Beams:frameType = 2", f"Beams:eA = {e_p}", f"Beams:eB = {settings.electron_energy}"]
    return [
        *beams,
        "Beams:idA = 2212",
        "Beams:idB = 11",
        "WeakBosonExchange:ff2ff(t:gmZ) = on",
        f"PhaseSpace:Q2Min = {settings.q2_min}",
        "SpaceShower:dipoleRecoil = on",
        "PDF:lepton = off",
        "TimeShower:QEDshowerByL = off",
        "Random:setSeed = on",
        f"Random:seed = {pythia_seed}",
        "Print:quiet = on",
        "Next:numberCount = 0",
    ]


def _make_pythia(pythia_seed: int, settings: DisSettings):
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in pythia_dis_settings(pythia_seed, settings):
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError("Pythia initialisation failed for DIS")
    return pythia


@dataclass
class DisChunk:
    """One chunk's events, plus the per-event energy-fraction sum of all final-state particles."""

    events: DisEvents
    sum_all_energy_fractions: np.ndarray  # [N]: sum of 2 E / sqrt(s) over every final-state particle
    skipped: int  # events without an electron within |eta| < eta_max (dropped)


def _select(batch, settings: DisSettings) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per-event particle arrays [n_i, 4] (rotated, sorted by z), event features [N, 2], energy sums."""
    import awkward as ak

    prt = batch.prt
    final = prt[prt.status > 0]
    energy_sum = 2.0 * ak.to_numpy(ak.sum(final.p.e, axis=1)) / settings.sqrt_s
    kept = final[(final.id == 211) | (final.id == 11) | (final.id == 321)]
    counts = ak.to_numpy(ak.num(kept, axis=1))
    px, py, pz = (ak.to_numpy(ak.flatten(getattr(kept.p, c))) for c in ("px", "py", "pz"))
    pid = ak.to_numpy(ak.flatten(kept.id)).astype(np.float64)
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(pz / pt)
    phi = np.arctan2(py, px)
    event = np.repeat(np.arange(len(counts)), counts)
    inside = (pt > 0) & (np.abs(eta) < settings.eta_max)
    pt, eta, phi, pid, event = pt[inside], eta[inside], phi[inside], pid[inside], event[inside]
    z = 2.0 * pt * np.cosh(eta) / settings.sqrt_s
    # Sort every event's particles by decreasing z (event order kept).
    order = np.lexsort((-z, event))
    pt, eta, phi, pid, event, z = (a[order] for a in (pt, eta, phi, pid, event, z))
    q2 = -ak.to_numpy(batch.info.tHat)
    x = ak.to_numpy(batch.info.x1)
    out, features, sums = [], [], []
    starts = np.searchsorted(event, np.arange(len(counts) + 1))
    for i in range(len(counts)):
        lo, hi = starts[i], starts[i + 1]
        electrons = np.nonzero(pid[lo:hi] == 11)[0]
        if electrons.size == 0:
            continue
        ref = phi[lo + electrons[0]]  # sorted by z: the first e- is the leading one
        rotated = _wrap_phi(phi[lo:hi] - ref + ELECTRON_PHI)
        rotated[electrons[0]] = ELECTRON_PHI  # exactly, whatever the rounding
        out.append(np.stack([pt[lo:hi], eta[lo:hi], rotated, pid[lo:hi]], axis=1))
        features.append((q2[i], x[i]))
        sums.append(energy_sum[i])
    return out, np.asarray(features, np.float64).reshape(-1, 2), np.asarray(sums)


def generate_dis_chunk(task: tuple[int, int, int, DisSettings]) -> DisChunk:
    """Chunk ``(seed, chunk_index, num_events, settings)``: one seeded Pythia run of ``num_events`` events.

    Raises RuntimeError when an event breaks the sum rule (all final-state energy fractions sum to
    2 E_total / sqrt(s), the kept z to at most that): a broken record, not a property of the data.
    """
    seed, chunk_index, num_events, settings = task
    pythia = _make_pythia(dis_chunk_seed(seed, chunk_index), settings)
    particles: list[np.ndarray] = []
    features, sums = [], []
    produced = 0
    skipped = 0
    while produced < num_events:
        batch = pythia.nextBatch(num_events - produced)
        produced += len(batch)
        parts, feats, total = _select(batch, settings)
        skipped += len(batch) - len(parts)
        particles += parts
        features.append(feats)
        sums.append(total)
    del pythia
    sums_all = np.concatenate(sums)
    expected = 2.0 * settings.total_energy / settings.sqrt_s
    if np.any(np.abs(sums_all - expected) > 1e-6 * expected):
        worst = float(sums_all[np.argmax(np.abs(sums_all - expected))])
        raise RuntimeError(
            f"chunk {chunk_index}: final-state energy fractions sum to {worst}, not {expected}"
        )
    size = max((len(p) for p in particles), default=1)
    array = np.zeros((len(particles), size, 4), np.float32)
    for i, p in enumerate(particles):
        array[i, : len(p)] = p
    feats = np.concatenate(features)
    event_features = np.concatenate(
        [feats, np.array([[len(p)] for p in particles], np.float64).reshape(-1, 1)], axis=1
    ).astype(np.float32)
    events = DisEvents(array, event_features, settings.sqrt_s, settings.eta_max)
    z_sum = events.z().sum(axis=1)
    if np.any(z_sum > expected * (1 + 1e-6)):
        raise RuntimeError(f"chunk {chunk_index}: kept particles' z sum to {z_sum.max()} > {expected}")
    return DisChunk(events, sums_all, skipped)


def run_chunks(
    function: Callable[[Any], Any],
    tasks: Sequence[Any],
    sizes: Sequence[int],
    *,
    workers: int | None = None,
    progress: bool = True,
    unit: str = "event",
) -> list[Any]:
    """``[function(task) for task in tasks]`` over a ``spawn`` pool of ``workers`` processes, in order,
    with a tqdm bar on stderr advancing by ``sizes[i]`` per finished task (default: all cores)."""
    from tqdm import tqdm

    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    results = []
    with tqdm(
        total=int(sum(sizes)), unit=unit, file=sys.stderr, disable=not progress, desc="generating"
    ) as bar:
        if workers == 1 or len(tasks) == 1:
            for task, size in zip(tasks, sizes, strict=True):
                results.append(function(task))
                bar.update(size)
        else:
            # spawn: fresh interpreters, no Pythia or thread state inherited from the parent
            with multiprocessing.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
                for size, result in zip(sizes, pool.imap(function, tasks, chunksize=1), strict=True):
                    results.append(result)
                    bar.update(size)
    return results


def generate_dis_events(
    num_events: int,
    seed: int = 0,
    *,
    workers: int | None = None,
    settings: DisSettings | None = None,
    progress: bool = True,
) -> DisEvents:
    """``num_events`` Pythia events (fewer only if some had no electron within |eta| < eta_max).

    The result depends on (seed, settings) and not on ``workers`` (module docstring); a calling
    script needs the usual ``if __name__ == "__main__":`` guard for workers > 1.
    """
    settings = settings or DisSettings()
    if num_events < 1:
        raise ValueError(f"num_events must be >= 1, got {num_events}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    starts = range(0, num_events, settings.chunk_size)
    tasks = [(seed, k, min(settings.chunk_size, num_events - s), settings) for k, s in enumerate(starts)]
    chunks = run_chunks(generate_dis_chunk, tasks, [t[2] for t in tasks], workers=workers, progress=progress)
    size = max(c.events.particles.shape[1] for c in chunks)
    particles = np.concatenate(
        [
            np.pad(c.events.particles, ((0, 0), (0, size - c.events.particles.shape[1]), (0, 0)))
            for c in chunks
        ]
    )
    features = np.concatenate([c.events.event_features for c in chunks])
    return DisEvents(particles, features, settings.sqrt_s, settings.eta_max)


def dis_provenance(seed: int, settings: DisSettings, command: str, events: DisEvents) -> dict[str, Any]:
    """HDF5 root attributes describing how a file was made (scalars and strings)."""
    return {
        "generator": "gsgm.data.dis_generation (Pythia 8, NC DIS)",
        "command": command,
        "seed": int(seed),
        "chunk_seed_rule": f"numpy SeedSequence([seed, {DIS_STREAM}, chunk index]) -> 1..900000000",
        "settings": json.dumps(settings.to_dict(), sort_keys=True),
        "pythia_settings": json.dumps(
            [s for s in pythia_dis_settings(1, settings) if not s.startswith("Random:seed ")]
        ),
        "species": json.dumps(list(SPECIES)),
        "num_events": len(events),
        **{f"version_{name}": value for name, value in software_versions().items()},
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
