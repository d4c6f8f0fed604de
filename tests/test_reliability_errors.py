"""One error convention: expected problems are one line and exit 2, bugs a traceback and a bug line.

Also every CLI argument is validated when parsed: zero or negative counts, steps, batch sizes and
epochs, non-finite numbers and an empty --classes are errors, never defaults.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gsgm.cli import build_parser
from gsgm.utils.cli import BUG_LINE, UserError, run_cli

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}


def _run(main, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "error",
    [
        UserError("config.json: training.epochs: must be > 0"),
        ValueError("t.hdf5: dataset 'jet_features' must have shape [N, 4]"),
        FileNotFoundError("run directory not found: runs/x"),
        KeyError("no sampler is registered for the x family"),
        PermissionError(errno.EACCES, "Permission denied", "/data/out"),
        IsADirectoryError(errno.EISDIR, "Is a directory", "/data/out"),
        NotADirectoryError(errno.ENOTDIR, "Not a directory", "/data/file/out"),
    ],
)
def test_expected_problems_are_one_line_and_exit_2(error, capsys):
    def main():
        raise error

    status, err = _run(main, capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err


def test_a_multi_line_message_is_joined_into_one_line(capsys):
    def main():
        raise ValueError("first part\n  second part")

    status, err = _run(main, capsys)
    assert status == 2 and err == "error: first part second part\n"


def test_unexpected_errors_show_the_traceback_and_say_it_is_a_bug(capsys):
    def main():
        return {}["missing"] if False else [][1]  # IndexError: a bug, not a user problem

    status, err = _run(main, capsys)
    assert status == 1
    assert "Traceback" in err and "IndexError" in err and err.strip().endswith(BUG_LINE)


def test_status_of_main_is_the_exit_status(capsys):
    assert _run(lambda: 0, capsys)[0] == 0
    assert _run(lambda: 3, capsys)[0] == 3


@pytest.mark.parametrize(
    "code",
    [
        "raise OSError(errno.ENOSPC, 'No space left on device', '/full/t.hdf5')",
        # h5py's wording: the errno hides inside the message
        'raise OSError("Can\'t write data (file write failed: errno = 28, "\n'
        "        \"error message = 'No space left on device')\")",
    ],
)
def test_a_full_disk_is_one_line_exit_2_never_a_crash(code):
    program = f"import errno\nfrom gsgm.utils.cli import run_cli\ndef main():\n    {code}\nrun_cli(main)\n"
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no space left on the device")


# ---------------------------------------------------------------------------------- argument types

EVALUATE = ["evaluate", "jets", "--truth", "t", "--gen", "g", "--out", "o"]
MAKE_PHASE_SPACE = ["make-phase-space", "--process", "muon_decay", "--seed", "1", "--out", "o.h5"]
BAD_ARGUMENTS = [  # (arguments, the option at fault)
    (["sample", "--run", "r", "--out", "o", "--per-class", "0"], "--per-class"),
    (["sample", "--run", "r", "--out", "o", "--per-class", "-5"], "--per-class"),
    (["sample", "--run", "r", "--out", "o", "--per-class", "10", "--steps", "0"], "--steps"),
    (["sample", "--run", "r", "--out", "o", "--per-class", "10", "--batch-size", "0"], "--batch-size"),
    (["sample", "--run", "r", "--out", "o", "--per-class", "10", "--buckets", "0"], "--buckets"),
    (["sample", "--run", "r", "--out", "o", "--per-class", "10", "--seed", "-1"], "--seed"),
    (["sample", "--run", "r", "--out", "o", "--per-class", "10", "--classes", ""], "--classes"),
    (["sample", "--run", "r", "--out", "o", "--per-class", "10", "--classes", " , "], "--classes"),
    (["sample", "--run", "r", "--out", "o", "--per-class", "10", "--energy", "nan"], "--energy"),
    (["sample", "--run", "r", "--out", "o", "--per-class", "10", "--energy", "-50"], "--energy"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--max-jets-per-class", "0"], "--max-jets-per-class"),
    (["distill", "--run", "r", "--epochs-per-stage", "0"], "--epochs-per-stage"),
    (["distill", "--run", "r", "--epochs-per-stage", "1,0,2"], "--epochs-per-stage"),
    (["reference", "--distill-epochs", "2,x"], "--distill-epochs"),
    (["distill", "--run", "r", "--until", "0"], "--until"),
    (["tune", "--max-epochs", "0"], "--max-epochs"),
    (
        ["evaluate", "jets", "--truth", "t", "--gen", "g", "--out", "o", "--jets-per-class", "0"],
        "--jets-per-class",
    ),
    (["evaluate", "jets", "--truth", "t", "--gen", "g", "--out", "o", "--bootstrap", "0"], "--bootstrap"),
    (["make-data", "--jets-per-class", "0", "--seed", "1", "--out", "o"], "--jets-per-class"),
    (["make-data", "--jets-per-class", "10", "--seed", "1", "--out", "o", "--classes", ""], "--classes"),
    (["make-showers", "--showers", "0", "--seed", "1", "--out", "o.h5"], "--showers"),
    (
        ["make-phase-space", "--process", "muon_decay", "--events", "0", "--seed", "1", "--out", "o.h5"],
        "--events",
    ),
    (["inspect", "builtin", "--classes", ""], "--classes"),
    (["sample", "--run", "r", "--out", "o", "--per-class", "ten"], "--per-class"),
]


@pytest.mark.parametrize(("argv", "option"), BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_zero_negative_non_finite_and_empty_arguments_are_errors(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: gsgm")
    assert re.search(rf"argument {option}[:/]", lines[0]), lines[0]


def test_valid_arguments_still_parse():
    args = build_parser().parse_args(
        [
            "sample",
            "--run",
            "r",
            "--out",
            "o",
            "--per-class",
            "3",
            "--steps",
            "8",
            "--seed",
            "0",
            "--classes",
            "g,t",
        ]
    )
    assert (args.per_class, args.steps, args.seed, args.classes) == (3, 8, 0, "g,t")
    distill = build_parser().parse_args(["distill", "--run", "r", "--epochs-per-stage", "1, 2,4"])
    assert distill.epochs_per_stage == [1, 2, 4]
    assert (
        build_parser().parse_args(["distill", "--run", "r", "--epochs-per-stage", "5"]).epochs_per_stage == 5
    )


def test_scripts_report_bad_arguments_in_one_line():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "sample.py"), "--run", "r", "--out", "o", "--per-class", "1",
         "--steps", "0"],
        capture_output=True, text=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: sample.py: argument --steps: must be a positive integer, got 0 (see sample.py --help)"
    )
