"""The timing-record file: how long sampling took, per generated jet (paper Table V).

One format for every writer (``scripts/sample.py`` appends a record per run to ``OUT/timing.json``;
``benchmarks/bench_distillation.py speed --json FILE`` appends one per particle count and step count)
and one reader (``plots/plot_timing.py``, which merges several files). The file is a JSON list of
records::

    [
      {"label": "quick, 30 particles, CPU", "steps": 64, "ms_per_jet": 3.1,
       "num_particles": 30, "batch_size": 10000, "device": "CPU (x86_64, 16 cores)",
       "date": "2026-11-24T10:00:00+00:00", ...optional keys...},
      ...
    ]

Required keys (:data:`TIMING_KEYS`):

* ``label`` (str): the curve the record belongs to; records with the same label form one series.
* ``steps`` (int >= 1): diffusion (DDIM) steps.
* ``ms_per_jet`` (number > 0): wall time of sampling divided by the number of jets, in milliseconds.
* ``num_particles`` (int >= 1): particle slots per jet (30 or 150 for JetNet).
* ``batch_size`` (int >= 1): jets per sampler call.
* ``device`` (str): where it ran, e.g. ``"CPU (x86_64, 16 cores)"`` or ``"GPU (NVIDIA H200)"``.
* ``date`` (str): ISO 8601 time of the measurement.

Optional keys writers add (readers ignore what they do not know): ``num_jets``, ``seconds``, ``run``,
``source`` (the program that wrote it), ``measured`` (false for a time extrapolated from other step
counts), ``includes_tracing`` (true if the time includes compiling the sampler graphs).
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from gsgm.utils.atomic import write_json_atomic
from gsgm.utils.provenance import now_iso

__all__ = [
    "TIMING_FILE_NAME",
    "TIMING_KEYS",
    "append_timing_records",
    "describe_device",
    "read_timing_records",
    "timing_record",
    "validate_timing_record",
]

TIMING_FILE_NAME = "timing.json"
TIMING_KEYS: tuple[str, ...] = (
    "label",
    "steps",
    "ms_per_jet",
    "num_particles",
    "batch_size",
    "device",
    "date",
)


def describe_device() -> str:
    """The accelerator TensorFlow sees, else the CPU: ``"GPU (NVIDIA H200)"``, ``"CPU (x86_64, 2 cores)"``."""
    import tensorflow as tf  # lazily: readers of timing files need no TensorFlow

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        return f"GPU ({name}{f' x {len(gpus)}' if len(gpus) > 1 else ''})"
    # The cores this process may use (a batch job is often pinned to fewer than the machine has).
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU ({platform.processor() or platform.machine()}, {cores} cores)"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_timing_record(record: Any, where: str) -> dict[str, Any]:
    """Check one record (see the module docstring); ``where`` starts the one-line error message.

    Raises:
        ValueError: ``"<where>: missing key 'device'"``, ``"<where>: key 'steps' must be ..., got 0"``.
    """
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object with keys {', '.join(TIMING_KEYS)}, got {record!r}")
    for key in TIMING_KEYS:
        if key not in record:
            raise ValueError(f"{where}: missing key {key!r}")
    checks = {
        "label": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
        "steps": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
        "ms_per_jet": (
            lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0,
            "a positive number",
        ),
        "num_particles": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
        "batch_size": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
        "device": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
        "date": (lambda v: isinstance(v, str) and _is_iso(v), "an ISO 8601 date"),
    }
    for key, (ok, expected) in checks.items():
        if not ok(record[key]):
            raise ValueError(f"{where}: key {key!r} must be {expected}, got {record[key]!r}")
    return record


def _is_iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def timing_record(
    label: str,
    steps: int,
    seconds: float,
    num_jets: int,
    num_particles: int,
    batch_size: int,
    device: str | None = None,
    date: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A validated record for ``num_jets`` jets sampled in ``seconds`` [s] of wall time.

    ``device`` defaults to :func:`describe_device`, ``date`` to now (UTC); ``extra`` keys are kept
    (e.g. ``run``, ``source``, ``measured``).
    """
    if num_jets < 1:
        raise ValueError(f"num_jets must be positive, got {num_jets}")
    record = {
        "label": label,
        "steps": int(steps),
        "ms_per_jet": 1e3 * float(seconds) / num_jets,
        "num_particles": int(num_particles),
        "batch_size": int(batch_size),
        "device": device if device is not None else describe_device(),
        "date": date if date is not None else now_iso(),
        "num_jets": int(num_jets),
        "seconds": float(seconds),
        **extra,
    }
    return validate_timing_record(record, f"timing record {label!r}")


def read_timing_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read and validate a timing file: the list of records (see the module docstring).

    Raises:
        FileNotFoundError: no such file.
        ValueError: one line naming the file, the record and the key, e.g.
            ``"runs/a/timing.json record 1: key 'steps' must be a positive integer, got 0"``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"timing file not found: {path}")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(payload, list):
        raise ValueError(
            f"{path}: expected a JSON list of timing records (keys {', '.join(TIMING_KEYS)}), "
            f"got a {type(payload).__name__}"
        )
    if not payload:
        raise ValueError(f"{path}: no timing records")
    return [validate_timing_record(item, f"{path} record {index}") for index, item in enumerate(payload)]


def append_timing_records(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    """Append records to the timing file at ``path`` (created if missing), atomically.

    The existing file is validated first, so a malformed file is reported rather than overwritten.
    Two processes appending to the same file at the same moment can lose one record (read, append,
    rename); give concurrent jobs their own files and merge them when plotting.
    """
    path = Path(path)
    existing = read_timing_records(path) if path.exists() else []
    new = [validate_timing_record(dict(r), f"new timing record {i}") for i, r in enumerate(records)]
    write_json_atomic(path, existing + new)
    return path
