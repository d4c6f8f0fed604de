"""Figures for 25 x 25 jet images: sample images per class (paper Figs. 5-7), m/pT per class (Fig. 8).

Functions take numpy arrays, build a :class:`matplotlib.figure.Figure` without pyplot (no global
state) and, given a path, write it atomically. Images are drawn with phi_rel on the x axis and
eta_rel on the y axis (the rows of the arrays are eta bins, :mod:`gsgm.data.images`), on a
logarithmic colour scale: on a linear scale only the hardest one or two pixels of a jet are visible.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from gsgm.data.images import MAX_R
from gsgm.data.jetnet_format import CLASS_NAMES, JET_CLASSES
from gsgm.evaluation.image_metrics import image_mass_over_pt
from gsgm.utils.atomic import atomic_path

__all__ = ["STYLES", "plot_class_images", "plot_mass_histograms", "write_figure"]

#: Line styles of Fig. 8: truth solid blue, score-based dashed green, consistency dashed red.
STYLES = {
    "truth": {"color": "tab:blue", "linestyle": "-"},
    "score": {"color": "tab:green", "linestyle": "--"},
    "consistency": {"color": "tab:red", "linestyle": "--"},
}


def write_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` atomically; the format follows the suffix (png, pdf, ...)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    return path


def _present(labels: np.ndarray) -> list[str]:
    return [c for c in JET_CLASSES if (labels == JET_CLASSES.index(c)).any()]


def plot_class_images(
    images: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike | None = None,
    per_class: int = 2,
    classes: Sequence[str] | None = None,
    title: str = "",
    max_r: float = MAX_R,
    vmin: float = 1e-3,
) -> Figure:
    """Grid of ``per_class`` images (columns) for each class (rows) on one log colour scale.

    With ``per_class=1`` the classes form one row instead (paper Fig. 5).

    Args:
        images: ``[M, N, N]`` pt_rel images; labels ``[M]`` indices into JET_CLASSES.
        path: if given, the figure is written there.
        per_class: images per class (the first ones of each class).
        classes: classes to draw (default: those present, in JET_CLASSES order).
        vmin: lower end of the colour scale (pt_rel); smaller pixels are drawn as empty.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    classes = _present(labels) if classes is None else list(classes)
    rows, cols = (1, len(classes)) if per_class == 1 else (len(classes), per_class)
    fig = Figure(figsize=(2.6 * cols + 0.9, 2.5 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    if per_class == 1:
        axes = axes.T  # axes[class, image]
    norm = LogNorm(vmin=vmin, vmax=1.0)
    mappable = None
    for row, jet_class in enumerate(classes):
        chosen = images[labels == JET_CLASSES.index(jet_class)][:per_class]
        for col in range(per_class):
            ax = axes[row, col]
            if col < len(chosen):
                mappable = ax.imshow(
                    np.ma.masked_less_equal(chosen[col], vmin),
                    origin="lower",
                    extent=(-max_r, max_r, -max_r, max_r),
                    cmap="viridis",
                    norm=norm,
                )
            ax.set_title(f"{jet_class} ({CLASS_NAMES[jet_class]})", fontsize=9)
            ax.set_xlabel(r"$\phi^{rel}$", fontsize=8)
            ax.set_ylabel(r"$\eta^{rel}$", fontsize=8)
            ax.tick_params(labelsize=7)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, shrink=0.8, label=r"$p_T^{rel}$")
    if title:
        fig.suptitle(title)
    if path is not None:
        write_figure(fig, path)
    return fig


def plot_mass_histograms(
    truth: tuple[np.ndarray, np.ndarray],
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    bins: int = 30,
    max_r: float = MAX_R,
) -> Figure:
    """m/pT of the jets reconstructed from the images (Alg. 4), one panel per class (paper Fig. 8).

    Args:
        truth: (images, labels) of the truth sample, drawn solid.
        samples: ``{name: (images, labels)}``, drawn dashed ("score" green, "consistency" red, other
            names in further colours). Histograms have unit area; empty images are left out.
        path: if given, the figure is written there.
    """
    truth_images, truth_labels = np.asarray(truth[0]), np.asarray(truth[1])
    classes = _present(truth_labels) if classes is None else list(classes)
    fig = Figure(figsize=(3.2 * len(classes), 3.0), layout="constrained")
    axes = fig.subplots(1, len(classes), squeeze=False)[0]
    sources = {"truth": (truth_images, truth_labels), **samples}
    for ax, jet_class in zip(axes, classes, strict=True):
        label_index = JET_CLASSES.index(jet_class)
        masses = {}
        for name, (images, labels) in sources.items():
            values = image_mass_over_pt(np.asarray(images)[np.asarray(labels) == label_index], max_r)
            masses[name] = values[np.isfinite(values)]
        upper = max((float(np.quantile(v, 0.995)) for v in masses.values() if v.size), default=1.0)
        edges = np.linspace(0.0, max(upper, 1e-3), bins + 1)
        for i, (name, values) in enumerate(masses.items()):
            style = STYLES.get(name, {"color": f"C{i + 3}", "linestyle": "--"})
            ax.hist(values, bins=edges, density=True, histtype="step", linewidth=1.5, label=name, **style)
        ax.set_title(f"{jet_class} ({CLASS_NAMES[jet_class]})", fontsize=9)
        ax.set_xlabel(r"$m / p_T$ (from the image)")
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("normalised")
    axes[-1].legend(fontsize=8)
    if path is not None:
        write_figure(fig, path)
    return fig
