"""RAMBO: uniform massless N-particle phase space and the q-space of the phase-space paper.

RAMBO (Kleiss, Stirling, Ellis, Comput. Phys. Commun. 40 (1986) 359) draws N unconstrained massless
4-vectors q_i, isotropic in angle with energies distributed as q0 exp(-q0) (so the density in
Cartesian d^3 q is exp(-|q|) / |q| per particle, eq. 8 of the phase-space paper), and maps them to a
point p of phase space by a conformal transformation: with Q = sum_i q_i, M = sqrt(Q^2),

    b = -Q_vec / M,  x = W / M,  gamma = Q0 / M = sqrt(1 + b^2),  a = 1 / (1 + gamma),
    p_i^0 = x (gamma q_i^0 + b . q_i),   p_i = x (q_i + b q_i^0 + a (b . q_i) b),

a boost to the centre-of-momentum frame followed by a rescaling to total energy W (here W = 1).
The p are uniformly distributed with respect to massless Lorentz-invariant phase space. Given (b, x)
the map is linear and is inverted by the opposite boost: q_i = Lambda(-b) p_i / x. That inverse is
how physical events are taken to q-space (:func:`embed`, the four embeddings of section II.4).

Conventions: 4-vectors are ``[..., 4]`` arrays ``(E, px, py, pz)``, energies in units of the total
energy W = 1; events are ``[n_events, n_particles, 4]``. NumPy functions work in float64; the TF
functions keep their input's dtype.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "EMBEDDINGS",
    "conformal_parameters",
    "embed",
    "inverse_rambo",
    "massless",
    "minkowski_dot",
    "rambo",
    "rambo_map",
    "rambo_map_tf",
    "random_conformal",
    "sample_q",
]

Embedding = Literal["single", "copies", "continuous", "identity"]
#: The q-space embeddings of section II.4 (data-augmentation options).
EMBEDDINGS: tuple[str, ...] = ("single", "copies", "continuous", "identity")


def minkowski_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a.b = a0 b0 - a_vec . b_vec over the last axis (metric +---)."""
    return a[..., 0] * b[..., 0] - np.sum(a[..., 1:] * b[..., 1:], axis=-1)


def massless(three: np.ndarray) -> np.ndarray:
    """[..., 3] 3-momenta -> [..., 4] massless 4-vectors (E = |p|)."""
    three = np.asarray(three, dtype=np.float64)
    return np.concatenate([np.linalg.norm(three, axis=-1, keepdims=True), three], axis=-1)


def sample_q(rng: np.random.Generator, n_events: int, n_particles: int) -> np.ndarray:
    """[n_events, n_particles, 4] massless q-vectors of RAMBO's first step (float64).

    cos(theta) and phi uniform; q0 = -log(r1 r2) (density q0 exp(-q0)), as in Kleiss et al.
    """
    if n_events < 0 or n_particles < 2:
        raise ValueError(f"need n_events >= 0 and n_particles >= 2, got {n_events}, {n_particles}")
    r = rng.random((n_events, n_particles, 4))
    cos_t = 2.0 * r[..., 0] - 1.0
    sin_t = np.sqrt(np.clip(1.0 - cos_t**2, 0.0, None))
    phi = 2.0 * np.pi * r[..., 1]
    # 1 - r lies in (0, 1]: log never sees 0
    q0 = -np.log((1.0 - r[..., 2]) * (1.0 - r[..., 3]))
    return np.stack([q0, q0 * sin_t * np.cos(phi), q0 * sin_t * np.sin(phi), q0 * cos_t], axis=-1)


