"""Run every metric over a :class:`~gsgm.evaluation.samples.Comparison` and write the report.

``metrics.json`` (format ``gsgm.evaluation``, version 1)::

    {
      "format": "gsgm.evaluation", "version": 1, "created": ISO time, "seconds": wall time,
      "truth": {"dir", "split", "recentred": true}, "num_particles": 30 | 150,
      "models": [{"label", "dir"}, ...],
      "settings": {"jets_per_class" (requested), "bootstrap", "cov_mmd_batches", "cov_mmd_jets", "seed"},
      "metrics": {key: {"label", "table", "scale", "unit", "higher_is_better"}},
      "fpnd": {"available": bool, "reason": str},
      "classes": {
        "g": {"jets_per_sample": n, "truth_jets_in_split": N,
              "floor":  {key: {"mean", "std"[, "available": false, "reason"][, "components"]}},
              "models": {label: {key: {...}}}},
        ...
      },
      "notes": [str, ...], "timing_s": {key: seconds summed over classes and comparisons}
    }

``metrics.md`` lays the same numbers out like the paper's Table I (particle level) and Table II (jet
level): one row per model and class, the truth-vs-truth floor as the first row of each class.
Both files are written atomically.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gsgm.data.jetnet_format import CLASS_NAMES
from gsgm.evaluation.efp_cache import FeatureCache, floor_key
from gsgm.evaluation.jetnet_compat import fpnd_status
from gsgm.evaluation.metrics import (
    METRICS,
    METRICS_BY_KEY,
    EvaluationConfig,
    MetricSpec,
    evaluate_pair,
    metric_stages,
    results_to_dict,
)
from gsgm.evaluation.samples import Comparison
from gsgm.utils.atomic import write_json_atomic, write_text_atomic

REPORT_FORMAT = "gsgm.evaluation"
REPORT_VERSION = 1
FLOOR_LABEL = "truth vs truth (floor)"
JSON_NAME = "metrics.json"
MARKDOWN_NAME = "metrics.md"
# Below this many jets per sample the FPD/KPD floor of the shipped sample varied by 10-100x between
# classes (measured at 150 and 300 jets; stable at 1000).
FPD_MIN_JETS = 1000


def evaluate_comparison(
    comparison: Comparison,
    config: EvaluationConfig,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
    feature_cache_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Compute the floor and every model's metrics for every class; return the ``metrics.json`` payload.

    Args:
        comparison: samples from :func:`gsgm.evaluation.samples.load_comparison`.
        config: resampling and metric selection (``config.jets_per_class`` is only recorded here; the
            sample sizes were fixed when the comparison was loaded).
        log: called with one progress line per comparison (e.g. ``print``).
        progress: a progress bar on stderr with an ETA, one step per class, comparison (floor, each
            model) and metric stage (:func:`~gsgm.evaluation.metrics.metric_stages`). ``log`` lines are
            then written through the bar, so they do not break it.
        feature_cache_dir: where the truth samples' EFPs are kept between evaluations
            (:mod:`gsgm.evaluation.efp_cache`); None computes them in memory only.
    """
    from tqdm import tqdm  # CLI-only dependency, imported lazily

    started = time.perf_counter()
    stages = metric_stages(config.metrics)
    pairs = sum(1 + len(samples.generated) for samples in comparison.classes.values())
    bar = tqdm(
        total=pairs * len(stages), unit="stage", desc="evaluating", file=sys.stderr, disable=not progress
    )
    if log and progress:
        plain_log = log

        def log(line: str) -> None:
            # Clear the bar, print the line, redraw the bar (a plain print would tear the bar apart).
            with tqdm.external_write_mode(file=sys.stderr):
                plain_log(line)

    def tracker(jet_class: str, label: str) -> Callable[[str], None]:
        """The ``on_stage`` callback of one comparison: advance the bar, show what finished."""
        bar.set_postfix_str(f"class {jet_class}, {label}")

        def stage_done(stage: str) -> None:
            bar.set_postfix_str(f"class {jet_class}, {label}: {stage} done")
            bar.update(1)

        return stage_done

    timings: dict[str, float] = {}
    classes: dict[str, Any] = {}
    for jet_class, samples in comparison.classes.items():
        class_start = time.perf_counter()
        # per class: truth half A's EFPs serve the floor and every model (and later runs, from disk)
        cache = FeatureCache(Path(feature_cache_dir) if feature_cache_dir is not None else None)

        def compare(
            label: str, gen, gen_is_truth: bool = False, samples=samples, jet_class=jet_class, cache=cache
        ) -> dict[str, Any]:
            """One comparison; its per-metric times go to ``timings`` and to one log line."""
            pair_timings: dict[str, float] = {}
            results = evaluate_pair(
                samples.truth,
                gen,
                jet_class,
                config,
                cache,
                pair_timings,
                tracker(jet_class, label),
                gen_is_truth=gen_is_truth,
            )
            for key, seconds in pair_timings.items():
                timings[key] = timings.get(key, 0.0) + seconds
            if log:
                spent = ", ".join(f"{key} {seconds:.1f} s" for key, seconds in pair_timings.items())
                log(f"class {jet_class}, {label}: {spent}")
            return results_to_dict(results)

        key = _floor_cache_key(samples, jet_class, config)
        floor = cache.load_floor(key)
        if floor is None:
            floor = compare("floor", samples.truth_floor, gen_is_truth=True)
            cache.store_floor(key, floor)
        else:
            stage_done = tracker(jet_class, "floor (cached)")
            for stage in stages:
                stage_done(stage)
            if log:
                log(f"class {jet_class}, floor: read from the evaluation cache ({cache.directory})")
        models = {label: compare(label, gen) for label, gen in samples.generated.items()}
        classes[jet_class] = {
            "jets_per_sample": samples.n,
            "truth_jets_in_split": samples.truth_available,
            "floor": floor,
            "models": models,
            "seconds": time.perf_counter() - class_start,
        }
        if log:
            log(
                f"class {jet_class}: {samples.n} vs {samples.n} jets, floor + {len(models)} model(s) "
                f"in {time.perf_counter() - class_start:.1f} s"
            )
    bar.close()
    notes = list(comparison.notes)
    smallest = min((samples.n for samples in comparison.classes.values()), default=0)
    if smallest < FPD_MIN_JETS and {"fpd", "kpd"} & set(config.metrics):
        notes.append(
            f"FPD and KPD compare 36 EFPs through their covariance and a polynomial kernel; with fewer than "
            f"{FPD_MIN_JETS} jets per sample (here {smallest}) their floor is large and erratic: read them "
            "against the floor only (jetnet recommends 50,000 jets)."
        )
    available, reason = fpnd_status()
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - started,
        "truth": {
            "dir": comparison.truth_dir,
            "split": comparison.truth_split,
            "recentred": comparison.recentred,
        },
        "num_particles": comparison.num_particles,
        "models": [{"label": label, "dir": path} for label, path in comparison.models],
        "settings": {
            "jets_per_class": config.jets_per_class,
            "bootstrap": config.bootstrap,
            "cov_mmd_batches": config.cov_mmd_batches,
            "cov_mmd_jets": config.cov_mmd_jets,
            "seed": config.seed,
        },
        "metrics": {
            spec.key: {
                "label": spec.label,
                "table": spec.table,
                "scale": spec.scale,
                "unit": spec.unit,
                "higher_is_better": spec.higher_is_better,
            }
            for spec in METRICS
            if spec.key in config.metrics
        },
        "fpnd": {"available": available, "reason": reason},
        "classes": classes,
        "notes": notes,
        "timing_s": timings,
    }


