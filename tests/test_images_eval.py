"""Jet-image evaluation: metric formulas, statistics, the shipped classifier, the report and the plots."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from gsgm.data.images import load_jet_images
from gsgm.evaluation.image_classifier import (
    CLASSIFIER_WEIGHTS,
    classifier_embeddings,
    classifier_info,
    load_image_classifier,
)
from gsgm.evaluation.image_metrics import (
    bootstrap_ci,
    diversity_index,
    frechet_distance,
    mass_ks_test,
    pixel_wasserstein,
    welch_test,
)
from gsgm.evaluation.image_report import FD_NAME, evaluate, write_report
from gsgm.plotting.images import plot_class_images, plot_mass_histograms


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, size=(200_000, 3))
    b = rng.normal([1.0, 0.0, 0.0], [1.0, 2.0, 1.0], size=(200_000, 3))
    # Diagonal covariances: ||d mu||^2 + sum (s_a - s_b)^2 = 1 + (1 - 2)^2 = 2.
    assert frechet_distance(a, b) == pytest.approx(2.0, abs=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        frechet_distance(a[:, :2], b)


def test_pixel_wasserstein_and_diversity_index():
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, size=(500, 5, 5))
    assert pixel_wasserstein(images, images + 0.25) == pytest.approx(0.25)
    assert pixel_wasserstein(images, images) == 0
    # Per-pixel variance of U(0, 1) is 1/12 everywhere.
    assert diversity_index(images) == pytest.approx(1 / 12, rel=0.05)
    assert diversity_index(np.repeat(images[:1], 10, axis=0)) == pytest.approx(0, abs=1e-20)


def test_mass_ks_test_detects_a_different_mass(real_jets30):
    images, labels = load_jet_images("builtin", "t,q", split="test")
    tops, quarks = images[labels == 2], images[labels == 1]
    same = mass_ks_test(tops[:150], tops[150:])
    different = mass_ks_test(tops, quarks)
    assert same["p_value"] > 0.01 and different["p_value"] < 1e-6
    assert mass_ks_test(tops, tops) == {"statistic": 0.0, "p_value": 1.0, "empty_a": 0, "empty_b": 0}
    empty = mass_ks_test(np.zeros((3, 25, 25)), tops)
    assert empty["empty_a"] == 3 and empty["p_value"] == 0.0


def test_welch_test_and_bootstrap():
    a, b = [9.8, 10.1, 9.5, 10.4, 9.9], [7.3, 7.0, 7.6, 7.2, 7.5]
    result = welch_test(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False)
    assert result["t"] == pytest.approx(reference.statistic) and result["p_value"] == pytest.approx(
        reference.pvalue
    )
    va, vb = np.var(a, ddof=1) / 5, np.var(b, ddof=1) / 5
    assert result["dof"] == pytest.approx((va + vb) ** 2 / (va**2 / 4 + vb**2 / 4))
    assert np.isnan(welch_test([1.0], b)["p_value"])
    lo, hi = bootstrap_ci(a)
    assert lo < np.mean(a) < hi and (lo, hi) == bootstrap_ci(a)
    wide = bootstrap_ci(np.random.default_rng(0).normal(size=10))
    narrow = bootstrap_ci(np.random.default_rng(0).normal(size=1000))
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 3


def test_shipped_classifier_is_small_recorded_and_works():
    assert CLASSIFIER_WEIGHTS.stat().st_size < 1_000_000
    info = classifier_info(CLASSIFIER_WEIGHTS)
    assert info["test_accuracy"] > 0.5 and info["num_test"] == 1500 and info["embedding_dim"] == 32
    classifier = load_image_classifier()
    images, labels = load_jet_images("builtin", "g,q,t,w,z", split="test", max_jets_per_class=60)
    predicted = np.argmax(np.asarray(classifier(images)), axis=1)
    assert (predicted == labels).mean() > 0.45  # chance is 0.2
    assert classifier_embeddings(classifier, images).shape == (300, 32)
    with pytest.raises(FileNotFoundError, match="train_image_classifier"):
        load_image_classifier("/nonexistent/x.weights.h5")


@pytest.fixture(scope="module")
def truth_and_fakes():
    truth = load_jet_images("builtin", "t,w", split="test", max_jets_per_class=80)
    reference = load_jet_images("builtin", "t,w", split="valid", max_jets_per_class=80)
    rng = np.random.default_rng(0)

    def smeared(seed):
        images, labels = reference
        noise = np.random.default_rng(seed).uniform(0, 0.02, images.shape) * (
            rng.uniform(size=images.shape) < 0.1
        )
        return (np.roll(images, 2, axis=2) + noise).astype(np.float32), labels

    good = [(reference[0][half::2], reference[1][half::2]) for half in (0, 1)]  # two halves: two "runs"
    return truth, reference, {"good": good, "bad": [smeared(1), smeared(2), smeared(3)]}


def test_report(truth_and_fakes, tmp_path):
    truth, reference, samples = truth_and_fakes
    report = evaluate(truth, samples, reference=reference, sources={"good": ["a.h5", "b.h5"]})
    good, bad = report["models"]["good"], report["models"]["bad"]
    assert good["summary"]["fd_all"]["mean"] < bad["summary"]["fd_all"]["mean"]
    assert good["summary"]["wd_all"]["mean"] < bad["summary"]["wd_all"]["mean"]
    assert good["summary"]["fd_all"]["n"] == 2 and good["sources"] == ["a.h5", "b.h5"]
    # The "good" runs are halves of the reference split: near the reference row (same data, half the size).
    assert good["summary"]["fd_all"]["mean"] < 3 * report["truth_reference"]["fd"]["all"] + 0.1
    assert set(good["mass_ks_pooled"]) == {"t", "w"} and report["ks_alpha_bonferroni"] == pytest.approx(0.025)
    assert report["welch"]["models"] == ["good", "bad"] and report["welch"]["fd_all"]["significant"] is True
    json_path, md_path = write_report(report, tmp_path / "report")
    assert json.loads(json_path.read_text())["models"]["bad"]["summary"]["di_all"]["n"] == 3
    text = md_path.read_text()
    assert FD_NAME in text and "FID" not in text and "Welch" in text and "| good | 2 |" in text


def test_plots(truth_and_fakes, tmp_path):
    truth, _, samples = truth_and_fakes
    fig = plot_class_images(*truth, tmp_path / "truth.png", per_class=2)
    assert len(fig.axes) == 2 * 2 + 1  # two classes x two images + colour bar
    assert (tmp_path / "truth.png").stat().st_size > 10_000
    samples = {"score": samples["bad"][0], "consistency": samples["good"][0]}
    fig = plot_mass_histograms(truth, samples, tmp_path / "m.png")
    assert [len(ax.patches) for ax in fig.axes] == [3, 3]  # truth + two models per class
    assert (tmp_path / "m.png").stat().st_size > 10_000
