"""The timing-record file (gsgm.generation.timing): one format for sample.py, the benchmarks and the plot."""

from __future__ import annotations

import json
import sys

import pytest

from gsgm.generation.timing import (
    TIMING_KEYS,
    append_timing_records,
    read_timing_records,
    timing_record,
    validate_timing_record,
)


def record(**changes):
    return timing_record("quick, 30 particles, CPU", 64, 2.0, 1000, 30, 500, device="CPU (test)", **changes)


def test_record_holds_every_key_and_ms_per_jet():
    made = record(run="runs/quick", measured=True)
    assert set(TIMING_KEYS) <= set(made)
    assert made["ms_per_jet"] == pytest.approx(2.0)  # 2 s for 1000 jets
    assert made["num_jets"] == 1000 and made["seconds"] == 2.0
    assert made["run"] == "runs/quick" and made["measured"] is True
    with pytest.raises(ValueError, match="num_jets must be positive"):
        timing_record("x", 1, 1.0, 0, 30, 1, device="CPU")
    with pytest.raises(ValueError, match="key 'steps' must be a positive integer, got 0"):
        timing_record("x", 0, 1.0, 10, 30, 1, device="CPU")


def test_default_device_and_date_need_no_arguments():
    made = timing_record("x", 1, 1.0, 10, 30, 10)
    assert made["device"].startswith(("CPU (", "GPU (")) and made["date"][:2] == "20"


def test_append_creates_then_appends_atomically(tmp_path):
    path = tmp_path / "out" / "timing.json"
    append_timing_records(path, [record()])
    append_timing_records(path, [record(), timing_record("y", 8, 1.0, 10, 150, 10, device="GPU (x)")])
    records = read_timing_records(path)
    assert [r["label"] for r in records] == ["quick, 30 particles, CPU"] * 2 + ["y"]
    assert json.loads(path.read_text()) == records
    assert [p.name for p in path.parent.iterdir()] == ["timing.json"]  # no temporary file left


def test_append_refuses_to_overwrite_a_malformed_file(tmp_path):
    path = tmp_path / "timing.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"^{path}: not valid JSON"):
        append_timing_records(path, [record()])
    assert path.read_text() == "{not json"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": 1.5}, "key 'steps' must be a positive integer, got 1.5"),
        ({"steps": True}, "key 'steps' must be a positive integer, got True"),
        ({"ms_per_jet": -1.0}, "key 'ms_per_jet' must be a positive number, got -1.0"),
        ({"ms_per_jet": float("nan")}, "key 'ms_per_jet' must be a positive number, got nan"),
        ({"label": ""}, "key 'label' must be a non-empty string, got ''"),
        ({"batch_size": 0}, "key 'batch_size' must be a positive integer, got 0"),
        ({"num_particles": "30"}, "key 'num_particles' must be a positive integer, got '30'"),
        ({"date": "yesterday"}, "key 'date' must be an ISO 8601 date, got 'yesterday'"),
    ],
)
def test_malformed_record_gives_one_line_naming_file_record_and_key(tmp_path, change, message):
    path = tmp_path / "timing.json"
    path.write_text(json.dumps([record(), {**record(), **change}]))
    with pytest.raises(ValueError) as info:
        read_timing_records(path)
    assert str(info.value) == f"{path} record 1: {message}"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("key", TIMING_KEYS)
def test_missing_key_is_named(tmp_path, key):
    broken = record()
    del broken[key]
    path = tmp_path / "timing.json"
    path.write_text(json.dumps([broken]))
    with pytest.raises(ValueError, match=f"^{path} record 0: missing key '{key}'$"):
        read_timing_records(path)


def test_file_level_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="timing file not found"):
        read_timing_records(tmp_path / "none.json")
    path = tmp_path / "timing.json"
    path.write_text("[]")
    with pytest.raises(ValueError, match="no timing records"):
        read_timing_records(path)
    path.write_text(json.dumps(record()))
    with pytest.raises(ValueError, match="expected a JSON list of timing records"):
        read_timing_records(path)
    with pytest.raises(ValueError, match="^here: expected an object"):
        validate_timing_record([1], "here")


def test_reading_needs_no_tensorflow(tmp_path):
    """Plots read timing files; they must not start TensorFlow (seconds of start-up, GPU memory)."""
    import subprocess

    path = tmp_path / "timing.json"
    path.write_text(json.dumps([record()]))
    code = (
        "import sys; from gsgm.plotting import load_timing_results; "
        f"load_timing_results({str(path)!r}); print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
