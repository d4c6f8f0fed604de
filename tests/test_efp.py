"""Batched EFPs against energyflow (the reference jetnet uses), and the on-disk feature cache."""

from __future__ import annotations

import numpy as np
import pytest

from gsgm.evaluation import metrics as M
from gsgm.evaluation.efp import (
    FPD_KPD_EFPSET_ARGS,
    W1EFP_EFPSET_ARGS,
    batched_efps,
    efp_graph_set,
    w1efp_columns,
)
from gsgm.evaluation.efp_cache import FeatureCache
from gsgm.evaluation.jetnet_compat import quiet_jetnet_warnings, seeded_jetnet


def energyflow_efps(particles: np.ndarray, efpset_args) -> np.ndarray:
    """jetnet's own EFP path (energyflow, one jet at a time) in float64."""
    from jetnet.utils import efps

    return efps(particles[..., :3].astype(np.float64), efpset_args=list(efpset_args), efp_jobs=1)


def assert_relative_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-10) -> None:
    scale = np.maximum(np.abs(expected), 1e-300)
    worst = np.max(np.abs(actual - expected) / scale)
    assert worst < rtol, f"largest relative difference {worst:.3g}"


def test_the_sets_are_jetnets_graphs():
    full, w1 = efp_graph_set(FPD_KPD_EFPSET_ARGS), efp_graph_set(W1EFP_EFPSET_ARGS)
    assert len(full.graphs) == 36 and len(w1.graphs) == 5
    assert all(len(graph) == 4 for graph in w1.graphs)  # d == 4
    # the composite graphs factor into connected components, fewer than the graphs
    assert len(full.components) < len(full.graphs)


@pytest.mark.parametrize("fixture", ["real_jets30", "real_jets150"])
@pytest.mark.parametrize("efpset_args", [FPD_KPD_EFPSET_ARGS, W1EFP_EFPSET_ARGS], ids=["fpd_kpd", "w1efp"])
def test_batched_efps_equal_energyflow_on_real_padded_jets(fixture, efpset_args, request):
    sample = request.getfixturevalue(fixture)
    # the shortest and the longest jets: heavily padded ones and (nearly) full ones
    order = np.argsort(sample.particles[..., 3].sum(axis=1))
    jets = sample.particles[np.concatenate([order[:40], order[-40:]])]
    assert (jets[..., 3] == 0).any(), "the test needs padded jets"
    assert_relative_close(batched_efps(jets, efpset_args), energyflow_efps(jets, efpset_args))


def test_wrapped_azimuth_and_small_chunks():
    """d_phi is wrapped like energyflow's (jets across phi = +-pi); chunking does not change a value."""
    rng = np.random.default_rng(3)
    jets = np.zeros((25, 12, 4))
    counts = rng.integers(1, 13, size=25)
    for i, count in enumerate(counts):
        jets[i, :count, 0] = rng.normal(0, 0.3, count)
        jets[i, :count, 1] = np.pi - np.abs(rng.normal(0, 0.2, count)) * rng.choice([-1, 1], count)
        jets[i, :count, 1] = np.where(
            jets[i, :count, 1] > np.pi, jets[i, :count, 1] - 2 * np.pi, jets[i, :count, 1]
        )
        jets[i, :count, 2] = rng.uniform(0.01, 0.3, count)
        jets[i, :count, 3] = 1
    reference = energyflow_efps(jets, FPD_KPD_EFPSET_ARGS)
    assert_relative_close(batched_efps(jets), reference)
    assert_relative_close(batched_efps(jets, chunk_bytes=1), reference)  # one jet per chunk


def test_w1efp_columns_select_the_w1efp_graphs(real_jets30):
    jets = real_jets30.particles[:30]
    full = batched_efps(jets)
    assert_relative_close(full[:, w1efp_columns()], energyflow_efps(jets, W1EFP_EFPSET_ARGS))


def test_w1efp_equals_jetnets_w1efp(real_jets30):
    """Same EFPs, same resampling draw for draw: the previous implementation's value to round-off."""
    from jetnet.evaluation import w1efp as jetnet_w1efp

    a = real_jets30.particles[:300].astype(np.float64)
    b = real_jets30.particles[300:600].astype(np.float64)
    with seeded_jetnet(5), quiet_jetnet_warnings():
        means, stds = jetnet_w1efp(a[..., :3], b[..., :3], num_eval_samples=300, num_batches=3, efp_jobs=1)
    ours = M.w1efp(a, b, 300, num_batches=3, seed=5)
    assert ours.mean == pytest.approx(float(np.mean(means)), rel=1e-9)
    assert ours.std == pytest.approx(float(np.linalg.norm(stds)), rel=1e-9)


def test_fpd_and_kpd_on_batched_features_equal_jetnets(real_jets30):
    from jetnet.evaluation import get_fpd_kpd_jet_features

    a = real_jets30.particles[:400].astype(np.float64)
    b = real_jets30.particles[400:800].astype(np.float64)
    with quiet_jetnet_warnings():
        ref_a, ref_b = (get_fpd_kpd_jet_features(x[..., :3], efp_jobs=1) for x in (a, b))
    new_a, new_b = M.fpd_kpd_features(a), M.fpd_kpd_features(b)
    assert_relative_close(new_a, ref_a)
    for metric in (M.fpd, M.kpd):
        ours, theirs = metric(new_a, new_b, seed=1), metric(ref_a, ref_b, seed=1)
        assert ours.mean == pytest.approx(theirs.mean, rel=1e-6, abs=1e-12)


def test_truth_features_are_read_back_from_disk(tmp_path, real_jets30):
    truth = real_jets30.particles[:50]
    first = FeatureCache(tmp_path)
    features = first.get(truth, persistent=True)
    assert first.computed == 1 and len(list(tmp_path.glob("efp-*.npy"))) == 1
    second = FeatureCache(tmp_path)
    np.testing.assert_array_equal(second.get(truth.copy(), persistent=True), features)
    assert (second.hits, second.computed) == (1, 0)
    # a generated sample (not persistent) is never written
    second.get(real_jets30.particles[50:80])
    assert len(list(tmp_path.glob("efp-*.npy"))) == 1
    # a truncated cache file is recomputed and replaced, not trusted
    path = next(tmp_path.glob("efp-*.npy"))
    path.write_bytes(path.read_bytes()[:100])
    third = FeatureCache(tmp_path)
    np.testing.assert_array_equal(third.get(truth, persistent=True), features)
    assert third.computed == 1 and np.load(path).shape == features.shape
    # different particles, different file
    FeatureCache(tmp_path).get(truth[:40], persistent=True)
    assert len(list(tmp_path.glob("efp-*.npy"))) == 2
