"""The calo family end to end on the shipped GFlash sample: gsgm train / sample (three samplers) /
distill / evaluate, and exact resume after an interruption (as the toy family's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from gsgm.cli import build_parser
from gsgm.families import family_of_run
from gsgm.families.calo import CALO
from gsgm.generation.registry import sample_run
from gsgm.training import loop as loop_module
from gsgm.training.driver import train_run
from gsgm.training.run_dir import RunDirectory

REPO = Path(__file__).resolve().parents[1]


def tiny_config(tmp_path: Path, epochs: int = 2, showers: int = 40) -> Path:
    cfg = json.loads((REPO / "configs" / "calo_quick.json").read_text())
    cfg["data"]["max_showers"] = showers
    cfg["point_net"].update(embed_dim=16, ffn_dim=32, output_hidden_dim=16)
    cfg["flow_net"].update(width=32)
    cfg["training"].update(epochs=epochs, early_stopping_patience=epochs, batch_size=16)
    cfg["sampling"]["calibration_showers"] = 4
    path = tmp_path / f"calo-{epochs}.json"
    path.write_text(json.dumps(cfg))
    return path


def _sampling_killed_after_one_chunk_resumes_to_the_same_file(run: Path, tmp_path: Path) -> None:
    """Chunks of 4 showers; the second chunk's generation dies; the rerun writes the uninterrupted file."""
    from gsgm.generation import calo as calo_generation

    patch = pytest.MonkeyPatch()
    patch.setattr(calo_generation, "CHUNK_SHOWERS", 4)
    try:
        whole = sample_run(run, tmp_path / "whole.h5", 10, sampler="edm", seed=5).path
        generate = calo_generation.generate_from_model
        calls = []

        def dies_in_the_second_chunk(model, energies, **kwargs):
            calls.append(len(energies))
            if len(calls) == 3:  # the calibration showers, the first chunk, then the kill
                raise KeyboardInterrupt
            return generate(model, energies, **kwargs)

        patch.setattr(calo_generation, "generate_from_model", dies_in_the_second_chunk)
        with pytest.raises(KeyboardInterrupt):
            sample_run(run, tmp_path / "resumed.h5", 10, sampler="edm", seed=5)
        partial = tmp_path / ".resumed.h5.partial"
        assert not (tmp_path / "resumed.h5").exists()
        assert sorted(path.name for path in partial.glob("*.npz")) == ["calibration.npz", "chunk-00000.npz"]
        patch.setattr(calo_generation, "generate_from_model", generate)
        resumed = sample_run(run, tmp_path / "resumed.h5", 10, sampler="edm", seed=5).path
        assert not partial.exists()
        with h5py.File(whole) as a, h5py.File(resumed) as b:
            for name in ("incident_energies", "points", "num_points"):
                np.testing.assert_array_equal(a[name][:], b[name][:])
    finally:
        patch.undo()


@pytest.mark.slow
def test_train_sample_distill_evaluate_on_the_shipped_sample(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "gsgm.cli", "train", "--config", str(tiny_config(tmp_path)),
               "--data", "builtin", "--out", str(run), "--verbose", "0"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert family_of_run(run) is CALO and len(RunDirectory(run).read_history()) == 2

    files = {}
    for sampler, steps, energy in (("edm", 25, None), ("ddpm", 100, 50.0)):
        out = sample_run(run, tmp_path / f"{sampler}.h5", 6, sampler=sampler, seed=2, energy=energy)
        assert out.steps == steps and out.num == 6
        files[sampler] = out.path
    with h5py.File(files["ddpm"]) as handle:
        np.testing.assert_array_equal(handle["incident_energies"][:], 50.0)
    _sampling_killed_after_one_chunk_resumes_to_the_same_file(run, tmp_path)
    with pytest.raises(ValueError, match="no distilled model for 1 steps"):
        sample_run(run, tmp_path / "cm.h5", 6, sampler="cm")
    args = build_parser().parse_args(
        ["distill", "--run", str(run), "--epochs-per-stage", "1", "--verbose", "0"]
    )
    assert args.handler(args) == 0
    assert (run / "distill" / "steps-001" / "config.json").is_file()
    files["cm"] = sample_run(run, tmp_path / "cm.h5", 6, sampler="cm", seed=2).path
    with h5py.File(files["cm"]) as handle:
        assert handle.attrs["steps"] == 1 and handle["points"].shape[0] == 6
        assert (handle["num_points"][:] > 0).all()

    out = tmp_path / "evaluation"
    gens = [a for name, path in files.items() for a in ("--gen", f"{name}={path}")]
    args = build_parser().parse_args(["evaluate", "calo", *gens, "--showers", "40", "--resamples", "2",
                                      "--out", str(out)])  # fmt: skip
    assert args.handler(args) == 0
    report = json.loads((out / "calo_metrics.json").read_text())
    assert set(report["w1_x1e3"]) == {"GFlash (truth vs truth)", "edm", "ddpm", "cm"}
    assert all(np.isfinite(v["mean"]) for row in report["w1_x1e3"].values() for v in row.values())
    assert [r["simulator"] for r in report["timing"]] == ["GFlash (generator)", "edm", "ddpm", "cm"]


@pytest.mark.slow
def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, epochs=3, showers=16)
    straight = train_run(CALO, config, "builtin", tmp_path / "straight", verbose=0)
    real_save = loop_module.save_checkpoint

    def save_then_die(run, model, state, epoch):
        path = real_save(run, model, state, epoch)
        if epoch == 1:
            raise KeyboardInterrupt("killed after epoch 1")
        return path

    monkeypatch.setattr(loop_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(CALO, config, "builtin", tmp_path / "resumed", verbose=0)
    monkeypatch.setattr(loop_module, "save_checkpoint", real_save)
    train_run(CALO, None, "builtin", tmp_path / "resumed", resume=True, verbose=0)
    a, _ = CALO.load_run(straight.path)
    b, _ = CALO.load_run(tmp_path / "resumed")
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
