"""DIS evaluation (ep-scattering paper, section V): observables of Pythia with and without pixelation and
of generated images, W1 distances of the 1D observables with a truth-vs-truth floor.

Every sample is a :class:`~gsgm.data.dis_format.DisEvents`: generated images (and Pythia's own events
imaged the same way, "Pythia with pixelation") become particles at the pixel centres
(:func:`gsgm.data.dis_images.images_to_events`). The model is compared with the pixelated truth, as in
the paper's ratio panels; W1(Pythia vs Pythia pixelated) shows what the pixelation alone costs.

The truth-vs-truth floor: the truth events are split into two disjoint halves A and B of equal size;
W1(model, A) is reported beside W1(B, A) (the distance two independent Pythia samples of that size
have), each on ``n = min(len(model), len(A))`` events. W1 of the z, Q^2 and x distributions is taken
in log10 (they span decades); eta and phi in their units; multiplicities in counts.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance

from gsgm.data.dis_observables import DisComparison, dis_observables
from gsgm.utils.atomic import write_json_atomic, write_text_atomic

__all__ = ["evaluate_dis", "format_dis_markdown", "write_dis_report"]


def _w1(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    return float(wasserstein_distance(a, b))


def evaluate_dis(comparison: DisComparison) -> dict[str, Any]:
    """W1 of every 1D observable: each model vs pixelated truth half A, the floor B vs A, and the
    pixelation effect (raw vs pixelated truth, half A); plus counts of events with sum z > 2."""
    c = comparison
    n_half = len(c.half_a)
    report: dict[str, Any] = {
        "num_pixels": c.num_pixels,
        "truth_events": len(c.truth),
        "half_events": n_half,
        "models": {},
        "floor": {},
        "pixelation": {},
    }
    a = dis_observables(c.truth_pixelated.select(c.half_a))
    a_raw = dis_observables(c.truth.select(c.half_a))
    for name, events in c.models.items():
        n = min(len(events), n_half)
        mine = dis_observables(events.select(slice(0, n)))
        ref = dis_observables(c.truth_pixelated.select(c.half_a[:n]))
        floor = dis_observables(c.truth_pixelated.select(c.half_b[:n]))
        z_sum = events.z().sum(axis=1)
        report["models"][name] = {
            "events": int(len(events)),
            "compared_events": int(n),
            "events_above_sum_rule": int(np.sum(z_sum > 2.0)),
            "w1": {k: _w1(mine[k], ref[k]) for k in ref},
            "floor_w1": {k: _w1(floor[k], ref[k]) for k in ref},
        }
    b = dis_observables(c.truth_pixelated.select(c.half_b))
    report["floor"] = {k: _w1(b[k], a[k]) for k in a}
    report["pixelation"] = {k: _w1(a_raw[k], a[k]) for k in a}
    report["truth_events_above_sum_rule"] = int(np.sum(c.truth.z().sum(axis=1) > 2.0))
    return report


def _fmt(value: float) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def format_dis_markdown(report: Mapping[str, Any]) -> str:
    """The W1 table: one row per observable, per model its W1 and its floor (same number of events)."""
    names = list(report["models"])
    header = ["observable", "pixelation (Pythia vs pixelated)", "floor (full halves)"]
    for name in names:
        header += [f"{name} W1", f"{name} floor"]
    lines = [
        f"# DIS evaluation ({report['num_pixels']} x {report['num_pixels']} pixels)",
        "",
        f"Truth: {report['truth_events']} Pythia events, halves of {report['half_events']}. W1 of z, Q^2 "
        "and x in log10. Models are compared with Pythia *with* pixelation.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for key in report["floor"]:
        row = [key, _fmt(report["pixelation"][key]), _fmt(report["floor"][key])]
        for name in names:
            model = report["models"][name]
            row += [_fmt(model["w1"][key]), _fmt(model["floor_w1"][key])]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for name in names:
        model = report["models"][name]
        lines.append(
            f"- {name}: {model['events']} events ({model['compared_events']} compared), "
            f"{model['events_above_sum_rule']} with sum z > 2"
        )
    lines.append(f"- Pythia: {report['truth_events_above_sum_rule']} events with sum z > 2")
    return "\n".join(lines) + "\n"


def write_dis_report(report: Mapping[str, Any], out: str | os.PathLike) -> tuple[Path, Path]:
    """``OUT/metrics.json`` and ``OUT/metrics.md`` (atomically)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "metrics.json", out / "metrics.md"
    write_json_atomic(json_path, json.loads(json.dumps(report, default=float)))
    write_text_atomic(md_path, format_dis_markdown(report))
    return json_path, md_path
