"""Shower observables and the W1 table of CaloClouds II (Table 1 of the calorimeter seminar).

Observables, from point-cloud shower samples (:class:`gsgm.data.calo_format.CaloSample`, cells in x, y
[mm], layer, energy [MeV]):

* per shower: the number of hits N_hits, the visible energy over the incident energy E_vis / E_inc
  [MeV / GeV], the centres of gravity m1_x, m1_y [mm] and m1_z [layers] (energy-weighted means);
* per hit: the cell energy E_cell [MeV], the depth (layer) for E_long and the radius from the shower
  axis (the energy-weighted centre in x and y) for E_radial, both weighted by the hit energy.

W1 follows CaloClouds II: each observable is standardised with the mean and standard deviation of the
truth sample, and W1 (scipy, with hit-energy weights for E_long and E_radial) is computed between a
bootstrap resample of each side; the table holds the mean and std over the resamples, x 1e3, with a
truth-vs-truth row (a second, independent truth sample) as the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from gsgm.data.calo_format import CaloSample

__all__ = [
    "OBSERVABLES",
    "ShowerObservables",
    "format_timing_markdown",
    "format_w1_markdown",
    "observables",
    "plot_arrays",
    "timing_rows",
    "w1_table",
]

#: Table 1's columns: (key, label)
OBSERVABLES: tuple[tuple[str, str], ...] = (
    ("n_hits", "N_hits"),
    ("e_ratio", "E_vis/E_inc"),
    ("e_cell", "E_cell"),
    ("e_long", "E_long"),
    ("e_radial", "E_radial"),
    ("m1_x", "m1,X"),
    ("m1_y", "m1,Y"),
    ("m1_z", "m1,Z"),
)


@dataclass
class ShowerObservables:
    """Observables of S showers with H hits in all.

    Attributes:
        energy: [S] incident energy, GeV.
        n_hits, e_vis, m1_x, m1_y, m1_z: [S] per shower (E_vis in MeV).
        hit_shower: [H] shower index of each hit; hit_energy, hit_layer, hit_radius: [H] (MeV, layer, mm).
    """

    energy: np.ndarray
    n_hits: np.ndarray
    e_vis: np.ndarray
    m1_x: np.ndarray
    m1_y: np.ndarray
    m1_z: np.ndarray
    hit_shower: np.ndarray
    hit_energy: np.ndarray
    hit_layer: np.ndarray
    hit_radius: np.ndarray

    def __len__(self) -> int:
        return int(self.energy.shape[0])

    @property
    def e_ratio(self) -> np.ndarray:
        return self.e_vis / self.energy

    def select(self, index: np.ndarray) -> ShowerObservables:
        """The showers at ``index`` (may repeat: a bootstrap resample); hits follow their showers."""
        index = np.asarray(index)
        starts = np.searchsorted(self.hit_shower, np.arange(len(self) + 1))
        pieces = [np.arange(starts[i], starts[i + 1]) for i in index]
        hits = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
        owner = np.repeat(np.arange(len(index)), [len(p) for p in pieces])
        return ShowerObservables(
            self.energy[index], self.n_hits[index], self.e_vis[index], self.m1_x[index], self.m1_y[index],
            self.m1_z[index], owner, self.hit_energy[hits], self.hit_layer[hits], self.hit_radius[hits],
        )  # fmt: skip

    def in_window(self, centre: float, half_width: float) -> ShowerObservables:
        """Showers with |E_inc - centre| <= half_width [GeV]."""
        return self.select(np.nonzero(np.abs(self.energy - centre) <= half_width)[0])


def observables(sample: CaloSample) -> ShowerObservables:
    """Compute :class:`ShowerObservables` of every shower of ``sample``."""
    mask = sample.mask > 0
    x, y, layer, energy = (sample.points[..., k] for k in range(4))
    e = np.where(mask, energy, 0.0).astype(np.float64)
    e_vis = e.sum(axis=1)
    safe = np.maximum(e_vis, 1e-12)
    m1 = [(e * v).sum(axis=1) / safe for v in (x, y, layer)]
    shower = np.nonzero(mask)[0]
    radius = np.hypot(x - m1[0][:, None], y - m1[1][:, None])
    return ShowerObservables(
        energy=sample.energies.astype(np.float64), n_hits=mask.sum(axis=1).astype(np.float64), e_vis=e_vis,
        m1_x=m1[0], m1_y=m1[1], m1_z=m1[2], hit_shower=shower, hit_energy=e[mask], hit_layer=layer[mask],
        hit_radius=radius[mask],
    )  # fmt: skip


def _values(obs: ShowerObservables, key: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(values, weights) of observable ``key``."""
    if key == "e_cell":
        return obs.hit_energy, None
    if key == "e_long":
        return obs.hit_layer, obs.hit_energy
    if key == "e_radial":
        return obs.hit_radius, obs.hit_energy
    return getattr(obs, key), None


