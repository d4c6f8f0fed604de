"""Calorimeter-shower figures with ratio panels (the seminar's Figs. 7 and 8, and centres of gravity).

Inputs are plain arrays: for every sample a mapping ``{observable key: (values, weights or None)}`` as
:func:`gsgm.evaluation.calo` computes them (the CLI does). Histograms are normalised to unit area
(weighted by hit energy for the radial and longitudinal profiles); error bars are sqrt(sum w^2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from gsgm.plotting.histograms import RATIO_RANGE, Observable, _panel_figure, make_bins
from gsgm.plotting.style import TRUTH_COLOR, model_color

__all__ = ["CALO_PANELS", "plot_calo_panels"]

Arrays = Mapping[str, tuple[np.ndarray, np.ndarray | None]]

#: key -> (axis label, log y, log-spaced x bins, integer bins)
CALO_PANELS: dict[str, tuple[str, bool, bool, bool]] = {
    "e_cell": ("Visible cell energy [MeV]", True, True, False),
    "e_radial": ("Radius [mm] (energy weighted)", True, False, False),
    "e_long": ("Layer (energy weighted)", False, False, True),
    "e_ratio": (r"$E_\mathrm{vis} / E_\mathrm{inc}$ [MeV/GeV]", False, False, False),
    "n_hits": (r"$N_\mathrm{hits}$", False, False, False),
    "m1_x": (r"$m_{1,x}$ [mm]", False, False, False),
    "m1_y": (r"$m_{1,y}$ [mm]", False, False, False),
    "m1_z": (r"$m_{1,z}$ [layer]", False, False, False),
}


def _hist(values, weights, bins) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, np.float64)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, np.float64)
    total = max(weights.sum(), 1e-300)
    sums, _ = np.histogram(values, bins, weights=weights)
    squares, _ = np.histogram(values, bins, weights=weights**2)
    width = np.diff(bins)
    return sums / total / width, np.sqrt(squares) / total / width


def _bins(key: str, truth: np.ndarray) -> np.ndarray:
    _, _, log_x, integer = CALO_PANELS[key]
    truth = np.asarray(truth, np.float64)
    if integer:
        return np.arange(np.floor(truth.min()) - 0.5, np.ceil(truth.max()) + 1.5)
    if log_x:
        positive = truth[truth > 0]
        lo, hi = np.quantile(positive, [0.001, 0.999]) if positive.size else (1e-3, 1.0)
        return np.geomspace(lo, max(hi, lo * 1.01), 41)
    return make_bins(truth, Observable(key))


def plot_calo_panels(
    truth: Arrays,
    generated: Mapping[str, Arrays],
    keys: Sequence[str],
    title: str,
    truth_label: str = "GFlash",
) -> Figure:
    """One column per observable in ``keys``: truth filled, each generated sample as steps, ratio below."""
    figure, main, ratio = _panel_figure(len(keys))
    for ax, ax_ratio, key in zip(main, ratio, keys, strict=True):
        label, log_y, log_x, _ = CALO_PANELS[key]
        values, weights = truth[key]
        bins = _bins(key, values)
        t_hist, t_err = _hist(values, weights, bins)
        ax.stairs(t_hist, bins, fill=True, color=TRUTH_COLOR, alpha=0.5, label=truth_label)
        ax_ratio.axhline(1.0, color=TRUTH_COLOR, lw=1)
        centres = np.sqrt(bins[1:] * bins[:-1]) if log_x else 0.5 * (bins[1:] + bins[:-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(t_hist > 0, t_err / t_hist, np.nan)
            ax_ratio.fill_between(bins, np.append(1 - rel, 1 - rel[-1]), np.append(1 + rel, 1 + rel[-1]),
                                  step="post", color=TRUTH_COLOR, alpha=0.3, lw=0)  # fmt: skip
            for index, (name, arrays) in enumerate(generated.items()):
                hist, err = _hist(*arrays[key], bins)
                color = model_color(index)
                ax.stairs(hist, bins, color=color, label=name, lw=1.5)
                ratio_value = np.where(t_hist > 0, hist / t_hist, np.nan)
                ratio_err = np.where(t_hist > 0, err / t_hist, np.nan)
                ax_ratio.errorbar(centres, ratio_value, yerr=ratio_err, fmt="o", ms=3, color=color, lw=1)
        if log_y:
            ax.set_yscale("log")
        if log_x:
            ax.set_xscale("log")
        ax.set_ylabel("Normalised")
        ax.set_xlim(bins[0], bins[-1])
        ax.tick_params(labelbottom=False)
        ax_ratio.set_ylim(*RATIO_RANGE)
        ax_ratio.set_ylabel("Gen/Truth")
        ax_ratio.set_xlabel(label)
    main[0].legend(loc="best")
    figure.suptitle(title, fontsize=15)
    return figure
