"""Per-class summary statistics of JetNet-format jets, as a dict (for JSON) and as a text table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from gsgm.data.jetnet_format import CLASS_NAMES, JET_CLASSES, JetSample, parse_classes
from gsgm.data.loading import available_classes, detect_num_particles, load_jets, resolve_data_dir

# Width of the jet-mass histogram bins used for the peak: fine enough to place the top (~175 GeV) and
# W/Z (~80-95 GeV) peaks to a few GeV, coarse enough to be stable with a couple of thousand jets.
MASS_BIN_GEV = 5.0


def mass_peak(mass: np.ndarray, bin_width: float = MASS_BIN_GEV) -> float:
    """Mode of the jet-mass distribution: centre [GeV] of the fullest ``bin_width`` bin starting at 0 GeV.

    Args:
        mass: [n] jet masses in GeV (n >= 1).
    """
    mass = np.asarray(mass, dtype=np.float64)
    upper = max(float(mass.max()), 0.0) + bin_width
    edges = np.arange(0.0, upper + bin_width, bin_width)
    counts, edges = np.histogram(np.clip(mass, 0.0, None), bins=edges)
    peak = int(np.argmax(counts))  # the lowest-mass bin wins a tie
    return float(0.5 * (edges[peak] + edges[peak + 1]))


def summarize_sample(sample: JetSample, bin_width: float = MASS_BIN_GEV) -> dict[str, dict[str, Any]]:
    """Statistics per class present in ``sample`` (keys in JET_CLASSES order).

    Per class: ``count``, ``num_particles`` (P, particle slots), ``multiplicity_mean`` and
    ``multiplicity_std`` (real particles per jet, from the mask), ``mass_peak_gev`` (see :func:`mass_peak`),
    ``mass_mean_gev``, ``pt_min_gev``/``pt_max_gev`` (jet pT), ``eta_min``/``eta_max`` (jet eta) and
    ``abs_eta_rel_max`` (largest |eta_rel| of a real particle; large values flag odd constituents).
    All values are plain Python numbers, so the dict serialises to JSON as is.
    """
    result: dict[str, dict[str, Any]] = {}
    for index, jet_class in enumerate(JET_CLASSES):
        selected = sample.labels == index
        if not selected.any():
            continue
        particles, jets = sample.particles[selected], sample.jets[selected]
        mask = particles[..., 3] > 0
        multiplicity = mask.sum(axis=1)
        result[jet_class] = {
            "name": CLASS_NAMES[jet_class],
            "count": int(selected.sum()),
            "num_particles": int(particles.shape[1]),
            "multiplicity_mean": float(multiplicity.mean()),
            "multiplicity_std": float(multiplicity.std()),
            "mass_peak_gev": mass_peak(jets[:, 2], bin_width),
            "mass_mean_gev": float(jets[:, 2].mean()),
            "pt_min_gev": float(jets[:, 0].min()),
            "pt_max_gev": float(jets[:, 0].max()),
            "eta_min": float(jets[:, 1].min()),
            "eta_max": float(jets[:, 1].max()),
            "abs_eta_rel_max": float(np.abs(particles[..., 0][mask]).max()) if mask.any() else 0.0,
        }
    return result


def summarize(
    data: JetSample | str | os.PathLike,
    classes: str | Sequence[str] | None = None,
    num_particles: int | None = None,
    bin_width: float = MASS_BIN_GEV,
) -> dict[str, dict[str, Any]]:
    """Per-class statistics of a JetSample or of the JetNet files in a directory (or ``"builtin"``).

    For a directory: ``classes=None`` takes every class with a file; ``num_particles=None`` picks 30 or
    150 from the files present (30 if both). Missing files raise
    :class:`gsgm.data.loading.MissingDataError`, invalid ones JetNetFormatError.
    For a JetSample, ``classes`` restricts the output; ``num_particles`` is ignored.

    Returns:
        {class: {statistic: value}} as described in :func:`summarize_sample`.
    """
    if isinstance(data, JetSample):
        summary = summarize_sample(data, bin_width)
        if classes is not None:
            wanted = parse_classes(classes)
            summary = {c: summary[c] for c in wanted if c in summary}
        return summary
    directory = resolve_data_dir(data)
    wanted = parse_classes(classes) if classes is not None else None
    if num_particles is None:
        num_particles = detect_num_particles(directory, wanted)
    if wanted is None:
        # Every class on disk; with none, ask for all so the error lists every expected file.
        wanted = available_classes(directory, num_particles) or list(JET_CLASSES)
    sample = load_jets(directory, wanted, num_particles, split="all")
    summary = summarize_sample(sample, bin_width)
    return {c: summary[c] for c in wanted}


_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (header, key, format)
    ("jets", "count", "{:d}"),
    ("P", "num_particles", "{:d}"),
    ("mult mean", "multiplicity_mean", "{:.1f}"),
    ("mult std", "multiplicity_std", "{:.1f}"),
    ("m peak[GeV]", "mass_peak_gev", "{:.1f}"),
    ("m mean[GeV]", "mass_mean_gev", "{:.1f}"),
    ("pT min[GeV]", "pt_min_gev", "{:.1f}"),
    ("pT max[GeV]", "pt_max_gev", "{:.1f}"),
    ("eta min", "eta_min", "{:.2f}"),
    ("eta max", "eta_max", "{:.2f}"),
    ("|eta_rel|max", "abs_eta_rel_max", "{:.2f}"),
)


def format_table(summary: dict[str, dict[str, Any]]) -> str:
    """Fixed-width text table of :func:`summarize`'s output, one row per class (no trailing newline)."""
    rows = [["class", "name"] + [header for header, _, _ in _COLUMNS]]
    for jet_class, stats in summary.items():
        name = stats.get("name", CLASS_NAMES.get(jet_class, ""))
        rows.append([jet_class, name] + [fmt.format(stats[key]) for _, key, fmt in _COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        # Text columns left-aligned, numbers right-aligned so that decimal points line up.
        cells = [cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
