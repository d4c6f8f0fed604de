"""A family added from outside gsgm (tests/toy_family.py) gets the loop, exact resume, sampling,
progressive distillation, Horovod and the command line with nothing but its own registration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import toy_family
from test_distributed import horovodrun_path

from gsgm.families import family_names, family_of_run, get_family
from gsgm.generation.registry import sample_run
from gsgm.training import loop as loop_module
from gsgm.training.distill import distill_chain, stage_dir
from gsgm.training.driver import train_run
from gsgm.training.run_dir import RunDirectory

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def toy_config_file(tmp_path: Path, epochs: int = 12, **training) -> Path:
    cfg = toy_family.ToyConfig(
        name="toy",
        description="a 2-d Gaussian mixture",
        data=toy_family.ToyData(),
        net=toy_family.ToyNet(),
        training=toy_family.ToyTraining(epochs=epochs, early_stopping_patience=epochs, **training),
        sampling=toy_family.ToySampling(num_steps=8),
    )
    path = tmp_path / f"toy-{epochs}.json"
    toy_family.TOY.save_config(cfg, path)
    return path


def test_the_family_is_known_by_its_registration_alone():
    assert "toy_mixture" in family_names() and get_family("toy_mixture") is toy_family.TOY


@pytest.fixture(scope="module")
def trained_toy(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("toy")
    run = train_run(toy_family.TOY, toy_config_file(tmp), "generated", tmp / "run", verbose=0)
    return run.path


def test_trains_and_samples_the_mixture(trained_toy, tmp_path):
    run = RunDirectory(trained_toy)
    history = run.read_history()
    assert len(history) == 12 and history[-1]["val_loss"] < history[0]["val_loss"]
    assert family_of_run(trained_toy) is toy_family.TOY
    assert run.read_metadata()["family"] == "toy_mixture"
    result = sample_run(trained_toy, tmp_path / "s.npz", 200, seed=3)
    with np.load(result.path) as data:
        points, labels = data["points"], data["labels"]
    assert points.shape == (600, 2) and np.isfinite(points).all()
    means = toy_family.summary(points, labels)
    truth = toy_family.class_means(2.0)
    # Each class is generated around its own centre (the centres are 3.5 apart, the width 0.25).
    for c in range(3):
        assert np.linalg.norm(means[c] - truth[c]) < 0.5, (c, means[c], truth[c])
    with pytest.raises(ValueError, match="--sampler"):
        sample_run(trained_toy, tmp_path / "x.npz", 5, sampler="pc")


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    config = toy_config_file(tmp_path, epochs=4)
    straight = train_run(toy_family.TOY, config, "generated", tmp_path / "straight", verbose=0)

    real_save = loop_module.save_checkpoint

    def save_then_die(run, model, state, epoch):
        path = real_save(run, model, state, epoch)
        if epoch == 1:
            raise KeyboardInterrupt("killed after epoch 1")
        return path

    monkeypatch.setattr(loop_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(toy_family.TOY, config, "generated", tmp_path / "resumed", verbose=0)
    monkeypatch.setattr(loop_module, "save_checkpoint", real_save)
    assert len(RunDirectory(tmp_path / "resumed").read_history()) == 2
    train_run(toy_family.TOY, None, "generated", tmp_path / "resumed", resume=True, verbose=0)

    a, _ = toy_family.TOY.load_run(straight.path)
    b, _ = toy_family.TOY.load_run(tmp_path / "resumed")
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    assert [r["loss"] for r in RunDirectory(straight.path).read_history()] == pytest.approx(
        [r["loss"] for r in RunDirectory(tmp_path / "resumed").read_history()], rel=1e-5
    )


def test_progressive_distillation_to_one_step(trained_toy, tmp_path):
    stages = distill_chain(toy_family.TOY, trained_toy, until=1, epochs_per_stage=4, verbose=0)
    assert stages == [stage_dir(trained_toy, n) for n in (4, 2, 1)]
    one = sample_run(trained_toy, tmp_path / "one.npz", 200, steps=1, seed=3)
    with np.load(one.path) as data:
        means = toy_family.summary(data["points"], data["labels"])
    truth = toy_family.class_means(2.0)
    # One distilled step still lands each class near its centre; one undistilled DDIM step from pure
    # noise gives the mean of the class's data estimate at t = 1 (much closer to the origin).
    for c in range(3):
        assert np.linalg.norm(means[c] - truth[c]) < 0.8, (c, means[c], truth[c])


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": f"{TESTS}{os.pathsep}{REPO}",
        "GSGM_FAMILIES": "toy_family",
    }


def test_the_gsgm_command_samples_a_toy_run(trained_toy, tmp_path):
    out = tmp_path / "cli.npz"
    command = [
        sys.executable,
        "-m",
        "gsgm.cli",
        "sample",
        "--run",
        str(trained_toy),
        "--per-class",
        "7",
        "--out",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote 21 points with 8 steps" in result.stdout
    with np.load(out) as data:
        assert data["points"].shape == (21, 2)


@pytest.mark.slow
@pytest.mark.xdist_group("horovod")  # two ranks each: one such test at a time
def test_horovodrun_two_ranks_train_the_toy_family(tmp_path):
    launcher = horovodrun_path()
    config = toy_config_file(tmp_path, epochs=2)

    def launch(name: str, *extra: str) -> tuple[Path, Path]:
        out, dump = tmp_path / name, tmp_path / f"{name}-dump"
        script = str(REPO / "scripts" / "train.py")
        command = [launcher, "-np", "2", "-H", "localhost:2", sys.executable, script, "--config", str(config),
                   "--data", "generated", "--out", str(out), "--verbose", "0", "--debug-dump", str(dump),
                   *extra]  # fmt: skip
        result = subprocess.run(
            command, capture_output=True, text=True, env=_env(), timeout=600, cwd=tmp_path
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return out, dump

    def weights(dump: Path, rank: int) -> list[np.ndarray]:
        with np.load(dump / f"rank{rank}" / "final-weights.npz") as data:
            return [data[k] for k in data.files]

    out, dump = launch("averaged")
    for a, b in zip(weights(dump, 0), weights(dump, 1), strict=True):
        np.testing.assert_array_equal(a, b)
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["num_ranks"] == 2 and metadata["family"] == "toy_mixture"
    for epoch in range(2):
        seen0 = np.load(dump / "rank0" / f"epoch{epoch:04d}-jets.npy")
        seen1 = np.load(dump / "rank1" / f"epoch{epoch:04d}-jets.npy")
        assert not set(seen0) & set(seen1) and len(seen0) + len(seen1) >= metadata["num_train"] - 1
    _, lonely = launch("not-averaged", "--debug-no-allreduce")
    differs = [not np.array_equal(a, b) for a, b in zip(weights(lonely, 0), weights(lonely, 1), strict=True)]
    assert sum(differs) > len(differs) // 2
