"""Two-stage point-cloud sampling: jets first, masked particles, and multiplicity-cropped buckets."""

from __future__ import annotations

import numpy as np
import pytest
from test_training import QUICK

from gsgm.config import load_config
from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.diffusion.point_cloud import _multiplicity_buckets, sample_point_clouds
from gsgm.families.fpcd import build_model


@pytest.fixture(scope="module")
def model():
    cfg = load_config(QUICK)
    cfg.data.num_particles = 150
    cfg.particle_net.num_transformer_blocks = 1
    built = build_model(cfg, 150, seed=5)
    rng = np.random.default_rng(0)
    # Zero-initialised output layers would make every prediction 0 and the comparison trivial.
    for net in (built.ema_jet_net, built.ema_particle_net):
        net.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in net.get_weights()])
    return built


def fake_mask_from_jets(jets: np.ndarray) -> np.ndarray:
    counts = np.clip((np.abs(jets[:, 3]) * 40).astype(int) + 1, 1, 150)
    return (np.arange(150)[None, :] < counts[:, None]).astype(np.float32)


def run(model, num_buckets: int, seed: int = 3):
    onehot = np.eye(len(JET_CLASSES), dtype=np.float32)[np.arange(24) % 5]
    return sample_point_clouds(
        model.jet_denoiser,
        model.particle_denoiser,
        fake_mask_from_jets,
        onehot,
        num_particles=150,
        num_particle_features=3,
        num_jet_features=4,
        num_steps=3,
        seed=seed,
        schedule=model.schedule,
        num_buckets=num_buckets,
    )


def test_cropped_buckets_match_full_padding(model):
    jets_full, particles_full, mask_full = run(model, num_buckets=1)
    jets_crop, particles_crop, mask_crop = run(model, num_buckets=4)
    counts = mask_full.sum(axis=1)
    assert counts.min() < 100 < counts.max() or counts.max() - counts.min() > 20  # buckets differ in width
    np.testing.assert_array_equal(jets_full, jets_crop)
    np.testing.assert_array_equal(mask_full, mask_crop)
    np.testing.assert_allclose(particles_crop, particles_full, atol=2e-5)
    assert (particles_crop[mask_crop == 0] == 0).all()
    assert np.abs(particles_full[mask_full == 1]).max() > 0.1  # the network really produced something


def test_same_seed_same_samples_other_seed_differs(model):
    a = run(model, num_buckets=2, seed=1)[1]
    np.testing.assert_array_equal(a, run(model, num_buckets=2, seed=1)[1])
    assert not np.allclose(a, run(model, num_buckets=2, seed=2)[1])


def test_buckets_partition_jets_by_multiplicity():
    mask = fake_mask_from_jets(np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32))
    buckets = _multiplicity_buckets(mask, 3)
    np.testing.assert_array_equal(np.sort(np.concatenate(buckets)), np.arange(50))
    counts = mask.sum(axis=1)
    assert counts[buckets[0]].min() >= counts[buckets[1]].max() >= counts[buckets[2]].max()
    # Nearly saturated jets gain nothing from cropping: one group, full batch efficiency.
    full = np.ones((50, 30), np.float32)
    full[::7, 29] = 0
    assert len(_multiplicity_buckets(full, 4)) == 1
    with pytest.raises(ValueError, match="num_buckets"):
        _multiplicity_buckets(mask, 0)
