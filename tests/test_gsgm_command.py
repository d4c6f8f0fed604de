"""The `gsgm` command: every subcommand's help, the console script, and the scripts as its shims."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gsgm.cli import COMMANDS, Command, _commands, build_parser

REPO = Path(__file__).resolve().parents[1]
SHIMS = sorted([*(REPO / "scripts").glob("*.py"), *(REPO / "plots").glob("*.py")])


def all_commands() -> list[list[str]]:
    words = []
    for name in COMMANDS:
        commands = _commands(name)
        if isinstance(commands, Command):
            words.append([name])
        else:
            words.extend([name, kind] for kind in commands)
    return words


@pytest.mark.parametrize("words", all_commands(), ids=" ".join)
def test_every_subcommand_has_help_with_an_example(words):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        build_parser().parse_args([*words, "--help"])
    assert done.value.code == 0
    text = out.getvalue()
    assert f"gsgm {' '.join(words)}" in text  # the usage line, and examples that use the command
    assert "Example" in text


def test_top_level_help_lists_every_command():
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    for name in COMMANDS:
        assert name in out.getvalue()


def _env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}


def test_console_script_is_installed_and_runs():
    script = Path(sys.executable).parent / "gsgm"
    assert script.is_file(), "setup.cfg declares the gsgm console script; reinstall (make install)"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 0 and "gsgm train" in result.stdout
    bad = subprocess.run([str(script), "sample", "--run", "/nonexistent", "--per-class", "3", "--out", "x"],
                         capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("script", SHIMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scripts_are_shims_over_the_command(script):
    text = script.read_text()
    assert "from gsgm.cli import run_script" in text and len(text.splitlines()) <= 12
    result = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: {script.name}")
