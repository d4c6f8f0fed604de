"""Sampling from run directories, and the files sampling writes (read by evaluation and plotting).

Layers: scripts -> evaluation, plotting -> **generation** -> training. This package may load trained
runs (gsgm.training); evaluation and plotting read samples through it and never import gsgm.training.

* :mod:`~gsgm.generation.jets`: ``generate_jets`` (FPCD: EMA networks, DDIM, inverse preprocessing).
* :mod:`~gsgm.generation.images`: ``generate_images``, ``postprocess_images`` (score / consistency).
* :mod:`~gsgm.generation.runs`: ``sample_jets_to_directory``, ``sample_images_to_file`` (what the
  sampling scripts do: choose the run or distillation stage, sample, write files and timing),
  ``load_sampling_run``, ``read_training_history``.
* :mod:`~gsgm.generation.jet_files`: JetNet-format sample directories (``write_jet_samples``,
  ``read_jet_class_file``).
* :mod:`~gsgm.generation.sample_sets`: output safety of every sampler (``prepare_output``: no foreign
  file overwritten; ``ChunkStore``: resumable chunks; manifests and ``verify_sample_directory``).
* :mod:`~gsgm.generation.image_files`: the HDF5 image sample file (``write_images_file``,
  ``read_images_file``).
* :mod:`~gsgm.generation.registry`: ``sample_run`` (any run: dispatches on its family),
  ``register_sampler`` (a new family's sampling function).
* :mod:`~gsgm.generation.timing`: the timing-record file (``timing_record``, ``append_timing_records``,
  ``read_timing_records``).

Names are imported lazily, so reading a sample file does not start TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "generate_jets": "jets",
    "generate_images": "images",
    "postprocess_images": "images",
    "IMAGES_FILE_KIND": "image_files",
    "read_images_file": "image_files",
    "write_images_file": "image_files",
    "read_jet_class_file": "jet_files",
    "write_jet_samples": "jet_files",
    "write_jet_sample_set": "jet_files",
    "ChunkStore": "sample_sets",
    "SampleSetError": "sample_sets",
    "prepare_output": "sample_sets",
    "verify_sample_directory": "sample_sets",
    "ImageSamplingResult": "runs",
    "JetSamplingResult": "runs",
    "load_sampling_run": "runs",
    "read_training_history": "runs",
    "sample_images_to_file": "runs",
    "sample_jets_to_directory": "runs",
    "register_sampler": "registry",
    "sample_run": "registry",
    "sampler_for": "registry",
    "TIMING_FILE_NAME": "timing",
    "TIMING_KEYS": "timing",
    "append_timing_records": "timing",
    "describe_device": "timing",
    "read_timing_records": "timing",
    "timing_record": "timing",
    "validate_timing_record": "timing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gsgm.generation' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gsgm.generation.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
