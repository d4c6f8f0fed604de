"""The jet-image evaluation report: every metric for truth and N runs per model, as JSON and Markdown.

:func:`evaluate` combines the metrics of :mod:`gsgm.evaluation.image_metrics` (FD in the embedding of
:mod:`gsgm.evaluation.image_classifier`, pixel WD, DI, m/pT KS per class with a Bonferroni correction,
bootstrap CIs, and Welch's test for two models) into a report; :func:`write_report` writes
``metrics.json`` and ``metrics.md`` atomically. The command line is ``scripts/evaluate_images.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gsgm.data.images import MAX_R
from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.evaluation.image_classifier import classifier_embeddings, load_image_classifier
from gsgm.evaluation.image_metrics import (
    bootstrap_ci,
    diversity_index,
    frechet_distance,
    mass_ks_test,
    pixel_wasserstein,
    welch_test,
)
from gsgm.utils.atomic import write_json_atomic, write_text_atomic

__all__ = ["ALPHA", "FD_NAME", "evaluate", "report_markdown", "write_report"]

FD_NAME = "FD (jet-image classifier embedding)"
#: Significance levels of paper V.A: Welch's test at 0.05; KS at 0.05 / 5 classes (Bonferroni).
ALPHA = 0.05


def _summary(values: Sequence[float], seed: int = 0) -> dict[str, Any]:
    values = [float(v) for v in values]
    lo, hi = bootstrap_ci(values, seed=seed)
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "ci95": [lo, hi],
        "n": len(values),
        "values": values,
    }


def _per_class(images: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> dict[str, np.ndarray]:
    return {c: images[labels == JET_CLASSES.index(c)] for c in classes}


def evaluate(
    truth: tuple[np.ndarray, np.ndarray],
    samples: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    classifier=None,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    max_r: float = MAX_R,
    sources: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """All metrics of the report for truth images and one or more models with N runs each.

    Args:
        truth: (images ``[M, N, N]``, labels ``[M]``) the generated images are compared with.
        samples: ``{model name: [(images, labels) of run 1, of run 2, ...]}``.
        classifier: for the FD (default: :func:`load_image_classifier` with the shipped weights).
        reference: a second truth sample (e.g. the valid split); its metrics against ``truth`` are the
            floor that finite-sample noise alone gives.
        sources: ``{model name: [file of run 1, ...]}``, recorded in the report.

    Returns:
        A JSON-serialisable dict (see :func:`write_report` for its layout).
    """
    classifier = load_image_classifier() if classifier is None else classifier
    truth_images, truth_labels = np.asarray(truth[0], np.float32), np.asarray(truth[1])
    classes = [c for c in JET_CLASSES if (truth_labels == JET_CLASSES.index(c)).any()]
    truth_by_class = _per_class(truth_images, truth_labels, classes)
    truth_features = classifier_embeddings(classifier, truth_images)
    truth_features_by_class = {c: truth_features[truth_labels == JET_CLASSES.index(c)] for c in classes}

    def run_metrics(images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        images = np.asarray(images, np.float32)
        labels = np.asarray(labels)
        features = classifier_embeddings(classifier, images)
        by_class = _per_class(images, labels, classes)
        fd = {"all": frechet_distance(features, truth_features)}
        wd = {"all": pixel_wasserstein(images, truth_images)}
        di = {"all": diversity_index(images)}
        ks = {}
        for c in classes:
            if len(by_class[c]) < 2:
                continue
            fd[c] = frechet_distance(features[labels == JET_CLASSES.index(c)], truth_features_by_class[c])
            wd[c] = pixel_wasserstein(by_class[c], truth_by_class[c])
            di[c] = diversity_index(by_class[c])
            ks[c] = mass_ks_test(by_class[c], truth_by_class[c], max_r)
        predicted = np.argmax(np.asarray(classifier(images, training=False)), axis=1)
        return {
            "num_images": int(len(labels)),
            "fd": fd,
            "wd": wd,
            "di": di,
            "mass_ks": ks,
            "classifier_agreement": float((predicted == labels).mean()),
            "mean_nonzero_pixels": float((images > 0).sum(axis=(1, 2)).mean()),
        }

    report: dict[str, Any] = {
        "metric_names": {
            "fd": FD_NAME,
            "wd": "Wasserstein distance of pixel intensities (pt_rel)",
            "di": "Diversity Index (mean per-pixel variance, pt_rel^2)",
        },
        "truth": {
            "num_images": int(len(truth_labels)),
            "classes": classes,
            "di": {
                "all": diversity_index(truth_images),
                **{c: diversity_index(v) for c, v in truth_by_class.items()},
            },
            "mean_nonzero_pixels": float((truth_images > 0).sum(axis=(1, 2)).mean()),
        },
        "models": {},
        "alpha": ALPHA,
        "ks_alpha_bonferroni": ALPHA / len(classes),
    }
    if reference is not None:
        report["truth_reference"] = run_metrics(*reference)
    for name, runs in samples.items():
        per_run = [run_metrics(images, labels) for images, labels in runs]
        summary = {
            f"{metric}_{key}": _summary([r[metric][key] for r in per_run if key in r[metric]], seed)
            for metric in ("fd", "wd", "di")
            for key in ["all", *classes]
        }
        pooled_images = np.concatenate([np.asarray(images) for images, _ in runs])
        pooled_labels = np.concatenate([np.asarray(labels) for _, labels in runs])
        pooled = _per_class(pooled_images, pooled_labels, classes)
        ks = {}
        for c in classes:
            if len(pooled[c]) < 2:
                continue
            result = mass_ks_test(pooled[c], truth_by_class[c], max_r)
            result["p_bonferroni"] = min(1.0, result["p_value"] * len(classes))
            result["differs"] = bool(result["p_value"] < ALPHA / len(classes))
            ks[c] = result
        report["models"][name] = {
            "sources": list(sources.get(name, [])) if sources else [],
            "runs": per_run,
            "summary": summary,
            "mass_ks_pooled": ks,
        }
    names = list(samples)
    if len(names) == 2:
        a, b = (report["models"][n]["summary"] for n in names)
        report["welch"] = {
            "models": names,
            **{
                key: {**welch_test(a[key]["values"], b[key]["values"]), "significant": None}
                for key in ("fd_all", "wd_all", "di_all")
            },
        }
        for key in ("fd_all", "wd_all", "di_all"):
            p = report["welch"][key]["p_value"]
            report["welch"][key]["significant"] = bool(p < ALPHA) if np.isfinite(p) else None
    return report


def _fmt(x: float) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def report_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown tables (what ``metrics.md`` holds)."""
    classes = report["truth"]["classes"]
    lines = [
        "# Jet-image evaluation",
        "",
        f"Truth: {report['truth']['num_images']} images ({', '.join(classes)}); "
        f"{report['truth']['mean_nonzero_pixels']:.1f} non-zero pixels per image. "
        f"FD = {FD_NAME}: a Fréchet distance in the embedding of gsgm's own jet-image classifier, "
        "not comparable with Inception-based numbers.",
        "",
    ]
    info = report.get("classifier")
    if info:
        lines += [f"Classifier: {info.get('weights')}, test accuracy {_fmt(info.get('test_accuracy'))}.", ""]
    lines += [
        "## Summary over runs (mean ± std, bootstrap 95 % CI of the mean)",
        "",
        "| model | runs | FD ↓ | FD 95 % CI | WD ↓ | WD 95 % CI | DI (truth "
        f"{_fmt(report['truth']['di']['all'])}) | DI 95 % CI | non-zero px |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ref = report.get("truth_reference")
    if ref:
        lines.append(
            f"| truth (reference split) | 1 | {_fmt(ref['fd']['all'])} | | {_fmt(ref['wd']['all'])} | | "
            f"{_fmt(ref['di']['all'])} | | {ref['mean_nonzero_pixels']:.1f} |"
        )
    for name, model in report["models"].items():
        s = model["summary"]
        cells = []
        for key in ("fd_all", "wd_all", "di_all"):
            lo, hi = s[key]["ci95"]
            cells += [f"{_fmt(s[key]['mean'])} ± {_fmt(s[key]['std'])}", f"[{_fmt(lo)}, {_fmt(hi)}]"]
        nonzero = np.mean([r["mean_nonzero_pixels"] for r in model["runs"]])
        lines.append(f"| {name} | {s['fd_all']['n']} | " + " | ".join(cells) + f" | {nonzero:.1f} |")
    if "welch" in report:
        w = report["welch"]
        lines += [
            "",
            f"## Welch's t-test, {w['models'][0]} vs {w['models'][1]} (two-sided, alpha = {report['alpha']})",
            "",
            "| metric | t | dof | p | significant |",
            "|---|---|---|---|---|",
        ]
        for key, label in (("fd_all", "FD"), ("wd_all", "WD"), ("di_all", "DI")):
            r = w[key]
            sig = "n/a (N < 2)" if r["significant"] is None else ("yes" if r["significant"] else "no")
            lines.append(f"| {label} | {_fmt(r['t'])} | {_fmt(r['dof'])} | {_fmt(r['p_value'])} | {sig} |")
    lines += ["", "## Per class (mean over runs)", "", "| model | metric | " + " | ".join(classes) + " |"]
    lines.append("|---|---|" + "---|" * len(classes))
    if ref:
        for metric in ("fd", "wd"):
            lines.append(
                f"| truth (reference) | {metric.upper()} | "
                + " | ".join(_fmt(ref[metric].get(c, float("nan"))) for c in classes)
                + " |"
            )
    lines.append("| truth | DI | " + " | ".join(_fmt(report["truth"]["di"][c]) for c in classes) + " |")
    for name, model in report["models"].items():
        for metric in ("fd", "wd", "di"):
            cells = [
                _fmt(model["summary"][f"{metric}_{c}"]["mean"])
                if model["summary"][f"{metric}_{c}"]["n"]
                else "n/a"
                for c in classes
            ]
            lines.append(f"| {name} | {metric.upper()} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"## m/pT: two-sample KS test against truth, runs pooled (significant if p < "
        f"{_fmt(report['ks_alpha_bonferroni'])}, Bonferroni over {len(classes)} classes)",
        "",
        "| model | " + " | ".join(classes) + " |",
        "|---|" + "---|" * len(classes),
    ]
    for name, model in report["models"].items():
        cells = []
        for c in classes:
            r = model["mass_ks_pooled"].get(c)
            cells.append(
                "n/a"
                if r is None
                else f"D={_fmt(r['statistic'])}, p={_fmt(r['p_value'])}{' *' if r['differs'] else ''}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "`*`: the m/pT distribution differs significantly from truth.", ""]
    return "\n".join(lines)


def write_report(report: Mapping[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``metrics.json`` and ``metrics.md`` into ``out_dir`` atomically; returns both paths."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "metrics.json", out_dir / "metrics.md"
    write_json_atomic(json_path, report)
    write_text_atomic(md_path, report_markdown(report))
    return json_path, md_path
