"""Figures of N = 10 antenna samples (phase-space paper Figs. 11-14).

:func:`plot_antenna` returns named figures: the energies (pooled, hardest, softest) with the uniform
phase-space marginal of appendix B; y = min 2 p_i.p_j on log axes against uniform phase space and
the large-N thermal form (eq. 24); the pair invariants and the cut variable max s / min s; the
angles; the conservation violation. Arrays in, :class:`matplotlib.figure.Figure` out.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from gsgm.data.phase_space_analytic import uniform_energy_density, y_density_uniform_large_n
from gsgm.evaluation.phase_space_antenna import antenna_observables
from gsgm.plotting.phase_space import comparison_samples, conservation_figure
from gsgm.plotting.phase_space import histogram_step as _hist
from gsgm.plotting.style import style_context

__all__ = ["plot_antenna"]


def plot_antenna(
    truth: np.ndarray, models: dict[str, np.ndarray], *, xi_max: float, uniform: np.ndarray
) -> dict[str, Figure]:
    """Figures by name (energies, y, invariants, angles, conservation) of events [n, N, 4].

    ``uniform``: uniform phase-space events (RAMBO, drawn by the caller) for the reference curves.
    """
    n_particles = truth.shape[1]
    samples = comparison_samples(truth, models, uniform)
    obs = {label: antenna_observables(ev) for label, ev, _, _ in samples}
    figures: dict[str, Figure] = {}
    with style_context():
        fig = Figure(figsize=(13, 4))
        axes = fig.subplots(1, 3)
        grid = np.linspace(0, 0.5, 400)
        for ax, key, bins in zip(
            axes, ("E", "E_max", "log10_E_min"),
            (np.linspace(0, 0.5, 41), np.linspace(0, 0.5, 41), np.linspace(-4.5, np.log10(0.1), 41)),
            strict=True,
        ):  # fmt: skip
            for label, _, color, style in samples:
                _hist(ax, obs[label][key], bins, label, color, style)
        axes[0].plot(grid, uniform_energy_density(grid, n_particles), color="k", linewidth=0.8,
                     label="uniform (app. B)")  # fmt: skip
        axes[0].set_yscale("log")
        axes[0].set_ylim(1e-3, None)  # the analytic curve falls to 0 at E = 1/2
        for ax, xlabel in zip(
            axes, ("$E$ (every particle)", r"$E_\max$", r"$\log_{10} E_\min$"), strict=True
        ):
            ax.set_xlabel(xlabel)
        axes[0].legend(fontsize=9)
        figures["energies"] = fig

        fig = Figure(figsize=(5.5, 4))
        ax = fig.subplots()
        bins = np.linspace(-9, np.log10(0.05), 46)
        for label, _, color, style in samples:
            _hist(ax, obs[label]["log10_y"], bins, label, color, style)
        centres = 10 ** np.linspace(-9, np.log10(0.05), 300)
        # density in log10 y: p(y) y ln 10
        ax.plot(np.log10(centres), y_density_uniform_large_n(centres, n_particles) * centres * np.log(10),
                color="k", linestyle="--", linewidth=0.8, label="eq. 24 (uniform, large N)")  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylim(1e-4, None)  # eq. 24 falls off a cliff towards y's end point
        ax.set_xlabel(r"$\log_{10} y,\ y = \min_{i<j} 2 p_i \cdot p_j$")
        ax.legend(fontsize=9)
        figures["y"] = fig

        fig = Figure(figsize=(9, 4))
        axes = fig.subplots(1, 2)
        for label, _, color, style in samples:
            _hist(axes[0], obs[label]["log10_s"], np.linspace(-9, 0, 46), label, color, style)
            _hist(axes[1], obs[label]["log10_ratio"], np.linspace(0, 9, 46), label, color, style)
        axes[1].axvline(np.log10(xi_max), color="k", linewidth=0.8, label=r"cut $\xi_\max$")
        axes[0].set_xlabel(r"$\log_{10} s_{ij}$ (every pair)")
        axes[1].set_xlabel(r"$\log_{10} (\max s_{ij} / \min s_{ij})$")
        axes[1].legend(fontsize=9)
        figures["invariants"] = fig

        fig = Figure(figsize=(9, 4))
        axes = fig.subplots(1, 2)
        for label, _, color, style in samples:
            _hist(axes[0], obs[label]["cos_theta"], np.linspace(-1, 1, 31), label, color, style)
            _hist(axes[1], obs[label]["phi"], np.linspace(-np.pi, np.pi, 31), label, color, style)
        axes[0].set_xlabel(r"$\cos\theta$ (every particle)")
        axes[1].set_xlabel(r"$\phi$ (every particle)")
        axes[0].legend(fontsize=9)
        figures["angles"] = fig

        figures["conservation"] = conservation_figure(samples[:-1])
    return figures