def _floor_cache_key(samples, jet_class: str, config: EvaluationConfig) -> str:
    """What the floor of one class depends on: both truth halves (particles and jets) and the settings."""
    settings = {
        "class": jet_class,
        "bootstrap": config.bootstrap,
        "cov_mmd_batches": config.cov_mmd_batches,
        "cov_mmd_jets": config.cov_mmd_jets,
        "seed": config.seed,
        "metrics": list(config.metrics),
    }
    truth, floor = samples.truth, samples.truth_floor
    return floor_key([truth.particles, truth.jets, floor.particles, floor.jets], settings)


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------


def format_value(mean: float | None, std: float | None, scale: float = 1.0) -> str:
    """``mean ± std`` divided by ``scale``, rounded to the precision of the uncertainty.

    The uncertainty keeps one significant digit, two when it starts with 1 or 2 (so 0.08 and 0.15 stay
    0.08 and 0.15). Without an uncertainty the value gets 3 significant digits; None gives "n/a".
    """
    if mean is None:
        return "n/a"
    value = mean / scale
    if std is None or not math.isfinite(std) or std <= 0:
        return f"{value:.3g}"
    err = std / scale
    exponent = math.floor(math.log10(err))
    leading = int(err / 10**exponent)
    decimals = max(0, -exponent + (1 if leading < 3 else 0))
    return f"{value:.{decimals}f} ± {err:.{decimals}f}"


