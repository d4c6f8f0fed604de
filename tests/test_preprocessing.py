"""Tests of gsgm.data.preprocessing: recentring, standardisation, round trip and persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_synthetic_jets
from scipy import stats

from gsgm.data.jetnet_format import JET_CLASSES, JetSample, validate_arrays
from gsgm.data.preprocessing import (
    PT_REL_MAX,
    PT_REL_MIN,
    JetPreprocessor,
    PreprocessingFileError,
    UnfittedClassError,
    confine_to_cone,
    constituent_mass,
    recenter_particles,
    scaled_to_mass,
)

REAL = ["real_jets30", "real_jets150"]


@pytest.fixture(params=REAL)
def real_jets(request) -> JetSample:
    return request.getfixturevalue(request.param)


def _recentred(sample: JetSample) -> JetSample:
    return JetSample(recenter_particles(sample.particles), sample.jets, sample.labels)


def _jet_momentum(particles: np.ndarray) -> np.ndarray:
    """[N, 4] summed massless (E, px, py, pz) of the real particles, in units of pt_jet."""
    p = particles.astype(np.float64)
    pt = p[..., 2] * p[..., 3]
    return np.stack(
        [
            (pt * np.cosh(p[..., 0])).sum(1),
            (pt * np.cos(p[..., 1])).sum(1),
            (pt * np.sin(p[..., 1])).sum(1),
            (pt * np.sinh(p[..., 0])).sum(1),
        ],
        axis=1,
    )


# ------------------------------------------------------------------------------------------ recentring


def test_recentring_puts_the_jet_axis_at_zero(real_jets):
    rec = recenter_particles(real_jets.particles)
    momentum = _jet_momentum(rec)
    # py = pz = 0 and px > 0: the summed constituent momentum points along eta = phi = 0.
    assert np.abs(momentum[:, 2]).max() < 1e-5
    assert np.abs(momentum[:, 3]).max() < 1e-5
    assert (momentum[:, 1] > 0).all()
    # It is not a no-op on real data (JetNet's axis uses all constituents, not only the stored ones).
    assert np.abs(rec[..., :2] - real_jets.particles[..., :2]).max() > 1e-4
    np.testing.assert_array_equal(rec[..., 2:], real_jets.particles[..., 2:])


def test_recentring_is_idempotent(real_jets):
    once = recenter_particles(real_jets.particles)
    twice = recenter_particles(once)
    assert once.dtype == np.float32
    np.testing.assert_allclose(twice, once, rtol=0, atol=1e-6)


def test_recentring_is_invariant_to_a_boost_and_rotation():
    sample = make_synthetic_jets(200, 30, seed=3)
    shifted = sample.particles.copy()
    real = shifted[..., 3] > 0
    shifted[..., 0] += np.where(real, 0.4, 0.0)
    shifted[..., 1] += np.where(real, -0.3, 0.0)
    np.testing.assert_allclose(
        recenter_particles(shifted), recenter_particles(sample.particles), rtol=0, atol=2e-6
    )


def test_recentring_zeroes_padding_and_keeps_phi_in_range():
    sample = make_synthetic_jets(50, 30, seed=4)
    particles = sample.particles.copy()
    particles[..., 1] += np.where(particles[..., 3] > 0, 3.1, 0.0).astype(np.float32)  # near +pi
    particles[particles[..., 3] == 0] = 7.0  # garbage in padded slots, mask stays 0 below
    particles[..., 3] = sample.particles[..., 3]
    rec = recenter_particles(particles)
    pad = rec[..., 3] == 0
    assert (rec[pad] == 0).all()
    assert (rec[..., 1] >= -np.pi).all() and (rec[..., 1] < np.pi).all()


# ----------------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("recenter", [True, False])
def test_round_trip_on_real_jets(real_jets, recenter):
    pre = JetPreprocessor.fit(real_jets, recenter=recenter)
    truth = _recentred(real_jets) if recenter else real_jets
    particles_norm, jets_norm, mask = pre.transform(real_jets)
    pf, jf = pre.inverse(particles_norm, jets_norm, real_jets.labels)
    assert pf.dtype == np.float32 and jf.dtype == np.float32
    np.testing.assert_allclose(pf, truth.particles, rtol=0, atol=1e-5)
    # Jet pt and mass are ~1e3 GeV where float32 itself only resolves ~6e-5 GeV: relative tolerance.
    np.testing.assert_allclose(jf[:, :3], truth.jets[:, :3], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(jf[:, 3], truth.jets[:, 3])
    np.testing.assert_array_equal(mask, real_jets.particles[..., 3])
    validate_arrays(pf, jf, "inverse output", expected_particles=real_jets.num_particles)


def test_round_trip_is_exact_at_the_ends_of_the_pt_range():
    sample = make_synthetic_jets(4, 30, seed=5)
    particles = sample.particles.copy()
    particles[0, 0, 2] = PT_REL_MAX  # log(1 - pt_rel) = -16.6: needs float64 inside
    particles[1, 0, 2] = 0.99999
    count = int(sample.jets[2, 3])
    particles[2, count - 1, 2] = 1e-7  # tiny pt_rel: log1p keeps it
    sample = JetSample(particles, sample.jets, sample.labels)
    pre = JetPreprocessor.fit(sample, recenter=False)
    pf, _ = pre.inverse(*pre.transform(sample)[:2], sample.labels)
    np.testing.assert_allclose(pf, particles, rtol=0, atol=1e-5)
    assert pf[0, 0, 2] < 1.0 and pf[2, count - 1, 2] > 0


def test_masked_particles_exactly_zero(real_jets):
    pre = JetPreprocessor.fit(real_jets)
    particles_norm, jets_norm, mask = pre.transform(real_jets)
    assert particles_norm.dtype == np.float32 and jets_norm.dtype == np.float32 and mask.dtype == np.float32
    assert (particles_norm[mask == 0] == 0).all()
    # The model writes whatever it likes into padded slots; inverse must discard it.
    noisy = particles_norm + np.random.default_rng(0).normal(size=particles_norm.shape).astype(np.float32)
    pf, jf = pre.inverse(noisy, jets_norm, real_jets.labels)
    assert (pf[pf[..., 3] == 0] == 0).all()
    validate_arrays(pf, jf)


def test_standardised_features_have_mean_0_std_1_per_class(real_jets):
    pre = JetPreprocessor.fit(real_jets, jet_transform="standard")
    particles_norm, jets_norm, mask = pre.transform(real_jets)
    checked = 0
    for index in np.unique(real_jets.labels):
        in_class = real_jets.labels == index
        jets_c = jets_norm[in_class].astype(np.float64)
        real = particles_norm[in_class][mask[in_class] > 0].astype(np.float64)
        for values, std_used in ((jets_c, pre.jet_std[index]), (real, pre.particle_std[index])):
            np.testing.assert_allclose(values.mean(0), 0.0, atol=1e-5)
            # A feature with no spread in a class (std floored to 1) is only shifted: all zeros.
            expected = np.where(std_used == 1.0, values.std(0), 1.0)
            np.testing.assert_allclose(values.std(0), expected, rtol=1e-4)
            checked += 1
    assert checked == 2 * len(JET_CLASSES)


def test_quantile_jet_features_are_standard_normal_per_class(real_jets30):
    """Every jet feature of every class, the saturated 30-particle multiplicity too, becomes N(0, 1)."""
    pre = JetPreprocessor.fit(real_jets30)
    assert pre.jet_transform == "quantile"
    _, jets_norm, _ = pre.transform(real_jets30, seed=3)
    for index in np.unique(real_jets30.labels):
        scores = jets_norm[real_jets30.labels == index].astype(np.float64)
        for feature in range(4):
            ks = stats.kstest(scores[:, feature], "norm").statistic
            # The fit jets themselves: the scores are normal quantiles. The multiplicity's
            # dequantisation is drawn anew (seed 3, not the fit's 0): a sampling distance, ~1/sqrt(n).
            assert ks < (0.05 if feature == 3 else 0.005), (JET_CLASSES[index], feature, ks)
    standardised = JetPreprocessor.fit(real_jets30, jet_transform="standard").transform(real_jets30)[1]
    top = real_jets30.labels == JET_CLASSES.index("t")
    # Standardised, the top multiplicity (every jet fills the 30 slots) is a point mass.
    assert stats.kstest(standardised[top, 3], "norm").statistic > 0.3


def test_quantile_transform_is_exact_for_the_multiplicity_and_clamps_outside_the_fit_range():
    sample = make_synthetic_jets(500, 30, seed=11)
    pre = JetPreprocessor.fit(sample, recenter=False)
    for seed in (0, 1):
        particles_norm, jets_norm, _ = pre.transform(sample, seed=seed)
        _, jets = pre.inverse(particles_norm, jets_norm, sample.labels)
        np.testing.assert_array_equal(jets[:, 3], sample.jets[:, 3])
        np.testing.assert_array_equal(
            pre.multiplicity_mask(jets_norm, sample.labels), sample.particles[..., 3]
        )
        np.testing.assert_array_equal(pre.inverse_jets(jets_norm, sample.labels), jets)
    # The dequantisation is seeded: the same seed gives the same scores, another seed others.
    np.testing.assert_array_equal(pre.transform(sample, seed=1)[1], jets_norm)
    assert not np.array_equal(pre.transform(sample, seed=2)[1][:, 3], jets_norm[:, 3])
    np.testing.assert_array_equal(pre.transform(sample, seed=2)[1][:, :3], jets_norm[:, :3])
    # Scores far beyond the fit range map onto the fit jets' extremes, never beyond.
    labels = sample.labels[:2]
    extreme = np.array([[40.0] * 4, [-40.0] * 4], np.float32)
    _, jets = pre.inverse(np.zeros((2, 30, 3), np.float32), extreme, labels)
    for row, reduce in ((0, np.max), (1, np.min)):
        in_class = sample.jets[sample.labels == labels[row]].astype(np.float64)
        np.testing.assert_allclose(jets[row], reduce(in_class, axis=0), rtol=1e-6)


def test_quantile_transform_of_a_constant_feature_is_zero():
    """A feature every fit jet shares (ties in the quantiles) maps to the middle level, score 0."""
    sample = make_synthetic_jets(50, 30, seed=12)
    jets = sample.jets.copy()
    jets[:, 1] = 0.25
    sample = JetSample(sample.particles, jets, np.zeros(50, np.int64))
    pre = JetPreprocessor.fit(sample, recenter=False)
    particles_norm, jets_norm, _ = pre.transform(sample)
    np.testing.assert_array_equal(jets_norm[:, 1], 0.0)
    _, back = pre.inverse(particles_norm, jets_norm, sample.labels)
    np.testing.assert_allclose(back[:, 1], 0.25, rtol=1e-7)


def test_inverse_of_model_like_output_is_valid_jetnet():
    sample = make_synthetic_jets(300, 30, seed=6)
    pre = JetPreprocessor.fit(sample)
    rng = np.random.default_rng(1)
    particles_norm = rng.normal(0, 2, size=(300, 30, 3)).astype(np.float32)
    jets_norm = rng.normal(0, 3, size=(300, 4)).astype(np.float32)  # multiplicities beyond [1, P] too
    pf, jf = pre.inverse(particles_norm, jets_norm, sample.labels)
    validate_arrays(pf, jf, "generated", expected_particles=30)
    counts = jf[:, 3].astype(int)
    assert counts.min() == 1 and counts.max() == 30
    np.testing.assert_array_equal(pf[..., 3], pre.multiplicity_mask(jets_norm, sample.labels))
    pt = pf[..., 2]
    assert (pt >= 0).all() and (pt < 1).all()
    assert (np.diff(pt, axis=1) <= 0).all()  # real first, decreasing pt_rel; padding 0 at the end
    np.testing.assert_allclose(recenter_particles(pf), pf, rtol=0, atol=1e-6)  # generated jets recentred


def test_multiplicity_mask_matches_transform(real_jets):
    pre = JetPreprocessor.fit(real_jets)
    _, jets_norm, mask = pre.transform(real_jets)
    got = pre.multiplicity_mask(jets_norm, real_jets.labels)
    assert got.dtype == np.float32 and got.shape == mask.shape
    np.testing.assert_array_equal(got, mask)


def test_inverse_rejects_nan_in_real_slots():
    sample = make_synthetic_jets(10, 30, seed=7)
    pre = JetPreprocessor.fit(sample)
    particles_norm, jets_norm, _ = pre.transform(sample)
    particles_norm[0, 0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pre.inverse(particles_norm, jets_norm, sample.labels)


# ------------------------------------------------------------------------------------ absent classes


def test_absent_class_is_a_clear_error(tmp_path):
    sample = make_synthetic_jets(200, 30, seed=8)
    without_top = sample.select(sample.labels != JET_CLASSES.index("t"))
    pre = JetPreprocessor.fit(without_top)
    assert "t" not in pre.fitted_classes and len(pre.fitted_classes) == 4
    with pytest.raises(UnfittedClassError, match=r"class\(es\) t;.*fitted on: g, q, w, z"):
        pre.transform(sample)
    with pytest.raises(UnfittedClassError, match="t"):
        pre.multiplicity_mask(np.zeros((1, 4), np.float32), np.array([JET_CLASSES.index("t")]))
    loaded = JetPreprocessor.load(pre.save(tmp_path / "run" / "preprocessing.json"))
    assert loaded.fitted_classes == pre.fitted_classes
    with pytest.raises(UnfittedClassError):
        loaded.inverse(np.zeros((1, 30, 3)), np.zeros((1, 4)), np.array([JET_CLASSES.index("t")]))


def test_wrong_particle_count_is_rejected():
    pre = JetPreprocessor.fit(make_synthetic_jets(20, 30))
    with pytest.raises(ValueError, match="30 particles"):
        pre.transform(make_synthetic_jets(20, 150))


# ---------------------------------------------------------------------------------------- persistence


def test_save_load_gives_identical_outputs(real_jets30, tmp_path):
    pre = JetPreprocessor.fit(real_jets30)
    path = pre.save(tmp_path / "run" / "preprocessing.json")
    assert path.is_file() and not list(path.parent.glob(".*.tmp"))
    loaded = JetPreprocessor.load(path)
    assert loaded.num_particles == pre.num_particles and loaded.recenter == pre.recenter
    for a, b in zip(pre.transform(real_jets30), loaded.transform(real_jets30), strict=True):
        np.testing.assert_array_equal(a, b)
    particles_norm, jets_norm, _ = pre.transform(real_jets30)
    for a, b in zip(
        pre.inverse(particles_norm, jets_norm, real_jets30.labels),
        loaded.inverse(particles_norm, jets_norm, real_jets30.labels),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert loaded.to_dict() == pre.to_dict()


def _saved(tmp_path) -> tuple[dict, object]:
    pre = JetPreprocessor.fit(make_synthetic_jets(100, 30, seed=9))
    path = pre.save(tmp_path / "preprocessing.json")
    return json.loads(path.read_text()), path


@pytest.mark.parametrize(
    "key",
    [
        "jet_mean",
        "jet_std",
        "particle_mean",
        "particle_std",
        "num_particles",
        "recenter",
        "classes",
        "format",
        "version",
    ],
)
def test_load_missing_key_names_file_and_key(tmp_path, key):
    data, path = _saved(tmp_path)
    del data[key]
    path.write_text(json.dumps(data))
    with pytest.raises(PreprocessingFileError, match=rf"{path}.*'{key}' is missing"):
        JetPreprocessor.load(path)


@pytest.mark.parametrize(
    ("key", "corrupt"),
    [
        ("jet_std", lambda v: v[:3]),  # wrong number of classes
        ("particle_mean", lambda v: [row[:2] if row else row for row in v]),  # wrong width
        ("particle_std", lambda v: [[-1.0, 1.0, 1.0]] + v[1:]),  # non-positive std
        ("jet_mean", lambda v: [["a", "b", "c", "d"]] + v[1:]),  # not numeric
        ("jet_mean", lambda v: [None] + v[1:]),  # null only in one of the four arrays
        ("num_particles", lambda v: "30"),
        ("classes", lambda v: v[::-1]),
        ("jet_transform", lambda v: "gaussian"),
        ("jet_quantiles", lambda v: [[q[::-1] for q in v[0]]] + v[1:]),  # decreasing quantiles
        ("jet_quantiles", lambda v: [v[0][:3]] + v[1:]),  # three jet features
        ("jet_quantiles", lambda v: None),  # "quantile" without its quantiles
        ("jet_quantiles", lambda v: [None] + v[1:]),  # a fitted class without quantiles
    ],
)
def test_load_corrupted_value_names_the_key(tmp_path, key, corrupt):
    data, path = _saved(tmp_path)
    data[key] = corrupt(data[key])
    path.write_text(json.dumps(data))
    with pytest.raises(PreprocessingFileError, match=rf"{path}.*'{key}'"):
        JetPreprocessor.load(path)


def test_load_unreadable_or_missing_file(tmp_path):
    path = tmp_path / "preprocessing.json"
    with pytest.raises(FileNotFoundError, match="preprocessing.json"):
        JetPreprocessor.load(path)
    path.write_text('{"format": "gsgm.JetPreprocessor", "jet_')  # truncated write
    with pytest.raises(PreprocessingFileError, match="not valid JSON"):
        JetPreprocessor.load(path)


def test_saturated_multiplicity_is_not_blown_up(real_jets30):
    # Nearly every 30-particle jet is full: a plain std (~0.05) would make a 29-particle jet a
    # 20-sigma outlier. The multiplicity scale is floored at one particle.
    pre = JetPreprocessor.fit(real_jets30)
    fitted = [JET_CLASSES.index(c) for c in pre.fitted_classes]
    assert (pre.jet_std[fitted, 3] >= 1.0).all()
    _, jets_norm, _ = pre.transform(real_jets30)
    one_missing = real_jets30.jets[:, 3] == 29
    assert one_missing.any()
    assert np.abs(jets_norm[one_missing, 3]).max() < 2.0


@pytest.mark.parametrize(
    ("value", "message"),
    [("a", 'row 2 \\(t\\), column 1: expected a number, got "a"'), (float("nan"), "must be a finite number")],
)
def test_load_bad_statistic_names_row_class_and_column(tmp_path, value, message):
    data, path = _saved(tmp_path)
    data["jet_mean"][2][1] = value
    path.write_text(json.dumps(data))
    with pytest.raises(PreprocessingFileError, match=rf"{path}: key 'jet_mean' .*{message}"):
        JetPreprocessor.load(path)


def test_generated_particles_stay_inside_the_truth_cone():
    """Issue 15: the truth has no particle beyond max_delta_r of its class, so neither may the model."""
    sample = make_synthetic_jets(300, 30, seed=6)
    pre = JetPreprocessor.fit(sample)
    truth = recenter_particles(sample.particles)
    truth_r = np.hypot(truth[..., 0], truth[..., 1])
    for index in np.unique(sample.labels):
        real = (sample.labels[:, None] == index) & (truth[..., 3] > 0)
        np.testing.assert_allclose(pre.max_delta_r[index], truth_r[real].max(), rtol=1e-5)
    rng = np.random.default_rng(1)
    particles_norm = rng.normal(0, 2, size=(300, 30, 3)).astype(np.float32)  # far outside: wide noise
    jets_norm = rng.normal(0, 1, size=(300, 4)).astype(np.float32)
    radius = pre.max_delta_r[sample.labels][:, None]
    unconfined = JetPreprocessor.from_dict({**pre.to_dict(), "max_delta_r": None})
    pf_before, _ = unconfined.inverse(particles_norm, jets_norm, sample.labels)
    assert (np.hypot(pf_before[..., 0], pf_before[..., 1]) > radius + 1e-2).any()  # the case exists
    pf, _ = pre.inverse(particles_norm, jets_norm, sample.labels)
    distance = np.hypot(pf[..., 0], pf[..., 1])
    assert (distance <= radius + 1e-3).all()
    np.testing.assert_allclose(recenter_particles(pf), pf, rtol=0, atol=1e-6)  # still recentred
    np.testing.assert_array_equal(pf[..., 2:], pf_before[..., 2:])  # pt_rel and mask untouched
    inside = (np.hypot(pf_before[..., 0], pf_before[..., 1]) <= radius).all(axis=1)
    assert inside.any()
    np.testing.assert_array_equal(pf[inside], pf_before[inside])  # jets inside: bit-for-bit as before


def test_confine_to_cone_moves_only_the_particles_outside():
    eta = np.array([[0.3, 0.9, 0.0], [0.9, 0.0, 0.0]])
    phi = np.array([[0.4, 1.2, 0.0], [0.0, 0.0, 0.0]])
    new_eta, new_phi = confine_to_cone(eta, phi, np.array([0.8, np.nan]))
    np.testing.assert_array_equal(new_eta[0, [0, 2]], eta[0, [0, 2]])  # inside: bit-for-bit
    np.testing.assert_allclose(np.hypot(new_eta[0, 1], new_phi[0, 1]), 0.8)  # onto the cone ...
    np.testing.assert_allclose(new_phi[0, 1] / new_eta[0, 1], 1.2 / 0.9)  # ... along its direction
    np.testing.assert_array_equal(new_eta[1], eta[1])  # no radius known: unchanged


def test_max_delta_r_round_trips_and_old_files_load(tmp_path):
    sample = make_synthetic_jets(200, 30, seed=3)
    pre = JetPreprocessor.fit(sample)
    loaded = JetPreprocessor.load(pre.save(tmp_path / "preprocessing.json"))
    np.testing.assert_array_equal(loaded.max_delta_r, pre.max_delta_r)
    old = pre.to_dict()
    del old["max_delta_r"]  # a file written before the key existed
    assert np.isnan(JetPreprocessor.from_dict(old).max_delta_r).all()
    bad = {**pre.to_dict(), "max_delta_r": [0.8, -1.0, 0.8, 0.8, 0.8]}
    with pytest.raises(PreprocessingFileError, match="max_delta_r"):
        JetPreprocessor.from_dict(bad)


def test_files_from_before_the_quantile_transform_load_as_standardisation(tmp_path):
    sample = make_synthetic_jets(200, 30, seed=4)
    standard = JetPreprocessor.fit(sample, jet_transform="standard")
    old = standard.to_dict()
    assert old.pop("jet_transform") == "standard" and old.pop("jet_quantiles") is None
    loaded = JetPreprocessor.from_dict(old)
    assert loaded.jet_transform == "standard"
    for a, b in zip(standard.transform(sample), loaded.transform(sample), strict=True):
        np.testing.assert_array_equal(a, b)
    quantile = JetPreprocessor.fit(sample).to_dict()
    del quantile["fit_counts"]  # the CDF levels need the fit counts
    with pytest.raises(PreprocessingFileError, match="'fit_counts'.*required"):
        JetPreprocessor.from_dict(quantile)


# ------------------------------------------------------------------------------------- pt feature


@pytest.mark.parametrize("pt_feature", ["log1m", "log"])
def test_pt_feature_round_trips_and_is_saved(real_jets, pt_feature, tmp_path):
    pre = JetPreprocessor.fit(real_jets, pt_feature=pt_feature)
    particles_norm, jets_norm, mask = pre.transform(real_jets)
    real = mask > 0
    truth = _recentred(real_jets).particles
    pt = truth[..., 2].astype(np.float64)
    expected = np.log(np.maximum(pt, PT_REL_MIN)) if pt_feature == "log" else np.log1p(-pt)
    standardised = (expected - pre.particle_mean[real_jets.labels][:, None, 2]) / pre.particle_std[
        real_jets.labels
    ][:, None, 2]
    np.testing.assert_allclose(particles_norm[..., 2][real], standardised[real], atol=1e-4)
    pf, _ = pre.inverse(particles_norm, jets_norm, real_jets.labels)
    np.testing.assert_allclose(pf, truth, rtol=0, atol=1e-5)
    loaded = JetPreprocessor.load(pre.save(tmp_path / "preprocessing.json"))
    assert loaded.pt_feature == pt_feature
    assert json.loads((tmp_path / "preprocessing.json").read_text())["particle_features"][2] == (
        "log(pt_rel)" if pt_feature == "log" else "log(1-pt_rel)"
    )
    np.testing.assert_array_equal(loaded.transform(real_jets)[0], particles_norm)


def test_log_pt_floors_ultra_soft_particles():
    # A constituent with pt_rel 1e-16 (the generator's W jets have some) is not a -20 sigma outlier of
    # log(pt_rel): it enters at the floor, and comes back at the floor, which no observable can tell.
    sample = make_synthetic_jets(50, 30, seed=8)
    particles = sample.particles.copy()
    softest = int(sample.jets[0, 3]) - 1  # the last real slot of jet 0
    particles[0, softest, 2] = 1e-16
    sample = JetSample(particles, sample.jets, sample.labels)
    pre = JetPreprocessor.fit(sample, recenter=False, pt_feature="log")
    particles_norm, jets_norm, mask = pre.transform(sample)
    real = particles_norm[..., 2][mask > 0]
    assert real.min() == pytest.approx(particles_norm[0, softest, 2])
    label = int(sample.labels[0])
    expected = (np.log(PT_REL_MIN) - pre.particle_mean[label, 2]) / pre.particle_std[label, 2]
    assert particles_norm[0, softest, 2] == pytest.approx(expected, rel=1e-5)
    pf, _ = pre.inverse(particles_norm, jets_norm, sample.labels)
    assert pf[0, softest, 2] == pytest.approx(PT_REL_MIN, rel=1e-4)


def test_files_from_before_the_pt_feature_load_as_fpcd_and_a_mismatch_is_named():
    sample = make_synthetic_jets(200, 30, seed=6)
    old = JetPreprocessor.fit(sample).to_dict()
    assert old.pop("pt_feature") == "log1m"
    assert JetPreprocessor.from_dict(old).pt_feature == "log1m"
    mismatched = {**JetPreprocessor.fit(sample, pt_feature="log").to_dict(), "pt_feature": "log1m"}
    with pytest.raises(PreprocessingFileError, match="particle_features.*log\\(pt_rel\\)"):
        JetPreprocessor.from_dict(mismatched)
    with pytest.raises(ValueError, match="pt_feature must be one of"):
        JetPreprocessor(30, pt_feature="sqrt")


def _relative_mass(particles: np.ndarray) -> np.ndarray:
    energy, px, py, pz = _jet_momentum(particles).T
    return np.sqrt(np.maximum(energy**2 - px**2 - py**2 - pz**2, 0.0))


def test_log_pt_makes_the_jet_mass_robust_to_standardised_errors(real_jets30):
    """Why ``pt_feature="log"``: the same standardised error of the pt feature, on the truth, moves the
    jets' relative mass (W1M's quantity) several times less through log(pt_rel) than through
    log(1 - pt_rel), whose errors are absolute in pt_rel and so large for the soft particles."""
    truth = _recentred(real_jets30)
    shifts = {}
    for pt_feature in ("log1m", "log"):
        pre = JetPreprocessor.fit(real_jets30, pt_feature=pt_feature)
        particles_norm, jets_norm, mask = pre.transform(real_jets30)
        noise = np.random.default_rng(0).normal(0.0, 0.1, mask.shape) * mask
        particles_norm[..., 2] += noise.astype(np.float32)
        noisy, _ = pre.inverse(particles_norm, jets_norm, real_jets30.labels)
        shifts[pt_feature] = stats.wasserstein_distance(
            _relative_mass(noisy), _relative_mass(truth.particles)
        )
    assert shifts["log"] < shifts["log1m"] / 3, shifts


def _summed_pt(particles: np.ndarray) -> np.ndarray:
    return (particles[..., 2].astype(np.float64) * particles[..., 3]).sum(axis=1)


@pytest.mark.parametrize("jet_transform", ["quantile", "standard"])
def test_pt_sum_is_a_fifth_jet_feature_that_round_trips_and_is_saved(real_jets, jet_transform, tmp_path):
    pre = JetPreprocessor.fit(real_jets, pt_sum=True, jet_transform=jet_transform, pt_feature="log")
    particles_norm, jets_norm, _ = pre.transform(real_jets)
    assert pre.num_jet_features == 5 and jets_norm.shape == (len(real_jets), 5)
    truth = _recentred(real_jets)
    # The fifth feature is the summed pt_rel of the stored particles: at 30 particles most jets are
    # truncated (below 1), at 150 most are complete (1 up to the scalar-vs-vector sum of pT).
    np.testing.assert_allclose(
        pre._jets_from_scores(jets_norm, real_jets.labels)[:, 4], _summed_pt(truth.particles), atol=1e-6
    )
    pf, jf = pre.inverse(particles_norm, jets_norm, real_jets.labels)
    assert jf.shape == (len(real_jets), 4)  # JetNet's jet features: the sum is not one of them
    np.testing.assert_allclose(pf, truth.particles, rtol=0, atol=1e-5)
    np.testing.assert_allclose(jf[:, [0, 2]], real_jets.jets[:, [0, 2]], rtol=1e-5)
    np.testing.assert_array_equal(pre.inverse_jets(jets_norm, real_jets.labels), jf)
    saved = json.loads(pre.save(tmp_path / "preprocessing.json").read_text())
    assert saved["pt_sum"] is True and saved["jet_features"][-1] == "pt_rel_sum"
    loaded = JetPreprocessor.load(tmp_path / "preprocessing.json")
    assert loaded.pt_sum and loaded.num_jet_features == 5
    np.testing.assert_array_equal(loaded.transform(real_jets)[1], jets_norm)


def test_pt_sum_rescales_generated_particles_to_the_generated_sum(real_jets30):
    # Errors of the pt feature, independent per particle, spread the jets' summed pt_rel; with pt_sum
    # the particles come back summing to the jet's fifth feature (here the truth's, as no noise is on it).
    truth_sum = _summed_pt(_recentred(real_jets30).particles)
    spread = {}
    for pt_sum in (False, True):
        pre = JetPreprocessor.fit(real_jets30, pt_feature="log", pt_sum=pt_sum)
        particles_norm, jets_norm, mask = pre.transform(real_jets30)
        noise = np.random.default_rng(1).normal(0.0, 0.2, mask.shape) * mask
        particles_norm[..., 2] += noise.astype(np.float32)
        noisy, _ = pre.inverse(particles_norm, jets_norm, real_jets30.labels)
        spread[pt_sum] = np.abs(_summed_pt(noisy) - truth_sum).max()
    assert spread[True] < 1e-5 < 0.05 < spread[False], spread


@pytest.mark.parametrize(
    ("key", "flags", "width", "names"),
    [
        ("pt_sum", {"pt_sum": True}, 5, "pt_rel_sum"),
        ("constituent_mass", {"constituent_mass": True}, 5, "constituent_mass_rel"),
        ("constituent_mass", {"pt_sum": True, "constituent_mass": True}, 6, "pt_rel_sum, constituent_mass_r"),
    ],
)
def test_extra_jet_feature_files_are_checked_against_their_width(key, flags, width, names):
    sample = make_synthetic_jets(200, 30, seed=6)
    four = JetPreprocessor.fit(sample).to_dict()
    assert four.pop(key) is False
    assert JetPreprocessor.from_dict(four).num_jet_features == 4  # files from before the choice
    with pytest.raises(PreprocessingFileError, match=f"jet_mean.*row 0 \\(g\\).*must be {width}"):
        JetPreprocessor.from_dict({**four, **flags, "jet_features": None})
    pre = JetPreprocessor.fit(sample, **flags)
    with pytest.raises(ValueError, match=f"jets_norm must have shape \\[N, {width}\\].*{names}"):
        pre.inverse_jets(np.zeros((3, width - 1), np.float32), np.zeros(3, np.int64))


def test_constituent_mass_is_jetnets_jet_mass_of_the_particles(real_jets30):
    # The feature must be the quantity W1M compares: jetnet's mass of the summed particle four-vectors.
    from jetnet.utils import jet_features

    particles = real_jets30.particles[:200]
    expected = jet_features(particles[..., :3].astype(np.float64) * particles[..., 3:4])["mass"]
    np.testing.assert_allclose(
        constituent_mass(*np.moveaxis(particles, -1, 0)), expected, rtol=1e-6, atol=1e-9
    )
    # Invariant under the shift of eta (a boost along the beam) and phi (a rotation): recentring keeps it.
    np.testing.assert_allclose(
        constituent_mass(*np.moveaxis(_recentred(real_jets30).particles[:200], -1, 0)),
        expected,
        rtol=1e-6,
        atol=1e-9,
    )


@pytest.mark.parametrize("pt_sum", [False, True])
def test_constituent_mass_is_a_last_jet_feature_that_round_trips_and_is_saved(real_jets, pt_sum, tmp_path):
    pre = JetPreprocessor.fit(real_jets, pt_sum=pt_sum, constituent_mass=True, pt_feature="log")
    particles_norm, jets_norm, _ = pre.transform(real_jets)
    assert pre.num_jet_features == 5 + pt_sum and jets_norm.shape == (len(real_jets), 5 + pt_sum)
    assert pre.jet_feature_names[-1] == "constituent_mass_rel"
    truth = _recentred(real_jets)
    masses = _relative_mass(truth.particles)
    np.testing.assert_allclose(pre._jets_from_scores(jets_norm, real_jets.labels)[:, -1], masses, atol=1e-6)
    pf, jf = pre.inverse(particles_norm, jets_norm, real_jets.labels)
    assert jf.shape == (len(real_jets), 4)
    # The angles come back scaled by the factor that meets the mass read back through the quantile
    # map, which is 1 to a relative ~1e-4 at worst (float32 scores through interpolated quantiles: at
    # the tails the quantiles are far apart), and to ~1e-6 for the typical jet.
    np.testing.assert_allclose(pf[..., 2:], truth.particles[..., 2:], rtol=0, atol=1e-5)
    np.testing.assert_allclose(pf[..., :2], truth.particles[..., :2], rtol=0, atol=5e-4)
    assert np.median(np.abs(pf[..., :2] - truth.particles[..., :2])) < 1e-6
    np.testing.assert_allclose(_relative_mass(pf), masses, rtol=1e-3, atol=1e-6)
    saved = json.loads(pre.save(tmp_path / "preprocessing.json").read_text())
    assert saved["constituent_mass"] is True and saved["jet_features"][-1] == "constituent_mass_rel"
    loaded = JetPreprocessor.load(tmp_path / "preprocessing.json")
    assert loaded.constituent_mass and loaded.pt_sum == pt_sum
    np.testing.assert_array_equal(loaded.transform(real_jets)[1], jets_norm)


def test_constituent_mass_scales_generated_angles_to_the_generated_mass(real_jets30):
    # Angular errors of the particle network spread the jets' masses; with constituent_mass each jet's
    # angles are scaled to the mass of its last jet feature (here the truth's), within the cone.
    truth = _recentred(real_jets30).particles
    masses = _relative_mass(truth)
    errors = {}
    for with_mass in (False, True):
        pre = JetPreprocessor.fit(real_jets30, pt_feature="log", constituent_mass=with_mass)
        particles_norm, jets_norm, mask = pre.transform(real_jets30)
        rng = np.random.default_rng(2)
        particles_norm[..., :2] *= rng.uniform(0.6, 1.4, (len(mask), 1, 1)).astype(np.float32)
        generated, _ = pre.inverse(particles_norm, jets_norm, real_jets30.labels)
        errors[with_mass] = np.abs(_relative_mass(generated) - masses)
        radius = np.hypot(generated[..., 0], generated[..., 1]) * generated[..., 3]
        assert np.all(radius <= pre.max_delta_r[real_jets30.labels][:, None] + 1e-6)
    # Met wherever the cone allows it: a jet widened by the noise is shrunk back exactly; one that was
    # narrowed may hit the cone before its mass (its farthest particle is then on the cone).
    assert np.median(errors[True]) < 1e-6 < 1e-2 < np.median(errors[False]), errors
    assert np.mean(errors[True] < 1e-6) > 0.9


def test_scaled_to_mass_is_monotone_bounded_and_keeps_the_axis():
    # Two massless particles an eta distance d apart: m^2 = 2 z1 z2 (cosh(d) - 1); the pair below is
    # 0.4 apart with its pT-weighted axis at 0, so the mass of a pair 0.2 apart needs the factor 0.5.
    eta = np.array([[0.1, -0.3, 0.0], [0.1, -0.3, 0.0], [0.2, 0.0, 0.0]])
    phi = np.zeros_like(eta)
    pt = np.array([[0.75, 0.25, 0.0], [0.75, 0.25, 0.0], [1.0, 0.0, 0.0]])
    mask = pt > 0
    want = np.sqrt(2 * 0.75 * 0.25 * (np.cosh(0.2) - 1.0))  # opening angle 0.2: half of 0.4
    new_eta, new_phi = scaled_to_mass(eta, phi, pt, mask, np.array([want, 1.0, 0.5]), np.full(3, 0.8))
    np.testing.assert_allclose(new_eta[0], eta[0] * 0.5, atol=1e-9)  # the pT-weighted axis stays at 0
    np.testing.assert_allclose(_relative_mass(np.stack([new_eta, new_phi, pt, mask], -1))[0], want)
    # An unreachable mass stops where the farthest particle reaches the cone, 0.8 from the axis.
    np.testing.assert_allclose(np.abs(new_eta[1]).max(), 0.8)
    np.testing.assert_array_equal(new_eta[2], eta[2])  # one particle: mass 0 at any scale, untouched
    np.testing.assert_array_equal(new_phi, 0.0)
