"""The antenna (APS) distribution of eq. 21 on massless N-particle phase space, sampled exactly.

Target (CM frame, total energy sqrt(s) = 1, s_ij = 2 p_i . p_j):

    dP ∝ A(p) Theta(max_{i<j} s_ij <= xi_max min_{i<j} s_ij) dPhi_N,
    A(p) = 1 / [(p1.p2)(p2.p3) ... (pN.p1)],

the antenna pole structure of a colour-ordered N-gluon amplitude (eq. 21 of the phase-space paper,
whose text lost the formula; this is the APS of its Ref. [48]) with a dimensionless infrared cut-off
on the ratios of the invariants, as the paper describes SARGE's: xi_max -> infinity is more singular.
The cut is symmetric under every permutation and A(p) under cyclic shifts and reversal of the
particle order; :func:`sample_antenna` also permutes the particles at random (as the paper does), so
the sample's law is fully permutation invariant. (A cut s_ij > y_min on every pair would be kept
with a probability of 1e-5 .. 1e-3 at N = 10, the ratio cut with 0.1 .. 0.4 %.)

**Generator: SARGE** (Draggiotis, van Hameren, Kleiss, Phys. Lett. B 483 (2000) 124), rebuilt here
from its construction, with every step derived below (no code of theirs is used):

1. q_1, q_N back to back with energy 1/2 each, uniform direction: density (2/pi) delta^4(q_1 + q_N - P)
   with respect to dq_1 dq_N (dq = d^4q delta(q^2) theta(q0); two-body massless phase space is pi/2).
2. For j = 2 .. N-1, q_j from the *dipole* (a, b) = (q_{j-1}, q_N): in the rest frame of a + b,
   with xi_a = a.k / a.b and xi_b = k.b / a.b, one has k0 = E (xi_a + xi_b) (E = a0 = b0 there),
   cos(a, k) = (xi_b - xi_a) / (xi_a + xi_b), and
   dk (a.b) / ((a.k)(k.b)) = (1/2) dln xi_a dln xi_b dphi: density in (ln xi, phi) space = dipole pole.
   The product of the N-2 dipoles telescopes to (q_1.q_N)^2 A(q).
3. The 2N-4 log-xi's are drawn jointly: they are the differences of the 2N-3 log invariants
   S = {q_j.q_N (j < N)} u {q_j.q_{j+1} (j <= N-2)} (a unit-Jacobian triangular map, up to a common
   offset), and those are drawn uniformly in the polytope "all pairwise differences <= L = ln xi_max"
   (modulo the offset). Volume (2N-3) L^(2N-4): choose which invariant is the smallest uniformly,
   the others uniform in [0, L] above it. Equivalently: every ratio of two invariants of S lies in
   [1 / xi_max, xi_max].
4. RAMBO's conformal map (boost + rescale of the total, :func:`gsgm.data.rambo.rambo_map`) takes
   the q's to phase space. A(q) dq^N is invariant under Lorentz transformations and scalings, the
   ratios of S too, and the RAMBO identity prod dq_i = prod dp_i delta^4(P - sum p) s^2 x^(-2N-1) dx
   d^3b / gamma integrates the back-to-back start to a constant 1/(2 pi).

Result (exact, :func:`sarge_density`): the generated p have density, with respect to
dPhi_N = prod d^3p_i / (2 E_i) delta^4(P - sum p),

    phi(p) = s^2 A(p) Theta_S(p; xi_max) / (2 pi^(N-1) (2N-3) (ln xi_max)^(2N-4)),

Theta_S = every ratio of two invariants of S within [1/xi_max, xi_max]. S is a subset of all pairs,
so the target's cut region lies inside Theta_S: keeping the SARGE events that pass the cut leaves
exactly A Theta_cut. The kept fraction is the integral of phi over the cut region (tested against
RAMBO, :func:`antenna_acceptance`).

Conventions as :mod:`gsgm.data.rambo`: events [n, N, 4] float64 (E, px, py, pz), total energy 1.
"""

from __future__ import annotations

import numpy as np

from gsgm.data.rambo import rambo_map

__all__ = [
    "antenna_acceptance",
    "log_aps_weight",
    "massless_dot",
    "pair_invariants",
    "sample_antenna",
    "sarge_density",
    "sarge_events",
    "sarge_invariants",
    "ratio_cut",
]


def log_aps_weight(p: np.ndarray) -> np.ndarray:
    """log A(p) [n] = -sum_i log(p_i . p_{i+1}) (cyclic, N+1 = 1) for events p [n, N, 4]."""
    dots = massless_dot(p, np.roll(p, -1, axis=1))
    return -np.sum(np.log(dots), axis=1)


