"""The HDF5 file of generated jet images (written by scripts/sample_images.py, read for evaluation/plots).

Layout: datasets ``images`` [M, N, N] float32 (pt_rel, post-processed) and ``labels`` [M] int32 (index
into ``gsgm.data.jetnet_format.JET_CLASSES``); root attributes ``kind`` = :data:`IMAGES_FILE_KIND`,
``classes`` (JSON list of the class names the labels index) and the provenance the writer passes
(run, model, sampler, steps, seed, pixel_threshold, max_r, num_particles, versions). Non-scalar
attributes are stored as JSON strings. The root attribute ``gsgm_manifest`` (JSON) records the
sample set (run, sampler, steps, seed, classes, counts) and the content hash of ``images`` and
``labels``; :func:`read_images_file` refuses a file whose arrays do not match it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.generation.sample_sets import MANIFEST_ATTRIBUTE, arrays_hash, make_manifest, verify_sample_file
from gsgm.utils.atomic import atomic_path

__all__ = ["IMAGES_FILE_KIND", "read_images_file", "write_images_file"]

IMAGES_FILE_KIND = "gsgm jet images"


def write_images_file(
    path: str | os.PathLike,
    images: np.ndarray,
    labels: np.ndarray,
    attributes: dict | None = None,
    manifest: dict | None = None,
) -> Path:
    """Write jet images atomically as HDF5: datasets ``images`` [M, N, N], ``labels`` [M] + attributes.

    ``manifest`` (the sample set's settings) is stored with the content hash of both arrays.
    """
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels, np.int32)
    if images.ndim != 3 or labels.shape != (images.shape[0],):
        raise ValueError(f"need images [M, N, N] and labels [M], got {images.shape} and {labels.shape}")
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("images", data=images, compression="gzip", shuffle=True)
        handle.create_dataset("labels", data=labels)
        handle.attrs["kind"] = IMAGES_FILE_KIND
        handle.attrs["classes"] = json.dumps(list(JET_CLASSES))
        for key, value in (attributes or {}).items():
            handle.attrs[key] = value if isinstance(value, int | float | str) else json.dumps(value)
        content = arrays_hash([images, labels])
        handle.attrs[MANIFEST_ATTRIBUTE] = json.dumps(make_manifest(manifest or {}, content=content))
    return path


def read_images_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a file written by :func:`write_images_file`: (images [M, N, N], labels [M], attributes)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"images file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({' '.join(str(err).split())})") from None
    with handle:
        if handle.attrs.get("kind") != IMAGES_FILE_KIND or "images" not in handle or "labels" not in handle:
            raise ValueError(f"{path} is not a gsgm jet-images file (write it with scripts/sample_images.py)")
        attributes = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
        try:
            images = np.asarray(handle["images"][...], np.float32)
            labels = np.asarray(handle["labels"][...], np.int32)
        except OSError as err:  # truncated or damaged datasets
            raise ValueError(f"{path}: cannot read the datasets ({' '.join(str(err).split())})") from None
    verify_sample_file(path, [images, labels], attributes.get(MANIFEST_ATTRIBUTE))
    return images, labels, attributes
