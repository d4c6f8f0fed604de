"""Phase-space event files: HDF5 with ``events`` [n, N, 4] float64 = (E, px, py, pz) per particle.

Root attributes carry the provenance (process, y_min, seed, command; for generated samples method,
steps, timing). Written under a temporary name and renamed. The shipped sample is
``gsgm/data/builtin/phase_space/{muon_decay,qqg,antenna}.hdf5`` (``builtin``; see the README there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gsgm.utils.atomic import atomic_path

__all__ = ["BUILTIN_DIR", "read_events", "resolve_events_path", "write_events"]

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin" / "phase_space"
DATASET = "events"


def write_events(path: str | os.PathLike, events: np.ndarray, attrs: dict[str, Any]) -> Path:
    """Write events [n, N, 4] (stored float64, gzip) and ``attrs`` (JSON-able values) atomically."""
    events = np.asarray(events, np.float64)
    if events.ndim != 3 or events.shape[-1] != 4 or len(events) == 0:
        raise ValueError(f"events must have shape [n >= 1, N, 4], got {events.shape}")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.create_dataset(DATASET, data=events, compression="gzip", shuffle=True)
            for key, value in attrs.items():
                handle.attrs[key] = value if isinstance(value, int | float | str) else json.dumps(value)
    return Path(path)


def read_events(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """(events [n, N, 4] float64, attributes) of an event file; ValueError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such phase-space event file")
    try:
        with h5py.File(path, "r") as handle:
            if DATASET not in handle:
                raise ValueError(f"{path}: no dataset {DATASET!r} (datasets: {', '.join(handle) or 'none'})")
            events = np.asarray(handle[DATASET], np.float64)
            attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in handle.attrs.items()}
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from None
    if events.ndim != 3 or events.shape[-1] != 4 or len(events) == 0:
        raise ValueError(f"{path}: {DATASET} must have shape [n >= 1, N, 4], got {events.shape}")
    bad = ~np.isfinite(events).all(axis=(1, 2))
    if bad.any():
        raise ValueError(
            f"{path}: {DATASET} has NaN or inf in {int(bad.sum())} events (first: {int(np.argmax(bad))})"
        )
    return events, {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}


def resolve_events_path(spec: str | os.PathLike, process: str | None = None) -> Path:
    """``builtin`` -> the shipped file of ``process``; anything else is a path."""
    if str(spec) == "builtin":
        if process is None:
            raise ValueError("'builtin' needs a process (muon_decay, qqg or antenna)")
        return BUILTIN_DIR / f"{process}.hdf5"
    return Path(spec)