def _header(spec: MetricSpec) -> str:
    label = spec.label + (" ↑" if spec.higher_is_better else "")
    if spec.unit:
        label += f" [{spec.unit}]"
    if spec.scale != 1.0:
        label += f" (×10^{round(math.log10(spec.scale))})"
    return label


def _cell(entry: Mapping[str, Any] | None, spec: MetricSpec, footnotes: dict[str, int]) -> str:
    if entry is None:
        return "-"
    if entry.get("available", True) is False:
        reason = str(entry.get("reason", "not available"))
        number = footnotes.setdefault(reason, len(footnotes) + 1)
        return f"n/a [{number}]"
    return format_value(entry["mean"], entry["std"], spec.scale)


def _table(report: Mapping[str, Any], table: str, footnotes: dict[str, int]) -> list[str]:
    # Orders come from METRICS and the models list: metrics.json is written with sorted keys.
    specs = [s for s in METRICS if s.key in report["metrics"] and s.table == table]
    labels = [model["label"] for model in report["models"]]
    if not specs:
        return []
    lines = [
        "| Class | Model | " + " | ".join(_header(s) for s in specs) + " |",
        "| --- | --- | " + " | ".join("---" for _ in specs) + " |",
    ]
    for jet_class, entry in report["classes"].items():
        rows = [(FLOOR_LABEL, entry["floor"]), *((label, entry["models"][label]) for label in labels)]
        for index, (label, values) in enumerate(rows):
            name = (
                f"{CLASS_NAMES.get(jet_class, jet_class)} ({entry['jets_per_sample']})" if index == 0 else ""
            )
            cells = [_cell(values.get(s.key), s, footnotes) for s in specs]
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return lines


def format_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: settings, Table I-like and Table II-like tables, footnotes, notes."""
    settings = report["settings"]
    models = ", ".join(f"{m['label']} (`{m['dir']}`)" for m in report["models"])
    truth = report["truth"]
    lines = [
        "# Evaluation",
        "",
        f"- Generated: {models}",
        f"- Truth: `{truth['dir']}`, split `{truth['split']}`; "
        + (
            "both sides recentred (`gsgm.data.preprocessing.recenter_particles`)."
            if truth["recentred"]
            else "**not recentred**."
        ),
        f"- {report['num_particles']} particles; n jets per sample per class in the class column "
        f"(requested {settings['jets_per_class']}); {settings['bootstrap']} bootstrap resamples for the W1s, "
        f"COV/MMD over {settings['cov_mmd_batches']} batches of {settings['cov_mmd_jets']} jets; "
        f"seed {settings['seed']}.",
        f"- **{FLOOR_LABEL}**: the same metrics between two disjoint truth samples of n jets, the value a "
        "perfect generator reaches with this many jets. Values are mean ± std over resamples.",
        "- Lower is better except COV (↑). FPND compares with jetnet's stored JetNet statistics, not "
        "with this truth sample.",
        "",
    ]
    footnotes: dict[str, int] = {}
    particle = _table(report, "particle", footnotes)
    if particle:
        lines += ["## Particle-level metrics (layout of paper Table I)", "", *particle, ""]
    jet = _table(report, "jet", footnotes)
    if jet:
        lines += ["## Jet-level metrics (layout of paper Table II)", "", *jet, ""]
    if footnotes:
        lines += [f"[{number}] {reason}  " for reason, number in footnotes.items()]
        lines.append("")
    if report.get("notes"):
        lines += ["Notes:", "", *(f"- {note}" for note in report["notes"]), ""]
    lines.append(f"Evaluation time: {report['seconds']:.0f} s.")
    return "\n".join(lines) + "\n"


def write_report(report: Mapping[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``metrics.json`` and ``metrics.md`` into ``out_dir`` (each atomically); return their paths."""
    out = Path(out_dir)
    json_path, md_path = out / JSON_NAME, out / MARKDOWN_NAME
    write_json_atomic(json_path, report)
    write_text_atomic(md_path, format_markdown(report))
    return json_path, md_path


