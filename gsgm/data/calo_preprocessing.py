"""Reversible normalisation of calorimeter showers for the point and shower-flow models.

Point features (per hit): x and y [mm] and z = layer + 0.5, optionally dequantized (spread uniformly
over the cell and the layer), and ln E [MeV]; each standardised with the training sample's mean and
standard deviation. Conditions: the standardised ln E_inc (both models) and ln N (the point model).

Shower-flow features (per shower, ``2 + 2 L``): ln N, ln(E_vis / E_inc), the fraction of the hits in
each layer and the fraction of the visible energy in each layer, standardised per feature.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gsgm.data.calo_format import CaloSample
from gsgm.utils.atomic import write_json_atomic

__all__ = ["CaloPreprocessor", "flow_features", "layer_sums"]

_MIN_STD = 1e-3


def layer_sums(sample: CaloSample) -> tuple[np.ndarray, np.ndarray]:
    """(hits [N, L], visible energy [N, L] MeV) per layer."""
    num_layers = sample.num_layers
    mask = sample.mask
    layer = np.clip(sample.points[..., 2].astype(np.int64), 0, num_layers - 1)
    onehot = (layer[..., None] == np.arange(num_layers)) * mask[..., None]
    return onehot.sum(axis=1), (onehot * sample.points[..., 3:4]).sum(axis=1)


def flow_features(sample: CaloSample) -> np.ndarray:
    """[N, 2 + 2 L] raw shower-flow features (ln N, ln(E_vis/E_inc [MeV/GeV]), hit and energy fractions)."""
    hits, energy = layer_sums(sample)
    n = np.maximum(hits.sum(axis=1), 1.0)
    e_vis = np.maximum(energy.sum(axis=1), 1e-6)
    return np.concatenate(
        [
            np.log(n)[:, None],
            np.log(e_vis / sample.energies)[:, None],
            hits / n[:, None],
            energy / e_vis[:, None],
        ],
        axis=1,
    ).astype(np.float32)


@dataclass
class CaloPreprocessor:
    """Means and standard deviations fitted on training showers (saved as preprocessing.json)."""

    point_mean: list[float]
    point_std: list[float]
    log_energy_mean: float
    log_energy_std: float
    log_n_mean: float
    log_n_std: float
    flow_mean: list[float]
    flow_std: list[float]
    num_layers: int
    cell_mm: float
    cells_per_side: int
    max_points: int
    geometry: dict

    @classmethod
    def fit(cls, sample: CaloSample) -> CaloPreprocessor:
        """Fit on ``sample`` (the training showers; uses the cell-centre coordinates, not dequantized)."""
        feats = cls._raw_points(sample.points)[sample.mask > 0]
        log_e, log_n = np.log(sample.energies), np.log(np.maximum(sample.num_points, 1))
        flow = flow_features(sample)
        return cls(
            point_mean=feats.mean(axis=0).tolist(),
            point_std=np.maximum(feats.std(axis=0), _MIN_STD).tolist(),
            log_energy_mean=float(log_e.mean()),
            log_energy_std=float(max(log_e.std(), _MIN_STD)),
            log_n_mean=float(log_n.mean()),
            log_n_std=float(max(log_n.std(), _MIN_STD)),
            flow_mean=flow.mean(axis=0).tolist(),
            flow_std=np.maximum(flow.std(axis=0), _MIN_STD).tolist(),
            num_layers=sample.num_layers,
            cell_mm=float(sample.geometry.get("cell_mm", 1.0)),
            cells_per_side=int(sample.geometry.get("cells_per_side", 1)),
            max_points=int(sample.points.shape[1]),
            geometry=dict(sample.geometry),
        )

    @staticmethod
    def _raw_points(points: np.ndarray) -> np.ndarray:
        out = np.empty(points.shape, np.float64)
        out[..., :2] = points[..., :2]
        out[..., 2] = points[..., 2] + 0.5
        out[..., 3] = np.log(np.maximum(points[..., 3], 1e-9))
        return out

    def transform_points(self, sample: CaloSample, rng: np.random.Generator | None = None) -> np.ndarray:
        """[N, P, 4] standardised point features (zero at padding); dequantized when ``rng`` is given."""
        raw = self._raw_points(sample.points)
        if rng is not None:
            jitter = rng.uniform(-0.5, 0.5, size=raw.shape[:-1] + (3,))
            raw[..., :2] += jitter[..., :2] * self.cell_mm
            raw[..., 2] += jitter[..., 2]
        out = (raw - np.asarray(self.point_mean)) / np.asarray(self.point_std)
        return (out * sample.mask[..., None]).astype(np.float32)

    def inverse_points(self, z: np.ndarray) -> np.ndarray:
        """Standardised [..., 4] -> (x [mm], y [mm], continuous depth in layers, E [MeV])."""
        raw = np.asarray(z, np.float64) * np.asarray(self.point_std) + np.asarray(self.point_mean)
        return np.concatenate([raw[..., :3], np.exp(raw[..., 3:4])], axis=-1)

    def conditions(self, energies: np.ndarray, num_points: np.ndarray) -> np.ndarray:
        """[N, 2] point-model conditions (standardised ln E_inc, ln N)."""
        return np.stack(
            [
                self.energy_condition(energies),
                (np.log(np.maximum(num_points, 1)) - self.log_n_mean) / self.log_n_std,
            ],
            axis=1,
        ).astype(np.float32)

    def energy_condition(self, energies: np.ndarray) -> np.ndarray:
        """[N] standardised ln E_inc (the shower-flow condition)."""
        return (
            (np.log(np.asarray(energies, np.float64)) - self.log_energy_mean) / self.log_energy_std
        ).astype(np.float32)

    def transform_flow(self, sample: CaloSample) -> np.ndarray:
        return ((flow_features(sample) - np.asarray(self.flow_mean)) / np.asarray(self.flow_std)).astype(
            np.float32
        )

    def inverse_flow(
        self, z: np.ndarray, energies: np.ndarray, max_points: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Shower-flow output -> (N [S] int, hits per layer [S, L] int summing to N, energy per layer
        [S, L] MeV)."""
        raw = np.asarray(z, np.float64) * np.asarray(self.flow_std) + np.asarray(self.flow_mean)
        cap = int(max_points or self.max_points)
        n = np.clip(np.round(np.exp(raw[:, 0])), 1, cap).astype(np.int64)
        e_vis = np.exp(raw[:, 1]) * np.asarray(energies, np.float64)
        layers = self.num_layers
        hit_frac = np.maximum(raw[:, 2 : 2 + layers], 0.0)
        energy_frac = np.maximum(raw[:, 2 + layers :], 0.0)
        hit_frac = hit_frac / np.maximum(hit_frac.sum(axis=1, keepdims=True), 1e-12)
        energy_frac = energy_frac / np.maximum(energy_frac.sum(axis=1, keepdims=True), 1e-12)
        return n, largest_remainder(hit_frac, n), energy_frac * e_vis[:, None]

    def threshold_mev(self, threshold_mip: float = 0.5) -> float:
        """The hit threshold [MeV]: ``threshold_mip`` times the mip energy of the geometry's sensor."""
        sensor = self.geometry.get("sensor")
        if not sensor:
            return 0.0
        return threshold_mip * sensor["mip_dedx"] * sensor["density"] * self.geometry["sensor_mm"] / 10.0

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> CaloPreprocessor:
        return cls(**json.loads(Path(path).read_text()))


def largest_remainder(fractions: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """[S, L] non-negative integers proportional to ``fractions`` (rows sum to 1) that sum to ``totals``."""
    exact = fractions * np.asarray(totals)[:, None]
    counts = np.floor(exact).astype(np.int64)
    missing = np.asarray(totals) - counts.sum(axis=1)
    order = np.argsort(-(exact - counts), axis=1, kind="stable")
    for i, k in enumerate(missing):
        counts[i, order[i, : int(k)]] += 1
    return counts
