"""Make GFlash shower samples on all cores: seeded chunks, a progress bar, a point-cloud file.

The showers are produced in chunks of ``chunk_size``; chunk k draws its incident energies and showers
from ``numpy.random.default_rng(SeedSequence([seed, k]))``, and the chunks are concatenated in order,
so a file depends on (seed, chunk_size, energies, settings) and not on the number of worker processes.
Energies are uniform in [energy_min, energy_max] GeV (the seminar's 10-90 GeV photons), or fixed when
``energy_min == energy_max``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsgm.data.calo_format import CaloSample, pad_points, write_point_cloud_file
from gsgm.data.gflash import CaloGeometry, GFlashSettings, simulate_shower

__all__ = ["ShowerTask", "generate_showers", "shower_provenance", "time_generator"]

GENERATOR = "gsgm.data.gflash (GFlash parametrisation, hep-ex/0001020; not Geant4)"


@dataclass(frozen=True)
class ShowerTask:
    """One chunk: ``num`` showers of chunk ``index`` under base ``seed``."""

    index: int
    num: int
    seed: int
    energy_min: float
    energy_max: float
    settings: GFlashSettings
    geometry: CaloGeometry


def _run_chunk(task: ShowerTask) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(np.random.SeedSequence([task.seed, task.index]))
    energies = rng.uniform(task.energy_min, task.energy_max, size=task.num)
    clouds = [simulate_shower(e, rng, task.geometry, task.settings).points for e in energies]
    return energies.astype(np.float32), clouds


def generate_showers(
    num_showers: int,
    seed: int,
    energy_min: float = 10.0,
    energy_max: float = 90.0,
    *,
    chunk_size: int = 100,
    workers: int | None = None,
    settings: GFlashSettings | None = None,
    geometry: CaloGeometry | None = None,
    progress: bool = True,
) -> CaloSample:
    """Simulate ``num_showers`` photon showers; returns them as a padded CaloSample.

    Args:
        num_showers: N >= 1.
        seed: base seed >= 0 (each chunk derives its own stream).
        energy_min, energy_max: incident energies [GeV], uniform (equal: fixed energy).
        chunk_size: showers per seeded chunk (part of what defines the file).
        workers: processes (default: all cores); the result does not depend on it.
        settings, geometry: generator knobs and calorimeter (defaults: GFlash, ILD-like).
        progress: a tqdm bar on stderr.
    """
    if num_showers < 1:
        raise ValueError(f"num_showers must be >= 1, got {num_showers}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 0 < energy_min <= energy_max:
        raise ValueError(f"need 0 < energy_min <= energy_max (GeV), got {energy_min}, {energy_max}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    settings, geometry = settings or GFlashSettings(), geometry or CaloGeometry()
    tasks = [
        ShowerTask(k, min(chunk_size, num_showers - start), seed, energy_min, energy_max, settings, geometry)
        for k, start in enumerate(range(0, num_showers, chunk_size))
    ]
    from tqdm import tqdm

    results = []
    with tqdm(total=num_showers, unit="shower", file=sys.stderr, disable=not progress, desc="showers") as bar:
        if workers == 1 or len(tasks) == 1:
            for task in tasks:
                results.append(_run_chunk(task))
                bar.update(task.num)
        else:
            # spawn: workers start clean, whatever the parent imported (TensorFlow threads do not fork well)
            with multiprocessing.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
                for task, result in zip(tasks, pool.imap(_run_chunk, tasks), strict=True):
                    results.append(result)
                    bar.update(task.num)
    energies = np.concatenate([r[0] for r in results])
    points, counts = pad_points([c for r in results for c in r[1]])
    return CaloSample(energies, points, counts, geometry.to_dict())


def shower_provenance(
    seed: int, energy_min: float, energy_max: float, chunk_size: int, settings: GFlashSettings, command: str
) -> dict[str, object]:
    """HDF5 root attributes saying how a shower file was made."""
    import gsgm

    return {
        "generator": GENERATOR,
        "command": command,
        "seed": int(seed),
        "chunk_seed_rule": "numpy SeedSequence([seed, chunk index])",
        "chunk_size": int(chunk_size),
        "energy_min_gev": float(energy_min),
        "energy_max_gev": float(energy_max),
        "settings": json.dumps(dataclasses.asdict(settings), sort_keys=True),
        "version_gsgm": gsgm.__version__,
        "version_numpy": np.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def write_showers(path: str | os.PathLike, sample: CaloSample, attributes: dict[str, object]) -> Path:
    """Write a generated sample (point-cloud layout, atomic)."""
    return write_point_cloud_file(path, sample, attributes)


def time_generator(
    num_showers: int, seed: int = 0, energy_min: float = 10.0, energy_max: float = 90.0
) -> float:
    """Seconds per shower of the generator on one core (the timing table's baseline)."""
    rng = np.random.default_rng(seed)
    energies = rng.uniform(energy_min, energy_max, size=num_showers)
    started = time.perf_counter()
    for energy in energies:
        simulate_shower(energy, rng)
    return (time.perf_counter() - started) / num_showers
