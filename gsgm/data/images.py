"""Jet images: point cloud -> 25 x 25 image in (eta_rel, phi_rel), and back (paper section III, Alg. 4).

A jet image is a 2-D histogram of the jet's particles in the (eta_rel, phi_rel) plane, weighted by
pt_rel = pt_particle / pt_jet, so a pixel's intensity is the summed pt_rel of the particles in it
(dimensionless; the pixels of a whole jet sum to at most ~1). Conventions, used everywhere in gsgm:

* ``images[m, i, j]``: jet ``m``, row ``i`` = eta_rel bin, column ``j`` = phi_rel bin (paper Alg. 4:
  eta from the rows, phi from the columns). Plots put phi_rel on the x axis and eta_rel on the y axis.
* The window is ``[-max_r, max_r]`` in both coordinates (paper: max_r = 0.4, 25 x 25 pixels, pixel
  width 0.032). Bins are ``[e_k, e_k+1)`` with ``e = linspace(-max_r, max_r, N + 1)`` (float64,
  rounded to the precision of the particle data before comparing); the last bin is closed (a
  particle exactly at +max_r is kept), as in ``numpy.histogram2d``.
  Particles outside the window are dropped: on the shipped sample that is 5.8 % of the particles but
  only 1.1 % of the summed pt_rel (soft wide-angle radiation). Their share of the jet *mass* is large
  (JetNet jets have R = 0.8, the window half that): m/pT from the images has a median of 0.53 (g),
  0.53 (q) and 0.83-0.86 (t, W, Z) times the generator's m/pT on the shipped test split, and is
  correlated with it at 0.4-0.76 per class. Images and their metrics describe the jet core.
* Image -> particles (Alg. 4): one massless particle per pixel with intensity above a threshold
  (Alg. 4: ``> 0``), at the pixel centre, with pt_rel = the intensity. Rebinning the reconstructed
  particles gives back the image exactly.

Everything here is numpy and vectorised over the batch; nothing depends on TensorFlow except the
``tf.data`` helper :func:`make_image_dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from gsgm.data.jetnet_format import JET_CLASSES, JetSample
from gsgm.data.loading import load_jets
from gsgm.data.preprocessing import constituent_mass

#: Paper values: 25 x 25 pixels over eta_rel, phi_rel in [-0.4, 0.4].
NUM_PIXELS = 25
MAX_R = 0.4

__all__ = [
    "MAX_R",
    "NUM_PIXELS",
    "image_statistics",
    "images_to_jet_list",
    "images_to_particles",
    "jets_to_images",
    "load_jet_images",
    "make_image_dataset",
    "mass_over_pt",
    "pixel_centres",
    "pixel_edges",
]


def _check_geometry(num_pixels: int, max_r: float) -> None:
    if isinstance(num_pixels, bool) or int(num_pixels) != num_pixels or num_pixels < 1:
        raise ValueError(f"num_pixels must be a positive integer, got {num_pixels!r}")
    if not max_r > 0:
        raise ValueError(f"max_r must be > 0, got {max_r!r}")


def pixel_edges(num_pixels: int = NUM_PIXELS, max_r: float = MAX_R) -> np.ndarray:
    """Bin edges ``[N + 1]`` (float64) of both image axes: ``linspace(-max_r, max_r, N + 1)``."""
    _check_geometry(num_pixels, max_r)
    return np.linspace(-max_r, max_r, int(num_pixels) + 1, dtype=np.float64)


def pixel_centres(num_pixels: int = NUM_PIXELS, max_r: float = MAX_R) -> np.ndarray:
    """Pixel centres ``[N]`` (float64): ``-max_r + (k + 0.5) * 2 max_r / N`` (paper Alg. 4, lines 7, 16)."""
    _check_geometry(num_pixels, max_r)
    width = 2.0 * max_r / num_pixels
    return -max_r + (np.arange(num_pixels, dtype=np.float64) + 0.5) * width


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value (int64), -1 outside ``[edges[0], edges[-1]]``; the last bin is closed."""
    n = len(edges) - 1
    index = np.searchsorted(edges, values, side="right") - 1
    index = np.where(values == edges[-1], n - 1, index)
    return np.where((index >= 0) & (index < n), index, -1)


