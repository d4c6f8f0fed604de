"""The JetNet HDF5 format: names, validation, reading and atomic writing.

JetNet publishes one file per jet class, ``g.hdf5 q.hdf5 t.hdf5 w.hdf5 z.hdf5`` for up to 30 particles
and ``g150.hdf5 ...`` for up to 150, each with two datasets:

``particle_features`` float [N, P, 4]
    (eta_rel, phi_rel, pt_rel, mask) per particle; eta_rel = eta_particle - eta_jet,
    phi_rel = phi_particle - phi_jet (wrapped to [-pi, pi)), pt_rel = pt_particle / pt_jet,
    mask = 1 for a real particle and 0 for zero padding. Particles are sorted by decreasing pt_rel.
``jet_features`` float [N, 4]
    (pt [GeV], eta, mass [GeV], num_particles); num_particles is the number of real (mask = 1)
    particles stored for the jet.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gsgm.utils.atomic import atomic_path
from gsgm.utils.jetnet import JET_CLASSES

CLASS_NAMES: dict[str, str] = {
    "g": "gluon",
    "q": "light quark",
    "t": "top quark",
    "w": "W boson",
    "z": "Z boson",
}
PARTICLE_COUNTS: tuple[int, ...] = (30, 150)
PARTICLE_FEATURES: tuple[str, ...] = ("eta_rel", "phi_rel", "pt_rel", "mask")
JET_FEATURES: tuple[str, ...] = ("pt", "eta", "mass", "num_particles")
PARTICLE_KEY = "particle_features"
JET_KEY = "jet_features"


@dataclass
class JetSample:
    """Jets of several classes in JetNet layout, concatenated.

    Attributes:
        particles: [N, P, 4] float32 (eta_rel, phi_rel, pt_rel, mask).
        jets: [N, 4] float32 (pt [GeV], eta, mass [GeV], num_particles).
        labels: [N] int32, index into JET_CLASSES (so a one-hot is always len(JET_CLASSES) wide).
    """

    particles: np.ndarray
    jets: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.jets.shape[0])

    @property
    def num_particles(self) -> int:
        """P, the number of particle slots per jet."""
        return int(self.particles.shape[1])

    def select(self, index: np.ndarray) -> JetSample:
        """Return the jets at ``index`` (integer or boolean array) as a new JetSample."""
        return JetSample(self.particles[index], self.jets[index], self.labels[index])


class JetNetFormatError(ValueError):
    """A file or array does not follow the JetNet format; the message names file, dataset and problem."""


def class_file_name(jet_class: str, num_particles: int) -> str:
    """JetNet's file name for ``jet_class`` and ``num_particles`` (30 -> ``g.hdf5``, 150 -> ``g150.hdf5``)."""
    check_class(jet_class)
    if num_particles not in PARTICLE_COUNTS:
        raise ValueError(f"num_particles must be one of {PARTICLE_COUNTS}, got {num_particles}")
    return f"{jet_class}.hdf5" if num_particles == 30 else f"{jet_class}{num_particles}.hdf5"


def check_class(jet_class: str) -> str:
    """Return ``jet_class`` if it is a known JetNet class, else raise ValueError naming the valid ones."""
    if jet_class not in JET_CLASSES:
        raise ValueError(f"unknown jet class {jet_class!r}; valid classes are {', '.join(JET_CLASSES)}")
    return jet_class


