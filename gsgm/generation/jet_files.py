"""JetNet-format sample directories: what jet sampling writes and what evaluation and plots read.

A sample directory holds one JetNet HDF5 file per class, named as the data files are
(``gsgm.data.jetnet_format.class_file_name``: ``t.hdf5`` for 30 particles, ``t150.hdf5`` for 150), so
that a generated directory and a truth directory are read the same way. Each file's root attributes
carry the provenance (generator, run, steps, seed, versions). ``timing.json`` beside them holds the
sampling time (:mod:`gsgm.generation.timing`). ``manifest.json`` records the set (run, steps, seed,
classes, the SHA-256 of every file and a content hash): the directory is written as one unit
(:func:`write_jet_sample_set`), and readers verify it (:mod:`gsgm.generation.sample_sets`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gsgm.data.jetnet_format import class_file_name, read_jetnet_file, write_jetnet_file
from gsgm.generation.sample_sets import (
    MANIFEST_NAME,
    arrays_hash,
    make_manifest,
    verify_sample_directory,
)
from gsgm.utils.atomic import atomic_directory, write_json_atomic
from gsgm.utils.checksums import sha256_file

__all__ = ["read_jet_class_file", "write_jet_sample_set", "write_jet_samples"]


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


def write_jet_sample_set(
    out_dir: str | os.PathLike,
    generated: Mapping[str, tuple[np.ndarray, np.ndarray]],
    num_particles: int,
    attributes: Mapping[str, Any],
    params: Mapping[str, Any],
) -> list[Path]:
    """Write a complete sample directory as one unit: class files + ``manifest.json``, then rename.

    ``out_dir`` is replaced as a whole (callers check first that replacing it is allowed:
    :func:`gsgm.generation.sample_sets.prepare_output`); its ``timing.json``, a log of earlier
    sampling runs, is carried over. Returns the final paths of the class files.

    Args:
        generated: {class: (particle_features [N, P, 4], jet_features [N, 4])}, JetNet layout.
        attributes: provenance stored in every file.
        params: what the manifest records about the set (run, steps, seed, classes, counts...).
    """
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as staging:
        written = write_jet_samples(staging, generated, num_particles, attributes)
        hashes = {path.name: sha256_file(path) for path in written}
        content = arrays_hash([array for jet_class in sorted(generated) for array in generated[jet_class]])
        old_timing = out_dir / "timing.json"
        if old_timing.is_file():
            shutil.copy2(old_timing, staging / "timing.json")
        # last: a directory with a manifest is complete
        write_json_atomic(staging / MANIFEST_NAME, make_manifest(params, hashes, content))
    return [out_dir / path.name for path in written]


def read_jet_class_file(
    directory: str | os.PathLike, jet_class: str, num_particles: int
) -> tuple[np.ndarray, np.ndarray]:
    """One class of a JetNet-format directory (generated or truth), validated.

    Returns:
        (particle_features [N, P, 4], jet_features [N, 4]).

    A directory written by ``gsgm sample`` is checked against its manifest first
    (:func:`gsgm.generation.sample_sets.verify_sample_directory`): a mixed or changed set is refused.

    Raises:
        ValueError: the file is not valid JetNet, or a real particle has pt_rel < 0 (pt_rel is a
            momentum fraction; a generator that produces it is broken), naming the file.
        SampleSetError: the file is not part of the directory's sample set.
    """
    path = Path(directory) / class_file_name(jet_class, num_particles)
    if path.is_file():
        verify_sample_directory(directory, [path.name])
    particles, jets = read_jetnet_file(path, expected_particles=num_particles)
    negative = int(((particles[..., 2] < 0) & (particles[..., 3] > 0)).sum())
    if negative:
        raise ValueError(f"{path}: {negative} particles have pt_rel < 0 (pt_rel is a momentum fraction)")
    return particles, jets
