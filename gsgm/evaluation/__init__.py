"""Evaluation of generated jets with the paper's metrics (FPCD section IV, Tables I-IV).

``metrics``: the metrics as functions of numpy arrays (jetnet's implementations; jet-level W1s);
``samples``: loading truth and generated directories into equal-size, recentred per-class samples
with a disjoint truth half for the truth-vs-truth floor; ``report``: running everything and writing
``metrics.json`` / ``metrics.md``. The command line is ``scripts/evaluate.py``.

Jet images (``scripts/evaluate_images.py``): ``image_metrics`` (FD, pixel WD, DI, m/pT KS, Welch,
bootstrap), ``image_classifier`` (the CNN whose embedding the FD uses, its shipped weights and
training), ``image_report`` (the report, its Markdown and files). Generated samples are read through
:mod:`gsgm.generation` (sample-file formats); nothing here imports gsgm.training.

jetnet (and torch) are imported only when a metric is computed, so loading and checking inputs is fast.
"""

from gsgm.evaluation.metrics import (
    METRIC_KEYS,
    METRICS,
    EvaluationConfig,
    MetricSpec,
    MetricValue,
    cov_mmd,
    evaluate_pair,
    fpd,
    fpd_kpd_features,
    fpnd,
    jet_w1,
    kpd,
    metric_stages,
    w1_resampled,
    w1efp,
    w1m,
    w1p,
)
from gsgm.evaluation.report import evaluate_comparison, format_markdown, format_value, write_report
from gsgm.evaluation.samples import ClassComparison, Comparison, load_comparison

__all__ = [
    "METRICS",
    "METRIC_KEYS",
    "ClassComparison",
    "Comparison",
    "EvaluationConfig",
    "MetricSpec",
    "MetricValue",
    "cov_mmd",
    "evaluate_comparison",
    "evaluate_pair",
    "format_markdown",
    "format_value",
    "fpd",
    "fpd_kpd_features",
    "fpnd",
    "jet_w1",
    "kpd",
    "load_comparison",
    "metric_stages",
    "w1_resampled",
    "w1efp",
    "w1m",
    "w1p",
    "write_report",
]