def _standardised_w1(
    truth: ShowerObservables, other: ShowerObservables, key: str, scale: tuple[float, float]
) -> float:
    a, wa = _values(truth, key)
    b, wb = _values(other, key)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    mean, std = scale
    return float(stats.wasserstein_distance((a - mean) / std, (b - mean) / std, wa, wb))


def _scale(obs: ShowerObservables, key: str) -> tuple[float, float]:
    values, weights = _values(obs, key)
    mean = float(np.average(values, weights=weights))
    std = float(np.sqrt(np.average((values - mean) ** 2, weights=weights)))
    return mean, max(std, 1e-12)


def w1_table(
    truth: ShowerObservables, others: dict[str, ShowerObservables], *, resamples: int = 10, seed: int = 0
) -> dict[str, dict[str, dict[str, float]]]:
    """{label: {observable: {"mean", "std"}}} of 1e3 x standardised W1 against ``truth``.

    Each of the ``resamples`` draws resamples (with replacement) ``len(truth)`` truth showers and
    ``len(other)`` showers of each other sample. Put an independent truth sample among ``others``
    as the floor.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    scales = {key: _scale(truth, key) for key, _ in OBSERVABLES}
    scores = {label: {key: [] for key, _ in OBSERVABLES} for label in others}
    for _ in range(resamples):
        t = truth.select(rng.integers(0, len(truth), len(truth)))
        for label, other in others.items():
            o = other.select(rng.integers(0, len(other), len(other)))
            for key, _ in OBSERVABLES:
                scores[label][key].append(1e3 * _standardised_w1(t, o, key, scales[key]))
    return {
        label: {key: {"mean": float(np.mean(v)), "std": float(np.std(v))} for key, v in per.items()}
        for label, per in scores.items()
    }


def format_w1_markdown(table: dict[str, dict[str, dict[str, float]]]) -> str:
    """The W1 table as Markdown, laid out like the seminar's Table 1 (values x 1e-3)."""
    head = "| Simulator | " + " | ".join(f"W1 {label} (x1e-3)" for _, label in OBSERVABLES) + " |"
    rule = "| --- |" + " --- |" * len(OBSERVABLES)
    rows = [
        f"| {name} | "
        + " | ".join(f"{per[key]['mean']:.1f} ± {per[key]['std']:.1f}" for key, _ in OBSERVABLES)
        + " |"
        for name, per in table.items()
    ]
    return "\n".join([head, rule, *rows]) + "\n"


def plot_arrays(obs: ShowerObservables) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """{panel key: (values, weights)} for :func:`gsgm.plotting.calo.plot_calo_panels`."""
    return {
        "e_cell": (obs.hit_energy, None),
        "e_radial": (obs.hit_radius, obs.hit_energy),
        "e_long": (obs.hit_layer, obs.hit_energy),
        "e_ratio": (obs.e_ratio, None),
        "n_hits": (obs.n_hits, None),
        "m1_x": (obs.m1_x, None),
        "m1_y": (obs.m1_y, None),
        "m1_z": (obs.m1_z, None),
    }


def timing_rows(samples: dict[str, dict], baseline_seconds: float) -> list[dict]:
    """Rows of the timing table: per sample its sampler, steps, time per shower and the speed-up over
    the generator's own time per shower (``baseline_seconds``), which is the first row."""
    rows = [
        {
            "simulator": "GFlash (generator)",
            "steps": "",
            "ms_per_shower": 1e3 * baseline_seconds,
            "speedup": 1.0,
        }
    ]
    for label, attrs in samples.items():
        per = float(attrs["seconds"]) / max(int(attrs["num"]), 1)
        rows.append({"simulator": label, "steps": attrs.get("steps", ""), "ms_per_shower": 1e3 * per,
                     "speedup": baseline_seconds / per})  # fmt: skip
    return rows


def format_timing_markdown(rows: list[dict]) -> str:
    lines = [
        "| Simulator | Steps | Time per shower [ms] | Relative to the generator |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['simulator']} | {r['steps']} | {r['ms_per_shower']:.2f} | x{r['speedup']:.3g} |" for r in rows
    ]
    return "\n".join(lines) + "\n"
