"""Resumable sampling with a real (tiny) model: ``scripts/sample.py`` killed with SIGKILL at random
points and rerun gives exactly the files of an uninterrupted run; a killed run is never read as complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from reliability_support import REPO, tiny_fpcd_config_file

from gsgm.generation.jet_files import read_jet_class_file
from gsgm.generation.sample_sets import MANIFEST_NAME, SampleSetError, verify_sample_directory

pytestmark = pytest.mark.slow

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
PER_CLASS, BATCH, STEPS, SEED = 18, 3, 3, 11  # 6 chunks per class, 12 in all


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from gsgm.config import load_config
    from gsgm.families.fpcd import train

    directory = tmp_path_factory.mktemp("resume")
    out = directory / "run"
    train(
        load_config(tiny_fpcd_config_file(directory)),
        data="builtin",
        out=out,
        max_jets_per_class=32,
        verbose=0,
    )
    return out


def _command(run: Path, out: Path) -> list[str]:
    return [
        sys.executable, str(REPO / "scripts" / "sample.py"), "--run", str(run), "--out", str(out),
        "--per-class", str(PER_CLASS), "--batch-size", str(BATCH), "--steps", str(STEPS), "--seed", str(SEED),
        "--no-progress", "--no-timing",
    ]  # fmt: skip


def _chunks(out: Path) -> int:
    return len(list((out.parent / f".{out.name}.partial").glob("*.npz")))


def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_result(tiny_run, tmp_path):
    from gsgm.generation.runs import sample_jets_to_directory

    reference = tmp_path / "reference"
    sample_jets_to_directory(
        tiny_run, reference, PER_CLASS, steps=STEPS, seed=SEED, batch_size=BATCH, write_timing=False
    )
    out = tmp_path / "samples"
    rng = np.random.default_rng(20261202)
    kills, finished_early = 0, False
    for _attempt in range(3):
        wanted = _chunks(out) + int(rng.integers(1, 4))  # kill after 1-3 more chunks (of 12)
        process = subprocess.Popen(
            _command(tiny_run, out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.time() + 240
        while process.poll() is None and _chunks(out) < wanted and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0, 0.3)))  # a random moment inside the next chunk
        if process.poll() is not None:
            finished_early = True  # it completed before the kill: the rerun below has nothing to do
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
        if out.exists():  # only ever complete: the set appears as a whole
            verify_sample_directory(out, ["q.hdf5", "z.hdf5"])
            # the kill came after the final rename (while the timing record was written): the set
            # is complete, and the rerun below rightly has nothing to do
            finished_early = True
            break
        else:
            with pytest.raises((SampleSetError, FileNotFoundError)):
                read_jet_class_file(out, "q", 30)
    assert kills >= 1
    finished = subprocess.run(_command(tiny_run, out), env=ENV, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    if not finished_early:
        assert "already holds" not in finished.stdout
    for jet_class in ("q", "z"):
        expected = read_jet_class_file(reference, jet_class, 30)
        resumed = read_jet_class_file(out, jet_class, 30)
        np.testing.assert_array_equal(resumed[0], expected[0])
        np.testing.assert_array_equal(resumed[1], expected[1])
    manifests = [json.loads((d / MANIFEST_NAME).read_text()) for d in (reference, out)]
    assert manifests[0]["content_sha256"] == manifests[1]["content_sha256"]
    assert not (tmp_path / ".samples.partial").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
