"""The DIS event file: electron-proton events as lists of pi+, e- and K+ (HDF5), validated on reading.

One file holds N events of neutral-current deep-inelastic scattering in the electron-proton
centre-of-mass frame (proton along +z, electron along -z), with two datasets:

``particles`` float32 [N, P, 4]
    (pt [GeV], eta, phi [rad], pid) per particle; pid is the PDG id, one of 211 (pi+), 11 (e-) and
    321 (K+). Rows beyond an event's particles are all zero (pid 0). Particles are sorted by
    decreasing momentum fraction z = 2 pt cosh(eta) / sqrt(s). ``phi`` lies in [-pi, pi); the events
    are rotated so that the leading electron (the e- of largest z) sits at phi = -pi (the image
    edge, so phi = 0 is opposite to it, as in the paper's Fig. 5). |eta| < eta_max.
``event_features`` float32 [N, 3]
    (Q2 [GeV^2], x, num_particles): Q2 and Bjorken x of the hard process as the generator sets them
    (NaN where unknown, e.g. for users' files without them), and the number of real particles.

Root attributes: ``sqrt_s`` [GeV] and ``eta_max`` (required), provenance (optional: command, seed,
settings, versions).

Users' own files follow the same layout; :func:`read_dis_file` checks it and names the file, the
dataset, the index and the problem in a one-line :class:`DisFormatError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gsgm.utils.atomic import atomic_path

__all__ = [
    "EVENT_FEATURES",
    "EVENT_KEY",
    "PARTICLE_FEATURES",
    "PARTICLE_KEY",
    "SPECIES",
    "SPECIES_NAMES",
    "DisEvents",
    "DisFormatError",
    "read_dis_file",
    "resolve_dis_file",
    "split_events",
    "validate_dis_arrays",
    "write_dis_file",
]

#: PDG ids of the three image channels, in channel order (pi+, e-, K+), as in the paper's Fig. 2.
SPECIES: tuple[int, ...] = (211, 11, 321)
SPECIES_NAMES: dict[int, str] = {211: r"$\pi^+$", 11: r"$e^-$", 321: r"$K^+$"}
SPECIES_KEYS: dict[int, str] = {211: "pi+", 11: "e-", 321: "K+"}
PARTICLE_FEATURES: tuple[str, ...] = ("pt", "eta", "phi", "pid")
EVENT_FEATURES: tuple[str, ...] = ("Q2", "x", "num_particles")
PARTICLE_KEY = "particles"
EVENT_KEY = "event_features"
REQUIRED_ATTRIBUTES = ("sqrt_s", "eta_max")
#: The shipped sample (gsgm/data/builtin), what ``builtin`` means for DIS data.
BUILTIN_FILE = "dis_ep105.hdf5"
#: Share of a file's events, at its end, that training never sees (``split="test"``).
TEST_FRACTION = 0.2
SPLITS = ("train", "test", "all")


class DisFormatError(ValueError):
    """A file or array is not a valid DIS event file; the message names the file and the problem."""


@dataclass
class DisEvents:
    """Events in the layout of the module docstring.

    Attributes:
        particles: [N, P, 4] float32 (pt [GeV], eta, phi, pid), zero rows for padding.
        event_features: [N, 3] float32 (Q2 [GeV^2], x, num_particles).
        sqrt_s: centre-of-mass energy [GeV].
        eta_max: particles have |eta| < eta_max.
        attributes: the file's other root attributes (provenance).
    """

    particles: np.ndarray
    event_features: np.ndarray
    sqrt_s: float
    eta_max: float
    attributes: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.particles.shape[0])

    @property
    def mask(self) -> np.ndarray:
        """[N, P] bool: real particles."""
        return self.particles[..., 3] != 0

    def z(self) -> np.ndarray:
        """[N, P] momentum fraction z = 2 pt cosh(eta) / sqrt(s) (paper eq. 12); 0 for padding."""
        pt, eta = self.particles[..., 0].astype(np.float64), self.particles[..., 1].astype(np.float64)
        return np.where(self.mask, 2.0 * pt * np.cosh(eta) / self.sqrt_s, 0.0)

    def select(self, index) -> DisEvents:
        """The events at ``index`` (integer or boolean array or slice) as new DisEvents."""
        return DisEvents(
            self.particles[index],
            self.event_features[index],
            self.sqrt_s,
            self.eta_max,
            dict(self.attributes),
        )


def validate_dis_arrays(
    particles: np.ndarray, event_features: np.ndarray, eta_max: float, source: str = "<arrays>"
) -> None:
    """Check arrays against the layout; raise DisFormatError naming ``source``, dataset and index."""
    p, e = particles, event_features
    if p.ndim != 3 or p.shape[-1] != 4:
        raise DisFormatError(
            f"{source}: dataset '{PARTICLE_KEY}' must have shape [N, P, 4], got {list(p.shape)}"
        )
    if e.ndim != 2 or e.shape[-1] != 3:
        raise DisFormatError(f"{source}: dataset '{EVENT_KEY}' must have shape [N, 3], got {list(e.shape)}")
    if p.shape[0] == 0:
        raise DisFormatError(f"{source}: file is empty ('{PARTICLE_KEY}' has 0 events)")
    if p.shape[0] != e.shape[0]:
        raise DisFormatError(
            f"{source}: '{PARTICLE_KEY}' has {p.shape[0]} events but '{EVENT_KEY}' {e.shape[0]}"
        )
    bad = ~np.isfinite(p)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DisFormatError(
            f"{source}: dataset '{PARTICLE_KEY}' has {int(bad.sum())} NaN/inf values (first at {first})"
        )
    pid = p[..., 3]
    real = pid != 0
    unknown = real & ~np.isin(pid, SPECIES)
    if unknown.any():
        first = tuple(int(i) for i in np.argwhere(unknown)[0])
        raise DisFormatError(
            f"{source}: '{PARTICLE_KEY}' pid (feature 3) must be one of {list(SPECIES)} or 0 (padding), "
            f"found {pid[first]:g} at {first}"
        )
    padding_not_zero = ~real & np.any(p[..., :3] != 0, axis=-1)
    if padding_not_zero.any():
        first = tuple(int(i) for i in np.argwhere(padding_not_zero)[0])
        raise DisFormatError(f"{source}: '{PARTICLE_KEY}' padding row {first} (pid 0) is not all zero")
    checks = (
        (real & (p[..., 0] <= 0), "pt (feature 0) must be > 0"),
        (real & (np.abs(p[..., 1]) >= eta_max), f"|eta| (feature 1) must be < eta_max = {eta_max:g}"),
        (real & ((p[..., 2] < -np.pi) | (p[..., 2] >= np.pi)), "phi (feature 2) must lie in [-pi, pi)"),
    )
    for wrong, message in checks:
        if wrong.any():
            first = tuple(int(i) for i in np.argwhere(wrong)[0])
            raise DisFormatError(f"{source}: '{PARTICLE_KEY}' {message}, found {p[first]} at {first}")
    counts = real.sum(axis=1)
    mismatch = np.nonzero(counts != e[:, 2])[0]
    if mismatch.size:
        i = int(mismatch[0])
        raise DisFormatError(
            f"{source}: '{EVENT_KEY}' num_particles does not match the particles for {mismatch.size} events "
            f"(event {i}: num_particles={e[i, 2]:g}, particles={counts[i]})"
        )


def read_dis_file(path: str | os.PathLike) -> DisEvents:
    """Read and validate one DIS event file (layout: module docstring).

    Raises:
        FileNotFoundError: no such file. DisFormatError: anything else wrong, in one line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DIS event file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise DisFormatError(f"{path}: not a readable HDF5 file ({err})") from err
    with handle:
        for key in (PARTICLE_KEY, EVENT_KEY):
            if key not in handle:
                raise DisFormatError(
                    f"{path}: missing dataset '{key}' (found: {sorted(handle.keys()) or 'nothing'})"
                )
            node = handle[key]
            if not isinstance(node, h5py.Dataset) or not np.issubdtype(node.dtype, np.number):
                kind = f"dtype {node.dtype}" if isinstance(node, h5py.Dataset) else "a group"
                raise DisFormatError(f"{path}: '{key}' must be a numeric dataset, found {kind}")
        attributes = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
        for key in REQUIRED_ATTRIBUTES:
            value = attributes.get(key)
            if not isinstance(value, int | float | np.number) or not np.isfinite(value) or value <= 0:
                raise DisFormatError(
                    f"{path}: root attribute '{key}' must be a positive number, found {value!r}"
                )
        try:
            particles = np.asarray(handle[PARTICLE_KEY][...], dtype=np.float32)
            event_features = np.asarray(handle[EVENT_KEY][...], dtype=np.float32)
        except OSError as err:
            raise DisFormatError(f"{path}: cannot read the datasets ({err})") from err
    sqrt_s, eta_max = float(attributes.pop("sqrt_s")), float(attributes.pop("eta_max"))
    validate_dis_arrays(particles, event_features, eta_max, str(path))
    return DisEvents(particles, event_features, sqrt_s, eta_max, attributes)


