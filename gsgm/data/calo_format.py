"""Calorimeter-shower files: the gsgm point-cloud layout and the CaloChallenge voxel layout.

gsgm point-cloud layout (HDF5, written by ``gsgm make-showers``):

``incident_energies`` float32 [N]
    energy of the incident photon, GeV.
``points`` float32 [N, P, 4]
    (x [mm], y [mm], layer, energy [MeV]) per hit cell, zero-padded after the last hit; x and y are cell
    centres, layer an integer 0..L-1 stored as float, energy the visible (sensor) energy > 0.
``num_points`` int32 [N]
    hits per shower (rows past it are zero).
root attribute ``geometry``
    JSON of :class:`gsgm.data.gflash.CaloGeometry` (layers, cell size, grid), needed to project
    generated points back onto cells.

CaloChallenge layout (their datasets 1-3; read only): ``incident_energies`` [N, 1] in MeV and
``showers`` [N, V] voxel energies in MeV, V = layers x a x b in C order. :func:`read_calochallenge`
turns the non-zero voxels into points (index coordinates: x = a index, y = b index, layer) for a
voxel shape given by the user, as the CaloChallenge files do not store it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gsgm.utils.atomic import atomic_path

__all__ = [
    "CaloFormatError",
    "CaloSample",
    "POINT_FEATURES",
    "pad_points",
    "read_calochallenge",
    "read_point_cloud_file",
    "validate_point_clouds",
    "write_point_cloud_file",
]

POINT_FEATURES: tuple[str, ...] = ("x", "y", "layer", "energy")


class CaloFormatError(ValueError):
    """A shower file does not follow its layout; the message names the file, dataset and problem."""


@dataclass
class CaloSample:
    """Showers as padded point clouds.

    Attributes:
        energies: [N] float32 incident energy, GeV.
        points: [N, P, 4] float32 (x [mm], y [mm], layer, energy [MeV]), zero-padded.
        num_points: [N] int32 real rows per shower.
        geometry: the calorimeter description (dict of :class:`gsgm.data.gflash.CaloGeometry`).
    """

    energies: np.ndarray
    points: np.ndarray
    num_points: np.ndarray
    geometry: dict[str, Any]

    def __len__(self) -> int:
        return int(self.energies.shape[0])

    @property
    def mask(self) -> np.ndarray:
        """[N, P] float32, 1 for real points."""
        return (np.arange(self.points.shape[1])[None, :] < self.num_points[:, None]).astype(np.float32)

    @property
    def num_layers(self) -> int:
        return len(self.geometry["absorber_mm"])

    def select(self, index: np.ndarray) -> CaloSample:
        return CaloSample(self.energies[index], self.points[index], self.num_points[index], self.geometry)


def pad_points(clouds: list[np.ndarray], width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``[n_i, 4]`` clouds into ``([N, P, 4] zero-padded, num_points [N])``, P = max n_i or width."""
    counts = np.array([len(c) for c in clouds], dtype=np.int32)
    width = int(counts.max(initial=1)) if width is None else int(width)
    if counts.size and counts.max() > width:
        raise ValueError(f"a shower has {counts.max()} points, more than the width {width}")
    out = np.zeros((len(clouds), max(width, 1), 4), np.float32)
    for i, cloud in enumerate(clouds):
        out[i, : len(cloud)] = cloud
    return out, counts


def validate_point_clouds(
    energies: np.ndarray, points: np.ndarray, num_points: np.ndarray, num_layers: int, source: str
) -> None:
    """Check arrays of the point-cloud layout; raise CaloFormatError naming ``source`` and the problem."""
    if energies.ndim != 1:
        raise CaloFormatError(
            f"{source}: dataset 'incident_energies' must have shape [N], got {list(energies.shape)}"
        )
    if points.ndim != 3 or points.shape[-1] != 4:
        raise CaloFormatError(
            f"{source}: dataset 'points' must have shape [N, P, 4], got {list(points.shape)}"
        )
    if num_points.shape != energies.shape or points.shape[0] != energies.shape[0]:
        raise CaloFormatError(
            f"{source}: 'incident_energies' {list(energies.shape)}, 'points' {list(points.shape)} and "
            f"'num_points' {list(num_points.shape)} must agree in N"
        )
    if len(energies) == 0:
        raise CaloFormatError(f"{source}: the file holds no showers")
    if not (np.isfinite(energies).all() and (energies > 0).all()):
        raise CaloFormatError(f"{source}: 'incident_energies' must be finite and > 0 (GeV)")
    if (num_points < 0).any() or (num_points > points.shape[1]).any():
        raise CaloFormatError(f"{source}: 'num_points' must lie in [0, {points.shape[1]}]")
    if not np.isfinite(points).all():
        raise CaloFormatError(f"{source}: dataset 'points' holds non-finite values")
    real = np.arange(points.shape[1])[None, :] < num_points[:, None]
    if (points[~real] != 0).any():
        raise CaloFormatError(f"{source}: 'points' rows past num_points must be zero padding")
    layers, energy = points[real][:, 2], points[real][:, 3]
    if (energy <= 0).any():
        raise CaloFormatError(f"{source}: point energies (feature 3) must be > 0 MeV")
    if ((layers < 0) | (layers > num_layers - 1) | (layers != np.round(layers))).any():
        raise CaloFormatError(f"{source}: point layers (feature 2) must be integers in [0, {num_layers - 1}]")


