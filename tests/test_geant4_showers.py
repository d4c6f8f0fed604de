"""The optional Geant4 path: argument handling, and a one-line error where Geant4 or its data are absent."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gsgm.data.geant4_showers import Geant4Settings, Geant4UnavailableError, check_geant4

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_showers": 0, "seed": 1}, "--showers must be >= 1"),
        ({"num_showers": 5, "seed": -1}, r"--seed must be in \[0, 2\^31\)"),
        ({"num_showers": 5, "seed": 1, "energy_min": 90, "energy_max": 10}, "energy min <= energy max"),
        ({"num_showers": 5, "seed": 1, "physics_list": "NOPE"}, "--physics-list must be one of FTFP_BERT"),
    ],
)
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Geant4Settings(**kwargs)


def test_missing_geant4_or_data_sets_say_what_is_missing(tmp_path, monkeypatch):
    if importlib.util.find_spec("geant4_pybind") is None:
        with pytest.raises(Geant4UnavailableError, match="geant4-pybind is not installed"):
            check_geant4({})
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())  # pretend the package is there
    with pytest.raises(Geant4UnavailableError, match="set G4LEDATA, G4ENSDFSTATEDATA"):
        check_geant4({"G4LEVELGAMMADATA": str(tmp_path), "G4PARTICLEXSDATA": str(tmp_path)})
    complete = {
        v: str(tmp_path) for v in ("G4LEDATA", "G4ENSDFSTATEDATA", "G4LEVELGAMMADATA", "G4PARTICLEXSDATA")
    }
    check_geant4(complete)


def test_make_showers_with_geant4_is_one_error_line_here(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for variable in ("G4LEDATA", "G4ENSDFSTATEDATA"):
        env.pop(variable, None)
    command = [sys.executable, "-m", "gsgm.cli", "make-showers", "--engine", "geant4", "--showers", "2",
               "--seed", "1", "--out", str(tmp_path / "g4.h5")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "geant4" in lines[0].lower()
    assert not (tmp_path / "g4.h5").exists()
