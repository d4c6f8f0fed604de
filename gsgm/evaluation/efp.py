"""Energy-flow polynomials of many jets at once: the EFP sets jetnet's W1EFP and FPD/KPD use.

An EFP of a multigraph G with vertices 1..n and edges E (Komiske, Metodiev, Thaler, JHEP 04 (2018) 013):

    EFP_G = sum_{i_1..i_n} z_{i_1} ... z_{i_n} prod_{(k, l) in E} theta_{i_k i_l}

jetnet (0.2.5) computes them through ``energyflow.EFPSet(..., measure="hadr", beta=1, normed=None,
coords="ptyphim")`` with the JetNet (eta_rel, phi_rel, pt_rel) taken as (pT, y, phi), i.e.

* z_i = pt_rel_i (kappa = 1, not normalised: pt_rel already sums to about 1),
* theta_ij = sqrt(d_eta^2 + d_phi^2), with d_phi wrapped into [0, pi] (beta = 1),

one jet at a time in a Python loop (or processes), which is three quarters of an evaluation's time.
Here the same numbers come from one tensor contraction per connected graph over a chunk of jets: the
sum over particle indices of each connected component is a ``torch.einsum`` over [B, P] weights and
[B, P, P] angle powers (opt_einsum chooses the contraction order, batched matrix products do the
work), and a disconnected graph's EFP is the product of its components' EFPs, exactly as energyflow
defines it. Zero-padded particles have z = 0 and contribute nothing, so padded jets need no mask.

The graphs, their order and their columns come from energyflow's own enumeration (``EFPSet.graphs()``),
so the columns line up with jetnet's for any set of ``efpset_args``; energyflow remains the reference the
tests compare with (1e-10 relative, float64).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = [
    "FPD_KPD_EFPSET_ARGS",
    "W1EFP_EFPSET_ARGS",
    "EFPGraphSet",
    "batched_efps",
    "efp_graph_set",
    "w1efp_columns",
]

#: jetnet's ``w1efp`` default: the n = 4, d = 4, prime EFPs (5 graphs).
W1EFP_EFPSET_ARGS: tuple[tuple[str, int], ...] = (("n==", 4), ("d==", 4), ("p==", 1))
#: jetnet's ``get_fpd_kpd_jet_features``: every EFP with d <= 4 (36 graphs).
FPD_KPD_EFPSET_ARGS: tuple[tuple[str, int], ...] = (("d<=", 4),)
#: float64 bytes the angle powers of one chunk of jets may take (bounds memory for 150 particles).
DEFAULT_CHUNK_BYTES = 256 * 2**20

Edge = tuple[int, int]


@dataclass(frozen=True)
class EFPGraphSet:
    """The multigraphs of an EFP set, in energyflow's column order, split into connected components.

    Attributes:
        graphs: per column, its edges (vertex pairs, a repeated pair is a multi-edge).
        components: the distinct connected graphs (vertices relabelled 0..n-1, edges sorted).
        columns: per column, indices into ``components`` whose EFPs multiply to the column's EFP
            (empty for the graph with no edge, whose EFP is (sum z)^n; energyflow's sets with
            ``d >= 1`` have no such column).
        max_multiplicity: the largest number of parallel edges between two vertices (angle powers needed).
    """

    graphs: tuple[tuple[Edge, ...], ...]
    components: tuple[tuple[Edge, ...], ...]
    columns: tuple[tuple[int, ...], ...]
    max_multiplicity: int


def _connected_components(edges: Sequence[Edge]) -> list[tuple[Edge, ...]]:
    """Split a multigraph into connected components, each relabelled to vertices 0..k-1 in order."""
    parent: dict[int, int] = {}

    def root(v: int) -> int:
        while parent.setdefault(v, v) != v:
            v = parent[v]
        return v

    for a, b in edges:
        parent[root(a)] = root(b)
    groups: dict[int, list[Edge]] = {}
    for a, b in edges:
        groups.setdefault(root(a), []).append((a, b))
    components = []
    for group in groups.values():
        vertices = sorted({v for edge in group for v in edge})
        relabel = {v: i for i, v in enumerate(vertices)}
        components.append(tuple(sorted(tuple(sorted((relabel[a], relabel[b]))) for a, b in group)))
    return components


@cache
def efp_graph_set(efpset_args: tuple[tuple[str, int], ...]) -> EFPGraphSet:
    """The graphs of ``energyflow.EFPSet(*efpset_args)`` (jetnet's measure settings), decomposed.

    Args:
        efpset_args: energyflow's selection, e.g. ``(("d<=", 4),)``; see :data:`FPD_KPD_EFPSET_ARGS`.
    """
    from energyflow import EFPSet

    efpset = EFPSet(*efpset_args, measure="hadr", beta=1, normed=None, coords="ptyphim")
    graphs = tuple(tuple((int(a), int(b)) for a, b in graph) for graph in efpset.graphs())
    components: list[tuple[Edge, ...]] = []
    columns = []
    multiplicity = 1
    for graph in graphs:
        column = []
        for component in _connected_components(graph):
            if component not in components:
                components.append(component)
            column.append(components.index(component))
            multiplicity = max([multiplicity, *(component.count(edge) for edge in component)])
        columns.append(tuple(column))
    return EFPGraphSet(graphs, tuple(components), tuple(columns), multiplicity)


def _einsum_equation(component: Sequence[Edge]) -> tuple[str, list[tuple[str, int]]]:
    """The einsum equation of one connected graph and its operands (("z", 1) or ("theta", power)).

    Index ``a`` is the jet (batch); vertex k is letter k of ``b..``; every vertex carries a z, every
    distinct vertex pair a theta raised to its edge multiplicity.
    """
    letters = string.ascii_lowercase[1:]
    vertices = sorted({v for edge in component for v in edge})
    terms, operands = [], []
    for v in vertices:
        terms.append("a" + letters[v])
        operands.append(("z", 1))
    for edge in sorted(set(component)):
        terms.append("a" + letters[edge[0]] + letters[edge[1]])
        operands.append(("theta", component.count(edge)))
    return ",".join(terms) + "->a", operands


def _angles(eta: np.ndarray, phi: np.ndarray):
    """theta_ij [B, P, P] (torch, float64) with energyflow's wrapping of d_phi into [0, pi]."""
    import torch

    eta_t, phi_t = torch.from_numpy(eta), torch.from_numpy(phi)
    d_eta = eta_t[:, :, None] - eta_t[:, None, :]
    d_phi = torch.pi - torch.abs(torch.abs(phi_t[:, :, None] - phi_t[:, None, :]) - torch.pi)
    return torch.sqrt(d_eta * d_eta + d_phi * d_phi)


def _chunk_size(num_particles: int, powers: int, chunk_bytes: int) -> int:
    # theta, its powers and einsum's intermediates (at most a few [B, P, P] arrays) per jet
    per_jet = 8 * num_particles * num_particles * (powers + 3)
    return max(1, chunk_bytes // per_jet)


def _chunk_efps(chunk: np.ndarray, graph_set: EFPGraphSet, equations) -> np.ndarray:
    """EFPs [B, num_graphs] of one chunk of jets [B, P, 3] (eta, phi, z) in float64."""
    import torch

    z = torch.from_numpy(np.ascontiguousarray(chunk[..., 2]))
    theta = _angles(np.ascontiguousarray(chunk[..., 0]), np.ascontiguousarray(chunk[..., 1]))
    powers = {1: theta}
    for power in range(2, graph_set.max_multiplicity + 1):
        powers[power] = powers[power - 1] * theta
    component_values = [
        torch.einsum(equation, *[z if kind == "z" else powers[p] for kind, p in operands]).numpy()
        for equation, operands in equations
    ]
    total_z = z.sum(dim=1).numpy()
    out = np.empty((len(chunk), len(graph_set.graphs)), dtype=np.float64)
    for column, factors in enumerate(graph_set.columns):
        if not factors:  # the graph without edges (one vertex): sum of z
            out[:, column] = total_z
            continue
        value = component_values[factors[0]].copy()
        for factor in factors[1:]:
            value *= component_values[factor]
        out[:, column] = value
    return out


def batched_efps(
    particles: np.ndarray,
    efpset_args: tuple[tuple[str, int], ...] = FPD_KPD_EFPSET_ARGS,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> np.ndarray:
    """EFPs of every jet, equal to ``jetnet.utils.efps(particles, efpset_args=...)`` (float64).

    Args:
        particles: [N, P, >=3] with (eta_rel, phi_rel, pt_rel) first, as jetnet takes them; a fourth
            column (the mask) is ignored, zero-padded particles (pt_rel = 0) contribute nothing.
            Particles are massless (jetnet's ``use_particle_masses=False``).
        efpset_args: energyflow's graph selection (:data:`FPD_KPD_EFPSET_ARGS`,
            :data:`W1EFP_EFPSET_ARGS`, or any other ``EFPSet`` arguments).
        chunk_bytes: memory bound of one chunk of jets (the [B, P, P] angle powers).

    Returns:
        [N, num_graphs] float64, columns in energyflow's order.
    """
    import torch

    particles = np.asarray(particles)
    if particles.ndim != 3 or particles.shape[-1] < 3:
        raise ValueError(
            f"particles must be [N, P, >=3] (eta_rel, phi_rel, pt_rel, ...), got {particles.shape}"
        )
    graph_set = efp_graph_set(tuple(tuple(arg) for arg in efpset_args))
    equations = [_einsum_equation(component) for component in graph_set.components]
    num_jets = len(particles)
    out = np.empty((num_jets, len(graph_set.graphs)), dtype=np.float64)
    data = particles[..., :3].astype(np.float64)
    # Jets sorted by their last occupied slot, so each chunk is cut to its own longest jet: at 150 slots
    # most are padding, and the cost of the cyclic graphs grows as P^3.
    occupied = data[..., 2] != 0
    lengths = np.where(occupied.any(axis=1), data.shape[1] - np.argmax(occupied[:, ::-1], axis=1), 1)
    order = np.argsort(lengths, kind="stable")
    powers = graph_set.max_multiplicity
    with torch.no_grad():
        start = 0
        while start < num_jets:
            # the widest jet of a chunk sets its memory: cap the chunk by the width at its far end
            first_guess = start + _chunk_size(int(lengths[order[start]]), powers, chunk_bytes)
            stop = start + _chunk_size(
                int(lengths[order[min(first_guess, num_jets) - 1]]), powers, chunk_bytes
            )
            index = order[start : min(stop, num_jets)]
            out[index] = _chunk_efps(data[index, : int(lengths[index[-1]])], graph_set, equations)
            start += len(index)
    return out


@cache
def w1efp_columns() -> tuple[int, ...]:
    """Columns of the FPD/KPD set (d <= 4) that are W1EFP's graphs (n = 4, d = 4, prime), in W1EFP's order.

    W1EFP's 5 graphs are a subset of the 36, so one computation of the 36 serves both metrics.
    """
    full = efp_graph_set(FPD_KPD_EFPSET_ARGS)
    subset = efp_graph_set(W1EFP_EFPSET_ARGS)
    canonical = [tuple(sorted(tuple(sorted(e)) for e in g)) for g in full.graphs]
    columns = []
    for graph in subset.graphs:
        key = tuple(sorted(tuple(sorted(e)) for e in graph))
        if key not in canonical:
            raise ValueError(f"W1EFP graph {graph} is not in the FPD/KPD set")
        columns.append(canonical.index(key))
    return tuple(columns)