# --------------------------------------------------------------------------------------------------
# Model / floor ratios (the reference recipe's table)
# --------------------------------------------------------------------------------------------------

#: the Wasserstein-1 metrics a fidelity target applies to (particle- and jet-level)
W1_KEYS: tuple[str, ...] = ("w1m", "w1p", "w1efp", "w1_jet_pt", "w1_jet_eta", "w1_jet_mass", "w1_jet_n")


def floor_ratios(report: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float | None]]]:
    """model label -> class -> metric key -> model mean / floor mean (None where either is missing).

    For COV (higher is better) the ratio is floor / model, so that for every metric a ratio above 1 says
    by how much the model is worse than a perfect generator with this many jets.
    """
    ratios: dict[str, dict[str, dict[str, float | None]]] = {}
    for model in report["models"]:
        label = model["label"]
        ratios[label] = {}
        for jet_class, entry in report["classes"].items():
            row: dict[str, float | None] = {}
            for key in report["metrics"]:
                floor = entry["floor"].get(key) or {}
                value = entry["models"][label].get(key) or {}
                floor_mean, model_mean = floor.get("mean"), value.get("mean")
                if floor_mean is None or model_mean is None:
                    row[key] = None
                    continue
                numerator, denominator = (
                    (floor_mean, model_mean)
                    if METRICS_BY_KEY[key].higher_is_better
                    else (model_mean, floor_mean)
                )
                row[key] = numerator / denominator if denominator > 0 else None
            ratios[label][jet_class] = row
    return ratios


def format_ratio_table(report: Mapping[str, Any], targets: Mapping[str, float] | None = None) -> list[str]:
    """Markdown: per model, one row per class and one column per metric, ``model / floor (ratio x)``.

    Args:
        report: a ``metrics.json`` payload (:func:`evaluate_comparison`).
        targets: model label -> the largest ratio its W1 metrics (:data:`W1_KEYS`) may have; a cell over
            its target is marked with "**", and a line per model counts the W1 cells within target and
            names the worst.

    Returns:
        the lines of the tables (no trailing newline).
    """
    targets = dict(targets or {})
    ratios = floor_ratios(report)
    specs = [s for s in METRICS if s.key in report["metrics"]]
    lines: list[str] = []
    for model in report["models"]:
        label = model["label"]
        target = targets.get(label)
        heading = f"### {label}: model / floor (ratio)"
        if target is not None:
            heading += f"; target for every W1: ratio <= {target:g} (bold: over it)"
        lines += [heading, "", "| Class (n) | " + " | ".join(_header(s) for s in specs) + " |",
                  "| --- | " + " | ".join("---" for _ in specs) + " |"]  # fmt: skip
        within, total, worst = 0, 0, (0.0, "", "")
        for jet_class, entry in report["classes"].items():
            cells = []
            for spec in specs:
                floor = entry["floor"].get(spec.key) or {}
                value = entry["models"][label].get(spec.key) or {}
                ratio = ratios[label][jet_class][spec.key]
                if ratio is None:
                    cells.append("n/a")
                    continue
                cell = f"{value['mean'] / spec.scale:.3g} / {floor['mean'] / spec.scale:.3g} ({ratio:.2f}x)"
                if target is not None and spec.key in W1_KEYS:
                    total += 1
                    within += ratio <= target
                    worst = max(worst, (ratio, spec.label, jet_class))
                    if ratio > target:
                        cell = f"**{cell}**"
                cells.append(cell)
            name = f"{CLASS_NAMES.get(jet_class, jet_class)} ({entry['jets_per_sample']})"
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        if target is not None and total:
            lines += ["", f"{label}: {within} of {total} W1 values within {target:g}x of the floor; "
                      f"worst {worst[1]} {worst[2]} at {worst[0]:.2f}x."]  # fmt: skip
        lines.append("")
    return lines[:-1] if lines else lines
