"""Shared pieces of the benchmarks: best-of-N timing, FPCD sampling inputs and timing."""

from __future__ import annotations

import time

import numpy as np

from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.data.loading import load_jets, resolve_data_dir
from gsgm.diffusion.point_cloud import sample_point_clouds
from gsgm.generation.jets import sampling_denoisers


def best_seconds(function, repeats: int = 3) -> float:
    """The shortest wall time [s] of ``repeats`` calls of ``function()`` (the least disturbed one)."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def realistic_inputs(num_particles: int, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(mask [B, P], multiplicities drawn from the shipped sample; class one-hot [B, C], classes cycled)."""
    sample = load_jets(resolve_data_dir("builtin"), list(JET_CLASSES), num_particles)
    drawn = np.random.default_rng(seed).choice(sample.jets[:, 3].astype(int), size=batch)
    mask = (np.arange(num_particles)[None, :] < drawn[:, None]).astype(np.float32)
    onehot = np.eye(len(JET_CLASSES), dtype=np.float32)[np.arange(batch) % len(JET_CLASSES)]
    return mask, onehot


def sampling_seconds(
    model,
    mask: np.ndarray,
    onehot: np.ndarray,
    steps: int,
    repeats: int,
    buckets: int,
    precision: str = "float32",
    jit_compile: bool = False,
):
    """Best-of-``repeats`` wall time [s] of sampling ``len(mask)`` jets (mask [B, P]) with ``steps`` steps.

    ``precision`` and ``jit_compile`` as ``sampling.precision`` / ``sampling.jit_compile`` of a config.
    """
    jet_denoiser, particle_denoiser = sampling_denoisers(model, precision)

    def run():
        sample_point_clouds(
            jet_denoiser,
            particle_denoiser,
            lambda jets: mask,
            onehot,
            num_particles=mask.shape[1],
            num_particle_features=3,
            num_jet_features=4,
            num_steps=steps,
            seed=0,
            schedule=model.schedule,
            num_buckets=buckets,
            jit_compile=jit_compile,
        )

    return best_seconds(run, repeats)
