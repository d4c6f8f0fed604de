"""Metrics of generated 3-particle phase-space events against truth (phase-space paper, section III).

For every model (and for a second truth sample: the truth-vs-truth floor) against the reference truth:

* W1 of the Dalitz-plane log-density log p(E1, E2) under the true law (Fig. 2), events outside the
  law's support (e.g. below the q qbar g cut) left out and counted;
* W1 of the energies E1, E2, E3 (Fig. 3, 8) and of the Rosenblatt variables u1, u2 (eq. 16, Fig. 4);
* W1 of the angles: cos(theta) and phi of each particle, cos(theta) of the event-plane normal (Fig. 5, 9);
* W1 of y = min 2 p_i.p_j (eq. 18; Fig. 10 compares its histogram with eq. 19, see the plots);
* conservation violation (Fig. 14, Table 1): |sum p_vec| and |sum E - 1| (max, mean, median) and the
  mass-shell violation |E^2 - p^2| / E^2.

Arrays in, numbers out; events are [n, 3, 4] (E, px, py, pz) with total energy 1. The N = 10
antenna (process "antenna") has its own observables (:mod:`gsgm.evaluation.phase_space_antenna`)
in the same report layout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance

from gsgm.data.phase_space_analytic import dalitz_law, min_invariant
from gsgm.evaluation.phase_space_antenna import (
    ANTENNA_METRICS,
    antenna_observables,
    antenna_report_fields,
    outside_cut,
)
from gsgm.utils.atomic import write_json_atomic, write_text_atomic

__all__ = [
    "METRICS",
    "conservation",
    "evaluate_phase_space",
    "format_markdown",
    "observables",
    "write_report",
]

#: metric keys, in table order
METRICS: tuple[str, ...] = (
    "log_density", "E1", "E2", "E3", "u1", "u2", "y",
    "cos_theta_1", "cos_theta_2", "cos_theta_3", "phi_3", "cos_theta_plane",
)  # fmt: skip


def observables(events: np.ndarray, law) -> dict[str, np.ndarray]:
    """Per-event observables of events [n, 3, 4] under the Dalitz law ``law``; NaN where undefined."""
    e = events[..., 0]
    inside = law.inside(np.concatenate([e[:, :2], 1.0 - e[:, :1] - e[:, 1:2]], -1))
    out: dict[str, np.ndarray] = {f"E{i + 1}": e[:, i] for i in range(3)}
    density = law.density(e)
    out["log_density"] = np.where(inside & (density > 0), np.log(np.where(density > 0, density, 1.0)), np.nan)
    u = law.rosenblatt(e)
    out["u1"], out["u2"] = np.where(inside, u[:, 0], np.nan), np.where(inside, u[:, 1], np.nan)
    out["y"] = min_invariant(events)
    three = events[..., 1:]
    norm = np.linalg.norm(three, axis=-1)
    for i in range(3):
        out[f"cos_theta_{i + 1}"] = three[:, i, 2] / norm[:, i]
    out["phi_3"] = np.arctan2(three[:, 2, 1], three[:, 2, 0])
    normal = np.cross(three[:, 0], three[:, 1])
    out["cos_theta_plane"] = normal[:, 2] / np.linalg.norm(normal, axis=-1)
    return out


def conservation(events: np.ndarray) -> dict[str, float]:
    """Energy-momentum violation of events [n, N, 4] (total (1, 0, 0, 0)): max, mean and median."""
    momentum = np.linalg.norm(events[..., 1:].sum(axis=1), axis=-1)
    energy = np.abs(events[..., 0].sum(axis=1) - 1.0)
    shell = np.abs(events[..., 0] ** 2 - np.sum(events[..., 1:] ** 2, -1)) / events[..., 0] ** 2
    return {
        "momentum_max": float(momentum.max()),
        "momentum_mean": float(momentum.mean()),
        "momentum_median": float(np.median(momentum)),
        "energy_max": float(energy.max()),
        "energy_mean": float(energy.mean()),
        "mass_shell_max": float(shell.max()),
    }


def _w1(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    return float(wasserstein_distance(a, b)) if len(a) and len(b) else float("nan")


def _compare(
    sample: dict[str, np.ndarray], reference: dict[str, np.ndarray], keys: tuple[str, ...] = METRICS
) -> dict[str, float]:
    return {key: _w1(sample[key], reference[key]) for key in keys}


def evaluate_phase_space(
    truth: np.ndarray,
    models: dict[str, np.ndarray],
    process: str,
    *,
    y_min: float = 0.0,
    xi_max: float = 1000.0,
    max_events: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The report (a JSON-able dict) of ``models`` (label -> events [n, N, 4]) against ``truth``.

    The truth is shuffled (``seed``) and halved: the first half is the reference every sample is
    compared with, the second half gives the floor. Every sample is cut to the same size n (the
    smallest of the models, the second half and ``max_events``), so the W1s compare like with like.
    """
    antenna = process == "antenna"
    law = None if antenna else dalitz_law(process, y_min if process == "qqg" else 0.0)
    order = np.random.default_rng(seed).permutation(len(truth))
    half = len(truth) // 2
    if half < 2:
        raise ValueError(f"need at least 4 truth events, got {len(truth)}")
    reference, second = truth[order[:half]], truth[order[half:]]
    n = min([len(second), *(len(m) for m in models.values())] + ([max_events] if max_events else []))
    keys = ANTENNA_METRICS if antenna else METRICS
    ref_obs = antenna_observables(reference) if antenna else observables(reference, law)
    samples = {"truth (floor)": second[:n], **{label: ev[:n] for label, ev in models.items()}}
    report: dict[str, Any] = {
        "process": process,
        "y_min": y_min if process == "qqg" else None,
        "num_events": int(n),
        "num_reference": int(half),
        "metrics": {},
        "outside_support": {},
        "conservation": {},
        **(antenna_report_fields(xi_max) if antenna else {}),
    }
    for label, events in samples.items():
        if antenna:
            report["metrics"][label] = _compare(antenna_observables(events), ref_obs, keys)
            report["outside_support"][label] = outside_cut(events, xi_max)
        else:
            obs = observables(events, law)
            report["metrics"][label] = _compare(obs, ref_obs)
            report["outside_support"][label] = float(np.mean(~np.isfinite(obs["log_density"])))
        report["conservation"][label] = conservation(events)
    return report


