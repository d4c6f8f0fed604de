"""DIS events as images, and the paper's bijective rescaling of the pixel momentum fractions.

Images (paper section III): ``[N, n, n, 3]`` over (eta, phi) with ``eta`` in [-eta_max, eta_max] on
axis 1 and ``phi`` in [-pi, pi) on axis 2 (the periodic axis), channels (pi+, e-, K+) as
:data:`gsgm.data.dis_format.SPECIES`; a pixel holds the sum of the z = 2 pt cosh(eta) / sqrt(s) of its
particles (z adds up exactly, pt would not, see the paper). ``n`` is 64 by default, 16 and 32 show
the pixelation effect (paper Fig. 3). Images map back to "particles" at the pixel centres
(:func:`images_to_events`), which is how Pythia *with pixelation* and the model are compared.

Rescaling (paper eqs. 13-17): ``f(z) = S(z) E(z) + (1 - S(z)) L(z)`` with

    E(z) = a1 exp(c1 z) + b1,  E(z2) = z2, E'(z2) = 1   =>  E(z) = z2 + (exp(c1 (z - z2)) - 1) / c1
    L(z) = a2 ln(z + c2) + b2, L(z1) = z1, L'(z1) = 1   =>  L(z) = z1 + (z1 + c2) ln((z + c2) / (z1 + c2))
    S(z) = 1 / (1 + exp(-alpha (z - beta)))

E is convex and L concave with the tangent ``y = z`` at z2 and z1, so E >= z >= L and
``f' = S E' + (1 - S) L' + S' (E - L) > 0``: f is strictly increasing (bijective) for any c1, c2,
alpha > 0 and z1 < z2. E stretches the region near z -> 1 (the scattered electron's peak), L the
region near z -> 0 (soft hadrons), linear in between. A linear map then sends ``f(0) -> z'_min`` and
``f(1) -> z'_max`` (paper: -0.76 and 0.86), so every z > 0 lands above z'_min; empty pixels are set to
-1, leaving the gap (-1, z'_min] that lets a model generate exact zeros. The inverse treats
``z' <= z'_min`` as empty. No upper cut: z > 1 (several particles in one pixel) maps above z'_max.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from gsgm.data.dis_format import SPECIES, DisEvents

__all__ = [
    "EMPTY",
    "PIXELATIONS",
    "ZRescaling",
    "events_to_images",
    "image_sparsity",
    "images_to_events",
    "make_dis_dataset",
    "pixel_centres",
    "pixel_edges",
]

#: Value of an empty pixel after the rescaling.
EMPTY = -1.0
#: The pixelation options of the paper's Fig. 3.
PIXELATIONS = (16, 32, 64)


def _check_pixels(num_pixels: int) -> int:
    if isinstance(num_pixels, bool) or not isinstance(num_pixels, int | np.integer) or num_pixels < 2:
        raise ValueError(f"num_pixels must be an integer >= 2, got {num_pixels!r}")
    return int(num_pixels)


def pixel_edges(num_pixels: int, eta_max: float) -> tuple[np.ndarray, np.ndarray]:
    """``(eta_edges [n + 1], phi_edges [n + 1])``: uniform in [-eta_max, eta_max] and [-pi, pi]."""
    n = _check_pixels(num_pixels)
    return np.linspace(-eta_max, eta_max, n + 1), np.linspace(-np.pi, np.pi, n + 1)


def pixel_centres(num_pixels: int, eta_max: float) -> tuple[np.ndarray, np.ndarray]:
    """``(eta_centres [n], phi_centres [n])``."""
    eta, phi = pixel_edges(num_pixels, eta_max)
    return 0.5 * (eta[1:] + eta[:-1]), 0.5 * (phi[1:] + phi[:-1])


def events_to_images(events: DisEvents, num_pixels: int = 64) -> np.ndarray:
    """``[N, n, n, 3]`` float32 images (axis 1 eta, axis 2 phi, channels pi+, e-, K+) of summed z."""
    n = _check_pixels(num_pixels)
    z = events.z()
    mask = events.mask
    eta, phi, pid = (events.particles[..., k].astype(np.float64) for k in (1, 2, 3))
    ev = np.broadcast_to(np.arange(len(events))[:, None], mask.shape)[mask]
    # floor of the scaled coordinate; the clip keeps eta -> eta_max and phi -> pi inside (both < by format)
    i_eta = np.clip(np.floor((eta[mask] + events.eta_max) / (2 * events.eta_max) * n), 0, n - 1).astype(
        np.int64
    )
    i_phi = np.clip(np.floor((phi[mask] + np.pi) / (2 * np.pi) * n), 0, n - 1).astype(np.int64)
    channel = np.zeros(ev.shape, np.int64)
    for k, species in enumerate(SPECIES):
        channel[pid[mask] == species] = k
    images = np.zeros((len(events), n, n, len(SPECIES)), np.float64)
    np.add.at(images, (ev, i_eta, i_phi, channel), z[mask])
    return images.astype(np.float32)


def images_to_events(images: np.ndarray, eta_max: float, sqrt_s: float) -> DisEvents:
    """Non-empty pixels of ``[N, n, n, 3]`` z images as particles at the pixel centres (sorted by z).

    ``pt = z sqrt(s) / (2 cosh(eta_centre))``; event features are (NaN, NaN, num_particles): the
    generator's Q2 and x are not known for images.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] != len(SPECIES):
        raise ValueError(f"images must have shape [N, n, n, {len(SPECIES)}], got {list(images.shape)}")
    n = images.shape[1]
    eta_c, phi_c = pixel_centres(n, eta_max)
    filled = images > 0
    counts = filled.reshape(len(images), -1).sum(axis=1)
    size = max(int(counts.max(initial=0)), 1)
    ev, ie, ip, ch = np.nonzero(filled)
    z = images[ev, ie, ip, ch].astype(np.float64)
    order = np.lexsort((-z, ev))
    ev, ie, ip, ch, z = ev[order], ie[order], ip[order], ch[order], z[order]
    slot = np.arange(len(ev)) - np.searchsorted(ev, ev)
    particles = np.zeros((len(images), size, 4), np.float32)
    eta = eta_c[ie]
    particles[ev, slot, 0] = z * sqrt_s / (2.0 * np.cosh(eta))
    particles[ev, slot, 1] = eta
    particles[ev, slot, 2] = phi_c[ip]
    particles[ev, slot, 3] = np.asarray(SPECIES, np.float32)[ch]
    features = np.full((len(images), 3), np.nan, np.float32)
    features[:, 2] = counts
    return DisEvents(particles, features, float(sqrt_s), float(eta_max))