def sarge_invariants(p: np.ndarray) -> np.ndarray:
    """The 2N-3 dot products S of SARGE's construction [n, 2N-3] for events p [n, N, 4] in antenna order:
    (p_1.p_N, p_1.p_2, p_2.p_N, p_2.p_3, ..., p_{N-2}.p_{N-1}, p_{N-1}.p_N)."""
    n = p.shape[1]
    last = p[:, -1:, :]
    with_last = massless_dot(p[:, :-1], last)  # [n, N-1]: p_j . p_N
    adjacent = massless_dot(p[:, :-2], p[:, 1:-1])  # [n, N-2]: p_j . p_{j+1}, j <= N-2
    out = np.empty((p.shape[0], 2 * n - 3))
    out[:, 0::2] = with_last
    out[:, 1::2] = adjacent
    return out


def _phase_space_volume(n: int) -> float:
    """Volume of massless N-body phase space at s = 1: (pi/2)^(N-1) / ((N-1)! (N-2)!)."""
    from math import factorial, pi

    return (pi / 2) ** (n - 1) / (factorial(n - 1) * factorial(n - 2))


def sarge_density(p: np.ndarray, xi_max: float) -> np.ndarray:
    """phi(p) [n]: the exact density of :func:`sarge_events` (antenna order) w.r.t. dPhi_N at s = 1."""
    n = p.shape[1]
    log_s = np.log(sarge_invariants(p))
    inside = (log_s.max(axis=1) - log_s.min(axis=1)) <= np.log(xi_max)
    log_norm = (
        np.log(2.0) + (n - 1) * np.log(np.pi) + np.log(2 * n - 3) + (2 * n - 4) * np.log(np.log(xi_max))
    )
    return np.where(inside, np.exp(log_aps_weight(p) - log_norm), 0.0)


def ratio_cut(p: np.ndarray, xi_max: float) -> np.ndarray:
    """Bool [n]: the events p [n, N, 4] pass max_{i<j} s_ij <= xi_max min_{i<j} s_ij (eq. 21's cut)."""
    s = pair_invariants(p)
    return s.max(axis=1) <= xi_max * s.min(axis=1)


def antenna_acceptance(n_particles: int, xi_max: float, mean_weight: float) -> float:
    """Predicted fraction of SARGE events passing the cut, from E_uniform[A Theta_cut] = ``mean_weight``
    (e.g. a RAMBO estimate): Vol(Phi_N) * mean_weight / (2 pi^(N-1) (2N-3) (ln xi_max)^(2N-4))."""
    n = n_particles
    norm = 2.0 * np.pi ** (n - 1) * (2 * n - 3) * np.log(xi_max) ** (2 * n - 4)
    return float(_phase_space_volume(n) * mean_weight / norm)


def _polytope_log_invariants(rng: np.random.Generator, n_events: int, m: int, log_xi: float) -> np.ndarray:
    """[n, m] points uniform on {y in R^m: max - min <= log_xi} modulo a common shift (gauge: min = 0).

    Split by which coordinate is the smallest: each piece maps with unit Jacobian onto the cube
    [0, log_xi]^(m-1), so the smallest coordinate is uniform over the m and the others are uniform.
    """
    y = rng.random((n_events, m)) * log_xi
    smallest = rng.integers(0, m, n_events)
    y[np.arange(n_events), smallest] = 0.0
    return y


