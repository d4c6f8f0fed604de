"""Truth vs generated histograms with a ratio panel (paper Figs. 3-8).

All histograms are normalised to unit area (density), so samples of different sizes compare directly.
Error bars are the statistical (Poisson) uncertainty of each bin; the ratio panel shows
generated / truth with both samples' uncertainties combined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gsgm.data.jetnet_format import CLASS_NAMES
from gsgm.plotting.style import TRUTH_COLOR, model_color, style_context

RATIO_RANGE = (0.5, 1.5)


@dataclass(frozen=True)
class Observable:
    """One histogrammed quantity: axis label, y scale and binning rule."""

    label: str
    log_y: bool = False
    integer: bool = False  # one bin per integer value (multiplicity)
    lower_zero: bool = False  # bins start at 0 (pt_rel)


JET_OBSERVABLES: tuple[Observable, ...] = (
    Observable(r"Jet $p_\mathrm{T}$ [GeV]"),
    Observable(r"Jet $\eta$"),
    Observable("Jet mass [GeV]"),
    Observable("Particle multiplicity", integer=True),
)
PARTICLE_OBSERVABLES: tuple[Observable, ...] = (
    Observable(r"Particle $\eta^\mathrm{rel}$", log_y=True),
    Observable(r"Particle $\phi^\mathrm{rel}$", log_y=True),
    Observable(r"Particle $p_\mathrm{T}^\mathrm{rel}$", log_y=True, lower_zero=True),
)


def make_bins(
    values: np.ndarray, observable: Observable, num_bins: int = 40, others: Sequence[np.ndarray] = ()
) -> np.ndarray:
    """Bin edges from the truth values: the central 99.8 % (so rare outliers do not squash the plot).

    Integer observables get one bin per value (at most ``2 * num_bins`` bins, merged beyond that) over
    the range of the truth and of ``others`` together, so that a generated multiplicity the truth never
    has is still seen.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.linspace(0.0, 1.0, num_bins + 1)
    if observable.integer:
        every = np.concatenate([values, *(np.asarray(o, dtype=np.float64).ravel() for o in others)])
        lo, hi = np.floor(every.min()), np.ceil(every.max())
        step = max(1.0, np.ceil((hi - lo + 1) / (2 * num_bins)))
        return np.arange(lo - 0.5, hi + step + 0.5, step)
    lo, hi = np.quantile(values, [0.001, 0.999])
    if observable.lower_zero:
        lo = 0.0
    if hi <= lo:  # a constant feature: one bin around it
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, num_bins + 1)


