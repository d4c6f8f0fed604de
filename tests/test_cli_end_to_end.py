"""The command-line path a user takes: train -> (kill -9, resume) -> sample -> inspect, via subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gsgm.config import config_to_dict, load_config
from gsgm.data.jetnet_format import read_jetnet_file

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}

pytestmark = pytest.mark.slow


def script(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def tiny_config_file(tmp_path: Path, epochs: int) -> Path:
    cfg = load_config(REPO / "configs" / "quick.json")
    cfg.data.classes = ["q", "z"]
    cfg.jet_net.num_blocks, cfg.jet_net.width = 1, 16
    cfg.particle_net.embed_dim, cfg.particle_net.num_transformer_blocks = 8, 1
    cfg.particle_net.ffn_dim, cfg.particle_net.output_hidden_dim = 16, 8
    cfg.training.batch_size, cfg.training.epochs = 16, epochs
    cfg.training.early_stopping_patience = epochs  # the test needs every epoch to run
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config_to_dict(cfg)))
    return path


def test_train_kill_resume_sample_inspect(tmp_path):
    config = tiny_config_file(tmp_path, epochs=40)
    run = tmp_path / "run"
    command = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        "--config",
        str(config),
        "--data",
        "builtin",
        "--particles",
        "30",
        "--out",
        str(run),
        "--max-jets-per-class",
        "64",
        "--verbose",
        "0",
    ]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pointer = run / "checkpoints" / "latest.json"
    deadline = time.time() + 300
    while time.time() < deadline and not (pointer.exists() and json.loads(pointer.read_text())["epoch"] >= 1):
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    epochs_before = len((run / "history.csv").read_text().splitlines()) - 1
    assert 2 <= epochs_before < 40

    result = script("train.py", "--out", str(run), "--resume", "--verbose", "0")
    assert "trained 40 epochs" in result.stdout

    samples = tmp_path / "samples"
    result = script(
        "sample.py",
        "--run",
        str(run),
        "--jets-per-class",
        "20",
        "--steps",
        "4",
        "--out",
        str(samples),
        "--no-progress",
    )
    assert "wrote 40 jets" in result.stdout
    for name in ("q.hdf5", "z.hdf5"):
        particles, jets = read_jetnet_file(samples / name, expected_particles=30)
        assert len(jets) == 20
    summary = json.loads(script("inspect_data.py", str(samples), "--json").stdout)
    assert set(summary["classes"]) == {"q", "z"}

    # sample.py appended a timing record; plots/plot_timing.py accepts the file and draws it.
    records = json.loads((samples / "timing.json").read_text())
    assert len(records) == 1 and records[0]["steps"] == 4 and records[0]["num_jets"] == 40
    assert records[0]["num_particles"] == 30 and records[0]["batch_size"] == 10_000
    assert records[0]["ms_per_jet"] > 0 and records[0]["device"].startswith(("CPU", "GPU"))
    plots = tmp_path / "plots"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "plots" / "plot_timing.py"),
            "--results",
            str(samples / "timing.json"),
            "--out",
            str(plots),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (plots / "generation_time.png").stat().st_size > 10_000


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    result = script(
        "sample.py",
        "--run",
        str(tmp_path / "missing"),
        "--jets-per-class",
        "5",
        "--out",
        str(tmp_path / "o"),
        check=False,
    )
    assert result.returncode == 2
    assert "run directory not found" in result.stderr and "Traceback" not in result.stderr
    result = script(
        "train.py",
        "--config",
        str(REPO / "configs" / "quick.json"),
        "--particles",
        "150",
        "--out",
        str(tmp_path / "r"),
        check=False,
    )
    assert result.returncode == 2 and "num_particles" in result.stderr and "Traceback" not in result.stderr