def write_dis_file(
    path: str | os.PathLike, events: DisEvents, attributes: Mapping[str, Any] | None = None
) -> Path:
    """Validate ``events`` and write them atomically (gzip; ``attributes`` as extra root attributes)."""
    path = Path(path)
    particles = np.asarray(events.particles, dtype=np.float32)
    features = np.asarray(events.event_features, dtype=np.float32)
    validate_dis_arrays(particles, features, events.eta_max, str(path))
    options = {"compression": "gzip", "compression_opts": 9, "shuffle": True}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.create_dataset(PARTICLE_KEY, data=particles, **options)
            handle.create_dataset(EVENT_KEY, data=features, **options)
            handle.attrs["sqrt_s"] = float(events.sqrt_s)
            handle.attrs["eta_max"] = float(events.eta_max)
            for key, value in {**events.attributes, **(attributes or {})}.items():
                handle.attrs[key] = value
    return path


def resolve_dis_file(spec: str | os.PathLike) -> Path:
    """``"builtin"`` -> the shipped sample; a directory -> its ``dis_ep105.hdf5``; else the path."""
    if str(spec) == "builtin":
        return Path(__file__).resolve().parent / "builtin" / BUILTIN_FILE
    path = Path(spec).expanduser()
    return path / BUILTIN_FILE if path.is_dir() else path


def split_events(events: DisEvents, split: str) -> DisEvents:
    """``"train"``: the first 80 % of the events, ``"test"``: the last 20 % (never trained on), "all"."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    cut = int(round(len(events) * (1.0 - TEST_FRACTION)))
    if split == "all":
        return events
    return events.select(slice(0, cut) if split == "train" else slice(cut, None))