def jets_to_images(
    particles: np.ndarray | JetSample, num_pixels: int = NUM_PIXELS, max_r: float = MAX_R
) -> np.ndarray:
    """Jet images from JetNet particle features.

    Args:
        particles: ``[M, P, 4]`` (eta_rel, phi_rel, pt_rel, mask) or a JetSample; slots with mask 0
            are ignored, as are particles outside the ``[-max_r, max_r]^2`` window.
        num_pixels, max_r: image size ``N`` and half-width of the window.

    Returns:
        ``[M, N, N]`` float32; ``images[m, i, j]`` = summed pt_rel of jet ``m``'s particles with eta_rel
        in row bin ``i`` and phi_rel in column bin ``j`` (accumulated in float64).
    """
    if isinstance(particles, JetSample):
        particles = particles.particles
    particles = np.asarray(particles)
    if particles.ndim != 3 or particles.shape[-1] != 4:
        raise ValueError(f"particles must have shape [M, P, 4], got {list(particles.shape)}")
    # Compare in the precision of the data: float32 coordinates against float32-rounded edges, so that
    # a particle stored at float32(+-max_r) is inside the window (float32(0.4) > 0.4 in float64).
    dtype = np.result_type(particles.dtype, np.float32)
    edges = pixel_edges(num_pixels, max_r).astype(dtype)
    n = int(num_pixels)
    count = particles.shape[0]
    eta = particles[..., 0].astype(dtype)
    phi = particles[..., 1].astype(dtype)
    pt = particles[..., 2].astype(np.float64)
    rows, cols = _bin_index(eta, edges), _bin_index(phi, edges)
    keep = (particles[..., 3] > 0) & (rows >= 0) & (cols >= 0)
    jet = np.broadcast_to(np.arange(count)[:, None], keep.shape)
    flat = (jet[keep] * n + rows[keep]) * n + cols[keep]
    images = np.bincount(flat, weights=pt[keep], minlength=count * n * n)
    return images.reshape(count, n, n).astype(np.float32)


def _as_image_batch(images: np.ndarray) -> tuple[np.ndarray, bool]:
    """``[M, N, N]`` view of ``images`` (accepts ``[N, N]``, ``[M, N, N]``, ``[M, N, N, 1]``)."""
    images = np.asarray(images)
    single = images.ndim == 2
    if single:
        images = images[None]
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(
            f"images must have shape [N, N], [M, N, N] or [M, N, N, 1], got {list(images.shape)}"
        )
    return images, single


