"""Sample DIS event images from a trained ``dis`` run, and the sample file evaluation reads.

Sample file (HDF5): ``images`` float32 [M, n, n, 3], the momentum fractions z per pixel (channels
pi+, e-, K+; axis 1 eta, axis 2 phi), i.e. the model's z' in [-1, 1] mapped back by the inverse
rescaling with its lower cut at z'_min (pixels at or below it are empty, 0). Root attributes: ``eta_max``,
``sqrt_s``, ``run``, ``sampler``, ``steps``, ``seed``, ``seconds``, the package versions and
``gsgm_manifest`` (the sample set's settings and the content hash of ``images``, checked on reading).
Sampling is resumable: finished batches are kept until the file is in place
(:mod:`gsgm.generation.sample_sets`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gsgm.generation.sample_sets import (
    MANIFEST_ATTRIBUTE,
    ChunkStore,
    arrays_hash,
    finished_already,
    make_manifest,
    prepare_output,
    verify_sample_file,
)
from gsgm.utils.atomic import atomic_path
from gsgm.utils.provenance import package_versions

__all__ = ["DisSamplingResult", "read_dis_images_file", "sample_dis", "write_dis_images_file"]

SAMPLERS = ("ancestral", "ddim")


def write_dis_images_file(
    path: str | os.PathLike,
    images: np.ndarray,
    attributes: dict[str, Any],
    manifest: dict[str, Any] | None = None,
) -> Path:
    """Write z images [M, n, n, 3] with ``attributes`` (must hold eta_max and sqrt_s) atomically.

    ``manifest`` (the sample set's settings) is stored with the content hash of ``images``.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] != 3:
        raise ValueError(f"images must have shape [M, n, n, 3], got {list(images.shape)}")
    missing = [k for k in ("eta_max", "sqrt_s") if k not in attributes]
    if missing:
        raise ValueError(f"attributes lack {missing}")
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.create_dataset("images", data=images, compression="gzip", shuffle=True)
            for key, value in attributes.items():
                handle.attrs[key] = value if isinstance(value, int | float | str) else str(value)
            content = arrays_hash([images])
            handle.attrs[MANIFEST_ATTRIBUTE] = json.dumps(make_manifest(manifest or {}, content=content))
    return path


def read_dis_images_file(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """``(images [M, n, n, 3] float32, attributes)``; one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DIS sample file not found: {path}")
    try:
        with h5py.File(path, "r") as handle:
            if "images" not in handle:
                raise ValueError(f"{path}: missing dataset 'images' (found: {sorted(handle.keys())})")
            images = np.asarray(handle["images"][...], np.float32)
            attributes = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from err
    verify_sample_file(path, [images], attributes.get(MANIFEST_ATTRIBUTE))
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"{path}: 'images' must have shape [M, n, n, 3], got {list(images.shape)}")
    if not np.all(np.isfinite(images)) or images.min() < 0:
        raise ValueError(f"{path}: 'images' must hold finite z >= 0")
    for key in ("eta_max", "sqrt_s"):
        if key not in attributes:
            raise ValueError(f"{path}: root attribute '{key}' missing")
    return images, attributes


@dataclass
class DisSamplingResult:
    path: Path
    sampler: str
    steps: int
    num_events: int
    seconds: float

    def summary(self) -> str:
        return (
            f"wrote {self.num_events} DIS events ({self.sampler}, {self.steps} steps) to {self.path} in "
            f"{self.seconds:.1f} s ({1e3 * self.seconds / self.num_events:.1f} ms/event, including tracing)"
        )


def sample_dis(
    run: str | os.PathLike,
    out: str | os.PathLike,
    per_class: int,
    *,
    steps: int | None = None,
    sampler: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
    overwrite: bool = False,
    precision: str | None = None,
    jit_compile: bool | None = None,
) -> DisSamplingResult:
    """``per_class`` events (DIS has one class) from run ``run`` into the sample file ``out``.

    Args:
        steps: respaced sampler steps (default: the config's ``sampling.num_steps``).
        sampler: "ancestral" (learned variance) or "ddim" (default: the config's).
        seed: same seed -> same events (each batch has its own stateless seeds).
        batch_size: events per sampler call and per resumable chunk (a killed run, rerun with the
            same arguments, samples only the missing batches and gives the same file).
        overwrite: replace an existing ``out`` (checked before sampling).
        precision, jit_compile: override the run config's ``sampling.precision`` / ``sampling.jit_compile``
            (:meth:`~gsgm.training.dis_model.DisDiffusionModel.sampling_denoiser`).
    """
    import tensorflow as tf
    from tqdm import tqdm

    from gsgm.diffusion.ddim import ddim_sample
    from gsgm.diffusion.samplers import sample_ancestral
    from gsgm.families.dis import dis_rescaling, load_dis_run

    if per_class < 1:
        raise ValueError(f"--per-class must be positive, got {per_class}")
    model, cfg = load_dis_run(run)
    sampler = sampler or cfg.sampling.sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"--sampler must be one of {SAMPLERS} for DIS runs, got {sampler!r}")
    steps = int(steps or cfg.sampling.num_steps)
    if not 1 <= steps <= cfg.diffusion.num_steps:
        raise ValueError(f"--steps must be in 1..{cfg.diffusion.num_steps}, got {steps}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    if precision is not None:
        cfg.sampling.precision = precision
    if jit_compile is not None:
        cfg.sampling.jit_compile = jit_compile
    denoiser = model.sampling_denoiser(cfg.sampling.clip_x0, cfg.sampling.precision, cfg.sampling.jit_compile)
    n = cfg.data.num_pixels
    params = {
        "kind": "dis events",
        "run": str(Path(run).resolve()),
        "sampler": sampler,
        "steps": steps,
        "seed": int(seed),
        "per_class": per_class,
        "chunk_size": batch_size,
        # 16-bit or XLA sampling gives other events: never mixed in one file
        "precision": cfg.sampling.precision,
        "jit_compile": bool(cfg.sampling.jit_compile),
    }
    if not overwrite and finished_already(out, params, directory=False):
        return DisSamplingResult(Path(out), sampler, steps, per_class, 0.0)
    prepare_output(out, directory=False, overwrite=overwrite, estimated_bytes=2 * per_class * n * n * 3 * 4)
    store = ChunkStore(out, params, overwrite=overwrite)
    batches = []
    for b, start in enumerate(tqdm(range(0, per_class, batch_size), disable=not progress, desc="sampling")):

        def make(b=b, start=start):
            size = min(batch_size, per_class - start)
            noise = tf.random.stateless_normal([size, n, n, 3], seed=[seed, 2 * b])
            if sampler == "ancestral":
                x = sample_ancestral(
                    denoiser, noise, model.schedule, steps, variance="learned", seed=seed * 7919 + b
                )
            else:
                x = ddim_sample(denoiser, noise, model.schedule, steps)
            return {"x": np.clip(np.asarray(x), -1.0, 1.0)}

        batches.append(store.chunk(f"batch-{b:05d}", make)["x"])
    seconds = store.seconds
    z = dis_rescaling(cfg).inverse(np.concatenate(batches)).astype(np.float32)
    geometry = json.loads((Path(run) / "preprocessing.json").read_text())
    path = write_dis_images_file(
        out,
        z,
        {
            "generator": "gsgm dis (learned-variance DDPM)",
            "run": str(run),
            "sampler": sampler,
            "steps": steps,
            "seed": int(seed),
            "seconds": float(seconds),
            "eta_max": float(geometry["eta_max"]),
            "sqrt_s": float(geometry["sqrt_s"]),
            "versions": str(package_versions()),
        },
        manifest=params,
    )
    store.finish()
    return DisSamplingResult(path, sampler, steps, per_class, seconds)
