"""A one-node Slurm on localhost for the tests (scripts/local_slurm.sh), and helpers to submit to it.

The fixture ``local_slurm`` (session scope) starts munged, slurmctld and slurmd with their state in a
temporary directory and stops exactly those daemons at the end of the session. Where Slurm is not
installed the tests that use it are skipped with the reason, or failed with GSGM_STRICT_TOOLS=1 (CI).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCAL_SLURM = REPO / "scripts" / "local_slurm.sh"
SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "scontrol", "scancel", "squeue")
INSTALL_HINT = "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"
# Job states after which a job does not run again by itself (a requeued job passes through PENDING).
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}


def skip_or_fail(message: str) -> None:
    """Skip the test with ``message``; fail it instead under GSGM_STRICT_TOOLS=1 (CI)."""
    if os.environ.get("GSGM_STRICT_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class LocalSlurm:
    """A running one-node cluster: ``conf`` is its slurm.conf, ``state`` its state directory."""

    conf: Path
    state: Path

    def environ(self, **extra: str) -> dict[str, str]:
        """This process's environment pointed at the cluster, plus ``extra``."""
        return {**os.environ, "SLURM_CONF": str(self.conf), **extra}

    def command(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run a Slurm client command (e.g. ``scontrol``) against this cluster; raises on failure."""
        result = subprocess.run(
            list(args), env=self.environ(), capture_output=True, text=True, timeout=60, **kwargs
        )
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def sbatch(self, *args: str, env: dict[str, str], cwd: Path = REPO) -> int:
        """Submit with ``sbatch --parsable ARGS`` from ``cwd`` with ``env``; returns the job id."""
        result = subprocess.run(
            ["sbatch", "--parsable", *args],
            env=self.environ(**env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"sbatch {' '.join(args)}: {result.stderr}"
        return int(result.stdout.strip().split(";")[0])

    def job(self, job_id: int) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobState, ExitCode, Restarts, ...)."""
        text = self.command("scontrol", "show", "job", "--oneliner", str(job_id)).stdout
        fields = {}
        for word in text.split():
            key, sep, value = word.partition("=")
            if sep:
                fields[key] = value
        return fields

    def wait(self, job_id: int, timeout: float, *, log: Path | None = None) -> dict[str, str]:
        """Wait until the job has ended for good; returns its final :meth:`job` fields.

        Raises with the job's state and the tail of ``log`` when it takes longer than ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        while True:
            fields = self.job(job_id)
            if fields.get("JobState") in FINAL_STATES:
                return fields
            if time.monotonic() > deadline:
                tail = log.read_text()[-3000:] if log is not None and log.is_file() else "(no log)"
                self.command("scancel", str(job_id))
                raise AssertionError(
                    f"job {job_id} still {fields.get('JobState')} after {timeout} s:\n{tail}"
                )
            time.sleep(1)


@pytest.fixture(scope="session")
def local_slurm(tmp_path_factory) -> Iterator[LocalSlurm]:
    """Start a one-node Slurm for the test session (skipped where Slurm is not installed)."""
    missing = [tool for tool in SLURM_TOOLS if shutil.which(tool) is None]
    if missing:
        skip_or_fail(f"Slurm is not installed ({', '.join(missing)} missing; Debian: {INSTALL_HINT})")
    if os.geteuid() != 0:
        skip_or_fail("a local Slurm needs root (slurmd starts the jobs' processes as their users)")
    if importlib.util.find_spec("horovod") is None:
        # The templates train with --horovod; without it every job fails at its first line.
        skip_or_fail("Horovod is not installed: scripts/install_horovod.sh builds it (the templates use it)")
    state = tmp_path_factory.mktemp("slurm")
    environ = {**os.environ, "GSGM_SLURM_DIR": str(state)}
    started = subprocess.run(
        ["bash", str(LOCAL_SLURM), "start"], env=environ, capture_output=True, text=True, timeout=120
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"scripts/local_slurm.sh start failed:\n{started.stderr}")
        yield LocalSlurm(conf=state / "slurm.conf", state=state)
    finally:
        subprocess.run(["bash", str(LOCAL_SLURM), "stop"], env=environ, capture_output=True, timeout=120)
