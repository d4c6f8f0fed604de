"""Metrics of generated jet images (paper sections IV and V.A), as plain functions of numpy arrays.

* :func:`frechet_distance` of image features (the report uses the embedding of gsgm's own jet-image
  classifier, :mod:`gsgm.evaluation.image_classifier`, and calls it **FD**, not FID).
* :func:`pixel_wasserstein`: 1-D Wasserstein distance between the distributions of all pixel
  intensities (pt_rel units, empty pixels included).
* :func:`diversity_index`: mean over pixels of the per-pixel variance across images (pt_rel^2). The
  paper reads a higher DI as better; the report puts the truth DI beside it, and closer is better.
* :func:`mass_ks_test`: two-sample Kolmogorov-Smirnov test of m/pT reconstructed from the images
  (Alg. 4, :func:`image_mass_over_pt`).
* :func:`welch_test` and :func:`bootstrap_ci` over N independent runs (paper V.A).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import linalg, stats

from gsgm.data.images import MAX_R, images_to_particles, mass_over_pt

__all__ = [
    "bootstrap_ci",
    "diversity_index",
    "frechet_distance",
    "image_mass_over_pt",
    "mass_ks_test",
    "pixel_wasserstein",
    "welch_test",
]


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (paper eq. 5).

    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``. The matrix square root is scipy's; if it
    comes out singular or complex beyond round-off, both covariances get ``1e-6`` on the diagonal
    (the usual FID fix). Like every FD, it is biased upwards for finite samples: compare numbers at
    the same sample size, and against the truth-vs-truth value of the report.

    Args:
        features_a, features_b: ``[M, D]`` and ``[K, D]``, M, K >= 2.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need feature arrays [M, D] and [K, D] with M, K >= 2, got {a.shape}, {b.shape}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        # Singular covariances are normal here (ReLU features that are always 0); the result is
        # checked below instead.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all() or np.abs(np.imag(covmean)).max(initial=0) > 1e-3:
            offset = 1e-6 * np.eye(cov_a.shape[0])
            covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))


def pixel_wasserstein(images_a: np.ndarray, images_b: np.ndarray) -> float:
    """1-D Wasserstein distance between the pixel-intensity distributions of two image sets."""
    return float(stats.wasserstein_distance(np.ravel(images_a), np.ravel(images_b)))


def diversity_index(images: np.ndarray) -> float:
    """Diversity Index (paper eq. 7): mean over pixels of the variance of that pixel across images."""
    images = np.asarray(images, np.float64)
    return float(images.reshape(images.shape[0], -1).var(axis=0).mean())


def image_mass_over_pt(images: np.ndarray, max_r: float = MAX_R) -> np.ndarray:
    """m/pT of each image's reconstructed jet (Alg. 4 particles, :func:`gsgm.data.images.mass_over_pt`).

    NaN for empty images."""
    return mass_over_pt(images_to_particles(images, max_r=max_r))


def mass_ks_test(images_a: np.ndarray, images_b: np.ndarray, max_r: float = MAX_R) -> dict[str, float]:
    """Two-sample KS test of m/pT between two image sets (empty images are left out and counted).

    Returns:
        ``{"statistic": D, "p_value": p, "empty_a": n, "empty_b": n}``.
    """
    mass_a, mass_b = image_mass_over_pt(images_a, max_r), image_mass_over_pt(images_b, max_r)
    ok_a, ok_b = np.isfinite(mass_a), np.isfinite(mass_b)
    if ok_a.sum() == 0 or ok_b.sum() == 0:
        return {
            "statistic": 1.0,
            "p_value": 0.0,
            "empty_a": int((~ok_a).sum()),
            "empty_b": int((~ok_b).sum()),
        }
    result = stats.ks_2samp(mass_a[ok_a], mass_b[ok_b])
    return {
        "statistic": float(result.statistic),
        "p_value": float(result.pvalue),
        "empty_a": int((~ok_a).sum()),
        "empty_b": int((~ok_b).sum()),
    }


def welch_test(values_a: Sequence[float], values_b: Sequence[float]) -> dict[str, float]:
    """Welch's two-sided t-test of equal means (paper V.A): ``{"t", "dof", "p_value"}``; NaN if N < 2."""
    a, b = np.asarray(values_a, np.float64), np.asarray(values_b, np.float64)
    if len(a) < 2 or len(b) < 2:
        return {"t": float("nan"), "dof": float("nan"), "p_value": float("nan")}
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        same = bool(a.mean() == b.mean())
        return {"t": 0.0 if same else float("inf"), "dof": float("nan"), "p_value": 1.0 if same else 0.0}
    result = stats.ttest_ind(a, b, equal_var=False)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return {"t": float(result.statistic), "dof": float(dof), "p_value": float(result.pvalue)}


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (paper V.A: 10,000 resamples)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)
