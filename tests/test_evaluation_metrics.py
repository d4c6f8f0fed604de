"""gsgm.evaluation.metrics on the shipped Pythia sample: floors, shifted samples, uncertainties, FPND.

Every W1 here is resampled with replacement (jetnet's procedure), so even a sample compared with itself
gives the resampling noise, at the level of the truth-vs-truth floor, not exactly 0; FPD and KPD are
built to vanish for identical distributions and do. "Exceeds the floor by a clear margin" means: more
than 3 combined standard deviations (2 for W1EFP; for KPD, whose error is coarse, far outside the
floor's spread) and several times the floor's value.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.data.preprocessing import recenter_particles
from gsgm.evaluation import jetnet_compat
from gsgm.evaluation import metrics as M
from gsgm.evaluation.report import format_value

N = 400  # jets per sample: seconds per metric, yet floors well below the shifts tested


@pytest.fixture(scope="module")
def tops(real_jets30):
    """Recentred top jets of the shipped sample: (particles [2000, 30, 4], jets [2000, 4])."""
    select = real_jets30.labels == JET_CLASSES.index("t")
    return recenter_particles(real_jets30.particles[select]), real_jets30.jets[select]


@pytest.fixture(scope="module")
def halves(tops):
    """Two disjoint truth samples of N top jets: A (reference) and B (floor)."""
    particles, jets = tops
    return particles[:N], particles[N : 2 * N], jets[:N], jets[N : 2 * N]


def widened(particles: np.ndarray, factor: float) -> np.ndarray:
    """Scale eta_rel and phi_rel: the jet mass grows about in proportion (and the particle spread)."""
    out = particles.copy()
    out[..., :2] *= factor
    return out


def assert_clearly_above(
    shifted: M.MetricValue, floor: M.MetricValue, sigmas: float = 3.0, ratio: float = 3.0
):
    combined = math.hypot(shifted.std or 0.0, floor.std or 0.0)
    assert shifted.mean > floor.mean + sigmas * combined, (shifted, floor)
    assert shifted.mean > ratio * abs(floor.mean), (shifted, floor)


@pytest.fixture(scope="module")
def floors(halves):
    a, b, _, _ = halves
    return {"w1m": M.w1m(a, b, N), "w1p": M.w1p(a, b, N), "w1efp": M.w1efp(a, b, N)}


def test_self_comparison_is_only_resampling_noise(halves, floors):
    a, _, _, _ = halves
    for key, fn in (("w1m", M.w1m), ("w1p", M.w1p)):
        self_value = fn(a, a, N)
        # Two resamples of one sample differ about as much as two samples do; never more.
        assert self_value.mean < floors[key].mean + 2 * floors[key].std, key


def test_fpd_kpd_of_a_sample_with_itself_vanish(halves):
    features = M.fpd_kpd_features(halves[0])
    fpd, kpd = M.fpd(features, features), M.kpd(features, features)
    # Both remove the finite-sample bias (1/N extrapolation, unbiased MMD): zero within uncertainty.
    assert abs(fpd.mean) < 2 * fpd.std
    assert abs(kpd.mean) < 2 * kpd.std


def test_fpd_features_scale_as_powers_of_the_summed_pt(halves):
    # Why the generated jets' summed pt_rel matters to FPD (data.pt_sum): the features are un-normalised
    # EFPs, the first is sum_i z_i itself and an EFP of n vertices scales as f^n when every z_i of a
    # jet is multiplied by f, so a spread of the per-jet pT scale moves all 36 features together.
    a = halves[0]
    features = M.fpd_kpd_features(a)
    np.testing.assert_allclose(features[:, 0], (a[..., 2] * a[..., 3]).sum(axis=1), rtol=1e-6)
    harder = a.copy()
    harder[..., 2] *= 1.1
    powers = np.log(M.fpd_kpd_features(harder) / features) / np.log(1.1)
    assert np.allclose(powers, np.rint(powers), atol=1e-4) and powers.min() >= 1 - 1e-4
    assert set(np.rint(powers[0]).astype(int)) == set(range(1, 9)), powers[
        0
    ]  # 1 to 8 vertices (4 separate edges)


def test_wider_jets_exceed_the_floor(halves, floors):
    a, b, _, _ = halves
    shifted = widened(b, 1.3)  # jet mass about 30 % larger
    assert_clearly_above(M.w1m(a, shifted, N), floors["w1m"])
    assert_clearly_above(M.w1p(a, shifted, N), floors["w1p"])
    assert_clearly_above(M.w1efp(a, shifted, N), floors["w1efp"], sigmas=2.0)
    fa, fb, fs = (M.fpd_kpd_features(x) for x in (a, b, shifted))
    assert_clearly_above(M.fpd(fa, fs), M.fpd(fa, fb))
    # KPD's error (half the 16-84 % range of its 10 batches) is wide for a shifted sample, whose batch
    # values scatter a lot: ask that it lies far outside the floor's spread, and 100x above it.
    kpd, kpd_floor = M.kpd(fa, fs), M.kpd(fa, fb)
    assert kpd.mean > kpd_floor.mean + 10 * kpd_floor.std and kpd.mean > 100 * abs(kpd_floor.mean)


def test_harder_particles_exceed_the_floor(halves, floors):
    a, b, _, _ = halves
    harder = b.copy()
    harder[..., 2] *= 1.1  # every pt_rel 10 % larger (mass relative to the jet pT too)
    w1p = M.w1p(a, harder, N)
    assert w1p.components["pt_rel"] > 3 * floors["w1p"].components["pt_rel"]
    # eta_rel and phi_rel are untouched, and so are their W1s (same resamples: same seed).
    assert w1p.components["eta_rel"] == pytest.approx(floors["w1p"].components["eta_rel"])
    assert_clearly_above(M.w1m(a, harder, N), floors["w1m"])


def test_jet_level_shifts_exceed_the_floor(halves):
    _, _, ja, jb = halves
    for key, column, change in (("w1_jet_mass", 2, 1.1), ("w1_jet_pt", 0, 1.03)):
        shifted = jb.copy()
        shifted[:, column] *= change
        assert_clearly_above(M.jet_w1(ja, shifted, key, N), M.jet_w1(ja, jb, key, N))


def test_identical_jet_features_give_zero(halves):
    _, _, ja, _ = halves
    # Top jets with 30 particles all have 30: every resample of either side is the same number.
    assert M.jet_w1(ja, ja, "w1_jet_n", N) == M.MetricValue(0.0, 0.0)


def test_mode_collapse_is_caught_by_coverage_and_mmd(halves):
    a, b, _, _ = halves
    cov_floor, mmd_floor = M.cov_mmd(a, b, num_eval_samples=30, num_batches=4)
    collapsed = np.repeat(b[:1], N, axis=0)  # one jet, N times
    cov, mmd = M.cov_mmd(a, collapsed, num_eval_samples=30, num_batches=4)
    assert cov.mean == pytest.approx(1 / 30)  # every truth jet matches the same generated jet
    assert cov_floor.mean > 0.4
    assert_clearly_above(mmd, mmd_floor, ratio=1.3)


def test_uncertainties_shrink_with_more_jets(tops):
    particles, jets = tops
    small, large = 150, 1000
    w1m_small = M.w1m(particles[:small], particles[small : 2 * small], small, num_batches=20)
    w1m_large = M.w1m(particles[:large], particles[large:], large, num_batches=20)
    mass_small = M.jet_w1(jets[:small], jets[small : 2 * small], "w1_jet_mass", small, num_batches=20)
    mass_large = M.jet_w1(jets[:large], jets[large:], "w1_jet_mass", large, num_batches=20)
    # Expected ratio sqrt(150 / 1000) = 0.39.
    assert w1m_large.std < 0.7 * w1m_small.std
    assert mass_large.std < 0.7 * mass_small.std
    # The finite-sample floor itself shrinks too.
    assert w1m_large.mean < w1m_small.mean and mass_large.mean < mass_small.mean


def test_seeded_and_jetnet_generator_restored(halves):
    from jetnet.evaluation import gen_metrics

    a, b, _, _ = halves
    before = gen_metrics.rng
    assert M.w1p(a, b, N, seed=3) == M.w1p(a, b, N, seed=3)
    assert M.w1p(a, b, N, seed=3) != M.w1p(a, b, N, seed=4)
    assert gen_metrics.rng is before


def test_mismatched_inputs_are_errors(halves, real_jets150):
    a, _, ja, _ = halves
    with pytest.raises(ValueError, match="particle counts differ"):
        M.w1m(a, real_jets150.particles[:N], N)
    with pytest.raises(ValueError, match=r"\[N, P, 4\]"):
        M.w1p(a[..., :3], a, N)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        M.jet_w1(ja, ja[:, :3], "w1_jet_pt", N)
    negative = a.copy()
    negative[0, 0, 2] = -0.1
    with pytest.raises(ValueError, match="pt_rel < 0"):
        M.cov_mmd(a, negative, 10, 1)
    with pytest.raises(ValueError, match="unknown metric"):
        M.EvaluationConfig(metrics=("w1m", "fid"))


# --------------------------------------------------------------------------------------------------
# FPND: available by default (torch-geometric is a dependency; knn_fallback stands in for torch-cluster);
# reported as not available / not defined, never as a number it is not
# --------------------------------------------------------------------------------------------------


def _fpnd_reference_jets():
    """(reference json, {class: the first `jets` particles [n, 30, 4] of its shipped file})."""
    from gsgm.data.jetnet_format import class_file_name, read_jetnet_file
    from gsgm.data.loading import builtin_data_dir

    reference = json.loads((Path(__file__).parent / "data" / "fpnd_reference.json").read_text())
    jets = {}
    for jet_class in reference["fpnd"]:
        particles, _ = read_jetnet_file(builtin_data_dir() / class_file_name(jet_class, 30))
        jets[jet_class] = particles[: reference["jets"]]
    return reference, jets


def test_jetnets_fpnd_with_the_knn_fallback_equals_fpnd_with_torch_cluster():
    """jetnet's own ParticleNet path, its neighbours from knn_fallback: the values recorded with the
    real torch-cluster (benchmarks/record_fpnd_reference.py), to float64 round-off of the statistics."""
    from jetnet.evaluation import fpnd as jetnet_fpnd

    from gsgm.evaluation.knn_fallback import provide_torch_cluster

    reference, jets = _fpnd_reference_jets()
    for jet_class, expected in reference["fpnd"].items():
        with provide_torch_cluster(), M.quiet_jetnet_warnings():
            value = jetnet_fpnd(np.ascontiguousarray(jets[jet_class][..., :3]), jet_class, use_tqdm=False)
        assert value == pytest.approx(expected, rel=1e-7), jet_class


def test_dense_fpnd_is_jetnets_fpnd_without_its_float32_error():
    """The dense network (batch norm folded, first layer per node) is closer to the float64 value of
    the same network than jetnet's float32 sparse pass is: it equals jetnet's FPND within jetnet's own
    round-off (measured 0.4-1.6e-6 relative), and float64 within 1e-7."""
    import torch

    from gsgm.evaluation.particlenet import fpnd as dense_fpnd

    reference, jets = _fpnd_reference_jets()
    for jet_class, recorded in reference["fpnd"].items():
        value = M.fpnd(jets[jet_class], jet_class)
        assert value.available, value.reason
        exact = dense_fpnd(jets[jet_class][..., :3], jet_class, dtype=torch.float64)
        assert value.mean == pytest.approx(exact, rel=2e-7), jet_class
        assert recorded == pytest.approx(exact, rel=5e-6), jet_class
        assert value.mean == pytest.approx(recorded, rel=5e-6), jet_class


def test_dense_particlenet_activations_equal_jetnets_per_jet():
    """Activation by activation (not only the Frechet distance), padded particles included."""
    import torch
    from jetnet.datasets import JetNet

    from gsgm.evaluation.knn_fallback import provide_torch_cluster
    from gsgm.evaluation.particlenet import load_dense_particlenet, particlenet_activations

    _, jets = _fpnd_reference_jets()
    particles = np.array(jets["t"][:40, :, :3])
    particles[:5, 20:] = 0.0  # five jets with 20 particles and 10 zero-padded slots
    normalised = torch.tensor(particles)
    JetNet.fpnd_norm(normalised, inplace=True)
    network, _, _ = load_dense_particlenet("t")
    dense = particlenet_activations(network, normalised.numpy(), batch_size=16)
    from jetnet.evaluation import gen_metrics

    with provide_torch_cluster(), torch.no_grad():
        pnet = gen_metrics._eval_module.fpnd_dict["jetnet"][30]["t"]["pnet"].eval()
        expected = pnet(normalised, ret_activations=True).numpy()
    assert dense.shape == (40, 256) and dense.dtype == np.float32
    scale = np.abs(expected).max()
    np.testing.assert_allclose(dense, expected, rtol=0, atol=1e-5 * scale)
    with pytest.raises(ValueError, match=r"\[N, 30, 3\]"):
        particlenet_activations(network, normalised.numpy()[:, :20])


def test_knn_fallback_finds_the_k_nearest_of_each_batch_entry():
    import torch

    from gsgm.evaluation.knn_fallback import knn_graph

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(5 + 7 + 7, 3)))
    batch = torch.tensor([0] * 5 + [1] * 7 + [2] * 7)
    edges = knn_graph(x, 3, batch)
    assert edges.shape == (2, 19 * 3)
    for centre in range(19):
        neighbours = edges[0][edges[1] == centre].tolist()
        same_entry = [j for j in range(19) if batch[j] == batch[centre] and j != centre]
        distances = {j: float(((x[j] - x[centre]) ** 2).sum()) for j in same_entry}
        assert sorted(neighbours) == sorted(sorted(same_entry, key=distances.get)[:3])
    # an entry smaller than k + 1 gives all its other nodes; loop=True includes the node itself
    assert knn_graph(x[:2], 5).shape == (2, 2)
    assert (knn_graph(x[:4], 1, loop=True)[0] == torch.arange(4)).all()


def test_fallback_is_used_only_without_torch_cluster():
    import sys

    from gsgm.evaluation.knn_fallback import provide_torch_cluster, torch_cluster_installed

    installed = torch_cluster_installed()
    with provide_torch_cluster() as fallback:
        assert fallback == (not installed)
        import torch_cluster

        assert hasattr(torch_cluster, "knn_graph")
    if not installed:
        assert "torch_cluster" not in sys.modules


def test_fpnd_reason_when_the_extra_is_missing(halves, monkeypatch):
    monkeypatch.setattr(M, "fpnd_status", lambda: (False, "torch_geometric is not installed (test)"))
    value = M.fpnd(halves[0], "g")
    assert value.reason == "not available: torch_geometric is not installed (test)"
    assert value.to_dict() == {"mean": None, "std": None, "available": False, "reason": value.reason}


def test_fpnd_not_defined_outside_g_q_t_30(halves, real_jets150):
    assert M.fpnd(halves[0], "w").reason.startswith("not defined: FPND is defined for classes g, q, t")
    assert M.fpnd(real_jets150.particles[:10], "g").reason.startswith("not defined: FPND is defined for 30")


def test_fpnd_status_names_the_missing_module(monkeypatch):
    present: set[str] = set()
    monkeypatch.setattr(
        jetnet_compat.importlib.util, "find_spec", lambda name: object() if name in present else None
    )
    available, reason = jetnet_compat.fpnd_status()
    assert not available and reason.startswith("torch_geometric is not installed")
    present.add("torch_geometric")  # torch_cluster is optional
    assert jetnet_compat.fpnd_status() == (True, "")


@pytest.mark.parametrize(
    ("mean", "std", "scale", "text"),
    [
        (0.36e-3, 0.08e-3, 1e-3, "0.36 ± 0.08"),
        (1.25e-5, 0.19e-5, 1e-5, "1.25 ± 0.19"),
        (1.5, 0.5, 1.0, "1.5 ± 0.5"),
        (23.4, 11.2, 1.0, "23 ± 11"),
        (0.0712, None, 1.0, "0.0712"),
        (None, None, 1.0, "n/a"),
        (0.0, 0.0, 1.0, "0"),
    ],
)
def test_format_value(mean, std, scale, text):
    assert format_value(mean, std, scale) == text
