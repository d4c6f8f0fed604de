"""Sample calorimeter showers from a trained calo run: shower flow, point diffusion, projection to cells.

Per shower (as CaloClouds II):

1. the shower-flow model gives the number of hits N, the visible energy and the per-layer hit counts
   n_l and energies E_l (EDM Heun, ``flow_steps``);
2. the hit-count calibration turns n_l into the number of points to generate, ``c^-1(n_l)``, where
   ``c(n) = a n + b n^2`` is fitted on a calibration batch (points that land in one cell merge, and
   cells below threshold vanish, so more points than hits are needed);
3. the point model generates the points (x, y, z, E) conditioned on E_inc and N, with one of the
   three samplers: ``"ddpm"`` (ancestral, ``ddpm_steps`` = 100, CaloClouds I), ``"edm"`` (Heun on the
   Karras grid, ``num_steps`` = 25, CaloClouds II) or ``"cm"`` (the consistency-distilled stage, one
   step, CaloClouds II (CM));
4. the points are sorted by depth and given to the layers by the calibrated counts, projected onto the
   cells, merged, rescaled so that each layer holds E_l, and cut at the threshold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from gsgm.data.calo_format import CaloSample, pad_points, write_point_cloud_file
from gsgm.diffusion.consistency import sample_consistency
from gsgm.diffusion.edm import VEAsVPDenoiser
from gsgm.diffusion.samplers import sample_ancestral, sample_probability_flow
from gsgm.diffusion.schedules import DiscreteCosineSchedule, KarrasSchedule
from gsgm.families.calo import CALO
from gsgm.generation.sample_sets import (
    MANIFEST_ATTRIBUTE,
    ChunkStore,
    arrays_hash,
    calo_arrays,
    chunk_seed,
    finished_already,
    make_manifest,
    prepare_output,
)

__all__ = ["SAMPLERS", "CaloSamples", "HitCalibration", "generate_from_model", "sample_showers_to_file"]

SAMPLERS = ("ddpm", "edm", "cm")
FLOW_STEPS = 25
#: showers per resumable chunk of ``sample_showers_to_file`` (each chunk sorts its own showers by size)
CHUNK_SHOWERS = 1024
DDPM_TRAINING_STEPS = 1000


@dataclass
class HitCalibration:
    """``hits = a n + b n^2`` for n points generated in a layer; :meth:`points_for` inverts it."""

    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(cls, requested: np.ndarray, obtained: np.ndarray) -> HitCalibration:
        """Least squares through the origin on per-layer (points requested, hits obtained) pairs."""
        n, h = np.asarray(requested, np.float64), np.asarray(obtained, np.float64)
        keep = n > 0
        if keep.sum() < 3:
            return cls()
        design = np.stack([n[keep], n[keep] ** 2], axis=1)
        a, b = np.linalg.lstsq(design, h[keep], rcond=None)[0]
        if not a > 0:
            return cls()
        return cls(float(a), float(min(b, 0.0)))

    def points_for(self, hits: np.ndarray) -> np.ndarray:
        """Points to generate for ``hits`` hits (int, >= hits where the fit loses hits)."""
        hits = np.asarray(hits, np.float64)
        if self.b == 0.0:
            n = hits / self.a
        else:
            disc = self.a**2 + 4.0 * self.b * hits
            n = np.where(disc > 0, (self.a - np.sqrt(np.maximum(disc, 0.0))) / (-2.0 * self.b), hits / self.a)
            n = np.where(disc > 0, n, self.a / (-2.0 * self.b))
        return np.where(hits > 0, np.maximum(np.round(n), hits), 0).astype(np.int64)


@dataclass
class CaloSamples:
    path: Path
    num: int
    sampler: str
    steps: int
    seconds: float
    calibration: HitCalibration = field(default_factory=HitCalibration)

    def summary(self) -> str:
        return (
            f"wrote {self.num} showers ({self.sampler}, {self.steps} steps) to {self.path} "
            f"in {self.seconds:.1f} s"
            f" ({1000 * self.seconds / max(self.num, 1):.1f} ms per shower)"
        )


_COMPILED: dict[int, tuple[object, object]] = {}


def compiled(denoiser):
    """``denoiser`` as one traced TensorFlow function (eager Keras calls dominate CPU sampling time),
    made once per denoiser object; ``reduce_retracing`` keeps few traces for varying batch and point
    counts."""
    known = _COMPILED.get(id(denoiser))
    if known is not None and known[0] is denoiser:
        return known[1]
    function = tf.function(lambda z, sigma, cond: denoiser(z, sigma, **cond), reduce_retracing=True)

    def call(z, sigma, **cond):
        return function(z, tf.cast(sigma, z.dtype) * tf.ones(tf.shape(z)[:1], z.dtype), cond)

    _COMPILED[id(denoiser)] = (denoiser, call)
    return call


def _karras(model) -> KarrasSchedule:
    d = model.diffusion
    return KarrasSchedule(d.sigma_min, d.sigma_max, d.rho)


def sample_flow(model, energies: np.ndarray, seed: int, steps: int = FLOW_STEPS):
    """(N [S], hits per layer [S, L], energy per layer [S, L] MeV) from the shower-flow model."""
    pre = model.preprocessor
    num_features = 2 + 2 * pre.num_layers
    noise = tf.random.stateless_normal([len(energies), num_features], seed=[seed, 0xF10])
    cond = {"energy": tf.constant(pre.energy_condition(energies))}
    z = sample_probability_flow(
        compiled(model.flow_denoiser), noise * model.diffusion.sigma_max, _karras(model), steps, cond=cond
    )
    return pre.inverse_flow(np.asarray(z), energies)


def sample_points(
    model, cond: np.ndarray, counts: np.ndarray, sampler: str, steps: int, seed: int
) -> np.ndarray:
    """[S, P, 4] standardised points (zero past ``counts``) with ``sampler`` in ``steps`` steps."""
    width = max(int(counts.max(initial=1)), 1)
    mask = (np.arange(width)[None, :] < counts[:, None]).astype(np.float32)
    mask_t = tf.constant(mask)
    noise = tf.random.stateless_normal([len(counts), width, 4], seed=[seed, 0x9017]) * mask_t[..., None]
    kwargs = {"cond": tf.constant(cond), "mask": mask_t}
    point_denoiser = compiled(model.point_denoiser)
    if sampler == "ddpm":
        vp = DiscreteCosineSchedule(DDPM_TRAINING_STEPS)
        denoiser = VEAsVPDenoiser(point_denoiser, vp, model.diffusion.sigma_max)
        out = sample_ancestral(denoiser, noise, vp, steps, seed=seed, cond=kwargs, mask=mask_t)
    elif sampler == "edm":
        out = sample_probability_flow(
            point_denoiser, noise * model.diffusion.sigma_max, _karras(model), steps, cond=kwargs
        )
    else:
        out = sample_consistency(
            point_denoiser, noise * model.diffusion.sigma_max, _karras(model), steps, seed=seed, cond=kwargs
        )
    return np.asarray(out) * mask[..., None]


def project_to_cells(
    points: np.ndarray, layer_counts: np.ndarray, layer_energy: np.ndarray, pre, threshold_mev: float
) -> np.ndarray:
    """One shower's generated points [n, 4] (x, y, depth, E) -> cells [m, 4] (x, y, layer, E).

    Points are sorted by depth and assigned to layers by ``layer_counts`` (sum n); energies are summed
    per cell, rescaled so that layer l holds ``layer_energy[l]``, and cells below ``threshold_mev`` dropped.
    """
    n_side, cell = pre.cells_per_side, pre.cell_mm
    order = np.argsort(points[:, 2], kind="stable")
    layer = np.repeat(np.arange(pre.num_layers), layer_counts)[: len(order)]
    pts = points[order]
    half = 0.5 * n_side * cell
    ix = np.floor((pts[:, 0] + half) / cell).astype(np.int64)
    iy = np.floor((pts[:, 1] + half) / cell).astype(np.int64)
    inside = (ix >= 0) & (ix < n_side) & (iy >= 0) & (iy < n_side)
    flat = (layer[inside] * n_side + ix[inside]) * n_side + iy[inside]
    cells = np.bincount(flat, weights=pts[inside, 3], minlength=pre.num_layers * n_side * n_side)
    cells = cells.reshape(pre.num_layers, -1)
    totals = cells.sum(axis=1)
    cells *= np.where(totals > 0, layer_energy / np.maximum(totals, 1e-12), 0.0)[:, None]
    lay, rest = np.nonzero(cells > threshold_mev)
    cx, cy = np.divmod(rest, n_side)
    centres = -half + cell * (np.arange(n_side) + 0.5)
    return np.stack([centres[cx], centres[cy], lay, cells[lay, rest]], axis=1).astype(np.float32)


def generate_from_model(model, energies: np.ndarray, *, sampler: str, steps: int, seed: int = 0,
                        batch_size: int = 64, threshold_mev: float | None = None,
                        calibration: HitCalibration | None = None) -> CaloSample:  # fmt: skip
    """Showers for ``energies`` [S] GeV (steps 2-4 of the module docstring)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    pre = model.preprocessor
    threshold_mev = pre.threshold_mev() if threshold_mev is None else threshold_mev
    calibration = calibration or HitCalibration()
    energies = np.asarray(energies, np.float32)
    num, layer_hits, layer_energy = sample_flow(model, energies, seed)
    requested = calibration.points_for(layer_hits)
    totals = requested.sum(axis=1)
    cond = pre.conditions(energies, num)
    clouds: list[np.ndarray] = [np.zeros((0, 4), np.float32)] * len(energies)
    order = np.argsort(-totals, kind="stable")  # similar sizes together: less padding per batch
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        z = sample_points(model, cond[index], totals[index], sampler, steps, seed + start)
        raw = pre.inverse_points(z)
        for row, i in enumerate(index):
            clouds[i] = project_to_cells(
                raw[row, : totals[i]], requested[i], layer_energy[i], pre, threshold_mev
            )
    points, counts = pad_points(clouds)
    return CaloSample(energies, points, counts, dict(pre.geometry))


