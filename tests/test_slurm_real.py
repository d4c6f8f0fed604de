"""The Slurm templates under a real Slurm: a one-node cluster on localhost (scripts/local_slurm.sh).

Each job is the shipped template, submitted with only command-line and environment overrides that
turn the Perlmutter GPU job into a CPU job on one node: ``--constraint= --qos= --gpus-per-task=0``,
one node, ``CONFIG=configs/quick.json``, ``DATA=builtin`` and a few epochs. Skipped where Slurm is not
installed (failed with GSGM_STRICT_TOOLS=1, as in CI).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from slurm_cluster import REPO, LocalSlurm, local_slurm, skip_or_fail

from gsgm.config import load_config

__all__ = ["local_slurm"]  # the session fixture, imported for pytest

# Two self-contained tests (the chain of jobs, the two-rank job): under pytest-xdist each worker that
# runs one starts its own cluster, so nothing is submitted twice even where xdist_group is not honoured.
pytestmark = pytest.mark.slow

# The Perlmutter template made a CPU job on this machine's single node, one CPU per rank.
CPU_JOB = [
    "--constraint=",
    "--qos=",
    "--gpus-per-task=0",
    "--nodes=1",
    "--ntasks-per-node=1",
    "--cpus-per-task=1",
]
EPOCHS = 12  # enough epochs after the first checkpoint for the requeue to land mid-training
JOB_TIMEOUT = 300


def job_env(scratch: Path, run_name: str, **extra: str) -> dict[str, str]:
    """The environment a user sets for one job: checkout, Python, scratch, config, data, run name."""
    return {
        "GSGM_DIR": str(REPO),
        "GSGM_VENV": "",  # the Python running these tests is the job's (first on PATH)
        "MODULES": "",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "SCRATCH": str(scratch),
        "DATA": "builtin",
        "CONFIG": "configs/quick.json",
        "RUN_NAME": run_name,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **extra,
    }


def submit(cluster: LocalSlurm, scratch: Path, template: str, *options: str, env: dict[str, str]) -> int:
    """sbatch a template from the checkout with the CPU overrides; its log goes to scratch/."""
    output = f"--output={scratch}/slurm-{Path(template).stem}-%j.out"
    return cluster.sbatch(*CPU_JOB, output, *options, f"slurm/{template}", env=env)


def job_log(scratch: Path, template: str, job_id: int) -> str:
    return (scratch / f"slurm-{Path(template).stem}-{job_id}.out").read_text()


def step_log(scratch: Path, prefix: str, job_id: int) -> str:
    """The job step's log (all ranks, labelled), written by srun under LOG_DIR."""
    return (scratch / "gsgm" / "logs" / f"{prefix}-{job_id}.0.out").read_text()


def run_dir(scratch: Path, name: str) -> Path:
    return scratch / "gsgm" / "runs" / name


def read_history(run: Path) -> list[dict[str, float]]:
    with (run / "history.csv").open(newline="") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def assert_completed(fields: dict[str, str], log: str) -> None:
    assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), log[-4000:]


