"""gsgm.plotting functions and the plots/ scripts: every class gets non-empty figures; clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import BUILTIN_DIR  # noqa: E402

from gsgm.data.jetnet_format import class_file_name, read_jetnet_file, write_jetnet_file  # noqa: E402
from gsgm.plotting import (  # noqa: E402
    JET_OBSERVABLES,
    average_jet_image,
    density_histogram,
    load_timing_results,
    make_bins,
    plot_generation_time,
    plot_jet_kinematics,
    save_figure,
)
from gsgm.training.run_dir import RunDirectory  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, str(ROOT / "plots" / name), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def assert_real_image(path: Path) -> None:
    """A PNG that exists, is not tiny, and is not one flat colour."""
    assert path.is_file() and path.stat().st_size > 5_000, path
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels[..., :3].std() > 0.02, path


def test_density_histogram_is_normalised():
    values = np.random.default_rng(0).normal(size=10_000)
    bins = np.linspace(-6, 6, 61)
    hist, err = density_histogram(values, bins)
    assert np.sum(hist * np.diff(bins)) == pytest.approx(1.0)
    assert np.all(err >= 0) and err.max() < hist.max()


def test_integer_bins_cover_generated_values_the_truth_lacks():
    bins = make_bins(np.full(50, 30.0), JET_OBSERVABLES[3], others=[np.array([25.0, 30.0])])
    assert bins[0] == 24.5 and bins[-1] >= 30.5 and np.all(np.diff(bins) == 1)


def test_average_jet_image_puts_the_pt_where_the_particles_are():
    particles = np.zeros((2, 3, 4), dtype=np.float32)
    particles[0, 0] = (0.0, 0.0, 0.7, 1.0)  # centre
    particles[0, 1] = (0.5, -0.5, 0.3, 1.0)  # off-centre
    particles[1, 0] = (0.0, 0.0, 1.0, 1.0)
    particles[1, 2] = (0.0, 0.0, 5.0, 0.0)  # padding: must not count
    image = average_jet_image(particles, pixels=4, half_width=1.0)
    assert image.sum() == pytest.approx(1.0)  # mean pt_rel per jet inside the window
    assert image[2, 2] == pytest.approx(0.85)  # eta bin 2 = [0, 0.5), phi bin 2
    assert image[3, 1] == pytest.approx(0.15)  # eta 0.5 -> bin 3, phi -0.5 -> bin 1


def test_save_figure_writes_png_and_pdf(real_jets30, tmp_path):
    truth = real_jets30.jets[real_jets30.labels == 2]
    figure = plot_jet_kinematics(truth[:500], {"copy": truth[500:1000]}, "t")
    paths = save_figure(figure, tmp_path, "jets_t")
    assert [p.name for p in paths] == ["jets_t.png", "jets_t.pdf"]
    assert_real_image(paths[0])
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert not list(tmp_path.glob(".*.tmp"))


def test_plot_jets_cli_writes_every_class(tmp_path):
    gen_a, gen_b = tmp_path / "gen_a", tmp_path / "gen_b"
    for index, directory in enumerate((gen_a, gen_b)):
        for jet_class in ("g", "w"):
            particles, jets = read_jetnet_file(BUILTIN_DIR / class_file_name(jet_class, 30))
            particles = particles[-150:].copy()
            particles[..., :2] *= 1.0 + 0.2 * index  # the second 'model' is visibly wider
            write_jetnet_file(directory / class_file_name(jet_class, 30), particles, jets[-150:])
    out = tmp_path / "plots"
    result = run_script(
        "plot_jets.py", "--truth", "builtin", "--gen", str(gen_a), "--label", "FPCD",
        "--gen", str(gen_b), "--label", "FPCD 8", "--jets-per-class", "150", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for jet_class in ("g", "w"):
        for stem in ("jets", "particles", "jet_image"):
            assert_real_image(out / f"{stem}_{jet_class}.png")
            assert (out / f"{stem}_{jet_class}.pdf").stat().st_size > 1_000
    assert len(list(out.iterdir())) == 12


def test_plot_jets_cli_missing_class_is_one_line_error(tmp_path):
    gen = tmp_path / "gen"
    particles, jets = read_jetnet_file(BUILTIN_DIR / "g.hdf5")
    write_jetnet_file(gen / "g.hdf5", particles[:50], jets[:50])
    result = run_script(
        "plot_jets.py", "--truth", "builtin", "--gen", str(gen), "--classes", "g,z", "--out", "x"
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: generated '{gen}' ({gen}) has no file for class z with 30 particles: "
        f"missing z.hdf5 (found: g.hdf5)"
    ]


def test_plot_training_cli(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    rows = [
        {"epoch": e, "loss": 2.0 / (e + 1), "val_loss": 2.1 / (e + 1), "learning_rate": 1e-3 * (1 - e / 10)}
        for e in range(10)
    ]
    run.write_history(rows)
    result = run_script("plot_training.py", "--run", str(run.path), "--out", str(tmp_path / "plots"))
    assert result.returncode == 0, result.stderr
    assert_real_image(tmp_path / "plots" / "training.png")
    missing = run_script("plot_training.py", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "p2"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: run directory not found")


def timing(label: str, steps: int, ms: float, **extra) -> dict:
    """A record in the gsgm.generation.timing format."""
    return {
        "label": label,
        "steps": steps,
        "ms_per_jet": ms,
        "num_particles": 30,
        "batch_size": 1000,
        "device": "CPU (test)",
        "date": "2026-11-24T10:00:00+00:00",
        **extra,
    }


def test_plot_timing_cli_and_schema(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(
        json.dumps([timing("FPCD", s, ms) for s, ms in ((1, 0.1), (8, 0.5), (64, 3.5), (512, 27.0))])
    )
    second.write_text(
        json.dumps(
            [
                timing("other", 8, 0.4, machine="ignored"),
                timing("other", 64, 2.9, measured=False),
                timing("FPCD", 64, 4.0),  # slower than a.json's: the fastest per step count is kept
            ]
        )
    )
    result = run_script(
        "plot_timing.py", "--results", str(first), str(second), "--out", str(tmp_path / "plots")
    )
    assert result.returncode == 0, result.stderr
    assert_real_image(tmp_path / "plots" / "generation_time.png")
    series = load_timing_results(first, second)
    assert [item["label"] for item in series] == ["FPCD", "other"]
    assert series[0]["steps"] == [1, 8, 64, 512] and series[0]["ms_per_jet"] == [0.1, 0.5, 3.5, 27.0]
    assert series[1]["measured"] == [True, False]
    plot_generation_time(series)
    # A malformed file: one line naming the file, the record and the key.
    second.write_text(json.dumps([timing("x", 1, 1.0), timing("x", 0, 1.0)]))
    bad = run_script("plot_timing.py", "--results", str(first), str(second), "--out", str(tmp_path / "p2"))
    assert bad.returncode == 2
    assert bad.stderr == f"error: {second} record 1: key 'steps' must be a positive integer, got 0\n"
    record = timing("x", 1, 1.0)
    del record["device"]
    second.write_text(json.dumps([record]))
    with pytest.raises(ValueError, match=f"^{second} record 0: missing key 'device'$"):
        load_timing_results(second)
    second.write_text(json.dumps({"label": "x", "steps": [1, 2], "ms_per_jet": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="expected a JSON list of timing records"):
        load_timing_results(second)
