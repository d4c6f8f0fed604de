"""Horovod for every family, not only FPCD training: jet-image training and progressive distillation under
`horovodrun -np 2` (identical weights on the ranks, disjoint data, a no-allreduce negative control),
calorimeter-shower and DIS-image training,
and KerasTuner on a jet-image family."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_distillation_chain import tiny_config as tiny_fpcd_config
from test_distributed import horovodrun_path
from test_images_training import tiny_config as tiny_image_config

from gsgm.config import config_to_dict, images_config_to_dict, load_images_config
from gsgm.families.fpcd import train
from gsgm.families.jet_images import JET_IMAGE_SCORE
from gsgm.training.tuning import run_search

# two Horovod ranks per test: these share one xdist worker with the other horovodrun tests
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("horovod")]

REPO = Path(__file__).resolve().parents[1]


def launch(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    command = [horovodrun_path(), "-np", "2", "-H", "localhost:2", sys.executable, str(REPO / script), *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def final_weights(dump: Path, rank: int) -> list[np.ndarray]:
    with np.load(dump / f"rank{rank}" / "final-weights.npz") as data:
        return [data[k] for k in data.files]


def check_ranks(dump: Path, lonely: Path, epochs: int, num_train: int) -> None:
    """Same weights on both ranks, disjoint shards covering the data; without allreduce they differ."""
    rank0, rank1 = final_weights(dump, 0), final_weights(dump, 1)
    assert len(rank0) > 10
    for a, b in zip(rank0, rank1, strict=True):
        np.testing.assert_array_equal(a, b)
    for epoch in range(epochs):
        seen0 = np.load(dump / "rank0" / f"epoch{epoch:04d}-jets.npy")
        seen1 = np.load(dump / "rank1" / f"epoch{epoch:04d}-jets.npy")
        assert not set(seen0) & set(seen1), "the ranks saw the same samples"
        assert len(set(seen0) | set(seen1)) >= num_train - 1  # the larger shard may drop one
    apart = zip(final_weights(lonely, 0), final_weights(lonely, 1), strict=True)
    differs = [not np.array_equal(a, b) for a, b in apart]
    assert sum(differs) > len(differs) // 2


def test_horovodrun_trains_a_jet_image_score_model(tmp_path):
    config = tmp_path / "images.json"
    config.write_text(json.dumps(images_config_to_dict(tiny_image_config(epochs=2).for_model("score"))))

    def run(name: str, *extra: str) -> Path:
        out, dump = tmp_path / name, tmp_path / f"{name}-dump"
        launch(tmp_path, "scripts/train.py", "--config", str(config), "--model", "score", "--data", "builtin",
               "--out", str(out), "--max-jets-per-class", "16", "--verbose", "0", "--debug-dump", str(dump),
               *extra)  # fmt: skip
        return dump

    dump, lonely = run("averaged"), run("lonely", "--debug-no-allreduce")
    metadata = json.loads((tmp_path / "averaged" / "metadata.json").read_text())
    assert metadata["family"] == "jet_image_score" and metadata["num_ranks"] == 2
    check_ranks(dump, lonely, epochs=2, num_train=metadata["num_train"])


def test_horovodrun_distils_an_fpcd_run(tmp_path):
    base = tmp_path / "base"
    cfg = tiny_fpcd_config()
    train(cfg, data="builtin", out=base, max_jets_per_class=32, verbose=0)
    copy = tmp_path / "base-copy"
    subprocess.run(["cp", "-r", str(base), str(copy)], check=True)

    def run(run_dir: Path, dump: Path, *extra: str) -> subprocess.CompletedProcess:
        args = ["--run", str(run_dir), "--until", "4", "--epochs-per-stage", "2", "--verbose", "0"]
        return launch(tmp_path, "scripts/distill.py", *args, "--debug-dump", str(dump), *extra)

    result = run(base, tmp_path / "dump")
    assert "steps-004" in result.stdout
    run(copy, tmp_path / "lonely", "--debug-no-allreduce")
    metadata = json.loads((base / "metadata.json").read_text())
    check_ranks(tmp_path / "dump" / "steps-004", tmp_path / "lonely" / "steps-004", 2, metadata["num_train"])
    stage = json.loads((base / "distill" / "steps-004" / "config.json").read_text())
    assert stage["family"] == "fpcd" and stage["sampling"]["num_steps"] == 4
    assert config_to_dict(cfg)["jet_net"] == stage["jet_net"]


def test_keras_tuner_searches_a_jet_image_family(tmp_path):
    cfg = tiny_image_config(epochs=1)
    result = run_search(
        JET_IMAGE_SCORE,
        cfg,
        "builtin",
        tmp_path / "tuner",
        max_epochs=1,
        factor=2,
        max_trials=2,
        space={"score.unet.base_channels": [4, 8], "training.learning_rate": [1e-3, 3e-3]},
        max_jets_per_class=8,
        verbose=0,
    )
    best = load_images_config(result.export_path)  # a complete, valid config train accepts
    assert best.model == "score" and best.score.unet.base_channels in (4, 8)
    assert best.training.learning_rate in (1e-3, 3e-3) and np.isfinite(result.val_loss)
    assert 1 <= result.num_trials <= 2  # capped by max_trials (Hyperband may plan fewer)


def test_horovodrun_trains_a_calo_model(tmp_path):
    """The calorimeter family under Horovod: the generic driver, nothing family-specific to launch."""
    from test_calo_end_to_end import tiny_config as tiny_calo_config

    config = tiny_calo_config(tmp_path, epochs=2, showers=40)

    def run(name: str, *extra: str) -> Path:
        out, dump = tmp_path / name, tmp_path / f"{name}-dump"
        launch(tmp_path, "scripts/train.py", "--config", str(config), "--data", "builtin", "--out", str(out),
               "--verbose", "0", "--debug-dump", str(dump), *extra)  # fmt: skip
        return dump

    dump, lonely = run("averaged"), run("lonely", "--debug-no-allreduce")
    metadata = json.loads((tmp_path / "averaged" / "metadata.json").read_text())
    assert metadata["family"] == "calo" and metadata["num_ranks"] == 2
    check_ranks(dump, lonely, epochs=2, num_train=metadata["num_train"])


def test_horovodrun_trains_a_dis_model_with_a_shared_importance_history(tmp_path):
    """The DIS family under Horovod: identical weights, including the allgathered L_t^2 history of the
    importance sampler (stored as weights), and disjoint shards."""
    from test_dis_family import tiny_config as tiny_dis_config

    config = tiny_dis_config(tmp_path, epochs=2, num_steps=20)

    def run(name: str, *extra: str) -> Path:
        out, dump = tmp_path / name, tmp_path / f"{name}-dump"
        launch(tmp_path, "scripts/train.py", "--config", str(config), "--data", "builtin", "--out", str(out),
               "--verbose", "0", "--debug-dump", str(dump), *extra)  # fmt: skip
        return dump

    dump, lonely = run("averaged"), run("lonely", "--debug-no-allreduce")
    metadata = json.loads((tmp_path / "averaged" / "metadata.json").read_text())
    assert metadata["family"] == "dis" and metadata["num_ranks"] == 2
    check_ranks(dump, lonely, epochs=2, num_train=metadata["num_train"])