def submit_all(local_slurm: LocalSlurm, scratch: Path) -> dict[str, tuple[int, dict[str, str]]]:
    """Submit everything at once and let Slurm order it; returns {name: (job id, final fields)}.

    ``straight`` trains and starts the README's chain (distill, sample and tune, each with
    ``--dependency=afterok`` on the one before). ``requeued`` is the same training job, which gets
    the time-limit signal once its first checkpoint exists: USR1 is what ``#SBATCH
    --signal=B:USR1@300`` sends to the batch shell, and the template's trap answers it with
    ``scontrol requeue``, so this is the whole requeue path. Both training jobs run side by side
    (one CPU each); the chain fills the CPU while the requeued job waits to start again.
    """
    options = {"EPOCHS": str(EPOCHS), "EXTRA_ARGS": "--max-jets-per-class 200"}
    ids = {
        "straight": submit(local_slurm, scratch, "train_fpcd.sh", env=job_env(scratch, "straight", **options))
    }
    ids["requeued"] = submit(
        local_slurm, scratch, "train_fpcd.sh", env=job_env(scratch, "requeued", **options)
    )
    chain = {
        "distill": ("distill_fpcd.sh", {"UNTIL": "32", "EPOCHS_PER_STAGE": "1"}),
        "sample": ("sample_fpcd.sh", {"STEPS": "32", "JETS_PER_CLASS": "20", "BATCH_SIZE": "100"}),
        "tune": (
            "tune_fpcd.sh",
            {"MAX_EPOCHS": "2", "FACTOR": "2", "MAX_JETS_PER_CLASS": "40", "EXTRA_ARGS": "--max-trials 2"},
        ),
    }
    previous = ids["straight"]
    for name, (template, knobs) in chain.items():
        dependency = f"--dependency=afterok:{previous}"
        ids[name] = previous = submit(
            local_slurm, scratch, template, dependency, env=job_env(scratch, "straight", **knobs)
        )
    assert local_slurm.job(ids["sample"])["JobState"] == "PENDING"

    # Signal once the first checkpoint exists; fail with the job's state if it never appears.
    latest = run_dir(scratch, "requeued") / "checkpoints" / "latest.json"
    deadline = time.monotonic() + JOB_TIMEOUT
    while not latest.is_file():
        fields = local_slurm.job(ids["requeued"])
        assert fields["JobState"] in ("PENDING", "RUNNING") and time.monotonic() < deadline, fields
        time.sleep(0.2)
    local_slurm.command("scancel", "--batch", "--signal=USR1", str(ids["requeued"]))
    return {name: (job_id, local_slurm.wait(job_id, JOB_TIMEOUT)) for name, job_id in ids.items()}


def test_train_requeue_and_chain_under_slurm(local_slurm, tmp_path):
    """sbatch train, a requeue mid-training, and train -> distill -> sample -> tune (afterok)."""
    jobs = submit_all(local_slurm, tmp_path)
    check_train(jobs, tmp_path)
    check_requeue(jobs, tmp_path)
    check_chain(jobs, tmp_path)


def check_train(jobs, scratch: Path) -> None:
    """`sbatch slurm/train_fpcd.sh` wrote the run directory, and its log says where."""
    job_id, fields = jobs["straight"]
    log = job_log(scratch, "train_fpcd.sh", job_id)
    assert_completed(fields, log)
    run = run_dir(scratch, "straight")
    assert f"new run {run} from configs/quick.json" in log
    assert f"--output={scratch}/gsgm/logs/train-straight-%j.%s.out" in log  # where the ranks write
    steps = step_log(scratch, "train-straight", job_id)
    assert f"0: trained {EPOCHS} epochs into {run}" in steps
    for name in ("config.json", "metadata.json", "preprocessing.json", "best.weights.h5"):
        assert (run / name).is_file(), name
    assert [int(row["epoch"]) for row in read_history(run)] == list(range(EPOCHS))
    assert fields["Restarts"] == "0"


def epochs_run(steps_log: str) -> list[int]:
    """The epoch numbers (1-based) in the order the step log reports them, over all attempts."""
    return [int(match) for match in re.findall(r"^0: epoch (\d+)/\d+ ", steps_log, flags=re.MULTILINE)]


def check_requeue(jobs, scratch: Path) -> None:
    """The requeued job resumed from its last checkpoint and ended as the uninterrupted one."""
    job_id, fields = jobs["requeued"]
    log = job_log(scratch, "train_fpcd.sh", job_id)
    assert_completed(fields, log)
    assert fields["Restarts"] == "1", log
    assert f"requeueing job {job_id}" in log
    run = run_dir(scratch, "requeued")
    assert f"{run} holds a run: resuming from its last checkpoint" in log

    # The first attempt stopped mid-training, the second continued after the last checkpoint.
    steps = step_log(scratch, "train-requeued", job_id)
    before, marker, after = steps.partition("DUE TO JOB REQUEUE")
    assert marker, steps[-3000:]
    first, second = epochs_run(before), epochs_run(after)
    assert first == list(range(1, len(first) + 1)) and 1 <= len(first) < EPOCHS, (first, second)
    assert 1 < second[0] <= first[-1] + 1 and second == list(range(second[0], EPOCHS + 1)), (first, second)

    # Same history as the uninterrupted job, epoch by epoch (wall times aside).
    resumed, straight = read_history(run), read_history(run_dir(scratch, "straight"))
    assert len(resumed) == len(straight) == EPOCHS
    for a, b in zip(resumed, straight, strict=True):
        for key in a:
            if key != "seconds":
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (key, a["epoch"])


