"""Reusable plotting functions (mplhep style): truth vs generated histograms with ratio panels,
average jet images, training curves and generation time. The command-line scripts are in ``plots/``.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot; write it with
:func:`save_figure` (PNG and PDF, atomically).
"""

from gsgm.plotting.curves import load_timing_results, plot_generation_time, plot_training_history
from gsgm.plotting.histograms import (
    JET_OBSERVABLES,
    PARTICLE_OBSERVABLES,
    density_histogram,
    make_bins,
    plot_jet_kinematics,
    plot_particle_kinematics,
    ratio_panel_plot,
)
from gsgm.plotting.jet_images import average_jet_image, plot_jet_images
from gsgm.plotting.style import save_figure, style_context

__all__ = [
    "JET_OBSERVABLES",
    "PARTICLE_OBSERVABLES",
    "average_jet_image",
    "density_histogram",
    "load_timing_results",
    "make_bins",
    "plot_generation_time",
    "plot_jet_images",
    "plot_jet_kinematics",
    "plot_particle_kinematics",
    "plot_training_history",
    "ratio_panel_plot",
    "save_figure",
    "style_context",
]
