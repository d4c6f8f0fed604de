"""Provenance recorded with every output: package versions, data hashes, timestamps.

These sit at the bottom of the layers (gsgm.utils) because training (run metadata), generation
(sample-file attributes) and evaluation (classifier records) all write them.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

__all__ = ["hash_arrays", "now_iso", "package_versions"]


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that decide a run's numbers."""
    import h5py
    import keras
    import tensorflow as tf

    import gsgm

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "gsgm": gsgm.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
    }


def hash_arrays(arrays: Sequence[np.ndarray]) -> str:
    """SHA-256 over the dtype, shape and bytes of each array, in order (identifies training data)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str(array.dtype).encode())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def now_iso() -> str:
    """The current UTC time as ISO 8601 to the second, e.g. ``2026-11-24T10:00:00+00:00``."""
    return datetime.now(UTC).isoformat(timespec="seconds")