def check_chain(jobs, scratch: Path) -> None:
    """distill, sample and tune ran in order after training, each once its dependency was met."""
    results = {}
    for name, template in (
        ("straight", "train_fpcd.sh"),
        ("distill", "distill_fpcd.sh"),
        ("sample", "sample_fpcd.sh"),
        ("tune", "tune_fpcd.sh"),
    ):
        job_id, fields = jobs[name]
        assert_completed(fields, job_log(scratch, template, job_id))
        results[name] = fields
    # Each job started only after the one it depends on had finished.
    for before, after in (("straight", "distill"), ("distill", "sample"), ("sample", "tune")):
        assert results[after]["Dependency"] == "(null)"  # satisfied, hence cleared
        assert results[after]["StartTime"] >= results[before]["EndTime"], (before, after)
    base = run_dir(scratch, "straight")

    stage = base / "distill" / "steps-032"
    assert (stage / "config.json").is_file() and len(read_history(stage)) == 1
    samples = base / "samples-steps32"
    assert sorted(p.name for p in samples.glob("*.hdf5")) == sorted(f"{c}.hdf5" for c in "gqtwz")
    assert (samples / "timing.json").is_file()
    best = load_config(scratch / "gsgm" / "tuning" / "tune-quick" / "best.json")  # validated
    assert best.data.num_particles == 30 and best.data.classes == ["g", "q", "t", "w", "z"]


def mpi_horovod_path() -> str:
    """PYTHONPATH entry holding a Horovod built with MPI ('' when the environment's own has MPI)."""
    check = "import horovod.tensorflow as hvd, sys; sys.exit(0 if hvd.mpi_built() else 1)"
    candidates = [os.environ.get("GSGM_HOROVOD_MPI", ""), ""]
    for path in dict.fromkeys(candidates):
        environ = {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}
        if subprocess.run([sys.executable, "-c", check], env=environ, capture_output=True).returncode == 0:
            return path
    skip_or_fail(
        "no Horovod built with MPI: HOROVOD_BUILD=mpi HOROVOD_TARGET=DIR scripts/install_horovod.sh, "
        "then GSGM_HOROVOD_MPI=DIR"
    )
    return ""


def test_srun_two_horovod_ranks_through_pmix_end_with_identical_weights(local_slurm, tmp_path):
    horovod = mpi_horovod_path()
    scratch = tmp_path
    dump = scratch / "mpi-dump"
    env = job_env(
        scratch,
        "mpi",
        EPOCHS="2",
        EXTRA_ARGS=f"--max-jets-per-class 40 --debug-dump {dump}",
        # srun reads it: start the ranks through Slurm's PMIx plugin, where Open MPI finds its rank.
        SLURM_MPI_TYPE="pmix",
        PYTHONPATH=os.pathsep.join(p for p in (horovod, str(REPO)) if p),
    )
    job_id = submit(local_slurm, scratch, "train_fpcd.sh", "--ntasks-per-node=2", env=env)
    fields = local_slurm.wait(job_id, JOB_TIMEOUT)
    log = job_log(scratch, "train_fpcd.sh", job_id)
    assert_completed(fields, log)
    assert "srun --nodes=1 --ntasks-per-node=2 --cpus-per-task=1" in log
    steps = step_log(scratch, "train-mpi", job_id)
    assert "0: trained 2 epochs" in steps and "1: trained" not in steps  # rank 0 reports

    metadata = json.loads((run_dir(scratch, "mpi") / "metadata.json").read_text())
    assert metadata["num_ranks"] == 2
    weights = []
    for rank in (0, 1):
        with np.load(dump / f"rank{rank}" / "final-weights.npz") as data:
            weights.append([data[key] for key in data.files])
    assert len(weights[0]) > 50
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
    for epoch in range(2):  # two real ranks: each trained on its own half of the jets
        jets0 = np.load(dump / "rank0" / f"epoch{epoch:04d}-jets.npy")
        jets1 = np.load(dump / "rank1" / f"epoch{epoch:04d}-jets.npy")
        assert len(jets0) and not set(jets0) & set(jets1)
