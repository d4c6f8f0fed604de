"""The commands users type, exactly as typed: `python scripts/train.py` with no arguments (defaults from
the environment), `horovodrun -np 2 python scripts/train.py`, and the paper's learning rate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from test_distributed import horovodrun_path, tiny_config

from gsgm.config import (
    DEFAULT_CONFIG,
    ENV_CONFIG,
    config_to_dict,
    explicit_config,
    load_config,
    resolve_config_path,
)
from gsgm.data.jetnet_format import class_file_name, read_jetnet_file, write_jetnet_file
from gsgm.data.loading import DEFAULT_DATA_DIR, ENV_DATA, builtin_data_dir, default_data_spec
from gsgm.families.fpcd import train
from gsgm.training.loop import TrainingSetupError, format_epoch_line
from gsgm.training.optim import effective_learning_rate, make_optimizer
from gsgm.training.run_dir import ENV_RUN_DIR, RunDirectory, default_run_dir

REPO = Path(__file__).resolve().parents[1]
TRAIN = str(REPO / "scripts" / "train.py")


def test_paper_config_starts_at_16e4_on_16_ranks():
    cfg = load_config(REPO / "configs" / "fpcd_jetnet30.json")
    assert effective_learning_rate(cfg.training, 16) == pytest.approx(1.6e-3, rel=1e-12)
    optimizer = make_optimizer(cfg.training, steps_per_epoch=100, num_replicas=16)
    schedule = optimizer._learning_rate  # the cosine-decay schedule object
    assert float(keras.ops.convert_to_numpy(schedule(0))) == pytest.approx(1.6e-3, rel=1e-6)
    assert float(keras.ops.convert_to_numpy(schedule(100 * cfg.training.epochs))) < 1e-9
    cfg150 = load_config(REPO / "configs" / "fpcd_jetnet150.json")
    assert effective_learning_rate(cfg150.training, 16) == pytest.approx(1.6e-3, rel=1e-12)


def test_defaults_come_from_the_environment_then_fixed_places(tmp_path, monkeypatch):
    assert default_data_spec({}) == DEFAULT_DATA_DIR == "data/jetnet"
    assert default_data_spec({ENV_DATA: "/x/jetnet"}) == "/x/jetnet"
    assert default_run_dir("fpcd_jetnet30", {}) == Path("runs/fpcd_jetnet30")
    assert default_run_dir("fpcd_jetnet30", {ENV_RUN_DIR: "/r/a"}) == Path("/r/a")
    assert explicit_config(None, {}) is None
    assert explicit_config(None, {ENV_CONFIG: "c.json"}) == "c.json"
    assert explicit_config("d.json", {ENV_CONFIG: "c.json"}) == "d.json"
    # the default config is found from any working directory
    monkeypatch.chdir(tmp_path)
    path = resolve_config_path(None)
    assert path.is_file() and path == REPO / DEFAULT_CONFIG
    assert load_config(path).name == "fpcd_jetnet30"
    assert resolve_config_path("configs/quick.json") == REPO / "configs" / "quick.json"


def test_epoch_line_counts_from_one_out_of_the_run():
    row = {"epoch": 6.0, "loss": 0.5, "val_loss": 0.25, "learning_rate": 1.5e-3, "seconds": 12.06}
    assert format_epoch_line(row, 30) == "epoch 7/30 - loss 0.5000 - val_loss 0.2500 - lr 1.50e-03 - 12.1 s"


def small_jetnet_dir(directory: Path, classes=("t", "w"), jets: int = 60) -> Path:
    """A JetNet-format directory with the first ``jets`` shipped jets of ``classes`` (30 particles)."""
    directory.mkdir(parents=True, exist_ok=True)
    for jet_class in classes:
        name = class_file_name(jet_class, 30)
        particles, jet_features = read_jetnet_file(builtin_data_dir() / name, 30)
        write_jetnet_file(directory / name, particles[:jets], jet_features[:jets])
    return directory


def test_auto_resume_continues_and_refuses_another_config(tmp_path):
    data = small_jetnet_dir(tmp_path / "jetnet")
    cfg = tiny_config(epochs=2)
    out = tmp_path / "run"
    train(cfg, data=str(data), out=out, resume="auto", verbose=0)
    assert len(RunDirectory(out).read_history()) == 2
    # a finished run resumed "auto" does nothing more and keeps its history
    train(None, data=str(data), out=out, resume="auto", verbose=0)
    assert len(RunDirectory(out).read_history()) == 2
    other = tiny_config(epochs=2)
    other.jet_net.width = 32
    with pytest.raises(TrainingSetupError, match=r"another config .*jet_net\.width"):
        train(other, data=str(data), out=out, resume="auto", verbose=0)
    with pytest.raises(TrainingSetupError, match="keeps its seed"):
        train(None, data=str(data), out=out, resume="auto", seed=99, verbose=0)
    metadata = RunDirectory(out).read_metadata()
    assert metadata["num_ranks"] == 1
    assert metadata["effective_learning_rate"] == pytest.approx(cfg.training.learning_rate)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV_DATA, ENV_CONFIG, ENV_RUN_DIR)}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO), **extra)
    return env


def test_train_without_arguments_explains_missing_jetnet(tmp_path):
    empty = tmp_path / "nothing-here"
    result = subprocess.run(
        [sys.executable, TRAIN],
        capture_output=True,
        text=True,
        env=_env(GSGM_DATA=str(empty), GSGM_RUN_DIR=str(tmp_path / "run")),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for name in ("g.hdf5", "q.hdf5", "t.hdf5", "w.hdf5", "z.hdf5"):
        assert name in result.stderr
    assert str(empty) in result.stderr and "zenodo" in result.stderr.lower()
    assert "--data builtin" in result.stderr and "$GSGM_DATA" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("horovod")  # two ranks each: one such test at a time
def test_horovodrun_train_with_only_environment_variables(tmp_path):
    launcher = horovodrun_path()
    data = small_jetnet_dir(tmp_path / "jetnet")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(config_to_dict(tiny_config(epochs=2))))
    out = tmp_path / "run"
    env = _env(GSGM_DATA=str(data), GSGM_CONFIG=str(config), GSGM_RUN_DIR=str(out))
    command = [launcher, "-np", "2", "-H", "localhost:2", sys.executable, TRAIN]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "epoch 1/2" in result.stdout and "epoch 2/2" in result.stdout
    assert "Epoch 2/2" not in result.stdout  # no Keras header counting one epoch at a time
    run = RunDirectory(out)
    metadata = run.read_metadata()
    assert metadata["num_ranks"] == 2 and metadata["data_dir"] == str(data)
    assert metadata["effective_learning_rate"] == pytest.approx(2 * tiny_config().training.learning_rate)
    assert [int(r["epoch"]) for r in run.read_history()] == [0, 1]
    weights = run.latest_checkpoint()
    # The same command again (a requeued job) resumes the finished run and changes nothing.
    again = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert run.latest_checkpoint() == weights and len(run.read_history()) == 2
    assert np.isfinite([r["val_loss"] for r in run.read_history()]).all()
