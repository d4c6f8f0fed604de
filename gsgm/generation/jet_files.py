"""JetNet-format sample directories: what jet sampling writes and what evaluation and plots read.

A sample directory holds one JetNet HDF5 file per class, named as the data files are
(``gsgm.data.jetnet_format.class_file_name``: ``t.hdf5`` for 30 particles, ``t150.hdf5`` for 150), so
that a generated directory and a truth directory are read the same way. Each file's root attributes
carry the provenance (generator, run, steps, seed, versions). ``timing.json`` beside them holds the
sampling time (:mod:`gsgm.generation.timing`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gsgm.data.jetnet_format import class_file_name, read_jetnet_file, write_jetnet_file

__all__ = ["read_jet_class_file", "write_jet_samples"]


def write_jet_samples(
    out_dir: str | os.PathLike,
    generated: Mapping[str, tuple[np.ndarray, np.ndarray]],
    num_particles: int,
    attributes: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write one JetNet file per class into ``out_dir``, each atomically; return their paths.

    Args:
        generated: {class: (particle_features [N, P, 4], jet_features [N, 4])}, JetNet layout
            (eta_rel, phi_rel, pt_rel, mask; pt [GeV], eta, mass [GeV], multiplicity).
        num_particles: P, which decides the file names.
        attributes: scalar/string provenance stored as HDF5 root attributes of every file.
    """
    out_dir = Path(out_dir)
    return [
        write_jetnet_file(out_dir / class_file_name(jet_class, num_particles), particles, jets, attributes)
        for jet_class, (particles, jets) in generated.items()
    ]


def read_jet_class_file(
    directory: str | os.PathLike, jet_class: str, num_particles: int
) -> tuple[np.ndarray, np.ndarray]:
    """One class of a JetNet-format directory (generated or truth), validated.

    Returns:
        (particle_features [N, P, 4], jet_features [N, 4]).

    Raises:
        ValueError: the file is not valid JetNet, or a real particle has pt_rel < 0 (pt_rel is a
            momentum fraction; a generator that produces it is broken), naming the file.
    """
    path = Path(directory) / class_file_name(jet_class, num_particles)
    particles, jets = read_jetnet_file(path, expected_particles=num_particles)
    negative = int(((particles[..., 2] < 0) & (particles[..., 3] > 0)).sum())
    if negative:
        raise ValueError(f"{path}: {negative} particles have pt_rel < 0 (pt_rel is a momentum fraction)")
    return particles, jets
