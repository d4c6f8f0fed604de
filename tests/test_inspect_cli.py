"""scripts/inspect_data.py end to end (subprocess), plus the summary functions it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_synthetic_jets

from gsgm.data.jetnet_format import JET_CLASSES, JetSample, class_file_name, write_jetnet_file
from gsgm.data.summary import format_table, mass_peak, summarize

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "inspect_data.py"
BUILTIN_G = ROOT / "gsgm" / "data" / "builtin" / "g.hdf5"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def jet_dir(tmp_path) -> Path:
    """All five classes with 30 particles (40 jets each), and g, q with 150."""
    for index, jet_class in enumerate(JET_CLASSES):
        sample = make_synthetic_jets(40, 30, seed=index)
        write_jetnet_file(tmp_path / class_file_name(jet_class, 30), sample.particles, sample.jets)
    for index, jet_class in enumerate(("g", "q")):
        sample = make_synthetic_jets(10, 150, seed=10 + index)
        write_jetnet_file(tmp_path / class_file_name(jet_class, 150), sample.particles, sample.jets)
    return tmp_path


def test_table_is_printed(jet_dir):
    result = run_cli(str(jet_dir))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "30 particles" in lines[0]
    header = lines[1]
    for column in ("class", "jets", "mult mean", "m peak[GeV]", "pT min[GeV]", "eta max"):
        assert column in header
    rows = [line for line in lines[3:] if line.strip()]
    assert [row.split()[0] for row in rows] == list(JET_CLASSES)
    assert all(" 40 " in row for row in rows)
    assert result.stderr == ""


def test_json_output_is_pure_json_with_every_class(jet_dir):
    result = run_cli(str(jet_dir), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)  # the whole of stdout must parse
    assert payload["num_particles"] == 30
    assert list(payload["classes"]) == list(JET_CLASSES)
    for stats in payload["classes"].values():
        assert stats["count"] == 40
        assert stats["num_particles"] == 30
        assert 1 <= stats["multiplicity_mean"] <= 30
        assert stats["pt_min_gev"] <= stats["pt_max_gev"]
        assert stats["eta_min"] <= stats["eta_max"]


def test_particles_and_classes_options(jet_dir):
    result = run_cli(str(jet_dir), "--particles", "150", "--classes", "q,g", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["num_particles"] == 150
    assert list(payload["classes"]) == ["q", "g"]
    assert payload["classes"]["g"]["count"] == 10 and payload["classes"]["g"]["num_particles"] == 150


def test_particles_detected_when_only_150_exist(tmp_path):
    sample = make_synthetic_jets(12, 150, seed=1)
    write_jetnet_file(tmp_path / "t150.hdf5", sample.particles, sample.jets)
    result = run_cli(str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["num_particles"] == 150 and list(payload["classes"]) == ["t"]


def test_missing_directory_is_a_clean_error(tmp_path):
    missing = tmp_path / "does_not_exist"
    result = run_cli(str(missing))
    assert result.returncode == 2
    assert str(missing) in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_missing_class_file_is_a_clean_error(jet_dir):
    result = run_cli(str(jet_dir), "--particles", "150", "--classes", "g,t", "--json")
    assert result.returncode == 2
    assert str(jet_dir / "t150.hdf5") in result.stderr and "6975117" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_invalid_file_is_a_clean_error(jet_dir):
    (jet_dir / "w.hdf5").write_text("this is not HDF5")
    result = run_cli(str(jet_dir))
    assert result.returncode == 2
    assert str(jet_dir / "w.hdf5") in result.stderr and "not a readable HDF5 file" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_class_is_a_clean_error(jet_dir):
    result = run_cli(str(jet_dir), "--classes", "g,top")
    assert result.returncode == 2
    assert "unknown jet class 'top'" in result.stderr and "Traceback" not in result.stderr


def test_download_refuses_builtin():
    result = run_cli("builtin", "--download")
    assert result.returncode == 2 and "builtin" in result.stderr


def test_builtin_sample():
    """The shipped sample: five classes of 2000 jets, physically sensible mass peaks."""
    assert BUILTIN_G.is_file(), f"shipped sample missing: {BUILTIN_G}"
    result = run_cli("builtin", "--particles", "30", "--json")
    assert result.returncode == 0, result.stderr
    classes = json.loads(result.stdout)["classes"]
    assert list(classes) == list(JET_CLASSES)
    assert all(stats["count"] == 2000 for stats in classes.values())
    # Boosted top, W and Z jets peak near their masses (MPI shifts them up a little).
    assert 150 <= classes["t"]["mass_peak_gev"] <= 210
    assert 65 <= classes["w"]["mass_peak_gev"] <= 110
    assert 70 <= classes["z"]["mass_peak_gev"] <= 120
    table = run_cli("builtin")
    assert table.returncode == 0 and "top quark" in table.stdout


# ------------------------------------------------------------------------------------ summary functions


def test_mass_peak_finds_the_mode():
    rng = np.random.default_rng(0)
    mass = np.concatenate([rng.normal(175, 4, 500), rng.uniform(0, 300, 300)])
    assert abs(mass_peak(mass) - 175) <= 5
    assert mass_peak(np.array([81.0, 82.0, 83.0, 200.0]), bin_width=5.0) == 82.5


def test_summarize_sample_values():
    particles = np.zeros((3, 4, 4), np.float32)
    particles[0, :1, 3] = 1
    particles[1, :4, 3] = 1
    particles[2, :3, 3] = 1
    particles[1, 3, 0] = -2.5  # largest |eta_rel| among real particles
    particles[2, 3, 0] = 9.0  # padding: must be ignored
    jets = np.array([[900, -1, 80, 1], [1100, 2, 90, 4], [1000, 0.5, 170, 3]], np.float32)
    labels = np.array([3, 3, 2], np.int32)  # w, w, t
    summary = summarize(JetSample(particles, jets, labels))
    assert list(summary) == ["t", "w"]
    w = summary["w"]
    assert w["count"] == 2 and w["num_particles"] == 4
    assert w["multiplicity_mean"] == 2.5 and w["multiplicity_std"] == 1.5
    assert w["mass_mean_gev"] == 85.0
    assert (w["pt_min_gev"], w["pt_max_gev"]) == (900.0, 1100.0)
    assert (w["eta_min"], w["eta_max"]) == (-1.0, 2.0)
    assert w["abs_eta_rel_max"] == 2.5
    assert summary["t"]["abs_eta_rel_max"] == 0.0
    assert list(summarize(JetSample(particles, jets, labels), classes="w")) == ["w"]
    json.dumps(summary)  # plain Python numbers only


def test_format_table_has_one_aligned_row_per_class():
    sample = make_synthetic_jets(30, 30, seed=2)
    table = format_table(summarize(sample))
    lines = table.splitlines()
    assert len(lines) == 2 + len(set(sample.labels.tolist()))
    assert set(lines[1]) == {"-"}
    assert len({len(line) for line in lines[2:]}) == 1  # fixed width
