"""Training curves (a run's history.csv) and generation time vs number of steps (paper Table V).

Timing results file (JSON), one series or a list of series::

    {"label": "FPCD, 30 particles, CPU", "steps": [1, 8, 64, 512], "ms_per_jet": [0.1, 0.4, 3.0, 24.0]}
    [{"label": ..., "steps": [...], "ms_per_jet": [...]}, ...]

``steps`` are DDIM steps (positive integers), ``ms_per_jet`` the wall time per generated jet in
milliseconds (same length). Optional keys are ignored, so a benchmark may add its machine and date.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from gsgm.plotting.style import model_color, style_context

TIMING_KEYS: tuple[str, ...] = ("label", "steps", "ms_per_jet")


def plot_training_history(rows: Sequence[Mapping[str, float]], title: str = "") -> Figure:
    """Losses per epoch (training solid, validation dashed) and the learning rate.

    Args:
        rows: RunDirectory.read_history() rows: dicts with "epoch", "loss", "val_loss", ... and
            optionally "learning_rate". Loss columns are those whose name contains "loss".
    """
    if not rows:
        raise ValueError("the training history is empty (no epoch has finished)")
    columns = list(rows[0].keys())
    epochs = np.array([row.get("epoch", index) for index, row in enumerate(rows)], dtype=np.float64)
    losses = [c for c in columns if "loss" in c and not c.startswith("val_")]
    has_lr = "learning_rate" in columns
    with style_context():
        figure = Figure(figsize=(7.5, 7.5 if has_lr else 5.5), layout="constrained")
        axes = figure.subplots(
            2 if has_lr else 1, 1, sharex=True, squeeze=False, height_ratios=(3, 1) if has_lr else None
        )[:, 0]
        for index, column in enumerate(losses):
            color = model_color(index)
            axes[0].plot(epochs, [row[column] for row in rows], color=color, label=column)
            if f"val_{column}" in columns:
                values = [row[f"val_{column}"] for row in rows]
                axes[0].plot(epochs, values, color=color, ls="--", label=f"val_{column}")
        axes[0].set_ylabel("Loss")
        axes[0].legend(frameon=False, ncols=2, fontsize=10)
        if has_lr:
            axes[1].plot(epochs, [row["learning_rate"] for row in rows], color="0.3")
            axes[1].set_ylabel("Learning rate")
        axes[-1].set_xlabel("Epoch")
        if title:
            figure.suptitle(title, fontsize=14)
    return figure


def load_timing_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read and validate a timing results file (see the module docstring); return a list of series."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"timing results not found: {path}")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    series = payload if isinstance(payload, list) else [payload]
    if not series:
        raise ValueError(f"{path}: no timing series")
    for index, item in enumerate(series):
        where = f"{path} series {index}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object with keys {', '.join(TIMING_KEYS)}")
        missing = [k for k in TIMING_KEYS if k not in item]
        if missing:
            raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
        steps, times = item["steps"], item["ms_per_jet"]
        if (
            not isinstance(steps, list)
            or not isinstance(times, list)
            or len(steps) != len(times)
            or not steps
        ):
            raise ValueError(f"{where}: 'steps' and 'ms_per_jet' must be non-empty lists of equal length")
        if any(not isinstance(s, int) or s < 1 for s in steps):
            raise ValueError(f"{where}: 'steps' must be positive integers, got {steps}")
        if any(not isinstance(t, int | float) or not t > 0 for t in times):
            raise ValueError(f"{where}: 'ms_per_jet' must be positive numbers, got {times}")
    return series


def plot_generation_time(series: Sequence[Mapping[str, Any]]) -> Figure:
    """Generation time per jet [ms] vs DDIM steps, log-log, one line per series."""
    with style_context():
        figure = Figure(figsize=(7, 5.5), layout="constrained")
        ax = figure.subplots()
        for index, item in enumerate(series):
            order = np.argsort(item["steps"])
            steps = np.asarray(item["steps"])[order]
            times = np.asarray(item["ms_per_jet"], dtype=np.float64)[order]
            ax.plot(steps, times, "o-", color=model_color(index), label=str(item["label"]))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Diffusion steps")
        ax.set_ylabel("Generation time per jet [ms]")
        ax.legend(frameon=False)
    return figure
