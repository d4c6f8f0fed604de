"""Slurm templates: syntax, shellcheck, the rendered srun command lines, resume and requeue."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SLURM = REPO / "slurm"
TEMPLATES = sorted(SLURM.glob("*_fpcd.sh"))
SHELL_FILES = [
    *TEMPLATES,
    SLURM / "common.sh",
    REPO / "scripts" / "install_horovod.sh",
    REPO / "scripts" / "local_slurm.sh",
]


def require_tool(name: str) -> str:
    """Path of ``name``; skipped when missing, failed when GSGM_STRICT_TOOLS=1 (CI)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install -y {name})"
        if os.environ.get("GSGM_STRICT_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_all_four_templates_exist():
    assert {p.name for p in TEMPLATES} == {
        "train_fpcd.sh",
        "distill_fpcd.sh",
        "sample_fpcd.sh",
        "tune_fpcd.sh",
    }


@pytest.mark.parametrize("path", SHELL_FILES, ids=lambda p: p.name)
def test_bash_syntax(path):
    subprocess.run(["bash", "-n", str(path)], check=True)


@pytest.mark.parametrize("path", SHELL_FILES, ids=lambda p: p.name)
def test_shellcheck_clean(path):
    shellcheck = require_tool("shellcheck")
    result = subprocess.run(
        [shellcheck, "-x", "--severity=style", str(path.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def sbatch_options(path: Path) -> dict[str, str]:
    options = {}
    for line in path.read_text().splitlines():
        if line.startswith("#SBATCH --"):
            key, _, value = line[len("#SBATCH --") :].partition("=")
            options[key] = value
    return options


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_sbatch_header(path):
    options = sbatch_options(path)
    for key in ("constraint", "qos", "time", "nodes", "ntasks-per-node", "gpus-per-task"):
        assert key in options, f"{path.name} lacks #SBATCH --{key}"
    # No placeholder account (sbatch rejects unknown ones): $SBATCH_ACCOUNT or the marked SITE line.
    assert "account" not in options
    assert "##SBATCH --account=YOUR_ACCOUNT" in path.read_text() and "SBATCH_ACCOUNT" in path.read_text()
    assert options["constraint"] == "gpu" and options["gpus-per-task"] == "1"
    assert "requeue" in options and options["signal"].startswith("B:USR1@")
    assert "cpus-per-task" in options


def test_train_template_matches_the_paper_layout():
    options = sbatch_options(SLURM / "train_fpcd.sh")
    assert options["nodes"] == "4" and options["ntasks-per-node"] == "4"  # 16 A100s


def render_output(template: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run a template with DRY_RUN=1 and return the finished process (stdout: commands, stderr: log)."""
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DRY_RUN": "1",
        "GSGM_DIR": str(REPO),
        "SCRATCH": str(tmp_path / "scratch"),
        **env,
    }
    result = subprocess.run(
        ["bash", str(SLURM / template)], cwd=tmp_path, env=environ, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result


def render(template: str, tmp_path: Path, **env: str) -> list[list[str]]:
    """The commands a template would run (DRY_RUN=1), split into words."""
    result = render_output(template, tmp_path, **env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("DRY_RUN:")]
    assert lines, result.stdout + result.stderr
    return [shlex.split(line[len("DRY_RUN:") :]) for line in lines]


def split_srun(words: list[str]) -> tuple[list[str], list[str]]:
    assert words[0] == "srun"
    python = words.index("python")
    return words[1:python], words[python:]


def test_train_command_for_a_new_run(tmp_path):
    (command,) = render(
        "train_fpcd.sh",
        tmp_path,
        SLURM_JOB_NUM_NODES="2",
        SLURM_NTASKS_PER_NODE="4",
        SLURM_CPUS_PER_TASK="16",
        CONFIG="configs/fpcd_jetnet150.json",
        RUN_NAME="j150",
        PARTICLES="150",
        EXTRA_ARGS="--max-jets-per-class 1000",
    )
    srun, python = split_srun(command)
    scratch = tmp_path / "scratch" / "gsgm"
    assert srun[:5] == [
        "--nodes=2",
        "--ntasks-per-node=4",
        "--gpus-per-task=1",
        "--gpu-bind=none",
        "--cpus-per-task=16",
    ]
    assert f"--output={scratch}/logs/train-j150-%j.%s.out" in srun
    assert "--kill-on-bad-exit=1" in srun
    assert python == [
        "python",
        "scripts/train.py",
        "--horovod",
        "--verbose",
        "2",
        "--particles",
        "150",
        "--max-jets-per-class",
        "1000",
    ]
    # train.py's own defaults carry data, run directory and config (what a user types by hand)
    assert job_environment(
        "train_fpcd.sh", tmp_path, CONFIG="configs/fpcd_jetnet150.json", RUN_NAME="j150"
    ) == {
        "GSGM_DATA": f"{scratch}/data/jetnet",
        "GSGM_RUN_DIR": f"{scratch}/runs/j150",
        "GSGM_CONFIG": "configs/fpcd_jetnet150.json",
    }


def test_cpu_job_step_asks_for_no_gpus(tmp_path):
    """`sbatch --gpus-per-task=0` (SLURM_GPUS_PER_TASK=0) or GPUS_PER_TASK=0: a CPU job step."""
    for env in ({"SLURM_GPUS_PER_TASK": "0"}, {"GPUS_PER_TASK": "0", "SLURM_GPUS_PER_TASK": "1"}):
        for template in ("train_fpcd.sh", "distill_fpcd.sh", "sample_fpcd.sh", "tune_fpcd.sh"):
            (command,) = render(template, tmp_path, SLURM_CPUS_PER_TASK="1", **env)
            srun, _ = split_srun(command)
            assert not [word for word in srun if word.startswith("--gpu")], (template, srun)
            assert "--cpus-per-task=1" in srun
    (command,) = render("train_fpcd.sh", tmp_path, GPUS_PER_TASK="2")
    assert "--gpus-per-task=2" in split_srun(command)[0]
    result = subprocess.run(
        ["bash", str(SLURM / "train_fpcd.sh")],
        cwd=tmp_path,
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "DRY_RUN": "1",
            "GSGM_DIR": str(REPO),
            "GPUS_PER_TASK": "one",
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "GPUS_PER_TASK must be a whole number, got 'one'" in result.stderr


def job_environment(template: str, tmp_path: Path, **env: str) -> dict[str, str]:
    """The GSGM_* variables a template exports to its job step (its ``DRY_RUN env:`` line)."""
    result = render_output(template, tmp_path, **env)
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("DRY_RUN env:")]
    return dict(word.split("=", 1) for word in shlex.split(line[len("DRY_RUN env:") :]))


def test_train_defaults_and_what_would_be_submitted(tmp_path):
    result = render_output("train_fpcd.sh", tmp_path)
    assert "python scripts/train.py --horovod --verbose 2" in result.stdout
    assert "GSGM_CONFIG" not in result.stdout  # train.py's default: configs/fpcd_jetnet30.json
    assert "SBATCH_ACCOUNT unset" in result.stderr and "#SBATCH --nodes=4" in result.stderr
    with_account = render_output("train_fpcd.sh", tmp_path, SBATCH_ACCOUNT="m4242")
    assert "with account m4242" in with_account.stderr


def test_train_command_resumes_an_existing_run(tmp_path):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    result = render_output(
        "train_fpcd.sh", tmp_path, RUN_DIR=str(run), NODES="3", GPUS_PER_NODE="2", EPOCHS="7"
    )
    assert "holds a run: resuming" in result.stderr
    (command,) = render("train_fpcd.sh", tmp_path, RUN_DIR=str(run), NODES="3", GPUS_PER_NODE="2", EPOCHS="7")
    srun, python = split_srun(command)
    assert srun[:2] == ["--nodes=3", "--ntasks-per-node=2"]
    # train.py resumes by itself; --epochs is checked against the run's own
    assert "--config" not in python and python[python.index("--epochs") + 1] == "7"
    assert job_environment("train_fpcd.sh", tmp_path, RUN_DIR=str(run))["GSGM_RUN_DIR"] == str(run)


def test_distill_sample_and_tune_commands(tmp_path):
    scratch = tmp_path / "scratch" / "gsgm"
    (distill,) = render("distill_fpcd.sh", tmp_path, RUN_NAME="base", UNTIL="8", EPOCHS_PER_STAGE="5")
    srun, python = split_srun(distill)
    assert srun[:2] == ["--nodes=1", "--ntasks-per-node=1"]
    assert python == [
        "python",
        "scripts/distill.py",
        "--run",
        f"{scratch}/runs/base",
        "--until",
        "8",
        "--epochs-per-stage",
        "5",
    ]

    (sample,) = render("sample_fpcd.sh", tmp_path, RUN_NAME="base", STEPS="8", JETS_PER_CLASS="5000")
    srun, python = split_srun(sample)
    assert srun[:2] == ["--nodes=1", "--ntasks-per-node=1"]
    assert python[:2] == ["python", "scripts/sample.py"]
    assert python[python.index("--jets-per-class") + 1] == "5000"
    assert python[python.index("--steps") + 1] == "8"
    assert python[python.index("--out") + 1] == f"{scratch}/runs/base/samples-steps8"

    (tune,) = render("tune_fpcd.sh", tmp_path, CONFIG="configs/quick.json", MAX_EPOCHS="9", FACTOR="3")
    srun, python = split_srun(tune)
    assert srun[:2] == ["--nodes=1", "--ntasks-per-node=4"]
    assert python[:3] == ["python", "scripts/tune.py", "--horovod"]
    tuner_dir = f"{scratch}/tuning/tune-quick"
    assert python[python.index("--tuner-dir") + 1] == tuner_dir
    assert python[python.index("--export") + 1] == f"{tuner_dir}/best.json"
    assert python[python.index("--max-epochs") + 1] == "9"


def test_template_refuses_to_run_outside_a_checkout(tmp_path):
    result = subprocess.run(
        ["bash", str(SLURM / "train_fpcd.sh")],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DRY_RUN": "1", "GSGM_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    # common.sh is sourced from GSGM_DIR, so a wrong GSGM_DIR fails at once, with the path named.
    assert result.returncode != 0 and str(tmp_path) in result.stderr


def test_time_limit_signal_requeues_the_job(tmp_path):
    """USR1 (sent by Slurm before the time limit) makes the job call `scontrol requeue <job id>`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (bin_dir / "srun").write_text(
        "#!/bin/bash\n"
        f'echo "srun $*" >> {log}\n'
        # runs until "Slurm" (the fake scontrol) stops the job
        f"for _ in $(seq 300); do [[ -f {tmp_path}/stopped ]] && exit 0; sleep 0.1; done\n"
        "exit 1\n"
    )
    (bin_dir / "scontrol").write_text(f'#!/bin/bash\necho "scontrol $*" >> {log}\ntouch {tmp_path}/stopped\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    environ = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "GSGM_DIR": str(REPO),
        "SCRATCH": str(tmp_path / "scratch"),
        "GSGM_VENV": "",
        "MODULES": "",
        "SLURM_JOB_ID": "4242",
    }
    job = subprocess.Popen(
        ["bash", str(SLURM / "train_fpcd.sh")], cwd=tmp_path, env=environ, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while not (log.is_file() and "srun" in log.read_text()):
        assert time.monotonic() < deadline and job.poll() is None, "srun was never started"
        time.sleep(0.05)
    job.send_signal(signal.SIGUSR1)
    _, stderr = job.communicate(timeout=30)
    calls = log.read_text().splitlines()
    assert calls[0].startswith("srun --nodes=4 --ntasks-per-node=4")
    assert "scripts/train.py --horovod" in calls[0]
    assert calls[1] == "scontrol requeue 4242", stderr
    assert "requeueing job 4242" in stderr
