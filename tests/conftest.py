"""Shared fixtures: the shipped Pythia sample and tiny synthetic jets."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The EFP feature cache of `gsgm evaluate jets` must not write into the user's ~/.cache during tests.
os.environ.setdefault("GSGM_CACHE_DIR", tempfile.mkdtemp(prefix="gsgm-test-cache-"))

import numpy as np
import pytest

from gsgm.data.jetnet_format import JET_CLASSES, JetSample, class_file_name, read_jetnet_file

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "gsgm" / "data" / "builtin"


def read_builtin(num_particles: int) -> JetSample:
    """All classes of the shipped sample with ``num_particles`` slots, concatenated."""
    parts, jets, labels = [], [], []
    for index, jet_class in enumerate(JET_CLASSES):
        pf, jf = read_jetnet_file(BUILTIN_DIR / class_file_name(jet_class, num_particles), num_particles)
        parts.append(pf)
        jets.append(jf)
        labels.append(np.full(len(jf), index, dtype=np.int32))
    return JetSample(np.concatenate(parts), np.concatenate(jets), np.concatenate(labels))


@pytest.fixture(scope="session")
def builtin_dir() -> Path:
    return BUILTIN_DIR


@pytest.fixture(scope="session")
def real_jets30() -> JetSample:
    return read_builtin(30)


@pytest.fixture(scope="session")
def real_jets150() -> JetSample:
    return read_builtin(150)


def make_synthetic_jets(n: int, num_particles: int, seed: int = 0) -> JetSample:
    """Random but valid JetNet-format jets (sorted pt_rel, consistent mask and multiplicity)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, num_particles + 1, size=n)
    particles = np.zeros((n, num_particles, 4), dtype=np.float32)
    for i, count in enumerate(counts):
        pt = np.sort(rng.dirichlet(np.ones(count) * 0.7))[::-1] * rng.uniform(0.8, 1.0)
        particles[i, :count, 0] = rng.normal(0, 0.1, count)
        particles[i, :count, 1] = rng.normal(0, 0.1, count)
        particles[i, :count, 2] = pt
        particles[i, :count, 3] = 1.0
    jets = np.stack(
        [rng.normal(1000, 80, n), rng.normal(0, 1, n), rng.gamma(4, 20, n), counts.astype(float)], axis=1
    ).astype(np.float32)
    labels = rng.integers(0, len(JET_CLASSES), size=n).astype(np.int32)
    return JetSample(particles, jets, labels)


@pytest.fixture
def synthetic_jets() -> JetSample:
    return make_synthetic_jets(64, 30)
