"""Run files verified on load: checksums of weights and checkpoints; a mismatch names the file and the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from reliability_support import REPO, dataset, regression_data, tiny_regression

from gsgm.training.loop import TrainingSetupError, fit_epochs, restore_checkpoint
from gsgm.training.run_dir import RunDirectory
from gsgm.utils.checksums import ChecksumError, sha256_file, verify_recorded, write_recorded


def _train(path, epochs):
    model = tiny_regression()
    data = regression_data()
    fit_epochs(
        RunDirectory(path), model, lambda epoch: dataset(*data), dataset(*data),
        epochs=epochs, patience=10, resume=True, verbose=0,
    )  # fmt: skip
    return model


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_recorded_files_verify_and_a_change_is_named(tmp_path):
    target = tmp_path / "a.weights.h5"
    write_recorded(target, lambda tmp: tmp.write_bytes(b"weights v1"))
    assert verify_recorded(target)
    record = json.loads((tmp_path / "checksums.json").read_text())
    assert record == {"a.weights.h5": {"sha256": sha256_file(target)}}
    target.write_bytes(b"weights v2")
    with pytest.raises(ChecksumError, match=r"a.weights.h5: checksum mismatch.*; retrain"):
        verify_recorded(target, "retrain")
    assert not verify_recorded(tmp_path / "unrecorded.h5")  # files from before checksums: not checked


def test_a_writer_killed_between_record_and_rename_leaves_a_verifiable_file(tmp_path, monkeypatch):
    target = tmp_path / "best.weights.h5"
    write_recorded(target, lambda tmp: tmp.write_bytes(b"old"))
    import gsgm.utils.checksums as checksums

    def killed(src, dst):
        raise KeyboardInterrupt  # stands for kill -9 after the pending hash was recorded

    monkeypatch.setattr(checksums.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_recorded(target, lambda tmp: tmp.write_bytes(b"new"))
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and verify_recorded(target)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_corrupt_checkpoint_names_the_file_and_the_previous_checkpoint(tmp_path):
    run = RunDirectory(tmp_path / "run")
    _train(run.path, epochs=3)
    latest = run.latest_checkpoint()
    assert latest == run.epoch_dir(2) and (latest / "checksums.json").is_file()
    _truncate(latest / "model.weights.h5")
    with pytest.raises(ChecksumError) as failure:
        restore_checkpoint(run, tiny_regression())
    message = str(failure.value)
    assert f"{latest / 'model.weights.h5'}: checksum mismatch" in message
    assert f"the previous checkpoint {run.epoch_dir(1)} is kept for this: delete {latest}" in message

    # the recovery the message describes: delete the corrupt checkpoint, resume from the previous one
    import shutil

    shutil.rmtree(latest)
    assert run.latest_checkpoint() == run.epoch_dir(1)
    state = restore_checkpoint(run, tiny_regression())
    assert state.next_epoch == 2
    _train(run.path, epochs=3)  # resumes and finishes
    assert run.latest_checkpoint() == run.epoch_dir(2)


def test_a_corrupt_state_file_is_caught_too(tmp_path):
    run = RunDirectory(tmp_path / "run")
    _train(run.path, epochs=1)
    (run.latest_checkpoint() / "state.json").write_text('{"next_epoch": 99}')
    with pytest.raises(ChecksumError, match=r"state.json: checksum mismatch.*no earlier checkpoint is left"):
        restore_checkpoint(run, tiny_regression())


def test_an_unrecorded_damaged_checkpoint_names_the_checkpoint(tmp_path):
    run = RunDirectory(tmp_path / "run")
    _train(run.path, epochs=1)
    latest = run.latest_checkpoint()
    (latest / "checksums.json").unlink()  # a checkpoint written before checksums existed
    _truncate(latest / "model.weights.h5")
    with pytest.raises(TrainingSetupError, match=rf"{latest}: cannot load the checkpoint"):
        restore_checkpoint(run, tiny_regression())


def test_corrupt_best_weights_are_named_before_sampling(tmp_path):
    run = RunDirectory(tmp_path / "run")
    _train(run.path, epochs=2)
    assert run.inference_weights() == run.best_weights_path
    _truncate(run.best_weights_path)
    with pytest.raises(
        ChecksumError, match=r"best.weights.h5: checksum mismatch.*delete it to sample from the latest"
    ):
        run.inference_weights()
    run.best_weights_path.unlink()
    assert run.inference_weights() == run.latest_checkpoint() / "model.weights.h5"


def test_a_corrupt_checkpoint_pointer_is_named(tmp_path):
    run = RunDirectory(tmp_path / "run")
    _train(run.path, epochs=1)
    (run.checkpoints_dir / "latest.json").write_text("{trunc")
    with pytest.raises(FileNotFoundError, match=r"latest.json: corrupt checkpoint pointer.*epoch-0000"):
        run.latest_checkpoint()


@pytest.mark.slow
def test_sampling_a_run_with_corrupt_weights_is_one_line_naming_the_file(tmp_path):
    from reliability_support import tiny_fpcd_config_file

    from gsgm.families.fpcd import train

    config = tiny_fpcd_config_file(tmp_path)
    out = tmp_path / "run"
    from gsgm.config import load_config

    train(load_config(config), data="builtin", out=out, max_jets_per_class=32, verbose=0)
    _truncate(out / "best.weights.h5")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "sample.py"), "--run", str(out), "--per-class", "4",
         "--out", str(tmp_path / "samples")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    # TensorFlow's C++ start-up lines may come first; gsgm's own output is the one error line
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in result.stderr
    assert f"{out / 'best.weights.h5'}: checksum mismatch" in last
    assert not (tmp_path / "samples").exists()


def test_corrupt_metadata_and_history_name_their_file(tmp_path):
    run = RunDirectory(tmp_path / "run")
    _train(run.path, epochs=1)
    run.metadata_path.write_text('{"seed": 1,')
    with pytest.raises(FileNotFoundError, match=r"metadata.json: corrupt run metadata"):
        run.read_metadata()
    run.history_path.write_text("epoch,loss\n0,abc\n")
    with pytest.raises(FileNotFoundError, match=r"history.csv: corrupt training history"):
        run.read_history()
