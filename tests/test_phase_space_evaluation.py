"""Phase-space metrics: the floor is small, uniform phase space is far, p-space violations are seen."""

from __future__ import annotations

import numpy as np
import pytest

from gsgm.data.phase_space_processes import sample_muon_decay
from gsgm.data.rambo import massless, rambo
from gsgm.evaluation.phase_space import METRICS, evaluate_phase_space, format_markdown, write_report


def test_report_ranks_truth_uniform_and_broken_events(tmp_path):
    truth = sample_muon_decay(12_000, seed=1)
    uniform = rambo(np.random.default_rng(2), 6_000, 3)
    rng = np.random.default_rng(3)
    broken = massless(sample_muon_decay(6_000, seed=4)[..., 1:] + 0.01 * rng.standard_normal((6_000, 3, 3)))
    report = evaluate_phase_space(truth, {"uniform": uniform, "smeared": broken}, "muon_decay", seed=5)
    floor, flat = report["metrics"]["truth (floor)"], report["metrics"]["uniform"]
    assert report["num_events"] == 6_000 and set(floor) == set(METRICS)
    for key in ("log_density", "E2", "u1", "u2"):  # uniform phase space differs in the Dalitz plane ...
        assert flat[key] > 5 * floor[key], key
    assert flat["cos_theta_plane"] < 0.03  # ... not in its isotropic orientation
    assert report["conservation"]["uniform"]["momentum_max"] < 1e-12
    smeared = report["conservation"]["smeared"]
    assert smeared["momentum_mean"] > 5e-3 and smeared["mass_shell_max"] < 1e-12
    assert report["outside_support"]["smeared"] > 0.01 and report["outside_support"]["uniform"] == 0
    json_path, md_path = write_report(report, tmp_path / "r")
    assert json_path.is_file() and "| W1 log_density |" in md_path.read_text()
    assert "smeared" in format_markdown(report)
    with pytest.raises(ValueError, match="at least 4 truth events"):
        evaluate_phase_space(truth[:3], {}, "muon_decay")


def test_antenna_report_separates_truth_from_uniform_phase_space(tmp_path):
    from gsgm.data.phase_space_files import read_events, resolve_events_path
    from gsgm.evaluation.phase_space_antenna import ANTENNA_METRICS

    truth, attrs = read_events(resolve_events_path("builtin", "antenna"))
    assert truth.shape == (1000, 10, 4) and attrs["xi_max"] == 1000.0
    uniform = rambo(np.random.default_rng(2), 500, 10)
    report = evaluate_phase_space(truth, {"uniform": uniform}, "antenna", xi_max=attrs["xi_max"], seed=5)
    floor, flat = report["metrics"]["truth (floor)"], report["metrics"]["uniform"]
    assert set(floor) == set(ANTENNA_METRICS) and report["metric_keys"] == list(ANTENNA_METRICS)
    for key in ("log10_y", "log10_s", "log10_ratio", "E_max", "log10_E_min"):  # the singular structure
        assert flat[key] > 3 * floor[key], key
    assert flat["cos_theta"] < 0.05  # both isotropic
    assert report["outside_support"]["truth (floor)"] == 0 and report["outside_support"]["uniform"] > 0.1
    assert report["conservation"]["uniform"]["momentum_max"] < 1e-12
    _, md_path = write_report(report, tmp_path / "r")
    assert "xi_max = 1000" in md_path.read_text() and "| W1 log10_y |" in md_path.read_text()