def massless_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a.b [...] of massless 4-vectors [..., 4] without cancellation: |a| |b| |a^ - b^|^2 / 2."""
    na, nb = np.linalg.norm(a[..., 1:], axis=-1), np.linalg.norm(b[..., 1:], axis=-1)
    diff = a[..., 1:] / na[..., None] - b[..., 1:] / nb[..., None]
    return 0.5 * na * nb * np.sum(diff * diff, axis=-1)


def pair_invariants(p: np.ndarray) -> np.ndarray:
    """s_ij = 2 p_i . p_j [n, N(N-1)/2] for i < j (row-major order) of massless events p [n, N, 4]."""
    i, j = np.triu_indices(p.shape[1], 1)
    return 2.0 * massless_dot(p[:, i], p[:, j])


def _boost_from_rest(k: np.ndarray, frame: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """4-vectors k [n, 4] given in the rest frame of ``frame`` [n, 4] (mass ``mass`` [n]) -> the lab."""
    energy = (frame[:, 0] * k[:, 0] + np.sum(frame[:, 1:] * k[:, 1:], axis=1)) / mass
    vec = k[:, 1:] + frame[:, 1:] * ((k[:, 0] + energy) / (mass + frame[:, 0]))[:, None]
    return np.concatenate([energy[:, None], vec], axis=1)


def _to_rest(k: np.ndarray, frame: np.ndarray, mass: np.ndarray, frame_dot_k: np.ndarray) -> np.ndarray:
    """4-vectors k [n, 4] in the lab -> the rest frame of ``frame`` [n, 4] (inverse of the above)."""
    energy = frame_dot_k / mass
    vec = k[:, 1:] - frame[:, 1:] * ((k[:, 0] + energy) / (mass + frame[:, 0]))[:, None]
    return np.concatenate([energy[:, None], vec], axis=1)


def _dipole(a: np.ndarray, b: np.ndarray, xi_a: np.ndarray, xi_b: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Massless k [n, 4] with a.k = xi_a a.b, k.b = xi_b a.b and azimuth phi about a, for massless a, b."""
    frame = a + b
    ab = massless_dot(a, b)
    mass = np.sqrt(2.0 * ab)
    a_rest = _to_rest(a, frame, mass, ab)  # (a + b).a = a.b
    half = 0.5 * mass  # a0 = b0 in the rest frame
    axis = a_rest[:, 1:] / np.linalg.norm(a_rest[:, 1:], axis=1, keepdims=True)
    # any orthonormal pair perpendicular to the axis will do: phi is uniform
    helper = np.where(np.abs(axis[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    e1 = helper - np.sum(helper * axis, axis=1, keepdims=True) * axis
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(axis, e1)
    total = xi_a + xi_b
    cos = (xi_b - xi_a) / total
    sin = np.sqrt(np.clip(1.0 - cos**2, 0.0, None))
    direction = cos[:, None] * axis + sin[:, None] * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)
    energy = half * total
    k_rest = np.concatenate([energy[:, None], energy[:, None] * direction], axis=1)
    k = _boost_from_rest(k_rest, frame, mass)
    k[:, 0] = np.linalg.norm(k[:, 1:], axis=1)  # exactly massless (changes E by round-off only)
    return k


def sarge_events(rng: np.random.Generator, n_events: int, n_particles: int, xi_max: float) -> np.ndarray:
    """[n_events, N, 4] SARGE events in antenna order with density :func:`sarge_density` (float64).

    Total (1, 0, 0, 0) to float64 round-off: the conformal map is applied twice (the second is the
    identity up to round-off and removes the first one's boost-amplified error).
    """
    n = n_particles
    if n < 3:
        raise ValueError(f"the antenna needs N >= 3 particles, got {n}")
    if not xi_max > 1.0:
        raise ValueError(f"xi_max must exceed 1, got {xi_max}")
    log_xi = float(np.log(xi_max))
    cos = 2.0 * rng.random(n_events) - 1.0
    sin = np.sqrt(1.0 - cos**2)
    azimuth = 2.0 * np.pi * rng.random(n_events)
    direction = np.stack([sin * np.cos(azimuth), sin * np.sin(azimuth), cos], axis=1)
    q = np.empty((n_events, n, 4))
    q[:, 0] = np.concatenate([np.full((n_events, 1), 0.5), 0.5 * direction], axis=1)
    q[:, -1] = np.concatenate([np.full((n_events, 1), 0.5), -0.5 * direction], axis=1)
    # log invariants y: even columns log(q_j.q_N) (j = 1..N-1), odd ones log(q_j.q_{j+1}) (j = 1..N-2)
    y = _polytope_log_invariants(rng, n_events, 2 * n - 3, log_xi)
    phis = 2.0 * np.pi * rng.random((n_events, n - 2))
    for j in range(1, n - 1):  # q_{j+1} (0-based index j) from the dipole (q_j, q_N)
        base = y[:, 2 * j - 2]  # log(q_j . q_N)
        xi_a = np.exp(y[:, 2 * j - 1] - base)  # (q_j . q_{j+1}) / (q_j . q_N)
        xi_b = np.exp(y[:, 2 * j] - base)  # (q_{j+1} . q_N) / (q_j . q_N)
        q[:, j] = _dipole(q[:, j - 1], q[:, -1], xi_a, xi_b, phis[:, j - 1])
    p = rambo_map(q)[0]
    # the first map's boost can be large (gamma ~ xi_max): it leaves the masses at round-off times
    # gamma^2. Reset E = |p| (a round-off change), then map again: that map is the identity up to
    # round-off with gamma ~ 1, so the result is massless and conserves (1, 0, 0, 0) to ~1e-15.
    p[..., 0] = np.linalg.norm(p[..., 1:], axis=-1)
    return rambo_map(p)[0]


def sample_antenna(
    n_events: int,
    seed: int,
    n_particles: int = 10,
    xi_max: float = 1000.0,
    *,
    permute: bool = True,
    batch: int = 50_000,
) -> np.ndarray:
    """[n_events, N, 4] events of eq. 21, exact: SARGE events kept if they pass :func:`ratio_cut`.

    ``permute``: randomly permute the particles of each event (the paper's choice; the law is then
    symmetric under every permutation), else keep the antenna order 1..N (cyclic symmetry).
    Same seed, same events (for a fixed ``batch``). About 0.3 % of SARGE events pass at N = 10.
    """
    if n_events < 1:
        raise ValueError(f"number of events must be >= 1, got {n_events}")
    rng = np.random.default_rng(seed)
    kept, have = [], 0
    while have < n_events:
        p = sarge_events(rng, batch, n_particles, xi_max)
        accept = ratio_cut(p, xi_max)
        kept.append(p[accept])
        have += int(accept.sum())
    events = np.concatenate(kept)[:n_events]
    if permute:
        order = np.argsort(rng.random(events.shape[:2]), axis=1)
        events = np.take_along_axis(events, order[:, :, None], axis=1)
    return events
