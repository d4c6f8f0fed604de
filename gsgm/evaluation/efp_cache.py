"""EFP features computed once per sample (in memory, and on disk for truth samples), and floors on disk.

An evaluation compares one truth sample with its truth-vs-truth floor sample and with every model, for
W1EFP, FPD and KPD; all three read the 36 EFPs with d <= 4 (W1EFP's 5 graphs are among them). The
cache computes them once per sample and, for samples marked ``persistent`` (the truth halves), stores
them on disk under the SHA-256 of the particle array, so evaluating a second model against the same
truth costs only the model's half.

The truth-vs-truth floor of a class depends only on the two truth halves and the evaluation settings,
so its whole result (every metric, FPND and COV/MMD included) is kept too
(:meth:`FeatureCache.load_floor`, :meth:`FeatureCache.store_floor`): the second evaluation against the
same truth computes only the model's half.

Files: ``DIR/efp-<version>-<sha256>.npy`` ([N, 36] float64) and ``DIR/floor-<version>-<sha256>.json``
(the floor's metrics.json entry), written under a temporary name and renamed. ``DIR`` is
``--feature-cache`` of ``gsgm evaluate jets``, else ``$GSGM_CACHE_DIR/efp``, else ``~/.cache/gsgm/efp``.
A file that cannot be read (truncated, foreign) is recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gsgm.evaluation.efp import FPD_KPD_EFPSET_ARGS, batched_efps

__all__ = ["CACHE_VERSION", "FeatureCache", "default_cache_dir", "floor_key", "particles_sha256"]

#: bump when the features' or a metric's definition changes, so that old files are not read
CACHE_VERSION = 2
ENV_CACHE_DIR = "GSGM_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$GSGM_CACHE_DIR/efp`` if set, else ``~/.cache/gsgm/efp``."""
    base = os.environ.get(ENV_CACHE_DIR)
    return Path(base) / "efp" if base else Path.home() / ".cache" / "gsgm" / "efp"


def particles_sha256(particles: np.ndarray) -> str:
    """SHA-256 of the (eta_rel, phi_rel, pt_rel) of particles [N, P, >=3], with shape and dtype."""
    data = np.ascontiguousarray(np.asarray(particles)[..., :3])
    digest = hashlib.sha256(f"{data.shape}|{data.dtype}|{FPD_KPD_EFPSET_ARGS}".encode())
    digest.update(data.tobytes())
    return digest.hexdigest()


def floor_key(arrays: list[np.ndarray], settings: dict) -> str:
    """SHA-256 of the arrays (shape, dtype, bytes) and the JSON of ``settings`` (the floor's inputs)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for array in arrays:
        data = np.ascontiguousarray(array)
        digest.update(f"|{data.shape}|{data.dtype}|".encode())
        digest.update(data.tobytes())
    return digest.hexdigest()


@dataclass
class FeatureCache:
    """The 36 FPD/KPD EFPs [N, 36] of each sample, computed once.

    Attributes:
        directory: where persistent samples' features are kept (None: memory only).
        features: in-memory features keyed by the particle array's identity.
        hits, computed: how many samples were read from disk / computed (reports, tests).
    """

    directory: Path | None = None
    features: dict[int, np.ndarray] = field(default_factory=dict)
    hits: int = 0
    computed: int = 0

    def get(self, particles: np.ndarray, persistent: bool = False) -> np.ndarray:
        """EFPs [N, 36] of ``particles`` [N, P, 4]; ``persistent`` also keeps them on disk."""
        key = id(particles)
        if key not in self.features:
            self.features[key] = self._load_or_compute(particles, persistent and self.directory is not None)
        return self.features[key]

    def load_floor(self, key: str) -> dict | None:
        """The floor result stored under ``key`` (:func:`floor_key`), or None (absent, unreadable, no dir)."""
        if self.directory is None:
            return None
        path = Path(self.directory) / f"floor-{CACHE_VERSION}-{key}.json"
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (
            not isinstance(payload, dict)
            or payload.get("key") != key
            or not isinstance(payload.get("floor"), dict)
        ):
            return None
        self.hits += 1
        return payload["floor"]

    def store_floor(self, key: str, floor: dict) -> None:
        """Keep a floor result (JSON-serialisable) under ``key``; skipped (warning) if not writable."""
        if self.directory is None:
            return
        path = Path(self.directory) / f"floor-{CACHE_VERSION}-{key}.json"
        self._store(path, json.dumps({"key": key, "floor": floor}, sort_keys=True).encode())

    def _load_or_compute(self, particles: np.ndarray, persistent: bool) -> np.ndarray:
        path = None
        if persistent:
            assert self.directory is not None
            path = Path(self.directory) / f"efp-{CACHE_VERSION}-{particles_sha256(particles)}.npy"
            if path.is_file():
                try:
                    features = np.load(path, allow_pickle=False)
                except (OSError, ValueError):
                    features = None  # truncated or foreign: recompute and replace it below
                if features is not None and features.shape == (len(particles), 36):
                    self.hits += 1
                    return features
        features = batched_efps(np.asarray(particles)[..., :3], FPD_KPD_EFPSET_ARGS)
        self.computed += 1
        if path is not None:
            self._store(path, features)
        return features

    @staticmethod
    def _store(path: Path, content: np.ndarray | bytes) -> None:
        """Write an array (.npy) or bytes atomically; a cache that cannot be written (read-only, full
        disk) is skipped with a warning."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                if isinstance(content, bytes):
                    handle.write(content)
                else:
                    np.save(handle, content, allow_pickle=False)
            os.replace(tmp, path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            warnings.warn(f"evaluation cache not written ({path}): {err}", RuntimeWarning, stacklevel=3)
