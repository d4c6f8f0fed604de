"""Figures of 3-particle phase-space samples (phase-space paper Figs. 1-5, 7-10, 14).

:func:`plot_phase_space` returns named figures: Dalitz plots of truth, each model and uniform phase
space; the energy marginals with the analytic curves; angular distributions; the Dalitz log-density;
the Rosenblatt variables; y = min 2 p_i.p_j against eq. 19 (q qbar g) and eq. 20 (uniform); and the
conservation violation. Arrays in, :class:`matplotlib.figure.Figure` out (save with
:func:`gsgm.plotting.style.save_figure`).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from gsgm.data.phase_space_analytic import dalitz_law, y_density_qqg, y_density_uniform3
from gsgm.evaluation.phase_space import observables
from gsgm.plotting.style import TRUTH_COLOR, model_color, style_context

__all__ = ["plot_phase_space"]

UNIFORM_COLOR = "0.2"


def histogram_step(ax, values, bins, label, color, style="-"):
    """A density-normalised step histogram of the finite ``values`` on ``ax``."""
    values = values[np.isfinite(values)]
    counts, edges = np.histogram(values, bins=bins, density=True)
    ax.stairs(counts, edges, label=label, color=color, linestyle=style, linewidth=1.6)


def comparison_samples(truth, models, uniform):
    """[(label, events, colour, line style)] for the truth, each model and uniform phase space."""
    out = [("truth", truth, TRUTH_COLOR, "-")]
    out += [(label, ev, model_color(i), "-") for i, (label, ev) in enumerate(models.items())]
    return out + [("uniform", uniform, UNIFORM_COLOR, ":")]


def plot_phase_space(
    truth: np.ndarray,
    models: dict[str, np.ndarray],
    process: str,
    *,
    y_min: float = 0.0,
    uniform: np.ndarray | None = None,
) -> dict[str, Figure]:
    """Figures by name (dalitz, energies, angles, log_density, rosenblatt, y, conservation).

    ``uniform``: uniform phase-space events for the reference curves (RAMBO; drawn by the caller).
    """
    law = dalitz_law(process, y_min if process == "qqg" else 0.0)
    uniform = truth[:0] if uniform is None else uniform
    samples = comparison_samples(truth, models, uniform)
    obs = {label: observables(ev, law) for label, ev, _, _ in samples}
    figures: dict[str, Figure] = {}
    with style_context():
        # Dalitz plots in (s12, s23) = (1 - 2 E3, 1 - 2 E1), each normalised to its own maximum
        fig = Figure(figsize=(4.0 * len(samples), 4.0))
        axes = fig.subplots(1, len(samples), squeeze=False)[0]
        for ax, (label, ev, _, _) in zip(axes, samples, strict=True):
            ax.hist2d(
                1 - 2 * ev[:, 2, 0], 1 - 2 * ev[:, 0, 0], bins=40, range=[[0, 1], [0, 1]], cmap="viridis"
            )
            ax.set_title(label, fontsize=12)
            ax.set_xlabel(r"$s_{12}$")
            ax.set_ylabel(r"$s_{23}$")
        figures["dalitz"] = fig

        fig = Figure(figsize=(13, 4))
        axes = fig.subplots(1, 3)
        grid = np.linspace(0, 0.5, 400)
        for i, ax in enumerate(axes):
            bins = np.linspace(0, 0.5, 41)
            for label, _, color, style in samples:
                histogram_step(ax, obs[label][f"E{i + 1}"], bins, label, color, style)
            ax.plot(grid, law.marginal(grid, i), color="k", linewidth=0.8, label="analytic")
            ax.set_xlabel(f"$E_{i + 1}$")
        axes[0].legend(fontsize=9)
        figures["energies"] = fig

        keys = [("cos_theta_3", r"$\cos\theta_3$", (-1, 1)), ("phi_3", r"$\phi_3$", (-np.pi, np.pi)),
                ("cos_theta_plane", r"$\cos\theta_\mathrm{plane}$", (-1, 1))]  # fmt: skip
        fig = Figure(figsize=(13, 4))
        for ax, (key, xlabel, rng) in zip(fig.subplots(1, 3), keys, strict=True):
            for label, _, color, style in samples:
                histogram_step(ax, obs[label][key], np.linspace(*rng, 31), label, color, style)
            ax.set_xlabel(xlabel)
        fig.axes[0].legend(fontsize=9)
        figures["angles"] = fig

        fig = Figure(figsize=(5, 4))
        ax = fig.subplots()
        finite = obs["truth"]["log_density"]
        lo, hi = np.nanpercentile(finite, 0.5), np.nanmax(finite)
        for label, _, color, style in samples[:-1]:
            histogram_step(ax, obs[label]["log_density"], np.linspace(lo, hi + 1e-9, 41), label, color, style)
        ax.set_xlabel(r"$\log p(E_1, E_2)$")
        ax.legend(fontsize=9)
        figures["log_density"] = fig

        fig = Figure(figsize=(9, 4))
        for ax, key in zip(fig.subplots(1, 2), ("u1", "u2"), strict=True):
            for label, _, color, style in samples[:-1]:
                histogram_step(ax, obs[label][key], np.linspace(0, 1, 21), label, color, style)
            ax.axhline(1.0, color="k", linewidth=0.8)
            ax.set_xlabel(f"${key[0]}_{key[1]}$ (Rosenblatt, eq. 16)")
        fig.axes[0].legend(fontsize=9)
        figures["rosenblatt"] = fig

        fig = Figure(figsize=(5.5, 4))
        ax = fig.subplots()
        low = max(y_min, 1e-4) if process == "qqg" else 1e-3
        bins = np.geomspace(low, 1 / 3, 41)
        for label, _, color, style in samples:
            histogram_step(ax, obs[label]["y"], bins, label, color, style)
        grid = np.geomspace(low, 1 / 3 - 1e-6, 300)
        if process == "qqg":
            ax.plot(grid, y_density_qqg(grid, y_min), color="k", linewidth=0.8, label="eq. 19")
        ax.plot(grid, y_density_uniform3(grid), color="k", linestyle="--", linewidth=0.8, label="eq. 20")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$y = \min_{i<j} 2 p_i \cdot p_j$")
        ax.legend(fontsize=9)
        figures["y"] = fig

        figures["conservation"] = conservation_figure(samples[:-1])
    return figures


def conservation_figure(samples) -> Figure:
    """Histogram of log10 |sum of the 3-momenta| per event for each (label, events [N, n, 4], colour,
    style): q-space models sit at float round-off, p-space baselines do not."""
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for label, ev, color, style in samples:
        violation = np.linalg.norm(ev[..., 1:].sum(axis=1), axis=-1)
        log_violation = np.log10(np.maximum(violation, 1e-18))
        histogram_step(ax, log_violation, np.linspace(-18, 1, 58), label, color, style)
    ax.set_xlabel(r"$\log_{10} |\sum_i \vec p_i|$")
    ax.legend(fontsize=9)
    return fig