def format_markdown(report: dict[str, Any]) -> str:
    """The report as two Markdown tables (W1 per metric; conservation violation)."""
    labels = list(report["metrics"])
    cut = f", y_min = {report['y_min']}" if report.get("y_min") else ""
    cut += f", xi_max = {report['xi_max']:g}" if report.get("xi_max") else ""
    lines = [
        f"# Phase-space evaluation: {report['process']}{cut}",
        "",
        f"W1 distances to {report['num_reference']} reference truth events, {report['num_events']} events "
        "per sample; 'truth (floor)' is a second, disjoint truth sample.",
        "",
        "| metric | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for key in report.get("metric_keys", METRICS):
        lines.append(
            f"| W1 {key} | " + " | ".join(f"{report['metrics'][lb][key]:.4g}" for lb in labels) + " |"
        )
    lines.append(
        "| outside support | " + " | ".join(f"{report['outside_support'][lb]:.4f}" for lb in labels) + " |"
    )
    lines += ["", "Conservation violation (|sum p|, |sum E - 1|, |E^2 - p^2| / E^2):", ""]
    keys = list(next(iter(report["conservation"].values())))
    lines += ["| sample | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for lb, row in report["conservation"].items():
        lines.append(f"| {lb} | " + " | ".join(f"{row[k]:.3g}" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: str | os.PathLike) -> tuple[Path, Path]:
    """OUT/metrics.json and OUT/metrics.md (each written atomically)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "metrics.json", out / "metrics.md"
    write_json_atomic(json_path, json.loads(json.dumps(report)))
    write_text_atomic(md_path, format_markdown(report))
    return json_path, md_path
