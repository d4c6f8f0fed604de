"""Average jet images in (eta_rel, phi_rel) weighted by pt_rel (paper Fig. 1)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from gsgm.data.jetnet_format import CLASS_NAMES
from gsgm.plotting.style import style_context

# Jets are clustered with R = 0.8; a slightly larger window shows the rare constituents at the edge.
IMAGE_HALF_WIDTH = 0.8
IMAGE_PIXELS = 40


def average_jet_image(
    particles: np.ndarray, pixels: int = IMAGE_PIXELS, half_width: float = IMAGE_HALF_WIDTH
) -> np.ndarray:
    """Mean over jets of the pt_rel deposited in each (eta_rel, phi_rel) pixel.

    Args:
        particles: [N, P, 4] (eta_rel, phi_rel, pt_rel, mask); only real particles (mask = 1) count.
        pixels: pixels per axis.
        half_width: the image covers [-half_width, half_width] in eta_rel and phi_rel.

    Returns:
        [pixels, pixels] array indexed [eta bin, phi bin]; its sum is the mean pt_rel per jet inside the
        window (<= 1; pt_rel is a fraction of the jet pT).
    """
    particles = np.asarray(particles)
    if particles.ndim != 3 or particles.shape[-1] != 4:
        raise ValueError(f"particles must be [N, P, 4], got {particles.shape}")
    real = particles[..., 3] > 0
    edges = np.linspace(-half_width, half_width, pixels + 1)
    image, _, _ = np.histogram2d(
        particles[..., 0][real], particles[..., 1][real], bins=(edges, edges), weights=particles[..., 2][real]
    )
    return image / max(len(particles), 1)


def plot_jet_images(
    truth_particles: np.ndarray,
    generated_particles: Mapping[str, np.ndarray],
    jet_class: str,
    pixels: int = IMAGE_PIXELS,
    half_width: float = IMAGE_HALF_WIDTH,
) -> Figure:
    """Truth and each generated sample's average jet image side by side, on one logarithmic colour scale.

    Args:
        truth_particles: [N, P, 4], recentred like the generated jets.
        generated_particles: {label: [M, P, 4]}.
        jet_class: for the title.
    """
    images = {"Truth": average_jet_image(truth_particles, pixels, half_width)}
    images.update(
        {label: average_jet_image(p, pixels, half_width) for label, p in generated_particles.items()}
    )
    positive = np.concatenate([im[im > 0] for im in images.values()])
    vmax = float(positive.max()) if positive.size else 1.0
    # Four decades below the brightest pixel: the core and the soft radiation around it both show.
    norm = LogNorm(vmin=vmax * 1e-4, vmax=vmax)
    with style_context():
        figure = Figure(figsize=(4.2 * len(images) + 1.0, 4.4), layout="constrained")
        axes = figure.subplots(1, len(images), squeeze=False)[0]
        for ax, (label, image) in zip(axes, images.items(), strict=True):
            # Rows of the image are eta bins; imshow draws rows along y, so transpose to put eta on x.
            shown = np.where(image.T > 0, image.T, np.nan)
            mesh = ax.imshow(
                shown,
                origin="lower",
                extent=(-half_width, half_width, -half_width, half_width),
                norm=norm,
                cmap="viridis",
                aspect="equal",
            )
            ax.set_title(label, fontsize=13)
            ax.set_xlabel(r"$\eta^\mathrm{rel}$")
            ax.set_ylabel(r"$\phi^\mathrm{rel}$")
        figure.colorbar(mesh, ax=list(axes), label=r"Mean $p_\mathrm{T}^\mathrm{rel}$ per pixel")
        figure.suptitle(f"{CLASS_NAMES.get(jet_class, jet_class)} jets: average image", fontsize=15)
    return figure