def image_sparsity(images: np.ndarray) -> float:
    """Fraction of empty pixels (all channels together; paper: 99.95 % at 64 x 64)."""
    return float(np.mean(np.asarray(images) <= 0))


@dataclass(frozen=True)
class ZRescaling:
    """The bijection of the module docstring with its parameters (defaults: gsgm's choice; the paper
    gives only z'_min = -0.76 and z'_max = 0.86)."""

    z1: float = 0.1
    z2: float = 0.8
    c1: float = 5.0
    c2: float = 1e-5
    alpha: float = 15.0
    beta: float = 0.45
    z_prime_min: float = -0.76
    z_prime_max: float = 0.86

    def __post_init__(self):
        if not 0 < self.z1 < self.z2 < 1:
            raise ValueError(f"need 0 < z1 < z2 < 1, got z1={self.z1}, z2={self.z2}")
        if not (self.c1 > 0 and self.c2 > 0 and self.alpha > 0):
            raise ValueError(f"c1, c2 and alpha must be > 0, got {self.c1}, {self.c2}, {self.alpha}")
        if not EMPTY < self.z_prime_min < self.z_prime_max <= 1:
            raise ValueError(f"need -1 < z'_min < z'_max <= 1, got {self.z_prime_min}, {self.z_prime_max}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def blend(self, z) -> np.ndarray:
        """``f(z) = S E + (1 - S) L`` (float64), z >= 0."""
        z = np.asarray(z, np.float64)
        exp_part = self.z2 + np.expm1(self.c1 * (z - self.z2)) / self.c1
        log_part = self.z1 + (self.z1 + self.c2) * np.log((z + self.c2) / (self.z1 + self.c2))
        s = 0.5 * (1.0 + np.tanh(0.5 * self.alpha * (z - self.beta)))  # the sigmoid, overflow-free
        return s * exp_part + (1.0 - s) * log_part

    def _scale(self) -> tuple[float, float]:
        lo, hi = float(self.blend(0.0)), float(self.blend(1.0))
        return lo, (self.z_prime_max - self.z_prime_min) / (hi - lo)

    def forward(self, z) -> np.ndarray:
        """z >= 0 (any shape) -> z' (float32): z = 0 -> -1, z > 0 -> above z'_min, z = 1 -> z'_max."""
        z = np.asarray(z, np.float64)
        if np.any(z < 0) or not np.all(np.isfinite(z)):
            raise ValueError("z must be finite and >= 0")
        lo, scale = self._scale()
        out = np.full(z.shape, EMPTY, np.float32)
        filled = z > 0  # images are sparse: evaluate f only where there is something
        out[filled] = self.z_prime_min + (self.blend(z[filled]) - lo) * scale
        return out

    def inverse(self, z_prime, z_max: float = 4.0) -> np.ndarray:
        """z' -> z (float64): z' <= z'_min is empty (0); others by bisection of f (60 halvings of
        [0, z_max], i.e. to ~4e-18 absolute); z' beyond f(z_max) gives z_max."""
        zp = np.asarray(z_prime)
        lo_f, scale = self._scale()
        filled = zp > self.z_prime_min
        goal = lo_f + (zp[filled].astype(np.float64) - self.z_prime_min) / scale
        lo = np.zeros(goal.shape)
        hi = np.full_like(lo, z_max)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = self.blend(mid) < goal
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        out = np.zeros(zp.shape, np.float64)
        out[filled] = 0.5 * (lo + hi)
        return out


def make_dis_dataset(
    images: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    rank: int = 0,
    num_ranks: int = 1,
    index: np.ndarray | None = None,
):
    """``tf.data`` batches ``{"images": [B, n, n, 3]}`` (rescaled z') of this rank's shard.

    As :func:`gsgm.data.images.make_image_dataset`: a strided shard per rank, one permutation from
    ``seed`` (the loop passes an epoch-dependent seed), whole batches gathered; with ``index`` each
    batch carries ``index`` [B] int64.
    """
    import tensorflow as tf

    from gsgm.data.pipeline import shard_indices

    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must have shape [N, n, n, C], got {list(images.shape)}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    shard = shard_indices(images.shape[0], rank, num_ranks)
    if shard.size == 0:
        raise ValueError(f"rank {rank} of {num_ranks} gets no images out of {images.shape[0]}")
    tensors = {"images": tf.constant(images[shard])}
    if index is not None:
        tensors["index"] = tf.constant(np.asarray(index, dtype=np.int64)[shard])
    order = np.arange(shard.size, dtype=np.int64)
    if shuffle:
        order = np.random.default_rng(seed).permutation(order)
    ds = tf.data.Dataset.from_tensor_slices(order).batch(int(batch_size))
    ds = ds.map(lambda i: {k: tf.gather(v, i) for k, v in tensors.items()})
    return ds.prefetch(tf.data.AUTOTUNE)