def calibrate_hits(
    model, energies: np.ndarray, *, sampler: str, steps: int, seed: int, threshold_mev: float
) -> HitCalibration:
    """Fit :class:`HitCalibration` on showers generated with one point per requested hit."""
    from gsgm.data.calo_preprocessing import layer_sums

    _, layer_hits, _ = sample_flow(model, energies, seed)
    sample = generate_from_model(
        model, energies, sampler=sampler, steps=steps, seed=seed, threshold_mev=threshold_mev
    )
    obtained, _ = layer_sums(sample)
    return HitCalibration.fit(layer_hits.ravel(), obtained.ravel())


def sample_showers_to_file(run, out, per_class: int, *, sampler: str = "edm", steps: int | None = None,
                           seed: int = 0, energy: float | None = None, energy_min: float = 10.0,
                           energy_max: float = 90.0, batch_size: int = 64,
                           overwrite: bool = False) -> CaloSamples:  # fmt: skip
    """``gsgm sample --run RUN --per-class S``: S showers, energies uniform (or ``energy``), to ``out``.

    ``out`` is checked before sampling (a writable file name with room for the showers; an existing
    file only with ``overwrite``) and written atomically. Showers are generated in chunks of
    ``CHUNK_SHOWERS``, each with its own seed, kept in ``.<out>.partial`` as they finish (the hit
    calibration too): the same command after a kill continues with the missing chunks and writes
    the same file.

    ``sampler`` "cm" uses the run's consistency-distilled stage (``gsgm distill``); ``steps`` defaults
    to 100 (ddpm), the config's sampling.num_steps (edm, 25) or 1 (cm).
    """
    from gsgm.training.distill import resolve_run_for_steps
    from gsgm.training.run_dir import RunDirectory

    if sampler not in SAMPLERS:
        raise ValueError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if per_class < 1:
        raise ValueError(f"--per-class (showers) must be >= 1, got {per_class}")
    chosen = Path(run)
    if sampler == "cm":
        chosen = resolve_run_for_steps(run, 1)
        if not RunDirectory(chosen).read_metadata().get("distillation"):
            raise ValueError(
                f"{run} has no consistency-distilled stage (no distilled model for 1 steps): "
                f"run gsgm distill --run {run} first"
            )
    if batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    if energy is not None and not (np.isfinite(energy) and energy > 0):
        raise ValueError(f"--energy must be a positive number of GeV, got {energy}")
    model, cfg = CALO.load_run(chosen)
    if steps is None:
        steps = {"ddpm": cfg.sampling.ddpm_steps, "edm": cfg.sampling.num_steps, "cm": 1}[sampler]
    params = {
        "kind": "calo showers", "run": str(Path(chosen).resolve()), "sampler": sampler, "steps": int(steps),
        "seed": int(seed), "per_class": per_class, "energy": energy, "energy_min": float(energy_min),
        "energy_max": float(energy_max), "batch_size": int(batch_size), "chunk_size": CHUNK_SHOWERS,
    }  # fmt: skip
    if not overwrite and finished_already(out, params, directory=False):
        return CaloSamples(Path(out), per_class, sampler, int(steps), 0.0)
    # an estimate: about 1024 points of 4 float32 per shower, twice (temporary file and margin)
    prepare_output(out, directory=False, overwrite=overwrite, estimated_bytes=2 * per_class * 1024 * 16)
    store = ChunkStore(out, params, overwrite=overwrite)
    rng = np.random.default_rng(seed)
    energies = (
        np.full(per_class, energy, np.float32) if energy else rng.uniform(energy_min, energy_max, per_class)
    )
    threshold = model.preprocessor.threshold_mev()  # half a mip in the sensor, as the generator

    def fit_calibration():
        calibration = HitCalibration()
        if cfg.sampling.calibration_showers:
            cal_energies = np.random.default_rng(seed + 1).uniform(
                energy_min, energy_max, cfg.sampling.calibration_showers
            )
            calibration = calibrate_hits(
                model, cal_energies, sampler=sampler, steps=steps, seed=seed + 1, threshold_mev=threshold
            )
        return {"ab": np.array([calibration.a, calibration.b])}

    a, b = store.chunk("calibration", fit_calibration)["ab"]
    calibration = HitCalibration(float(a), float(b))
    clouds: list[np.ndarray] = []
    for k, first in enumerate(range(0, per_class, CHUNK_SHOWERS)):

        def make(k=k, first=first):
            # fresh traces per chunk: its round-off must not depend on the chunks sampled before it
            _COMPILED.clear()
            part = generate_from_model(
                model, energies[first : first + CHUNK_SHOWERS], sampler=sampler, steps=steps,
                seed=chunk_seed(seed, k), batch_size=batch_size, threshold_mev=threshold,
                calibration=calibration,
            )  # fmt: skip
            return {"points": part.points, "num_points": part.num_points}

        chunk = store.chunk(f"chunk-{k:05d}", make)
        clouds += [points[:count] for points, count in zip(chunk["points"], chunk["num_points"], strict=True)]
    seconds = store.seconds
    points, counts = pad_points(clouds)
    sample = CaloSample(np.asarray(energies, np.float32), points, counts, dict(model.preprocessor.geometry))
    attributes = {
        "sampler": sampler, "steps": int(steps), "run": str(chosen), "seed": int(seed),
        "calibration_a": calibration.a, "calibration_b": calibration.b, "seconds": seconds,
    }  # fmt: skip
    manifest = make_manifest(params, content=arrays_hash(calo_arrays(sample)))
    attributes[MANIFEST_ATTRIBUTE] = json.dumps(manifest)
    write_point_cloud_file(out, sample, attributes)
    store.finish()
    return CaloSamples(Path(out), len(sample), sampler, int(steps), seconds, calibration)
