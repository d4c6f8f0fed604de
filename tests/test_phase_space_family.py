"""The phase_space family: configs, data preparation, a trained-for-seconds model, resume, the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gsgm.config import ConfigError, validate_section
from gsgm.config.phase_space import (
    PhaseSpaceConfig,
    PhaseSpaceData,
    PhaseSpaceDiffusion,
    PhaseSpaceModel,
    PhaseSpaceSampling,
    PhaseSpaceTraining,
)
from gsgm.data.phase_space_files import read_events, resolve_events_path
from gsgm.data.rambo import massless, rambo_map
from gsgm.families import family_of_run, get_family
from gsgm.families.phase_space import PHASE_SPACE, events_from_samples
from gsgm.generation.registry import sample_run
from gsgm.training import loop as loop_module
from gsgm.training.driver import train_run
from gsgm.training.run_dir import RunDirectory

REPO = Path(__file__).resolve().parents[1]


def tiny_config(
    tmp_path: Path, method: str = "qspace_diffusion", epochs: int = 2, loss: str = "noise", **data
) -> Path:
    cfg = PhaseSpaceConfig(
        name=f"tiny-{method}",
        description="seconds on a CPU",
        data=PhaseSpaceData(num_events=1500, **data),
        model=PhaseSpaceModel(method=method, width=32, depth=2, time_dim=8, loss=loss),
        diffusion=PhaseSpaceDiffusion(num_steps=40, step_min=0.02, step_max=0.1),
        training=PhaseSpaceTraining(
            batch_size=256, epochs=epochs, early_stopping_patience=epochs, ema_decay=0.9
        ),
        sampling=PhaseSpaceSampling(num_steps=6),
    )
    path = tmp_path / f"{method}-{epochs}-{loss}.json"
    PHASE_SPACE.save_config(cfg, path)
    return path


@pytest.mark.parametrize(
    "name",
    ["phase_space_muon_quick", "phase_space_qqg_quick", "phase_space_muon", "phase_space_qqg",
     "phase_space_antenna_quick", "phase_space_antenna"],
)  # fmt: skip
def test_shipped_configs_load(name):
    cfg = PHASE_SPACE.load_config(REPO / "configs" / f"{name}.json")
    assert cfg.name == name and cfg.data.process in ("muon_decay", "qqg", "antenna")
    # the antenna (N = 10) takes the permutation-equivariant transformer, the 3-particle ones the MLP
    assert cfg.model.network == ("transformer" if cfg.data.process == "antenna" else "mlp")


def test_run_directories_from_before_the_antenna_still_load(tmp_path):
    data = json.loads((REPO / "configs" / "phase_space_muon_quick.json").read_text())
    del data["data"]["xi_max"], data["model"]["network"], data["model"]["num_heads"]
    cfg = PHASE_SPACE.config_from_dict({k: v for k, v in data.items() if k != "family"})
    assert cfg.model.network == "mlp"


def test_config_errors_name_the_key(tmp_path):
    data = json.loads((REPO / "configs" / "phase_space_muon_quick.json").read_text())
    data["data"]["copies"] = 3
    with pytest.raises(ConfigError, match=r"data\.copies"):
        PHASE_SPACE.config_from_dict({k: v for k, v in data.items() if k != "family"})
    data["data"]["copies"], data["diffusion"]["gaussian_steps"] = 1, 500
    with pytest.raises(ConfigError, match=r"diffusion\.gaussian_steps"):
        PHASE_SPACE.config_from_dict({k: v for k, v in data.items() if k != "family"})
    assert get_family("phase_space") is PHASE_SPACE


def test_prepared_q_space_data_maps_back_to_the_events(tmp_path):
    cfg = PHASE_SPACE.load_config(tiny_config(tmp_path, embedding="copies", copies=2))
    prepared = PHASE_SPACE.prepare_data(cfg, "builtin", max_per_class=None, options={}, resume_run=None)
    events, _ = read_events(resolve_events_path("builtin", "muon_decay"))
    (train,), (valid,) = prepared.train_arrays, prepared.valid_arrays
    assert len(train) + len(valid) == 2 * len(events) and train.dtype == np.float32
    pre = prepared.context["preprocessing"]
    p = events_from_samples(train, pre)
    # float32 q-vectors, RAMBO map in float64: the events are reproduced to float32 precision ...
    rows = prepared.train_index % len(events)
    np.testing.assert_allclose(p, events[rows], atol=1e-5)
    # ... and conserve momentum exactly whatever the q-vectors are
    assert np.abs(p.sum(axis=1) - [1, 0, 0, 0]).max() < 1e-12
    with pytest.raises(ValueError, match="holds qqg events"):
        PHASE_SPACE.prepare_data(cfg, str(resolve_events_path("builtin", "qqg")), max_per_class=None,
                                 options={}, resume_run=None)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ps")
    return train_run(PHASE_SPACE, tiny_config(tmp), "generated", tmp / "run", verbose=0).path


def test_a_trained_for_seconds_model_samples_valid_events(trained, tmp_path):
    assert family_of_run(trained) is PHASE_SPACE
    history = RunDirectory(trained).read_history()
    assert len(history) == 2 and np.isfinite([r["loss"] for r in history]).all()
    result = sample_run(trained, tmp_path / "s.hdf5", 300, seed=2)
    events, attrs = read_events(result.path)
    assert events.shape == (300, 3, 4) and attrs["method"] == "qspace_diffusion" and attrs["steps"] == 40
    np.testing.assert_allclose(events.sum(axis=1), np.tile([1.0, 0, 0, 0], (300, 1)), atol=1e-12)
    assert np.abs(events[..., 0] ** 2 - np.sum(events[..., 1:] ** 2, -1)).max() < 1e-12
    again, _ = read_events(sample_run(trained, tmp_path / "t.hdf5", 300, seed=2).path)
    np.testing.assert_array_equal(events, again)
    with pytest.raises(ValueError, match="Langevin schedule's 40 steps"):
        sample_run(trained, tmp_path / "x.hdf5", 5, steps=7)


def test_killed_sampling_continues_with_the_missing_chunks(trained, tmp_path, monkeypatch):
    """A sampling that dies after two of three chunks resumes from them and writes the same file."""
    from gsgm.generation.phase_space import sample_phase_space
    from gsgm.generation.sample_sets import SampleSetError
    from gsgm.training.phase_space_model import PhaseSpaceTrainingModel

    whole_file = sample_phase_space(trained, tmp_path / "whole.hdf5", 250, seed=3, batch_size=100).path
    whole, _ = read_events(whole_file)
    generate = PhaseSpaceTrainingModel.generate
    calls = []

    def dies_at_the_third_chunk(self, *args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 3:
            raise KeyboardInterrupt  # what a kill looks like to the code after it: nothing more runs
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(PhaseSpaceTrainingModel, "generate", dies_at_the_third_chunk)
    out = tmp_path / "resumed.hdf5"
    with pytest.raises(KeyboardInterrupt):
        sample_phase_space(trained, out, 250, seed=3, batch_size=100)
    assert not out.exists() and len(list((tmp_path / ".resumed.hdf5.partial").glob("chunk-*.npz"))) == 2
    calls.clear()
    monkeypatch.setattr(PhaseSpaceTrainingModel, "generate", generate)
    resumed, _ = read_events(sample_phase_space(trained, out, 250, seed=3, batch_size=100).path)
    np.testing.assert_array_equal(resumed, whole)
    assert not (tmp_path / ".resumed.hdf5.partial").exists()
    # other settings than the interrupted run's are an error naming them, not a silent mix
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(PhaseSpaceTrainingModel, "generate", dies_at_the_third_chunk)
        sample_phase_space(trained, tmp_path / "other.hdf5", 250, seed=3, batch_size=100)
    monkeypatch.setattr(PhaseSpaceTrainingModel, "generate", generate)
    with pytest.raises(SampleSetError, match="differing: seed"):
        sample_phase_space(trained, tmp_path / "other.hdf5", 250, seed=4, batch_size=100)


def test_implicit_score_matching_trains_and_samples(tmp_path):
    run = train_run(
        PHASE_SPACE, tiny_config(tmp_path, epochs=1, loss="implicit"), "builtin", tmp_path / "i", verbose=0
    )
    assert np.isfinite(RunDirectory(run.path).read_history()[0]["val_loss"])
    events, _ = read_events(sample_run(run.path, tmp_path / "i.hdf5", 200, seed=1).path)
    assert np.isfinite(events).all() and np.abs(events.sum(axis=1) - [1, 0, 0, 0]).max() < 1e-12
    with pytest.raises(ConfigError, match="loss: 'implicit' applies to method qspace_diffusion"):
        validate_section(
            PhaseSpaceModel, {"method": "qspace_flow", "loss": "implicit"}, require_all_keys=False
        )


def test_p_space_samples_do_not_conserve_momentum(tmp_path):
    run = train_run(
        PHASE_SPACE, tiny_config(tmp_path, "pspace_flow", epochs=1), "builtin", tmp_path / "p", verbose=0
    )
    events, _ = read_events(sample_run(run.path, tmp_path / "p.hdf5", 200, seed=1).path)
    assert np.linalg.norm(events[..., 1:].sum(axis=1), axis=-1).max() > 1e-4
    q = rambo_map(massless(events[..., 1:]))[0]  # the same vectors read as q-space are fine
    assert np.abs(q.sum(axis=1) - [1, 0, 0, 0]).max() < 1e-12


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, "qspace_flow", epochs=2)
    straight = train_run(PHASE_SPACE, config, "generated", tmp_path / "straight", verbose=0)
    real_save = loop_module.save_checkpoint

    def save_then_die(run, model, state, epoch):
        path = real_save(run, model, state, epoch)
        if epoch == 0:
            raise KeyboardInterrupt("killed after epoch 0")
        return path

    monkeypatch.setattr(loop_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(PHASE_SPACE, config, "generated", tmp_path / "resumed", verbose=0)
    monkeypatch.setattr(loop_module, "save_checkpoint", real_save)
    assert len(RunDirectory(tmp_path / "resumed").read_history()) == 1
    train_run(PHASE_SPACE, None, "generated", tmp_path / "resumed", resume=True, verbose=0)
    a, _ = PHASE_SPACE.load_run(straight.path)
    b, _ = PHASE_SPACE.load_run(tmp_path / "resumed")
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def _gsgm(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "gsgm.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO)  # fmt: skip


def antenna_config(tmp_path: Path, epochs: int = 1) -> Path:
    cfg = PhaseSpaceConfig(
        name="tiny-antenna",
        description="seconds on a CPU",
        data=PhaseSpaceData(process="antenna", num_events=300, xi_max=1000.0, embedding="continuous"),
        model=PhaseSpaceModel(network="transformer", width=16, depth=1, num_heads=2, time_dim=8),
        diffusion=PhaseSpaceDiffusion(num_steps=20, step_min=0.02, step_max=0.1, gaussian_steps=5),
        training=PhaseSpaceTraining(
            batch_size=128, epochs=epochs, early_stopping_patience=epochs, ema_decay=0.9
        ),
        sampling=PhaseSpaceSampling(num_steps=6),
    )
    path = tmp_path / f"antenna-{epochs}.json"
    PHASE_SPACE.save_config(cfg, path)
    return path


def test_a_trained_for_seconds_antenna_transformer_samples_valid_events(tmp_path):
    run = train_run(PHASE_SPACE, antenna_config(tmp_path), "builtin", tmp_path / "a", verbose=0)
    assert np.isfinite(RunDirectory(run.path).read_history()[0]["val_loss"])
    model, _ = PHASE_SPACE.load_run(run.path)
    assert model.net.name == "phase_space_transformer"
    result = sample_run(run.path, tmp_path / "a.hdf5", 100, seed=3)
    events, attrs = read_events(result.path)
    assert events.shape == (100, 10, 4) and attrs["process"] == "antenna" and attrs["xi_max"] == 1000.0
    np.testing.assert_allclose(events.sum(axis=1), np.tile([1.0, 0, 0, 0], (100, 1)), atol=1e-12)
    again, _ = read_events(sample_run(run.path, tmp_path / "b.hdf5", 100, seed=3).path)
    np.testing.assert_array_equal(events, again)


def test_make_phase_space_errors_are_one_line(tmp_path):
    result = _gsgm("make-phase-space", "--process", "qqg", "--events", "10", "--seed", "1",
                   "--y-min", "0.5", "--out", str(tmp_path / "x.hdf5"))  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith("error: y_min")
    result = _gsgm("make-phase-space", "--process", "antenna", "--events", "10", "--seed", "1",
                   "--xi-max", "0.5", "--out", str(tmp_path / "x.hdf5"))  # fmt: skip
    assert (
        result.returncode == 2
        and result.stderr.strip().splitlines()[-1] == "error: xi_max must exceed 1, got 0.5"
    )
    assert not (tmp_path / "x.hdf5").exists()


@pytest.mark.slow
def test_train_sample_evaluate_plot_with_the_gsgm_command(tmp_path):
    config = tiny_config(tmp_path, process="qqg")
    steps = [
        ("make-phase-space", "--process", "qqg", "--events", "3000", "--seed", "4",
         "--out", str(tmp_path / "t.hdf5")),
        ("train", "--config", str(config), "--data", "generated", "--out", str(tmp_path / "run"),
         "--verbose", "0"),
        ("sample", "--run", str(tmp_path / "run"), "--per-class", "500", "--out", str(tmp_path / "g.hdf5")),
        ("evaluate", "phase-space", "--truth", str(tmp_path / "t.hdf5"), "--gen", str(tmp_path / "g.hdf5"),
         "--label", "q", "--out", str(tmp_path / "eval")),
        ("plot", "phase-space", "--truth", str(tmp_path / "t.hdf5"), "--gen", str(tmp_path / "g.hdf5"),
         "--label", "q", "--out", str(tmp_path / "plots")),
    ]  # fmt: skip
    for args in steps:
        result = _gsgm(*args)
        assert result.returncode == 0, (args, result.stderr[-3000:])
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["process"] == "qqg" and set(report["metrics"]) == {"truth (floor)", "q"}
    assert report["conservation"]["q"]["momentum_max"] < 1e-12
    assert (tmp_path / "plots" / "dalitz.png").is_file() and (tmp_path / "plots" / "y.png").is_file()


@pytest.mark.slow
def test_antenna_train_sample_evaluate_plot_with_the_gsgm_command(tmp_path):
    truth, gen = str(tmp_path / "t.hdf5"), str(tmp_path / "g.hdf5")
    steps = [
        ("make-phase-space", "--process", "antenna", "--xi-max", "1000", "--events", "400", "--seed", "4",
         "--out", truth),
        ("train", "--config", str(antenna_config(tmp_path, epochs=2)), "--data", truth,
         "--out", str(tmp_path / "run"), "--verbose", "0"),
        ("sample", "--run", str(tmp_path / "run"), "--per-class", "200", "--out", gen),
        ("evaluate", "phase-space", "--truth", truth, "--gen", gen, "--label", "q",
         "--out", str(tmp_path / "eval")),
        ("plot", "phase-space", "--truth", truth, "--gen", gen, "--label", "q",
         "--out", str(tmp_path / "plots")),
    ]  # fmt: skip
    for args in steps:
        result = _gsgm(*args)
        assert result.returncode == 0, (args, result.stderr[-3000:])
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["process"] == "antenna" and report["xi_max"] == 1000.0
    assert report["conservation"]["q"]["momentum_max"] < 1e-12 and "log10_y" in report["metrics"]["q"]
    assert all(
        (tmp_path / "plots" / f"{name}.png").is_file() for name in ("energies", "y", "invariants", "angles")
    )
