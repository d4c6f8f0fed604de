"""Evaluation of generated jet images (paper sections IV and V.A).

Metrics are plain functions of numpy arrays:

* :func:`frechet_distance` of image features in the embedding of a small jet-image classifier that
  gsgm trains on truth images (:func:`build_image_classifier`, weights shipped in
  ``gsgm/evaluation/weights/``, retrained with ``scripts/train_image_classifier.py``). The paper
  reports FID with Inception features; Inception weights cannot be downloaded here, and an ImageNet
  network is a poor judge of 25 x 25 jet images anyway, so the number is called
  **FD (jet-image classifier embedding)** and is not comparable with the paper's FID values.
* :func:`pixel_wasserstein`: 1-D Wasserstein distance between the distributions of all pixel
  intensities (pt_rel units, empty pixels included).
* :func:`diversity_index`: mean over pixels of the per-pixel variance across images (pt_rel^2). The
  paper reads a higher DI as better; here the truth DI is reported beside it, and closer is better.
* :func:`mass_ks_test`: two-sample Kolmogorov-Smirnov test of m/pT reconstructed from the images
  (Alg. 4), per class, with a Bonferroni correction over the classes.
* :func:`welch_test` and :func:`bootstrap_ci` over N independent runs (paper V.A).

:func:`evaluate` combines them into a report, :func:`write_report` writes ``metrics.json`` and
``metrics.md`` atomically.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import linalg, stats

from gsgm.data.images import MAX_R, images_to_particles, mass_over_pt
from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.utils.atomic import write_json_atomic, write_text_atomic

__all__ = [
    "CLASSIFIER_WEIGHTS",
    "FD_NAME",
    "bootstrap_ci",
    "build_image_classifier",
    "classifier_embeddings",
    "classifier_info",
    "diversity_index",
    "evaluate",
    "frechet_distance",
    "load_image_classifier",
    "mass_ks_test",
    "pixel_wasserstein",
    "train_image_classifier",
    "welch_test",
    "write_report",
]

FD_NAME = "FD (jet-image classifier embedding)"
CLASSIFIER_WEIGHTS = Path(__file__).resolve().parent / "weights" / "jet_image_classifier.weights.h5"
#: Significance levels of paper V.A: Welch's test at 0.05; KS at 0.05 / 5 classes (Bonferroni).
ALPHA = 0.05


# --- metrics ------------------------------------------------------------------------------------


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


# --- the classifier whose embedding the FD uses ---------------------------------------------------


def build_image_classifier(
    num_pixels: int = 25, num_classes: int = len(JET_CLASSES), embedding_dim: int = 32
):
    """Small CNN jet-image classifier; its ``embedding`` layer (``embedding_dim`` wide) feeds the FD.

    ``[B, N, N]`` or ``[B, N, N, 1]`` pt_rel images -> class logits ``[B, num_classes]``. The first
    layer takes the square root of the intensities, so soft radiation is visible next to the hard
    core. About 90 k parameters (a weights file of ~0.4 MB).
    """
    import keras
    from keras import ops

    inputs = keras.Input((num_pixels, num_pixels), name="images")
    h = keras.layers.Reshape((num_pixels, num_pixels, 1))(inputs)
    h = keras.layers.Activation(lambda x: ops.sqrt(ops.relu(x)), name="sqrt_intensity")(h)
    for i, width in enumerate((16, 32)):
        h = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i}a")(h)
        h = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i}b")(h)
        h = keras.layers.MaxPooling2D(2, name=f"pool{i}")(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(64, activation="relu", name="dense")(h)
    embedding = keras.layers.Dense(embedding_dim, activation="relu", name="embedding")(h)
    logits = keras.layers.Dense(num_classes, name="logits")(embedding)
    return keras.Model(inputs, logits, name="jet_image_classifier")


def load_image_classifier(path: str | os.PathLike = CLASSIFIER_WEIGHTS):
    """The classifier with weights from ``path`` (default: the shipped file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"classifier weights not found: {path}; train them with python scripts/train_image_classifier.py"
        )
    info = classifier_info(path)
    model = build_image_classifier(info.get("num_pixels", 25), embedding_dim=info.get("embedding_dim", 32))
    model.load_weights(path)
    return model


def _info_path(weights: Path) -> Path:
    return weights.with_name(weights.name.replace(".weights.h5", ".json"))


def classifier_info(weights: str | os.PathLike) -> dict[str, Any]:
    """The JSON record written next to classifier weights (empty dict if there is none)."""
    info = _info_path(Path(weights))
    return json.loads(info.read_text()) if info.is_file() else {}


def classifier_embeddings(classifier, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """``[M, D]`` features of the classifier's ``embedding`` layer for ``[M, N, N]`` images."""
    import keras

    images = np.asarray(images, np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    embed = keras.Model(classifier.input, classifier.get_layer("embedding").output)
    return (
        np.concatenate(
            [
                np.asarray(embed(images[i : i + batch_size], training=False))
                for i in range(0, len(images), batch_size)
            ]
        )
        if len(images)
        else np.zeros((0, embed.output.shape[-1]), np.float32)
    )


def train_image_classifier(
    data: str,
    out: str | os.PathLike = CLASSIFIER_WEIGHTS,
    epochs: int = 40,
    patience: int = 8,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
    num_particles: int = 30,
    verbose: int = 0,
) -> dict[str, Any]:
    """Train the classifier on truth images and write weights + a JSON record (accuracy, data hash).

    Training split: jetnet ``train``; early stopping (best weights kept) on ``valid``; the reported
    accuracy is on ``test``. Writes ``out`` (weights, no optimizer state) and ``out`` with
    ``.json`` instead of ``.weights.h5``; returns that record.
    """
    import keras

    from gsgm.data.images import load_jet_images
    from gsgm.utils.provenance import hash_arrays, now_iso, package_versions

    classes = list(JET_CLASSES)
    splits = {s: load_jet_images(data, classes, num_particles, split=s) for s in ("train", "valid", "test")}
    keras.utils.set_random_seed(seed)
    model = build_image_classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        *splits["train"],
        validation_data=splits["valid"],
        epochs=epochs,
        batch_size=batch_size,
        callbacks=[keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)],
        verbose=verbose,
    )
    test_images, test_labels = splits["test"]
    predicted = np.argmax(np.asarray(model.predict(test_images, verbose=0)), axis=1)
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(confusion, (test_labels, predicted), 1)
    # A fresh, uncompiled copy: its weights file carries no optimizer state (small file).
    clean = build_image_classifier()
    clean.set_weights(model.get_weights())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{os.getpid()}.{out.name}")  # Keras insists on the .weights.h5 suffix
    clean.save_weights(tmp)
    os.replace(tmp, out)
    record = {
        "created": now_iso(),
        "data_source": str(data),
        "data_sha256": hash_arrays([splits["train"][0], splits["train"][1]]),
        "num_train": int(len(splits["train"][1])),
        "num_valid": int(len(splits["valid"][1])),
        "num_test": int(len(test_labels)),
        "classes": classes,
        "num_pixels": int(test_images.shape[1]),
        "embedding_dim": int(clean.get_layer("embedding").output.shape[-1]),
        "test_accuracy": float((predicted == test_labels).mean()),
        "test_accuracy_per_class": {
            c: float(confusion[i, i] / max(confusion[i].sum(), 1)) for i, c in enumerate(classes)
        },
        "confusion_matrix_test": confusion.tolist(),
        "seed": seed,
        "epochs_max": epochs,
        "versions": package_versions(),
    }
    write_json_atomic(_info_path(out), record)
    return record


# --- the report -----------------------------------------------------------------------------------


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
