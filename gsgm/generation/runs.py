"""Sample from a run directory into sample files: what ``scripts/sample.py`` and
``scripts/sample_images.py`` do, as library functions.

This is the one place above gsgm.training that loads trained runs; evaluation and plotting read the
files written here (:mod:`gsgm.generation.jet_files`, :mod:`gsgm.generation.image_files`,
:mod:`gsgm.generation.timing`) and never import gsgm.training.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gsgm.data.jetnet_format import JET_CLASSES, class_file_name, parse_classes
from gsgm.generation.image_files import write_images_file
from gsgm.generation.jet_files import write_jet_sample_set
from gsgm.generation.sample_sets import ChunkStore, chunk_seed, finished_already, prepare_output
from gsgm.generation.timing import TIMING_FILE_NAME, append_timing_records, describe_device, timing_record
from gsgm.utils.provenance import package_versions

__all__ = [
    "ImageSamplingResult",
    "JetSamplingResult",
    "load_sampling_run",
    "read_training_history",
    "sample_images_to_file",
    "sample_jets_to_directory",
]


@dataclass
class JetSamplingResult:
    """What :func:`sample_jets_to_directory` did.

    Attributes:
        run: the run directory sampled from (a distillation stage of the requested run, or the run).
        steps: DDIM steps used.
        classes: classes sampled, in order.
        files: the JetNet files written, one per class.
        num_jets: jets written in total.
        seconds: wall time of sampling in this call (graph tracing included; file writing not).
        timing_path: the timing file the record was appended to (None if none was written).
        timing: the timing record (see :mod:`gsgm.generation.timing`).
        sampled: jets sampled in this call (fewer than ``num_jets`` when an interrupted run was resumed).
    """

    run: Path
    steps: int
    classes: list[str]
    files: list[Path]
    num_jets: int
    seconds: float
    timing_path: Path | None
    timing: dict[str, Any] = field(default_factory=dict)
    sampled: int | None = None

    @property
    def ms_per_jet(self) -> float:
        return 1e3 * self.seconds / max(self.sampled if self.sampled is not None else self.num_jets, 1)

    def summary(self) -> str:
        """One line for the user: what was written where, and how fast."""
        timing = f"; timing appended to {self.timing_path}" if self.timing_path else ""
        out = self.files[0].parent if self.files else "?"
        if self.sampled == 0:
            return (
                f"{out} already holds these {self.num_jets} jets ({', '.join(self.classes)}): nothing to do"
            )
        resumed = ""
        if self.sampled is not None and self.sampled < self.num_jets:
            resumed = f" (resumed: {self.num_jets - self.sampled} were sampled by the interrupted run)"
        return (
            f"wrote {self.num_jets} jets ({', '.join(self.classes)}) with {self.steps} steps to {out}"
            f"{resumed} in {self.seconds:.1f} s ({self.ms_per_jet:.2f} ms/jet){timing}"
        )


def load_sampling_run(run: str | os.PathLike, steps: int | None = None):
    """Load the run to sample ``steps`` DDIM steps from: (run directory, model, preprocessor, config, steps).

    A run with a distillation chain (``scripts/distill.py``) samples few steps from the stage distilled
    to them (``gsgm.training.distill.resolve_run_for_steps``); ``steps`` None means the config's
    ``sampling.num_steps``.

    Raises:
        ValueError: ``steps`` < 1, or no stage of the chain samples in ``steps``.
        FileNotFoundError: the run directory is missing or has no trained weights.
    """
    from gsgm.families.fpcd import load_trained_model
    from gsgm.training.distill import resolve_run_for_steps

    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be positive, got {steps}")
    chosen = resolve_run_for_steps(run, steps)
    model, preprocessor, cfg = load_trained_model(chosen)
    steps = steps or cfg.sampling.num_steps
    if steps < 1:
        raise ValueError(f"{chosen}: sampling.num_steps must be positive, got {steps}")
    return Path(chosen), model, preprocessor, cfg, int(steps)


def _progress_bar(total: int, unit: str, progress: bool):
    from tqdm import tqdm  # CLI-only dependency, imported lazily

    return tqdm(total=total, unit=unit, desc="sampling", file=sys.stderr, disable=not progress)


def _chunk_starts(per_class: int, chunk_size: int) -> list[tuple[int, int, int]]:
    """(chunk index, first sample, count) of the chunks of one class."""
    return [
        (index, start, min(chunk_size, per_class - start))
        for index, start in enumerate(range(0, per_class, chunk_size))
    ]


def sample_jets_to_directory(
    run: str | os.PathLike,
    out: str | os.PathLike,
    jets_per_class: int,
    *,
    classes: str | list[str] | None = None,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 10_000,
    num_buckets: int = 8,
    progress: bool = False,
    timing_path: str | os.PathLike | None = None,
    timing_label: str | None = None,
    write_timing: bool = True,
    overwrite: bool = False,
    precision: str | None = None,
    jit_compile: bool | None = None,
    sampler: str | None = None,
) -> JetSamplingResult:
    """Sample a trained FPCD run and write a JetNet-format sample directory plus a timing record.

    Sampling goes in chunks of ``batch_size`` jets, each with its own seed derived from (seed, class,
    chunk) and kept as it finishes (:class:`gsgm.generation.sample_sets.ChunkStore`): a killed run,
    rerun with the same arguments, samples only the missing chunks and writes exactly the files an
    uninterrupted run writes. The directory is written as one unit with a manifest.

    Args:
        run: run directory from scripts/train.py (its distillation stage for ``steps`` is used if any).
        out: sample directory; files are named as the data files (``t.hdf5``, ``t150.hdf5``). It must
            be empty or new unless ``overwrite`` (checked before any sampling).
        jets_per_class: jets per class (>= 1).
        classes: subset of the run's classes, e.g. "g,t" (default: all of them).
        steps: DDIM steps (default: the config's ``sampling.num_steps``).
        seed: same seed -> same jets (each class and chunk gets its own seed).
        batch_size: jets per sampler call and per resumable chunk.
        num_buckets: multiplicity groups per batch (padded slots beyond a group's largest jet skipped).
        progress: a progress bar with ETA on stderr, per chunk.
        timing_path: timing file to append to (default ``OUT/timing.json``).
        timing_label: the record's label (default ``"<run name>, <P> particles, <CPU|GPU>"``).
        write_timing: False writes no timing record.
        overwrite: replace what ``out`` holds (and discard an interrupted run with other settings).
        precision, jit_compile: override the run config's ``sampling.precision`` / ``sampling.jit_compile``.
        sampler: override the run config's ``sampling.sampler`` ("ddim" or "dpm++2m"); a distilled
            stage samples only with "ddim".
    """
    from gsgm.diffusion.ddim import SOLVERS, forget_compiled_samplers
    from gsgm.generation.jets import generate_jets
    from gsgm.training.run_dir import RunDirectory

    if jets_per_class < 1:
        raise ValueError(f"--jets-per-class must be positive, got {jets_per_class}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    if num_buckets < 1:
        raise ValueError(f"--buckets must be positive, got {num_buckets}")
    chosen, model, preprocessor, cfg, steps = load_sampling_run(run, steps)
    if precision is not None:
        cfg.sampling.precision = precision
    if jit_compile is not None:
        cfg.sampling.jit_compile = jit_compile
    if sampler is not None:
        if sampler not in SOLVERS:
            raise ValueError(f"--sampler for FPCD runs must be one of {', '.join(SOLVERS)}, got {sampler!r}")
        if sampler != "ddim" and RunDirectory(chosen).read_metadata().get("distillation"):
            raise ValueError(
                f"{chosen} is a distilled student: it learned its teacher's DDIM steps and samples with "
                f"--sampler ddim only, not {sampler}"
            )
        cfg.sampling.sampler = sampler
    classes = parse_classes(classes) if classes is not None else list(cfg.data.classes)
    unknown = [c for c in classes if c not in cfg.data.classes]
    if unknown:
        raise ValueError(f"the run was trained on classes {list(cfg.data.classes)}, not on {unknown}")
    num_particles = cfg.data.num_particles
    total = jets_per_class * len(classes)
    # float32 arrays, uncompressed, twice: the chunks and the final files share the file system
    estimated = 2 * total * (num_particles * 4 + 4) * 4
    params = {
        "kind": "jets",
        "run": str(Path(chosen).resolve()),  # the same run however the path was spelt
        "steps": steps,
        "seed": seed,
        "classes": list(classes),
        "per_class": jets_per_class,
        "num_particles": num_particles,
        "chunk_size": batch_size,
        "num_buckets": num_buckets,
        # 16-bit or XLA sampling gives other (equally valid) jets: never mixed in one set
        "precision": cfg.sampling.precision,
        "jit_compile": bool(cfg.sampling.jit_compile),
    }
    if cfg.sampling.sampler != "ddim":
        # only when not DDIM, so that sample sets written before the option still count as finished
        params["sampler"] = cfg.sampling.sampler
    if not overwrite and finished_already(out, params, directory=True):
        files = [Path(out) / class_file_name(c, num_particles) for c in classes]
        return JetSamplingResult(Path(chosen), steps, classes, files, total, 0.0, None, {}, sampled=0)
    prepare_output(out, directory=True, overwrite=overwrite, estimated_bytes=estimated)
    store = ChunkStore(out, params, overwrite=overwrite)
    bar = _progress_bar(total, "jet", progress)
    sampled = 0
    generated: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for jet_class in classes:
        label = JET_CLASSES.index(jet_class)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        for index, _start, count in _chunk_starts(jets_per_class, batch_size):

            def make(jet_class=jet_class, label=label, index=index, count=count):
                nonlocal sampled
                # a chunk's float32 round-off must not depend on the chunks sampled before it in this
                # process, or a resumed run would differ from an uninterrupted one in the last bit
                forget_compiled_samplers()
                particles, jets = generate_jets(
                    model,
                    preprocessor,
                    cfg,
                    count,
                    [jet_class],
                    steps,
                    seed=chunk_seed(seed, label, index),
                    batch_size=count,
                    progress=False,
                    num_buckets=num_buckets,
                )[jet_class]
                sampled += count
                return {"particles": particles, "jets": jets}

            arrays = store.chunk(f"{jet_class}-{index:05d}", make)
            parts.append((arrays["particles"], arrays["jets"]))
            bar.update(count)
        generated[jet_class] = (np.concatenate([p for p, _ in parts]), np.concatenate([j for _, j in parts]))
    bar.close()
    seconds = store.seconds
    attributes = {
        "generator": "gsgm FPCD",
        "run": str(chosen),
        "steps": steps,
        "seed": seed,
        "versions": str(package_versions()),
    }
    files = write_jet_sample_set(out, generated, num_particles, attributes, params)
    store.finish()
    record: dict[str, Any] = {}
    written_timing = None
    if write_timing and sampled:
        device = describe_device()
        label = timing_label or f"{Path(run).name}, {num_particles} particles, {device.split(' ')[0]}"
        record = timing_record(
            label,
            steps,
            seconds,
            sampled,
            num_particles,
            batch_size,
            device=device,
            run=str(chosen),
            classes=list(classes),
            source="scripts/sample.py",
            includes_tracing=True,
            resumed=sampled < total,
            precision=cfg.sampling.precision,
            jit_compile=cfg.sampling.jit_compile,
        )
        written_timing = append_timing_records(
            Path(timing_path) if timing_path else Path(out) / TIMING_FILE_NAME, [record]
        )
    return JetSamplingResult(
        Path(chosen), steps, classes, files, total, seconds, written_timing, record, sampled=sampled
    )


@dataclass
class ImageSamplingResult:
    """What :func:`sample_images_to_file` did: the file, counts and the sampler used."""

    path: Path
    model: str
    sampler: str
    steps: int
    classes: list[str]
    num_images: int
    seconds: float
    done: bool = False  # the file already held exactly these samples

    def summary(self) -> str:
        """One line for the user: what was written where, and how fast."""
        if self.done:
            return f"{self.path} already holds these {self.num_images} images: nothing to do"
        return (
            f"wrote {self.num_images} images ({', '.join(self.classes)}; {self.model}, {self.sampler}, "
            f"{self.steps} steps) to {self.path} in {self.seconds:.1f} s "
            f"({1e3 * self.seconds / self.num_images:.2f} ms/image, including tracing)"
        )


def sample_images_to_file(
    run: str | os.PathLike,
    out: str | os.PathLike,
    images_per_class: int,
    *,
    classes: str | list[str] | None = None,
    steps: int | None = None,
    sampler: str | None = None,
    seed: int = 0,
    batch_size: int = 500,
    progress: bool = False,
    overwrite: bool = False,
    precision: str | None = None,
    jit_compile: bool | None = None,
) -> ImageSamplingResult:
    """Sample a trained score or consistency run and write the images file (:func:`write_images_file`).

    Sampling goes in chunks of ``batch_size`` images per class, each with its own seed derived from
    (seed, class, chunk) and kept as it finishes, so a killed run continues where it stopped (same
    result as an uninterrupted run). The file is written atomically with its manifest.

    Args:
        run: run directory from scripts/train_images.py.
        out: HDF5 file to write; an existing file only with ``overwrite`` (checked before sampling).
        images_per_class: images per class (>= 1).
        classes: subset of the run's classes (default: all of them).
        steps: sampler steps (default: the config's ``num_steps``).
        sampler: score runs only: "pc" or "ode" (default: the config's).
        seed: same seed -> same images.
        batch_size: images per network call and per resumable chunk.
        overwrite: replace an existing ``out`` (and discard an interrupted run with other settings).
        precision, jit_compile: override the run config's ``sampling.precision`` / ``sampling.jit_compile``.
    """
    from gsgm.families.jet_images import load_image_run
    from gsgm.generation.images import generate_images

    if images_per_class < 1:
        raise ValueError(f"--images-per-class must be positive, got {images_per_class}")
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be positive, got {steps}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    model, cfg = load_image_run(run)
    if cfg.model == "consistency" and sampler is not None:
        raise ValueError("--sampler applies to score runs only")
    classes = parse_classes(classes) if classes is not None else list(cfg.data.classes)
    unknown = [c for c in classes if c not in cfg.data.classes]
    if unknown:
        raise ValueError(f"the run was trained on classes {list(cfg.data.classes)}, not on {unknown}")
    steps = steps or getattr(cfg, cfg.model).num_steps
    if precision is not None:
        cfg.sampling.precision = precision
    if jit_compile is not None:
        cfg.sampling.jit_compile = jit_compile
    sampler_name = sampler or (cfg.score.sampler if cfg.model == "score" else "consistency")
    pixels = cfg.data.num_pixels
    total = images_per_class * len(classes)
    params = {
        "kind": "jet images",
        "run": str(Path(run).resolve()),
        "model": cfg.model,
        "sampler": sampler_name,
        "steps": int(steps),
        "seed": seed,
        "classes": list(classes),
        "per_class": images_per_class,
        "chunk_size": batch_size,
        # the 16-bit path gives other images, so a resumed run must not mix the two
        "precision": cfg.sampling.precision,
        "jit_compile": bool(cfg.sampling.jit_compile),
    }
    if not overwrite and finished_already(out, params, directory=False):
        return ImageSamplingResult(
            Path(out), cfg.model, sampler_name, int(steps), classes, total, 0.0, done=True
        )
    prepare_output(out, directory=False, overwrite=overwrite, estimated_bytes=2 * total * (pixels**2 + 1) * 4)
    store = ChunkStore(out, params, overwrite=overwrite)
    bar = _progress_bar(total, "image", progress)
    image_parts, label_parts = [], []
    for jet_class in classes:
        label = JET_CLASSES.index(jet_class)
        for index, _start, count in _chunk_starts(images_per_class, batch_size):

            def make(jet_class=jet_class, label=label, index=index, count=count):
                images, labels = generate_images(
                    model,
                    cfg,
                    count,
                    [jet_class],
                    steps,
                    seed=chunk_seed(seed, label, index),
                    batch_size=count,
                    sampler=sampler,
                    progress=False,
                )
                return {"images": images, "labels": labels}

            arrays = store.chunk(f"{jet_class}-{index:05d}", make)
            image_parts.append(arrays["images"])
            label_parts.append(arrays["labels"])
            bar.update(count)
    bar.close()
    seconds = store.seconds
    images, labels = np.concatenate(image_parts), np.concatenate(label_parts)
    path = write_images_file(
        out,
        images,
        labels,
        {
            "generator": f"gsgm jet images, {cfg.model}",
            "run": str(run),
            "model": cfg.model,
            "sampler": sampler_name,
            "steps": steps,
            "seed": seed,
            "pixel_threshold": cfg.sampling.pixel_threshold,
            "precision": cfg.sampling.precision,
            "max_r": cfg.data.max_r,
            "num_particles": cfg.data.num_particles,
            "versions": package_versions(),
        },
        manifest=params,
    )
    store.finish()
    return ImageSamplingResult(path, cfg.model, sampler_name, int(steps), classes, int(len(labels)), seconds)


def read_training_history(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a run's ``history.csv`` (one per finished epoch), for plots.

    Raises:
        FileNotFoundError: no run directory, or no finished epoch yet.
    """
    from gsgm.training.run_dir import RunDirectory

    run = RunDirectory(run_dir)
    if not run.path.is_dir():
        raise FileNotFoundError(f"run directory not found: {run.path}")
    if not run.history_path.is_file():
        raise FileNotFoundError(f"{run.path} has no history.csv (has training finished an epoch?)")
    return run.read_history()
