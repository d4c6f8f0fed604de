"""Loading comparisons, the report files and scripts/evaluate.py end to end (small samples)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BUILTIN_DIR

from gsgm.data.jetnet_format import JET_CLASSES, class_file_name, read_jetnet_file, write_jetnet_file
from gsgm.data.preprocessing import recenter_particles
from gsgm.evaluation.metrics import METRIC_KEYS, EvaluationConfig, evaluate_pair, metric_stages
from gsgm.evaluation.report import FLOOR_LABEL, evaluate_comparison, format_markdown, write_report
from gsgm.evaluation.samples import load_comparison, parse_splits

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "evaluate.py"
# Small and quick: 150 jets per sample, 2 resamples, COV/MMD on 2 batches of 20 jets.
FAST = EvaluationConfig(jets_per_class=150, bootstrap=2, cov_mmd_batches=2, cov_mmd_jets=20)


def write_generated(directory: Path, classes, num_particles: int = 30, jets: int = 200, widen: float = 1.0):
    """A stand-in 'generated' sample: the last jets of the shipped files, eta/phi widened by ``widen``."""
    for jet_class in classes:
        particles, features = read_jetnet_file(BUILTIN_DIR / class_file_name(jet_class, num_particles))
        particles, features = particles[-jets:].copy(), features[-jets:]
        particles[..., :2] *= widen
        write_jetnet_file(directory / class_file_name(jet_class, num_particles), particles, features)
    return directory


def run_evaluate(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def gen_all(tmp_path_factory) -> Path:
    return write_generated(tmp_path_factory.mktemp("gen_all"), JET_CLASSES, widen=1.4)


@pytest.fixture(scope="module")
def report(gen_all):
    comparison = load_comparison(
        "builtin", [("widened", gen_all)], jets_per_class=150, truth_split="valid,test"
    )
    return evaluate_comparison(comparison, FAST)


def test_comparison_halves_are_disjoint_equal_and_recentred(gen_all):
    comparison = load_comparison("builtin", [("a", gen_all)], classes="g,t", jets_per_class=120)
    assert comparison.num_particles == 30 and list(comparison.classes) == ["g", "t"]
    for samples in comparison.classes.values():
        assert len(samples.truth) == len(samples.truth_floor) == len(samples.generated["a"]) == 120
        rows_a = {row.tobytes() for row in samples.truth.jets}
        rows_b = {row.tobytes() for row in samples.truth_floor.jets}
        assert not rows_a & rows_b
        np.testing.assert_allclose(
            recenter_particles(samples.truth.particles), samples.truth.particles, atol=1e-5
        )
        np.testing.assert_allclose(
            recenter_particles(samples.generated["a"].particles), samples.generated["a"].particles, atol=1e-5
        )


def test_truth_split_limits_jets_and_says_so(gen_all):
    # valid,test of 2000 jets = 600 jets -> two halves of 300; 'all' -> 1000 (then the 200 generated).
    comparison = load_comparison("builtin", [("a", gen_all)], classes="q", jets_per_class=50_000)
    assert comparison.classes["q"].truth_available == 600
    assert comparison.classes["q"].n == 200  # the generated files hold 200
    assert "200 jets per sample instead of 50000" in comparison.notes[0]
    wide = load_comparison("builtin", [("a", gen_all)], classes="q", truth_split="test", jets_per_class=100)
    assert wide.classes["q"].truth_available == 300 and wide.classes["q"].n == 100
    with pytest.raises(ValueError, match="unknown split"):
        parse_splits("valid,holdout")


def test_report_is_complete_and_finite(report):
    assert set(report["classes"]) == set(JET_CLASSES)
    assert list(report["metrics"]) == list(METRIC_KEYS)
    for jet_class, entry in report["classes"].items():
        assert entry["jets_per_sample"] == 150
        for rows in (entry["floor"], entry["models"]["widened"]):
            assert list(rows) == list(METRIC_KEYS)
            for key, value in rows.items():
                if key == "fpnd" and value.get("available") is False:
                    assert value["mean"] is None and value["reason"], (jet_class, value)
                    continue
                assert math.isfinite(value["mean"]), (jet_class, key, value)
                if key != "fpnd":
                    assert math.isfinite(value["std"]) and value["std"] >= 0, (jet_class, key, value)


def test_widened_model_is_worse_than_the_floor(report):
    for entry in report["classes"].values():
        floor, model = entry["floor"], entry["models"]["widened"]
        # With 2 resamples the stds are crude, and FPD/KPD on 36 EFPs are erratic for 150 jets (see the
        # report's note); test_evaluation_metrics checks the margins properly.
        for key in ("w1m", "w1p", "w1efp"):
            assert model[key]["mean"] > 1.5 * floor[key]["mean"], key


def test_markdown_has_floor_and_model_rows_per_class(report, tmp_path):
    json_path, md_path = write_report(report, tmp_path / "report")
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(report))
    text = md_path.read_text()
    assert text == format_markdown(json.loads(json_path.read_text()))  # the JSON is enough to rebuild it
    for header in (
        "W1M (×10^-3)",
        "W1P (×10^-3)",
        "W1EFP (×10^-5)",
        "FPND",
        "COV ↑",
        "MMD",
        "W1 jet pT [GeV]",
    ):
        assert header in text
    particle_table = text.split("## Jet-level")[0]
    assert particle_table.count(f"| {FLOOR_LABEL} |") == 5 and particle_table.count("| widened |") == 5
    assert "not defined: FPND is defined for classes g, q, t only, not w" in text
    assert "FPD and KPD" in text  # the small-sample note
    assert not list((tmp_path / "report").glob(".*.tmp"))


def test_cli_writes_report_for_two_models(tmp_path, gen_all):
    second = write_generated(tmp_path / "gen2", ("g", "t"), widen=1.0)
    out = tmp_path / "report"
    result = run_evaluate(
        "--truth", "builtin", "--gen", str(gen_all), "--label", "wide", "--gen", str(second),
        "--label", "FPCD 8", "--classes", "g,t", "--jets-per-class", "100", "--bootstrap", "2",
        "--metrics", "w1m,w1p,w1_jet_mass", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads((out / "metrics.json").read_text())
    assert [m["label"] for m in payload["models"]] == ["wide", "FPCD 8"]
    assert set(payload["classes"]["t"]["models"]) == {"wide", "FPCD 8"}
    assert set(payload["classes"]["g"]["floor"]) == {"w1m", "w1p", "w1_jet_mass"}
    assert "| FPCD 8 |" in result.stdout and FLOOR_LABEL in result.stdout
    # The progress bar (stderr only) ran to its end: 2 classes x (floor + 2 models) x 3 metric stages.
    assert "evaluating" in result.stderr and "18/18" in result.stderr and "evaluating" not in result.stdout
    quiet = run_evaluate(
        "--truth", "builtin", "--gen", str(second), "--classes", "g", "--jets-per-class", "100",
        "--metrics", "w1_jet_mass", "--out", str(tmp_path / "quiet"), "--no-progress",
    )  # fmt: skip
    assert quiet.returncode == 0 and "evaluating" not in quiet.stderr


def test_progress_callback_follows_the_metric_stages(gen_all):
    assert metric_stages(("w1_jet_mass", "fpd", "mmd", "w1m")) == [
        "w1m", "efp_features", "cov_mmd", "fpd", "w1_jet_mass"
    ]  # fmt: skip
    comparison = load_comparison("builtin", [("a", gen_all)], classes="t", jets_per_class=60)
    samples = comparison.classes["t"]
    config = EvaluationConfig(
        jets_per_class=60, bootstrap=2, cov_mmd_batches=2, cov_mmd_jets=20, metrics=("w1m", "cov", "mmd")
    )
    seen: list[str] = []
    evaluate_pair(samples.truth, samples.generated["a"], "t", config, on_stage=seen.append)
    assert seen == metric_stages(config.metrics) == ["w1m", "cov_mmd"]


def test_floor_is_computed_once_per_truth_and_settings(gen_all, tmp_path):
    """The second evaluation against the same truth reads the floor (FPND, COV/MMD, W1s) from disk."""
    comparison = load_comparison("builtin", [("a", gen_all)], classes="t", jets_per_class=80)
    config = EvaluationConfig(jets_per_class=80, bootstrap=2, cov_mmd_batches=2, cov_mmd_jets=20)
    first_log: list[str] = []
    first = evaluate_comparison(comparison, config, log=first_log.append, feature_cache_dir=tmp_path)
    assert len(list(tmp_path.glob("floor-*.json"))) == 1
    assert not any("read from the evaluation cache" in line for line in first_log)
    second_log: list[str] = []
    second = evaluate_comparison(comparison, config, log=second_log.append, feature_cache_dir=tmp_path)
    assert any("class t, floor: read from the evaluation cache" in line for line in second_log)
    assert second["classes"]["t"]["floor"] == first["classes"]["t"]["floor"]
    assert second["classes"]["t"]["models"] == first["classes"]["t"]["models"]
    # other settings (or another truth) are another floor, never a stale one
    other = EvaluationConfig(jets_per_class=80, bootstrap=2, cov_mmd_batches=2, cov_mmd_jets=20, seed=1)
    evaluate_comparison(comparison, other, feature_cache_dir=tmp_path)
    assert len(list(tmp_path.glob("floor-*.json"))) == 2
    # an unreadable floor file is recomputed
    for path in tmp_path.glob("floor-*.json"):
        path.write_text("{truncated")
    third_log: list[str] = []
    third = evaluate_comparison(comparison, config, log=third_log.append, feature_cache_dir=tmp_path)
    assert not any("read from the evaluation cache" in line for line in third_log)
    assert third["classes"]["t"]["floor"] == first["classes"]["t"]["floor"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing_class", "has no file for class w with 30 particles: missing w.hdf5"),
        ("particles_150_only", "mismatched particle counts"),
        ("wrong_count_in_file", "stores 150 particles per jet, expected 30"),
        ("no_gen_dir", "generated 'nowhere' directory not found"),
        ("label_first", "--label must follow the --gen it names"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, gen_all, setup, message):
    gen = tmp_path / "gen"
    args = ["--truth", "builtin", "--out", str(tmp_path / "out")]
    if setup == "missing_class":
        write_generated(gen, ("g", "q"))
        args += ["--gen", str(gen), "--classes", "g,w"]
    elif setup == "particles_150_only":
        write_generated(gen, ("g",), num_particles=150, jets=20)
        args += ["--gen", str(gen), "--particles", "30"]
    elif setup == "wrong_count_in_file":
        gen.mkdir()
        particles, jets = read_jetnet_file(BUILTIN_DIR / "g150.hdf5")
        write_jetnet_file(gen / "g.hdf5", particles[:20], jets[:20])  # 150 slots under the 30 name
        args += ["--gen", str(gen)]
    elif setup == "no_gen_dir":
        args += ["--gen", str(tmp_path / "nowhere"), "--label", "nowhere"]
    else:
        args = ["--label", "x", "--gen", str(gen_all), *args]
    result = run_evaluate(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert message in lines[-1]
    if setup != "label_first":  # argparse prints its usage first
        assert len(lines) == 1 and lines[0].startswith("error: ")
    assert not (tmp_path / "out").exists()


def test_auto_particle_count_mismatch(tmp_path):
    """Truth with 30 particles only, generated with 150 only, no --particles: one clear error."""
    truth, gen = tmp_path / "truth", tmp_path / "gen"
    write_generated(truth, ("g",), num_particles=30, jets=40)
    write_generated(gen, ("g",), num_particles=150, jets=40)
    with pytest.raises(
        ValueError, match=r"mismatched particle counts.*truth: \[30\]; generated 'x': \[150\]"
    ):
        load_comparison(truth, [("x", gen)])