def write_point_cloud_file(
    path: str | os.PathLike, sample: CaloSample, attributes: dict[str, Any] | None = None
) -> Path:
    """Write ``sample`` in the point-cloud layout (atomically, compressed); returns the path."""
    validate_point_clouds(sample.energies, sample.points, sample.num_points, sample.num_layers, str(path))
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.create_dataset("incident_energies", data=sample.energies.astype(np.float32))
            handle.create_dataset(
                "points", data=sample.points.astype(np.float32), compression="gzip", shuffle=True
            )
            handle.create_dataset("num_points", data=sample.num_points.astype(np.int32))
            handle.attrs["geometry"] = json.dumps(sample.geometry, sort_keys=True)
            for key, value in (attributes or {}).items():
                handle.attrs[key] = value
    return Path(path)


def read_point_cloud_file(path: str | os.PathLike, max_showers: int | None = None) -> CaloSample:
    """Read and validate a point-cloud file (:data:`POINT_FEATURES` per point)."""
    source = str(path)
    if not Path(path).is_file():
        raise CaloFormatError(f"{source}: no such file")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise CaloFormatError(f"{source}: not an HDF5 file ({err})") from None
    with handle:
        for key in ("incident_energies", "points", "num_points"):
            if key not in handle:
                raise CaloFormatError(f"{source}: missing dataset '{key}' (has {sorted(handle.keys())})")
        if "geometry" not in handle.attrs:
            raise CaloFormatError(f"{source}: missing root attribute 'geometry'")
        stop = None if max_showers is None else int(max_showers)
        energies = np.asarray(handle["incident_energies"][:stop], np.float32)
        points = np.asarray(handle["points"][:stop], np.float32)
        num_points = np.asarray(handle["num_points"][:stop], np.int32)
        try:
            geometry = json.loads(handle.attrs["geometry"])
            num_layers = len(geometry["absorber_mm"])
        except (ValueError, KeyError, TypeError):
            raise CaloFormatError(
                f"{source}: attribute 'geometry' is not a calorimeter description"
            ) from None
    validate_point_clouds(energies, points, num_points, num_layers, source)
    return CaloSample(energies, points, num_points, geometry)


def read_calochallenge(
    path: str | os.PathLike, voxel_shape: tuple[int, int, int], max_showers: int | None = None
) -> CaloSample:
    """Read a CaloChallenge file (``incident_energies`` [N, 1] MeV, ``showers`` [N, V] MeV) as points.

    Args:
        voxel_shape: (layers, a, b) with layers * a * b = V, C order (CaloChallenge dataset 2: (45, 16, 9)).

    Returns:
        A CaloSample with energies in GeV and points (a index, b index, layer, energy [MeV]); the
        geometry records the voxel shape (``absorber_mm`` has one entry per layer, unknown thicknesses 0).
    """
    source = str(path)
    if not Path(path).is_file():
        raise CaloFormatError(f"{source}: no such file")
    layers, size_a, size_b = (int(v) for v in voxel_shape)
    with h5py.File(path, "r") as handle:
        for key in ("incident_energies", "showers"):
            if key not in handle:
                raise CaloFormatError(f"{source}: missing dataset '{key}' (has {sorted(handle.keys())})")
        stop = None if max_showers is None else int(max_showers)
        energies = np.asarray(handle["incident_energies"][:stop], np.float64)
        showers = np.asarray(handle["showers"][:stop], np.float32)
    if energies.ndim == 2 and energies.shape[1] == 1:
        energies = energies[:, 0]
    if energies.ndim != 1:
        raise CaloFormatError(
            f"{source}: 'incident_energies' must have shape [N, 1], got {list(energies.shape)}"
        )
    if showers.ndim != 2 or showers.shape[0] != energies.shape[0]:
        raise CaloFormatError(
            f"{source}: 'showers' must have shape [N, V] with N = {energies.shape[0]}, "
            f"got {list(showers.shape)}"
        )
    if showers.shape[1] != layers * size_a * size_b:
        raise CaloFormatError(
            f"{source}: 'showers' has {showers.shape[1]} voxels, voxel shape {voxel_shape} needs "
            f"{layers * size_a * size_b}"
        )
    if (showers < 0).any() or not np.isfinite(showers).all():
        raise CaloFormatError(f"{source}: 'showers' must hold finite energies >= 0 (MeV)")
    cubes = showers.reshape(-1, layers, size_a, size_b)
    clouds = []
    for cube in cubes:
        lay, ia, ib = np.nonzero(cube)
        clouds.append(np.stack([ia, ib, lay, cube[lay, ia, ib]], axis=1).astype(np.float32))
    points, counts = pad_points(clouds)
    geometry = {
        "absorber_mm": [0.0] * layers,
        "cells_per_side": max(size_a, size_b),
        "voxel_shape": [layers, size_a, size_b],
    }
    sample = CaloSample((energies / 1000.0).astype(np.float32), points, counts, geometry)
    validate_point_clouds(sample.energies, points, counts, layers, source)
    return sample