def conformal_parameters(q: np.ndarray, total_energy: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(b [n, 3], x [n]): the boost vector and rescaling that take the events q [n, N, 4] to the CM
    frame with total energy ``total_energy``."""
    total = np.sum(q, axis=-2)
    mass = np.sqrt(minkowski_dot(total, total))
    return -total[..., 1:] / mass[..., None], total_energy / mass


def _boost(v: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lorentz transformation Lambda(b) of v [n, N, 4] with b [n, 3] = gamma beta."""
    gamma = np.sqrt(1.0 + np.sum(b * b, axis=-1))[:, None]
    a = 1.0 / (1.0 + gamma)
    bv = np.einsum("nk,njk->nj", b, v[..., 1:])
    energy = gamma * v[..., 0] + bv
    vec = v[..., 1:] + b[:, None, :] * (v[..., 0] + a * bv)[..., None]
    return np.concatenate([energy[..., None], vec], axis=-1)


def rambo_map(q: np.ndarray, total_energy: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RAMBO's conformal map q -> p; returns (p [n, N, 4], b [n, 3], x [n]).

    q may be any massive or massless 4-vectors; for q from :func:`sample_q` the p are uniform on
    massless phase space. sum_i p_i = (total_energy, 0, 0, 0) to float64 round-off times the boost
    gamma = Q0 / M: below 1e-12 for N >= 3 (tested); for N = 2 nearly collinear q pairs (M -> 0) reach
    ~1e-11.
    """
    q = np.asarray(q, dtype=np.float64)
    b, x = conformal_parameters(q, total_energy)
    return x[:, None, None] * _boost(q, b), b, x


def inverse_rambo(p: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The q [n, N, 4] that :func:`rambo_map` sends to p [n, N, 4] with parameters (b [n, 3], x [n])."""
    p = np.asarray(p, dtype=np.float64)
    return _boost(p / np.asarray(x, np.float64)[:, None, None], -np.asarray(b, np.float64))


def rambo(rng: np.random.Generator, n_events: int, n_particles: int, total_energy: float = 1.0) -> np.ndarray:
    """[n_events, n_particles, 4] events uniform on massless phase space in the CM frame (float64)."""
    return rambo_map(sample_q(rng, n_events, n_particles), total_energy)[0]


def random_conformal(rng: np.random.Generator, n: int, n_particles: int) -> tuple[np.ndarray, np.ndarray]:
    """n random (b [n, 3], x [n]) with RAMBO's joint distribution: those of fresh RAMBO q-draws."""
    return conformal_parameters(sample_q(rng, n, n_particles))


def embed(
    p: np.ndarray, kind: Embedding, rng: np.random.Generator, copies: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Physical events p [n, N, 4] -> q-space 3-vectors, by one of the embeddings of section II.4.

    * ``"single"``: one (b, x), drawn once, for every event (a diffeomorphic copy of phase space);
    * ``"copies"``: ``copies`` fixed (b, x), every event mapped by each (the output has copies x n rows,
      copy-major);
    * ``"continuous"``: a fresh (b, x) per event;
    * ``"identity"``: q = p.

    Returns (q3 [m, N, 3] float64, source [m] int64, the row of p each q came from). The energies are
    recovered as |q| (the map keeps vectors massless).
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 3 or p.shape[-1] != 4:
        raise ValueError(f"events must have shape [n, N, 4], got {p.shape}")
    n, num = p.shape[:2]
    index = np.arange(n)
    if kind == "identity":
        return p[..., 1:].copy(), index
    if kind == "single":
        b, x = random_conformal(rng, 1, num)
        q = inverse_rambo(p, np.repeat(b, n, 0), np.repeat(x, n, 0))
        return q[..., 1:], index
    if kind == "copies":
        if copies < 1:
            raise ValueError(f"copies must be >= 1, got {copies}")
        b, x = random_conformal(rng, copies, num)
        q = np.concatenate([inverse_rambo(p, np.repeat(b[k : k + 1], n, 0), np.repeat(x[k : k + 1], n, 0))
                            for k in range(copies)])  # fmt: skip
        return q[..., 1:], np.tile(index, copies)
    if kind == "continuous":
        b, x = random_conformal(rng, n, num)
        return inverse_rambo(p, b, x)[..., 1:], index
    raise ValueError(f"unknown q-space embedding {kind!r}; choose one of {', '.join(EMBEDDINGS)}")


def rambo_map_tf(q3, total_energy: float = 1.0):
    """TF version of :func:`rambo_map` for massless q: q3 [B, N, 3] -> p [B, N, 4] (input dtype).

    Every generated q-space point maps to a valid phase-space point: sum_i p_i = (W, 0, 0, 0) up to
    the round-off of the dtype (use float64 for 1e-15).
    """
    import tensorflow as tf  # here, so that NumPy users of this module do not load TensorFlow

    q3 = tf.convert_to_tensor(q3)
    q0 = tf.norm(q3, axis=-1)
    total0 = tf.reduce_sum(q0, axis=-1)  # [B]
    total3 = tf.reduce_sum(q3, axis=-2)  # [B, 3]
    mass = tf.sqrt(total0**2 - tf.reduce_sum(total3**2, axis=-1))
    b = -total3 / mass[:, None]
    x = total_energy / mass
    gamma = total0 / mass
    a = 1.0 / (1.0 + gamma)
    bq = tf.einsum("bk,bnk->bn", b, q3)
    energy = x[:, None] * (gamma[:, None] * q0 + bq)
    vec = x[:, None, None] * (q3 + b[:, None, :] * (q0 + a[:, None] * bq)[..., None])
    return tf.concat([energy[..., None], vec], axis=-1)
