"""EFP features computed once per sample: in memory for one evaluation, on disk for truth samples.

An evaluation compares one truth sample with its truth-vs-truth floor sample and with every model, for
W1EFP, FPD and KPD; all three read the 36 EFPs with d <= 4 (W1EFP's 5 graphs are among them). The
cache computes them once per sample and, for samples marked ``persistent`` (the truth halves), stores
them on disk under the SHA-256 of the particle array, so evaluating a second model against the same
truth costs only the model's half.

Files: ``DIR/efp-<version>-<sha256>.npy`` ([N, 36] float64), written under a temporary name and
renamed. ``DIR`` is ``--feature-cache`` of ``gsgm evaluate jets``, else ``$GSGM_CACHE_DIR/efp``, else
``~/.cache/gsgm/efp``. A file that cannot be read (truncated, foreign) is recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gsgm.evaluation.efp import FPD_KPD_EFPSET_ARGS, batched_efps

__all__ = ["CACHE_VERSION", "FeatureCache", "default_cache_dir", "particles_sha256"]

#: bump when the features' definition changes, so that old files are not read
CACHE_VERSION = 1
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
    def _store(path: Path, features: np.ndarray) -> None:
        """Write atomically; a cache that cannot be written (read-only, full disk) is skipped (warning)."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                np.save(handle, features, allow_pickle=False)
            os.replace(tmp, path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            warnings.warn(f"EFP feature cache not written ({path}): {err}", RuntimeWarning, stacklevel=3)
