"""Training curves (a run's history.csv) and generation time vs number of steps (paper Table V).

Timing files follow :mod:`gsgm.generation.timing`: a JSON list of records, one per measurement, with
``label``, ``steps``, ``ms_per_jet``, ``num_particles``, ``batch_size``, ``device`` and ``date``
(``scripts/sample.py`` appends one per run to ``OUT/timing.json``; ``benchmarks/bench_distillation.py
speed --json`` writes the same). :func:`load_timing_results` merges several files into one series per
label.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from gsgm.generation.timing import read_timing_records
from gsgm.plotting.style import model_color, style_context


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


def load_timing_results(*paths: str | os.PathLike) -> list[dict[str, Any]]:
    """Read and merge timing files (:mod:`gsgm.generation.timing`) into one series per label.

    Records with the same ``label`` form one series, in the order labels first appear; where a label
    has several records for the same step count, the fastest is kept (timings are noisy upwards:
    other load on the machine only ever adds time).

    Returns:
        [{"label", "steps": [int, ...] ascending, "ms_per_jet": [float, ...], "measured": [bool, ...],
        "devices": [str, ...]}, ...].

    Raises:
        FileNotFoundError, ValueError: a one-line message naming the file, record and key.
    """
    if not paths:
        raise ValueError("no timing file given")
    best: dict[str, dict[int, dict[str, Any]]] = {}
    for path in paths:
        for record in read_timing_records(path):
            points = best.setdefault(record["label"], {})
            known = points.get(record["steps"])
            if known is None or record["ms_per_jet"] < known["ms_per_jet"]:
                points[record["steps"]] = record
    series = []
    for label, points in best.items():
        steps = sorted(points)
        series.append(
            {
                "label": label,
                "steps": steps,
                "ms_per_jet": [float(points[s]["ms_per_jet"]) for s in steps],
                "measured": [bool(points[s].get("measured", True)) for s in steps],
                "devices": sorted({points[s]["device"] for s in steps}),
            }
        )
    return series


def plot_generation_time(series: Sequence[Mapping[str, Any]]) -> Figure:
    """Generation time per jet [ms] vs DDIM steps, log-log, one line per series.

    Args:
        series: from :func:`load_timing_results`: dicts with "label", "steps", "ms_per_jet" (lists of
            equal length) and optionally "measured" (False points are drawn as open markers).
    """
    with style_context():
        figure = Figure(figsize=(7, 5.5), layout="constrained")
        ax = figure.subplots()
        for index, item in enumerate(series):
            order = np.argsort(item["steps"])
            steps = np.asarray(item["steps"])[order]
            times = np.asarray(item["ms_per_jet"], dtype=np.float64)[order]
            color = model_color(index)
            ax.plot(steps, times, "-", color=color, label=str(item["label"]))
            # Filled markers: measured; open markers: extrapolated from other step counts.
            measured = np.asarray(item.get("measured", [True] * len(order)), dtype=bool)[order]
            ax.plot(steps[measured], times[measured], "o", color=color)
            ax.plot(steps[~measured], times[~measured], "o", color=color, markerfacecolor="none")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Diffusion steps")
        ax.set_ylabel("Generation time per jet [ms]")
        ax.legend(frameon=False)
    return figure
