"""Figures of the DIS evaluation (ep-scattering paper Figs. 5-10) from a
:class:`gsgm.data.dis_observables.DisComparison`.

Histograms are unit-area densities; the filled reference is Pythia *with* pixelation, the ratio
panels are sample / pixelated Pythia (as in the paper), and Pythia without pixelation is drawn as one
more sample so that the pixelation effect shows in the same panels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from gsgm.data.dis_format import SPECIES, SPECIES_KEYS, SPECIES_NAMES, DisEvents
from gsgm.data.dis_images import pixel_edges
from gsgm.data.dis_observables import (
    DisComparison,
    dis_kinematics,
    dis_observables,
    leading_pairs,
    reduced_cross_section,
)
from gsgm.plotting.histograms import Observable, ratio_panel_plot
from gsgm.plotting.style import model_color, save_figure, style_context

__all__ = ["plot_dis_all", "plot_dis_correlations", "plot_dis_events", "plot_dis_reduced_cross_section"]

RAW_LABEL = "Pythia (no pixelation)"
PIX_LABEL = "Pythia (pixelated)"


def _samples(c: DisComparison) -> dict[str, DisEvents]:
    return {RAW_LABEL: c.truth, **c.models}


def _grid(rows: int, cols: int) -> tuple[Figure, list[list], list[list]]:
    figure = Figure(figsize=(5.0 * cols, 5.0 * rows), layout="constrained")
    grid = figure.add_gridspec(2 * rows, cols, height_ratios=[3, 1] * rows)
    main = [[figure.add_subplot(grid[2 * r, k]) for k in range(cols)] for r in range(rows)]
    ratio = [
        [figure.add_subplot(grid[2 * r + 1, k], sharex=main[r][k]) for k in range(cols)] for r in range(rows)
    ]
    return figure, main, ratio


def plot_dis_events(c: DisComparison) -> dict[str, Figure]:
    """``spectra`` (z, eta, phi per species, Fig. 5), ``multiplicities`` (Fig. 6), ``sum_z`` (Fig. 7)
    and ``electron`` (leading-electron z, eta, Q^2, x)."""
    truth = dis_observables(c.truth_pixelated)
    others = {name: dis_observables(events) for name, events in _samples(c).items()}
    figures = {}
    z_bins = np.linspace(-5, 0.1, 52)
    eta_edges, phi_edges = pixel_edges(c.num_pixels, c.truth.eta_max)
    columns = [
        ("log10_z", Observable(r"$\log_{10} z$", log_y=True), z_bins),
        # the pixel edges: pixelated samples put every particle at a pixel centre
        ("eta", Observable(r"$\eta$", log_y=True), eta_edges),
        ("phi", Observable(r"$\phi$ (leading $e^-$ at $-\pi$, not shown)"), phi_edges),
    ]
    with style_context():
        figure, main, ratio = _grid(3, 3)
        for r, species in enumerate(SPECIES):
            key = SPECIES_KEYS[species]
            for k, (name, observable, bins) in enumerate(columns):
                ratio_panel_plot(
                    main[r][k],
                    ratio[r][k],
                    truth[f"{name}_{key}"],
                    {label: obs[f"{name}_{key}"] for label, obs in others.items()},
                    observable,
                    bins=bins,
                    truth_label=PIX_LABEL,
                )
                main[r][k].set_title(SPECIES_NAMES[species], fontsize=13)
        main[0][0].legend(loc="best", frameon=False, fontsize=9)
        figures["spectra"] = figure

        figure, main, ratio = _grid(1, 3)
        for k, species in enumerate(SPECIES):
            key = f"multiplicity_{SPECIES_KEYS[species]}"
            top = max(truth[key].max(), *(o[key].max() for o in others.values()), 1)
            bins = np.arange(-0.5, min(top, 40) + 1.5)
            ratio_panel_plot(
                main[0][k],
                ratio[0][k],
                truth[key],
                {label: obs[key] for label, obs in others.items()},
                Observable(f"{SPECIES_NAMES[species]} multiplicity", log_y=True, integer=True),
                bins=bins,
                truth_label=PIX_LABEL,
            )
        main[0][0].legend(loc="best", frameon=False, fontsize=9)
        figures["multiplicities"] = figure

        figure, main, ratio = _grid(1, 1)
        ratio_panel_plot(
            main[0][0],
            ratio[0][0],
            truth["sum_z"],
            {label: obs["sum_z"] for label, obs in others.items()},
            Observable(r"$\Sigma z$ (sum rule: $\leq 2$)", log_y=True),
            bins=np.linspace(0, 2.2, 45),
            truth_label=PIX_LABEL,
        )
        main[0][0].axvline(2.0, color="k", ls="--", lw=1)
        main[0][0].legend(loc="best", frameon=False, fontsize=9)
        figures["sum_z"] = figure

        figure, main, ratio = _grid(1, 4)
        for k, (key, label, bins) in enumerate(
            [
                ("log10_z_lead_e", r"leading $e^-$ $\log_{10} z$", np.linspace(-1.5, 0.05, 32)),
                ("eta_lead_e", r"leading $e^-$ $\eta$", np.linspace(-4, 2, 31)),
                ("log10_Q2", r"$\log_{10} Q^2$ [GeV$^2$]", np.linspace(1.3, 4.1, 29)),
                ("log10_x", r"$\log_{10} x$", np.linspace(-3.5, 0.05, 36)),
            ]
        ):
            ratio_panel_plot(
                main[0][k],
                ratio[0][k],
                truth[key],
                {name: obs[key] for name, obs in others.items()},
                Observable(label, log_y=True),
                bins=bins,
                truth_label=PIX_LABEL,
            )
        main[0][0].legend(loc="best", frameon=False, fontsize=9)
        figures["electron"] = figure
    return figures


def _hist2d(x: np.ndarray, y: np.ndarray, bins) -> np.ndarray:
    counts, _, _ = np.histogram2d(x, y, bins=bins)
    return counts / max(len(x), 1)


def plot_dis_correlations(c: DisComparison, model: str | None = None) -> Figure:
    """Leading vs subleading z of pi+ and K+ (Fig. 8) and x vs Q^2 (Fig. 9): pixelated Pythia, the
    model (the first sample by default) and their ratio."""
    model = model or next(iter(c.models), None)
    events = c.models[model] if model is not None else c.truth_pixelated
    edges = np.linspace(-4, 0, 21)
    with style_context():
        figure = Figure(figsize=(15, 14), layout="constrained")
        axes = figure.subplots(3, 3)
        rows = []
        for species in (211, 321):
            rows.append(
                (
                    [np.log10(v) for v in leading_pairs(c.truth_pixelated, species)],
                    [np.log10(v) for v in leading_pairs(events, species)],
                    (edges, edges),
                    (
                        f"leading {SPECIES_NAMES[species]} log10 z",
                        f"subleading {SPECIES_NAMES[species]} log10 z",
                    ),
                )
            )
        kin_t, kin_m = dis_kinematics(c.truth_pixelated), dis_kinematics(events)

        def xq(kin):
            ok = np.isfinite(kin["x"]) & (kin["x"] > 0) & (kin["Q2"] > 0)
            return [np.log10(kin["x"][ok]), np.log10(kin["Q2"][ok])]

        rows.append(
            (
                xq(kin_t),
                xq(kin_m),
                (np.linspace(-3.5, 0, 29), np.linspace(1.3, 4.1, 29)),
                ("log10 x", "log10 Q^2"),
            )
        )
        for r, (truth, gen, bins, labels) in enumerate(rows):
            h_t, h_m = _hist2d(*truth, bins), _hist2d(*gen, bins)
            extent = (bins[0][0], bins[0][-1], bins[1][0], bins[1][-1])
            floor = max(h_t[h_t > 0].min(initial=1.0), 1e-6)
            for k, (h, title) in enumerate(((h_t, PIX_LABEL), (h_m, model or "model"))):
                image = axes[r][k].imshow(
                    np.log10(np.maximum(h, floor / 10)).T, origin="lower", extent=extent, aspect="auto"
                )
                axes[r][k].set_title(title, fontsize=12)
                figure.colorbar(image, ax=axes[r][k], label="log10 fraction")
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(h_t > 0, h_m / h_t, np.nan)
            image = axes[r][2].imshow(
                ratio.T, origin="lower", extent=extent, aspect="auto", vmin=0, vmax=2, cmap="coolwarm"
            )
            axes[r][2].set_title("model / Pythia", fontsize=12)
            figure.colorbar(image, ax=axes[r][2])
            for k in range(3):
                axes[r][k].set_xlabel(labels[0])
                axes[r][k].set_ylabel(labels[1])
    return figure


def plot_dis_reduced_cross_section(c: DisComparison) -> Figure:
    """Reduced cross-section vs x in Q^2 bins (Fig. 10): Pythia, pixelated Pythia and each model."""
    x_edges = np.geomspace(1e-3, 1.0, 13)
    q2_edges = np.array([25.0, 50.0, 100.0, 200.0, 400.0, 1000.0])
    samples = {RAW_LABEL: c.truth, PIX_LABEL: c.truth_pixelated, **c.models}
    with style_context():
        figure = Figure(figsize=(5.0 * len(samples), 5.0), layout="constrained")
        axes = figure.subplots(1, len(samples), sharey=True, squeeze=False)[0]
        centres = np.sqrt(x_edges[1:] * x_edges[:-1])
        for ax, (name, events) in zip(axes, samples.items(), strict=True):
            kin = dis_kinematics(events)
            sigma, error = reduced_cross_section(kin["x"], kin["Q2"], kin["y"], x_edges, q2_edges)
            for i in range(len(q2_edges) - 1):
                shown = sigma[i] > 0
                label = f"{q2_edges[i]:g} < $Q^2$ < {q2_edges[i + 1]:g}"
                ax.errorbar(
                    centres[shown], sigma[i][shown], yerr=error[i][shown], fmt="o-", ms=3,
                    color=model_color(i), label=label,
                )  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("x")
            ax.set_title(name, fontsize=12)
        axes[0].set_ylabel(r"$\sigma_\mathrm{red}$ (arbitrary units)")
        axes[0].legend(loc="best", frameon=False, fontsize=9)
    return figure


def plot_dis_all(c: DisComparison, out: str | os.PathLike, formats=("png",)) -> list[Path]:
    """Every DIS figure into ``out`` (``dis_<name>.png``); returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = {f"dis_{k}": v for k, v in plot_dis_events(c).items()}
    figures["dis_correlations"] = plot_dis_correlations(c)
    figures["dis_reduced_cross_section"] = plot_dis_reduced_cross_section(c)
    paths = []
    for stem, figure in figures.items():
        paths += save_figure(figure, out, stem, formats)
    return paths
