"""Sample from a run directory into sample files: what ``scripts/sample.py`` and
``scripts/sample_images.py`` do, as library functions.

This is the one place above gsgm.training that loads trained runs; evaluation and plotting read the
files written here (:mod:`gsgm.generation.jet_files`, :mod:`gsgm.generation.image_files`,
:mod:`gsgm.generation.timing`) and never import gsgm.training.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsgm.data.jetnet_format import parse_classes
from gsgm.generation.image_files import write_images_file
from gsgm.generation.jet_files import write_jet_samples
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
        seconds: wall time of sampling (graph tracing included; file writing not).
        timing_path: the timing file the record was appended to (None if none was written).
        timing: the timing record (see :mod:`gsgm.generation.timing`).
    """

    run: Path
    steps: int
    classes: list[str]
    files: list[Path]
    num_jets: int
    seconds: float
    timing_path: Path | None
    timing: dict[str, Any] = field(default_factory=dict)

    @property
    def ms_per_jet(self) -> float:
        return 1e3 * self.seconds / self.num_jets

    def summary(self) -> str:
        """One line for the user: what was written where, and how fast."""
        timing = f"; timing appended to {self.timing_path}" if self.timing_path else ""
        out = self.files[0].parent if self.files else "?"
        return (
            f"wrote {self.num_jets} jets ({', '.join(self.classes)}) with {self.steps} steps to {out} "
            f"in {self.seconds:.1f} s ({self.ms_per_jet:.2f} ms/jet){timing}"
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
    precision: str | None = None,
    jit_compile: bool | None = None,
) -> JetSamplingResult:
    """Sample a trained FPCD run and write JetNet-format class files (atomically) plus a timing record.

    Args:
        run: run directory from scripts/train.py (its distillation stage for ``steps`` is used if any).
        out: sample directory; files are named as the data files (``t.hdf5``, ``t150.hdf5``).
        jets_per_class: jets per class (>= 1).
        classes: subset of the run's classes, e.g. "g,t" (default: all of them).
        steps: DDIM steps (default: the config's ``sampling.num_steps``).
        seed: same seed -> same jets (each class and batch gets its own stateless seed).
        batch_size: jets per sampler call.
        num_buckets: multiplicity groups per batch (padded slots beyond a group's largest jet skipped).
        progress: a progress bar with ETA on stderr, per class and batch.
        timing_path: timing file to append to (default ``OUT/timing.json``).
        timing_label: the record's label (default ``"<run name>, <P> particles, <CPU|GPU>"``).
        write_timing: False writes no timing record.
        precision, jit_compile: override the run config's ``sampling.precision`` / ``sampling.jit_compile``.
    """
    from gsgm.generation.jets import generate_jets

    if jets_per_class < 1:
        raise ValueError(f"--jets-per-class must be positive, got {jets_per_class}")
    chosen, model, preprocessor, cfg, steps = load_sampling_run(run, steps)
    if precision is not None:
        cfg.sampling.precision = precision
    if jit_compile is not None:
        cfg.sampling.jit_compile = jit_compile
    classes = parse_classes(classes) if classes else list(cfg.data.classes)
    started = time.perf_counter()
    generated = generate_jets(
        model,
        preprocessor,
        cfg,
        jets_per_class,
        classes,
        steps,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
        num_buckets=num_buckets,
    )
    seconds = time.perf_counter() - started
    attributes = {
        "generator": "gsgm FPCD",
        "run": str(chosen),
        "steps": steps,
        "seed": seed,
        "versions": str(package_versions()),
    }
    num_particles = cfg.data.num_particles
    files = write_jet_samples(out, generated, num_particles, attributes)
    total = jets_per_class * len(classes)
    record: dict[str, Any] = {}
    written_timing = None
    if write_timing:
        device = describe_device()
        label = timing_label or f"{Path(run).name}, {num_particles} particles, {device.split(' ')[0]}"
        record = timing_record(
            label,
            steps,
            seconds,
            total,
            num_particles,
            batch_size,
            device=device,
            run=str(chosen),
            classes=list(classes),
            source="scripts/sample.py",
            includes_tracing=True,
            precision=cfg.sampling.precision,
            jit_compile=cfg.sampling.jit_compile,
        )
        written_timing = append_timing_records(
            Path(timing_path) if timing_path else Path(out) / TIMING_FILE_NAME, [record]
        )
    return JetSamplingResult(Path(chosen), steps, classes, files, total, seconds, written_timing, record)


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

    def summary(self) -> str:
        """One line for the user: what was written where, and how fast."""
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
) -> ImageSamplingResult:
    """Sample a trained score or consistency run and write the images file (:func:`write_images_file`).

    Args:
        run: run directory from scripts/train_images.py.
        out: HDF5 file to write (atomically).
        images_per_class: images per class (>= 1).
        classes: subset of the run's classes (default: all of them).
        steps: sampler steps (default: the config's ``num_steps``).
        sampler: score runs only: "pc" or "ode" (default: the config's).
        seed: same seed -> same images.
        batch_size: images per network call.
    """
    from gsgm.families.jet_images import load_image_run
    from gsgm.generation.images import generate_images

    if images_per_class < 1:
        raise ValueError(f"--images-per-class must be positive, got {images_per_class}")
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be positive, got {steps}")
    model, cfg = load_image_run(run)
    if cfg.model == "consistency" and sampler is not None:
        raise ValueError("--sampler applies to score runs only")
    classes = parse_classes(classes) if classes else list(cfg.data.classes)
    steps = steps or getattr(cfg, cfg.model).num_steps
    started = time.perf_counter()
    images, labels = generate_images(
        model,
        cfg,
        images_per_class,
        classes,
        steps,
        seed=seed,
        batch_size=batch_size,
        sampler=sampler,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    sampler = sampler or (cfg.score.sampler if cfg.model == "score" else "consistency")
    path = write_images_file(
        out,
        images,
        labels,
        {
            "generator": f"gsgm jet images, {cfg.model}",
            "run": str(run),
            "model": cfg.model,
            "sampler": sampler,
            "steps": steps,
            "seed": seed,
            "pixel_threshold": cfg.sampling.pixel_threshold,
            "max_r": cfg.data.max_r,
            "num_particles": cfg.data.num_particles,
            "versions": package_versions(),
        },
    )
    return ImageSamplingResult(path, cfg.model, sampler, int(steps), classes, int(len(labels)), seconds)


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