def parse_classes(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """Parse ``"g,q,t"`` (or a list) into a validated list of classes, keeping the given order."""
    items = [c.strip().lower() for c in text.split(",")] if isinstance(text, str) else list(text)
    items = [c for c in items if c]
    if not items:
        raise ValueError("no jet classes given")
    if len(set(items)) != len(items):
        raise ValueError(f"jet classes given twice in {items}")
    return [check_class(c) for c in items]


def validate_arrays(
    particle_features: np.ndarray,
    jet_features: np.ndarray,
    source: str = "<arrays>",
    expected_particles: int | None = None,
) -> None:
    """Check two arrays against the JetNet format; raise JetNetFormatError naming ``source`` and the problem.

    Args:
        particle_features: [N, P, 4] (eta_rel, phi_rel, pt_rel, mask).
        jet_features: [N, 4] (pt, eta, mass, num_particles).
        source: file name (or other label) used in error messages.
        expected_particles: if given, P must equal it.
    """
    pf, jf = particle_features, jet_features
    if pf.ndim != 3 or pf.shape[-1] != 4:
        raise JetNetFormatError(
            f"{source}: dataset '{PARTICLE_KEY}' must have shape [N, P, 4], got {list(pf.shape)}"
        )
    if jf.ndim != 2 or jf.shape[-1] != 4:
        raise JetNetFormatError(f"{source}: dataset '{JET_KEY}' must have shape [N, 4], got {list(jf.shape)}")
    if pf.shape[0] == 0:
        raise JetNetFormatError(f"{source}: file is empty ('{PARTICLE_KEY}' has 0 jets)")
    if pf.shape[0] != jf.shape[0]:
        raise JetNetFormatError(
            f"{source}: '{PARTICLE_KEY}' has {pf.shape[0]} jets but '{JET_KEY}' has {jf.shape[0]}"
        )
    if expected_particles is not None and pf.shape[1] != expected_particles:
        raise JetNetFormatError(
            f"{source}: '{PARTICLE_KEY}' stores {pf.shape[1]} particles per jet, "
            f"expected {expected_particles}"
        )
    for key, arr in ((PARTICLE_KEY, pf), (JET_KEY, jf)):
        bad = ~np.isfinite(arr)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise JetNetFormatError(
                f"{source}: dataset '{key}' contains {int(bad.sum())} NaN/inf values (first at index {first})"
            )
    mask = pf[..., 3]
    not_binary = (mask != 0) & (mask != 1)
    if not_binary.any():
        first = tuple(int(i) for i in np.argwhere(not_binary)[0])
        raise JetNetFormatError(
            f"{source}: dataset '{PARTICLE_KEY}' mask (feature 3) must be 0 or 1, "
            f"found {mask[first]} at {first}"
        )
    counts = mask.sum(axis=1)
    mismatch = np.nonzero(counts != jf[:, 3])[0]
    if mismatch.size:
        i = int(mismatch[0])
        raise JetNetFormatError(
            f"{source}: '{JET_KEY}' num_particles does not match the mask for {mismatch.size} jets "
            f"(jet {i}: num_particles={jf[i, 3]}, mask sum={counts[i]})"
        )


def check_physical_kinematics(particle_features: np.ndarray, jet_features: np.ndarray, source: str) -> None:
    """Reject input jets whose kinematics cannot be physical: jet pT < 0, jet mass < 0, pt_rel < 0.

    Applied to data and truth files (not to a generator's output, whose unphysical values are what
    the evaluation measures). Arrays as in :func:`validate_arrays`.

    Raises:
        JetNetFormatError: naming ``source``, the quantity, how many jets and the first one.
    """
    checks = (
        (jet_features[:, 0] < 0, f"'{JET_KEY}' pt (feature 0)", "jets"),
        (jet_features[:, 2] < 0, f"'{JET_KEY}' mass (feature 2)", "jets"),
        (
            (particle_features[..., 2] < 0) & (particle_features[..., 3] > 0),
            f"'{PARTICLE_KEY}' pt_rel",
            "particles",
        ),
    )
    for bad, what, unit in checks:
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise JetNetFormatError(
                f"{source}: {what} is negative for {int(bad.sum())} {unit} (first at index {first}); "
                "momenta and masses must be >= 0"
            )


def _clip_truncated_multiplicity(particle_features: np.ndarray, jet_features: np.ndarray) -> None:
    """Clip num_particles to P for jets whose P slots are all filled (in place).

    A file may record the multiplicity before truncation to P particles; for a jet with every slot
    filled that is consistent with the mask, and jetnet's own loader clips it the same way. Any other
    disagreement between num_particles and the mask is still an error.
    """
    if particle_features.ndim != 3 or jet_features.ndim != 2 or jet_features.shape[-1] != 4:
        return  # validate_arrays reports the shape problem
    if particle_features.shape[0] != jet_features.shape[0] or particle_features.shape[-1] != 4:
        return
    slots = particle_features.shape[1]
    saturated = (particle_features[..., 3].sum(axis=1) == slots) & (jet_features[:, 3] > slots)
    jet_features[saturated, 3] = slots


def read_jetnet_file(
    path: str | os.PathLike, expected_particles: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one JetNet HDF5 file.

    Returns:
        (particle_features [N, P, 4] float32, jet_features [N, 4] float32).

    Raises:
        FileNotFoundError if the file does not exist, JetNetFormatError if it is not valid JetNet data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JetNet file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise JetNetFormatError(f"{path}: not a readable HDF5 file ({err})") from err
    with handle:
        for key in (PARTICLE_KEY, JET_KEY):
            if key not in handle:
                raise JetNetFormatError(
                    f"{path}: missing dataset '{key}' (found: {sorted(handle.keys()) or 'nothing'})"
                )
            # A group or a string dataset under the right name would otherwise fail below with a bare
            # TypeError/ValueError that does not name the file.
            node = handle[key]
            if not isinstance(node, h5py.Dataset) or not np.issubdtype(node.dtype, np.number):
                kind = f"dtype {node.dtype}" if isinstance(node, h5py.Dataset) else "a group"
                raise JetNetFormatError(f"{path}: '{key}' must be a numeric dataset, found {kind}")
        try:
            particle_features = np.asarray(handle[PARTICLE_KEY][...], dtype=np.float32)
            jet_features = np.asarray(handle[JET_KEY][...], dtype=np.float32)
        except OSError as err:  # e.g. a truncated download: the header reads but the data does not
            raise JetNetFormatError(f"{path}: cannot read the datasets ({err})") from err
    _clip_truncated_multiplicity(particle_features, jet_features)
    validate_arrays(particle_features, jet_features, str(path), expected_particles)
    return particle_features, jet_features


def read_file_attributes(path: str | os.PathLike) -> dict[str, Any]:
    """Return the HDF5 root attributes of a JetNet file (provenance written by gsgm; may be empty)."""
    with h5py.File(path, "r") as handle:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}


def write_jetnet_file(
    path: str | os.PathLike,
    particle_features: np.ndarray,
    jet_features: np.ndarray,
    attributes: Mapping[str, Any] | None = None,
    compress: bool = True,
) -> Path:
    """Validate and write one JetNet HDF5 file atomically (temporary name, then rename).

    Args:
        path: destination, e.g. ``DIR/t.hdf5``.
        particle_features: [N, P, 4] (eta_rel, phi_rel, pt_rel, mask).
        jet_features: [N, 4] (pt [GeV], eta, mass [GeV], num_particles).
        attributes: scalar/string provenance stored as HDF5 root attributes (command, seed, versions...).
        compress: gzip the datasets (smaller files, same values).
    """
    path = Path(path)
    pf = np.asarray(particle_features, dtype=np.float32)
    jf = np.asarray(jet_features, dtype=np.float32)
    validate_arrays(pf, jf, str(path))
    options = {"compression": "gzip", "compression_opts": 6, "shuffle": True} if compress else {}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.create_dataset(PARTICLE_KEY, data=pf, **options)
            handle.create_dataset(JET_KEY, data=jf, **options)
            for key, value in (attributes or {}).items():
                handle.attrs[key] = value
    return path