def density_histogram(values: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-area histogram and its Poisson uncertainty per bin (both [len(bins) - 1]).

    Values outside the bins count in the normalisation, so the areas of two samples compare even when
    their tails differ.
    """
    values = np.asarray(values, dtype=np.float64)
    counts, _ = np.histogram(values, bins)
    norm = max(values.size, 1) * np.diff(bins)
    return counts / norm, np.sqrt(counts) / norm


def ratio_panel_plot(
    ax: Axes,
    ax_ratio: Axes,
    truth: np.ndarray,
    generated: Mapping[str, np.ndarray],
    observable: Observable,
    bins: np.ndarray | None = None,
    truth_label: str = "Truth",
) -> np.ndarray:
    """Draw truth (filled) and each generated sample (step) on ``ax``, generated / truth on ``ax_ratio``.

    Args:
        ax, ax_ratio: main and ratio axes (sharing x).
        truth: [N] truth values.
        generated: {label: [M] values}.
        observable: label, binning and y scale.
        bins: edges (default: :func:`make_bins` on the truth).

    Returns:
        The bin edges used.
    """
    import mplhep

    bins = make_bins(truth, observable, others=list(generated.values())) if bins is None else bins
    truth_hist, truth_err = density_histogram(truth, bins)
    mplhep.histplot(
        truth_hist, bins, ax=ax, histtype="fill", color=TRUTH_COLOR, alpha=0.5, label=truth_label, flow=None
    )
    centres = 0.5 * (bins[1:] + bins[:-1])
    ax_ratio.axhline(1.0, color=TRUTH_COLOR, lw=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        truth_rel = np.where(truth_hist > 0, truth_err / truth_hist, np.nan)
        # step="post" needs one y per edge: repeat the last bin's value for the right edge.
        lower, upper = 1 - truth_rel, 1 + truth_rel
        ax_ratio.fill_between(
            bins,
            np.append(lower, lower[-1]),
            np.append(upper, upper[-1]),
            step="post",
            color=TRUTH_COLOR,
            alpha=0.3,
            lw=0,
        )
        for index, (label, values) in enumerate(generated.items()):
            color = model_color(index)
            hist, err = density_histogram(values, bins)
            mplhep.histplot(hist, bins, ax=ax, yerr=err, histtype="step", color=color, label=label, flow=None)
            ratio = np.where(truth_hist > 0, hist / truth_hist, np.nan)
            ratio_err = np.where(truth_hist > 0, err / truth_hist, np.nan)
            ax_ratio.errorbar(centres, ratio, yerr=ratio_err, fmt="o", ms=3, color=color, lw=1)
    if observable.log_y:
        ax.set_yscale("log")
    ax.set_ylabel("Normalised")
    ax.set_xlim(bins[0], bins[-1])
    ax_ratio.set_ylim(*RATIO_RANGE)
    ax_ratio.set_ylabel("Gen/Truth")
    ax_ratio.set_xlabel(observable.label)
    ax.tick_params(labelbottom=False)
    ax.set_xlabel("")
    return bins


def _panel_figure(num_panels: int) -> tuple[Figure, list[Axes], list[Axes]]:
    figure = Figure(figsize=(5.2 * num_panels, 5.6), layout="constrained")
    grid = figure.add_gridspec(2, num_panels, height_ratios=(3, 1))
    main, ratio = [], []
    for column in range(num_panels):
        ax = figure.add_subplot(grid[0, column])
        main.append(ax)
        ratio.append(figure.add_subplot(grid[1, column], sharex=ax))
    return figure, main, ratio


def _title(figure: Figure, jet_class: str, level: str) -> None:
    figure.suptitle(f"{CLASS_NAMES.get(jet_class, jet_class)} jets: {level}", fontsize=15)


def plot_kinematics(
    truth: Sequence[np.ndarray],
    generated: Mapping[str, Sequence[np.ndarray]],
    observables: Sequence[Observable],
    jet_class: str,
    level: str,
) -> Figure:
    """One column per observable: main panel plus ratio panel.

    Args:
        truth: one [N] array per observable.
        generated: {label: one [M] array per observable}.
        observables: what each column shows.
        jet_class: for the title.
        level: "jet kinematics" or "particle kinematics" (title).
    """
    with style_context():
        figure, main, ratio = _panel_figure(len(observables))
        for column, observable in enumerate(observables):
            ratio_panel_plot(
                main[column],
                ratio[column],
                truth[column],
                {label: values[column] for label, values in generated.items()},
                observable,
            )
        main[0].legend(loc="best", frameon=False)
        _title(figure, jet_class, level)
    return figure


def plot_jet_kinematics(
    truth_jets: np.ndarray, generated_jets: Mapping[str, np.ndarray], jet_class: str
) -> Figure:
    """Jet pT [GeV], eta, mass [GeV] and multiplicity of one class (paper Fig. 3).

    Args:
        truth_jets: JetNet jet features [N, 4] (pt, eta, mass, num_particles).
        generated_jets: {label: [M, 4]}.
    """
    truth = [truth_jets[:, i] for i in range(4)]
    generated = {label: [jets[:, i] for i in range(4)] for label, jets in generated_jets.items()}
    return plot_kinematics(truth, generated, JET_OBSERVABLES, jet_class, "jet kinematics")


def particle_values(particles: np.ndarray) -> list[np.ndarray]:
    """(eta_rel, phi_rel, pt_rel) of every real (mask = 1) particle of [N, P, 4] particles: 3 x [K]."""
    real = particles[..., 3] > 0
    return [particles[..., i][real] for i in range(3)]


def plot_particle_kinematics(
    truth_particles: np.ndarray, generated_particles: Mapping[str, np.ndarray], jet_class: str
) -> Figure:
    """eta_rel, phi_rel, pt_rel of all real particles of one class (paper Fig. 4).

    Args:
        truth_particles: [N, P, 4] (eta_rel, phi_rel, pt_rel, mask), recentred like the generated jets.
        generated_particles: {label: [M, P, 4]}.
    """
    truth = particle_values(truth_particles)
    generated = {label: particle_values(p) for label, p in generated_particles.items()}
    return plot_kinematics(truth, generated, PARTICLE_OBSERVABLES, jet_class, "particle kinematics")