def images_to_particles(
    images: np.ndarray,
    max_r: float = MAX_R,
    threshold: float = 0.0,
    max_particles: int | None = None,
) -> np.ndarray:
    """Reconstruct particles from jet images (paper Alg. 4), batched, in JetNet layout.

    One massless particle per pixel with intensity ``> threshold`` (Alg. 4: ``threshold = 0``), at
    the pixel centre, with pt_rel = the intensity; sorted by decreasing pt_rel and zero-padded like
    JetNet files.

    Args:
        images: ``[M, N, N]`` (or ``[N, N]``, ``[M, N, N, 1]``) intensities in pt_rel units.
        max_r: half-width of the window the images cover.
        threshold: pixels at or below it are empty (generated images carry small noise; see
            :mod:`gsgm.generation.images` for the threshold used on them).
        max_particles: number of slots ``P``; default the largest particle count in the batch (at
            least 1). With fewer slots than particles the softest particles are dropped.

    Returns:
        ``[M, P, 4]`` float32 (eta_rel, phi_rel, pt_rel, mask); ``[P, 4]`` for a single 2-D image.
    """
    batch, single = _as_image_batch(images)
    count, n = batch.shape[0], batch.shape[1]
    centres = pixel_centres(n, max_r)
    flat = batch.reshape(count, n * n).astype(np.float64)
    occupied = flat > threshold
    counts = occupied.sum(axis=1)
    slots = int(max_particles) if max_particles is not None else max(int(counts.max(initial=0)), 1)
    if slots < 1:
        raise ValueError(f"max_particles must be >= 1, got {max_particles}")
    # Occupied pixels first, by decreasing intensity; stable, so equal intensities keep row-major order.
    order = np.argsort(np.where(occupied, -flat, np.inf), axis=1, kind="stable")[:, :slots]
    if order.shape[1] < slots:  # fewer pixels than slots: pad the index with a dummy (masked) pixel
        order = np.pad(order, ((0, 0), (0, slots - order.shape[1])))
    valid = np.arange(slots)[None, :] < np.minimum(counts, slots)[:, None]
    pt = np.take_along_axis(flat, order, axis=1)
    features = (
        np.stack([centres[order // n], centres[order % n], pt, np.ones_like(pt)], axis=-1) * valid[..., None]
    )
    features = features.astype(np.float32)
    return features[0] if single else features


def images_to_jet_list(
    images: np.ndarray, max_r: float = MAX_R, threshold: float = 0.0
) -> list[np.ndarray] | np.ndarray:
    """Paper Alg. 4 verbatim: per image an array ``[n, 3]`` of (eta, phi, pt), pixels in row-major order.

    A 2-D input gives one array, a batch a list of arrays (``[0, 3]`` for an empty image).
    """
    batch, single = _as_image_batch(images)
    n = batch.shape[1]
    centres = pixel_centres(n, max_r)
    jets = []
    for image in batch:
        rows, cols = np.nonzero(image > threshold)
        jets.append(np.stack([centres[rows], centres[cols], image[rows, cols]], axis=-1).astype(np.float32))
    return jets[0] if single else jets


def mass_over_pt(particles: np.ndarray) -> np.ndarray:
    """Normalised jet mass m / pT of each jet from its (massless) particles.

    Four-momenta ``pt_rel (cosh eta, cos phi, sin phi, sinh eta)`` with the relative coordinates: the
    invariant mass of massless particles does not change under the boost along the beam that shifts
    eta and the rotation that shifts phi, so relative coordinates give the same mass. Both m and pT
    are computed from the same particles, so m / pT does not depend on the overall intensity scale.

    Args:
        particles: ``[M, P, 4]`` (eta_rel, phi_rel, pt_rel, mask), e.g. from :func:`images_to_particles`.

    Returns:
        ``[M]`` float64; NaN for a jet without particles.
    """
    particles = np.asarray(particles, dtype=np.float64)
    if particles.ndim != 3 or particles.shape[-1] != 4:
        raise ValueError(f"particles must have shape [M, P, 4], got {list(particles.shape)}")
    eta, phi, pt, mask = np.moveaxis(particles, -1, 0)
    mass = constituent_mass(eta, phi, pt, mask)
    pt = pt * (mask > 0)
    jet_pt = np.hypot((pt * np.cos(phi)).sum(axis=1), (pt * np.sin(phi)).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(jet_pt > 0, mass / jet_pt, np.nan)


def load_jet_images(
    directory: str | os.PathLike,
    classes: str | Sequence[str],
    num_particles: int = 30,
    split: str = "all",
    max_jets_per_class: int | None = None,
    num_pixels: int = NUM_PIXELS,
    max_r: float = MAX_R,
) -> tuple[np.ndarray, np.ndarray]:
    """Read JetNet-format files (``"builtin"`` or a directory) and turn the jets into images.

    Splits and subsets are those of :func:`gsgm.data.loading.load_jets` (jetnet's 70/15/15 split).

    Returns:
        (images ``[M, N, N]`` float32, labels ``[M]`` int32 = index into JET_CLASSES).
    """
    sample = load_jets(directory, classes, num_particles, split=split, max_jets_per_class=max_jets_per_class)
    return jets_to_images(sample, num_pixels, max_r), sample.labels


def image_statistics(
    images: np.ndarray, max_images_for_distance: int = 4096, seed: int = 0
) -> dict[str, float]:
    """Statistics of a set of jet images that fix the noise range of the diffusion models.

    Returns a dict of floats:
        ``pixel_std``: standard deviation of all pixel values (the ``sigma_data`` of the consistency
            parameterisation and of the network input scaling);
        ``max_pairwise_distance``: largest Euclidean distance between two images (Song & Ermon 2020,
            technique 1: sigma_max should be about this large so that the prior covers the data),
            over a random subset of at most ``max_images_for_distance`` images (a lower bound when
            subsampled: on the shipped training split, 4,096 of 7,000 images give 1.342, all 1.360);
        ``nonzero_q01``, ``nonzero_q05``, ``nonzero_median``: quantiles of the non-zero pixel
            intensities (the smallest particles the model has to resolve).
    """
    batch, _ = _as_image_batch(images)
    flat = batch.reshape(batch.shape[0], -1).astype(np.float64)
    if flat.shape[0] < 2:
        raise ValueError("need at least two images")
    rng = np.random.default_rng(seed)
    subset = (
        flat
        if flat.shape[0] <= max_images_for_distance
        else flat[rng.choice(flat.shape[0], max_images_for_distance, replace=False)]
    )
    sq = (subset**2).sum(axis=1)
    largest = 0.0
    for start in range(0, subset.shape[0], 1024):  # chunked to bound memory at 1024 x M
        block = subset[start : start + 1024]
        d2 = sq[start : start + 1024, None] + sq[None, :] - 2.0 * block @ subset.T
        largest = max(largest, float(d2.max()))
    nonzero = flat[flat > 0]
    if nonzero.size == 0:
        raise ValueError("all images are empty")
    q01, q05, q50 = np.quantile(nonzero, [0.01, 0.05, 0.5])
    return {
        "pixel_std": float(flat.std()),
        "max_pairwise_distance": float(np.sqrt(max(largest, 0.0))),
        "nonzero_q01": float(q01),
        "nonzero_q05": float(q05),
        "nonzero_median": float(q50),
    }


def make_image_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    rank: int = 0,
    num_ranks: int = 1,
    index: np.ndarray | None = None,
):
    """``tf.data`` batches of jet images for training: dicts ``images`` [B, N, N, 1], ``labels`` [B].

    Shuffling draws a permutation of indices from ``seed`` (one fixed order per dataset object; the
    training loop builds one dataset per epoch with an epoch-dependent seed, so a resumed run sees
    the same batches) and gathers whole batches. ``rank``/``num_ranks`` select this process' strided
    shard before shuffling (:func:`gsgm.data.pipeline.shard_indices`); with ``index`` ([M] ids) each
    batch also carries ``index`` [B] int64.
    """
    import tensorflow as tf

    from gsgm.data.pipeline import shard_indices

    batch, _ = _as_image_batch(images)
    labels = np.asarray(labels).astype(np.int32)
    if labels.shape != (batch.shape[0],):
        raise ValueError(f"labels must have shape [{batch.shape[0]}], got {list(labels.shape)}")
    if batch.shape[0] and (labels.min() < 0 or labels.max() >= len(JET_CLASSES)):
        raise ValueError(f"labels must be in [0, {len(JET_CLASSES)}) (indices into JET_CLASSES)")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    shard = shard_indices(batch.shape[0], rank, num_ranks)
    if shard.size == 0:
        raise ValueError(f"rank {rank} of {num_ranks} gets no images out of {batch.shape[0]}")
    tensors = {
        "images": tf.constant(batch[shard][..., None].astype(np.float32)),
        "labels": tf.constant(labels[shard]),
    }
    if index is not None:
        tensors["index"] = tf.constant(np.asarray(index, dtype=np.int64)[shard])
    order = np.arange(shard.size, dtype=np.int64)
    if shuffle:
        order = np.random.default_rng(seed).permutation(order)
    ds = tf.data.Dataset.from_tensor_slices(order).batch(int(batch_size))
    ds = ds.map(lambda i: {k: tf.gather(v, i) for k, v in tensors.items()})
    return ds.prefetch(tf.data.AUTOTUNE)
