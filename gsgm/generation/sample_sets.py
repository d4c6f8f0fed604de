"""Sample sets written as one unit, with a manifest, resumable after a kill: the output safety of sampling.

Every sampler writes through this module, so the rules hold for every family:

* **Nothing foreign is replaced.** :func:`prepare_output` runs before any sampling: it checks the
  location (a directory / a file name, writable, room for the estimate; :mod:`gsgm.utils.outputs`)
  and refuses a directory that holds files (real data, another sample set) or an existing file,
  unless ``overwrite`` is given. It also removes temporary files that a killed writer left there.
* **A reader never sees a mix.** A directory set is assembled in a temporary directory, its
  :data:`MANIFEST_NAME` written last, and renamed into place (:func:`gsgm.utils.atomic.atomic_directory`);
  a single-file set (an HDF5 file) carries its manifest as the root attribute ``gsgm_manifest`` and is
  renamed into place. The manifest records the run, steps, seed, classes and counts, the SHA-256 of
  every file and a content hash of the arrays; :func:`verify_sample_directory` and
  :func:`verify_sample_file` (used by every evaluation reader) refuse a set whose files do not match it.
* **A kill loses at most one chunk.** :class:`ChunkStore` keeps finished chunks (each sampled with its
  own seed from :func:`chunk_seed`) in a work directory ``.<out>.partial`` beside the output; a rerun
  with the same settings loads them and samples only the rest, so its result is exactly that of an
  uninterrupted run. Different settings are an error naming the differing keys (or ``overwrite``
  discards the interrupted work).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gsgm.utils.atomic import atomic_path, remove_stale_temporaries, write_json_atomic
from gsgm.utils.checksums import sha256_file
from gsgm.utils.cli import UserError
from gsgm.utils.outputs import check_output_dir, check_output_file

__all__ = [
    "MANIFEST_ATTRIBUTE",
    "MANIFEST_NAME",
    "ChunkStore",
    "SampleSetError",
    "arrays_hash",
    "calo_arrays",
    "chunk_seed",
    "finished_already",
    "make_manifest",
    "prepare_output",
    "read_calo_samples",
    "read_manifest",
    "verify_sample_directory",
    "verify_sample_file",
]

#: Manifest of a directory sample set.
MANIFEST_NAME = "manifest.json"
#: HDF5 root attribute holding the manifest of a single-file sample set.
MANIFEST_ATTRIBUTE = "gsgm_manifest"
MANIFEST_FORMAT = "gsgm sample set"
#: Files a sample directory may hold beside those its manifest lists.
SIDE_FILES = (MANIFEST_NAME, "timing.json")


class SampleSetError(UserError):
    """A sample output location or a sample set is unsafe to write or to read (the message says why)."""


def chunk_seed(seed: int, *parts: int) -> int:
    """The seed of one chunk, derived from the run's ``seed`` and the chunk's coordinates.

    SeedSequence mixes the integers so that neighbouring seeds and chunks give unrelated streams;
    the value fits in 31 bits (every sampler multiplies it into an int64 seed).
    """
    state = np.random.SeedSequence([int(seed), *(int(p) for p in parts)]).generate_state(1, np.uint32)
    return int(state[0] >> 1)


def arrays_hash(arrays: Sequence[np.ndarray]) -> str:
    """SHA-256 over the dtype, shape and bytes of ``arrays`` (equal samples <=> equal hash)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def make_manifest(
    params: Mapping[str, Any], files: Mapping[str, str] | None = None, content: str | None = None
) -> dict[str, Any]:
    """The manifest: ``params`` (run, steps, seed, classes, counts...), file hashes, content hash."""
    manifest = {"format": MANIFEST_FORMAT, **dict(params)}
    if files is not None:
        manifest["files"] = dict(sorted(files.items()))
    if content is not None:
        manifest["content_sha256"] = content
    return manifest


# ---------------------------------------------------------------------------------- before writing


def _describe(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def prepare_output(
    out: str | os.PathLike, *, directory: bool, overwrite: bool = False, estimated_bytes: int = 0
) -> Path:
    """Check the sample output ``out`` before sampling starts (see the module docstring).

    Args:
        directory: True for a directory set (FPCD class files), False for one file.
        overwrite: replace what is there (a directory is replaced as a whole).
        estimated_bytes: expected size of the output [bytes], checked against the free space.

    Raises:
        OutputLocationError: not a directory / a directory where a file is wanted, not writable,
            not enough space.
        SampleSetError: ``out`` holds files (or is a file) and ``overwrite`` was not given.
    """
    out = Path(out)
    if directory:
        check_output_dir(out, estimated_bytes=estimated_bytes)
    else:
        check_output_file(out, estimated_bytes=estimated_bytes)
    remove_stale_temporaries(out.parent)
    if directory and out.is_dir():
        remove_stale_temporaries(out)
        present = sorted(p.name for p in out.iterdir() if p.name not in ("timing.json",))
        if present and not overwrite:
            what = "a gsgm sample set" if MANIFEST_NAME in present else "files this run did not make"
            raise SampleSetError(
                f"--out {out} holds {what} ({_describe(present)}); choose another --out, or pass "
                "--overwrite to replace the directory and everything in it"
            )
    if not directory and out.is_file() and not overwrite:
        raise SampleSetError(f"--out {out} exists; choose another name, or pass --overwrite to replace it")
    return out


def finished_already(out: str | os.PathLike, params: Mapping[str, Any], *, directory: bool) -> bool:
    """True when ``out`` holds a complete sample set made with exactly ``params``.

    Then rerunning the command that made it (for instance after a kill that came between the final
    rename and the clean-up) has nothing left to do; the interrupted run's work directory is removed.
    """
    out = Path(out)
    wanted = json.loads(json.dumps(dict(params)))
    try:
        if directory:
            manifest = read_manifest(out) if out.is_dir() else None
        else:
            manifest = _file_manifest(out) if out.is_file() else None
    except SampleSetError:
        return False
    if manifest is None or {k: manifest.get(k) for k in wanted} != wanted:
        return False
    if directory:
        try:
            verify_sample_directory(out, list(manifest["files"]))
        except SampleSetError:
            return False  # a damaged set is not "done": prepare_output then asks for --overwrite
    shutil.rmtree(out.parent / f".{out.name}.partial", ignore_errors=True)
    return True


def _file_manifest(path: Path) -> dict[str, Any] | None:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            text = handle.attrs.get(MANIFEST_ATTRIBUTE)
    except OSError:
        return None
    if text is None:
        return None
    try:
        return json.loads(text.decode() if isinstance(text, bytes) else text)
    except (TypeError, json.JSONDecodeError):
        return None


# ---------------------------------------------------------------------------------- resumable chunks


class ChunkStore:
    """Finished chunks of an interrupted sampling run, kept in ``.<out name>.partial`` beside ``out``.

    ``params`` are the settings the chunks depend on (run, steps, seed, classes, counts, chunk
    size...). A work directory left with other settings is an error naming the differing keys, or is
    discarded with ``overwrite``. Each chunk is one ``.npz`` written atomically.

    Attributes:
        seconds: wall time spent making chunks in this process (:meth:`chunk`); chunks finished by
            an earlier run cost nothing.
    """

    def __init__(self, out: str | os.PathLike, params: Mapping[str, Any], overwrite: bool = False):
        out = Path(out)
        self.path = out.parent / f".{out.name}.partial"
        self.params = json.loads(json.dumps(dict(params)))  # as it reads back from the file
        params_file = self.path / "params.json"
        if self.path.is_dir():
            remove_stale_temporaries(self.path)
            previous = self._read_params(params_file)
            if previous != self.params:
                if not overwrite:
                    keys = sorted(
                        k for k in set(previous) | set(self.params) if previous.get(k) != self.params.get(k)
                    )
                    raise SampleSetError(
                        f"{self.path} holds an interrupted sampling into {out} with other settings "
                        f"(differing: {', '.join(keys)}); rerun with the same settings to continue it, "
                        "or pass --overwrite to discard it"
                    )
                shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.seconds = 0.0
        if not params_file.is_file():
            write_json_atomic(params_file, self.params)

    @staticmethod
    def _read_params(params_file: Path) -> dict[str, Any]:
        try:
            return json.loads(params_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return {"params.json": "missing or unreadable"}

    def _chunk_path(self, key: str) -> Path:
        return self.path / f"{key}.npz"

    def has(self, key: str) -> bool:
        """Whether chunk ``key`` was finished by this or an earlier (killed) run."""
        return self._chunk_path(key).is_file()

    def save(self, key: str, **arrays: np.ndarray) -> None:
        """Write chunk ``key`` atomically."""
        with atomic_path(self._chunk_path(key)) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    def load(self, key: str) -> dict[str, np.ndarray]:
        """The arrays of chunk ``key``; a damaged chunk is removed and reported (rerun to resample it)."""
        path = self._chunk_path(key)
        try:
            with np.load(path) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError) as err:
            path.unlink(missing_ok=True)
            raise SampleSetError(f"{path}: damaged chunk removed ({err}); rerun to sample it again") from None

    def chunk(self, key: str, make: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The arrays of chunk ``key``: made by ``make()`` (timed into :attr:`seconds`, then saved)
        unless an earlier run finished it, then read back, so both cases give the saved arrays."""
        if not self.has(key):
            started = time.perf_counter()
            arrays = make()
            self.save(key, **arrays)
            self.seconds += time.perf_counter() - started
        return self.load(key)

    def finish(self) -> None:
        """Remove the work directory (after the sample set is in place)."""
        shutil.rmtree(self.path, ignore_errors=True)


# ---------------------------------------------------------------------------------- reading


def read_manifest(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of a sample directory, or None when it has none (not written by gsgm sample)."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SampleSetError(f"{path}: corrupt manifest ({err}); sample again into a new --out") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT or "files" not in manifest:
        raise SampleSetError(f"{path}: not a gsgm sample-set manifest")
    return manifest


def verify_sample_directory(directory: str | os.PathLike, names: Sequence[str]) -> dict[str, Any] | None:
    """Check that the files ``names`` of sample directory ``directory`` belong to one complete set.

    A directory with a manifest: each file must be listed with the SHA-256 it was written with (a
    file of another run, or one rewritten alone after a kill, is refused), and no other class file
    may lie beside them. A directory without a manifest (real data, another generator's output) is
    accepted unless its files carry gsgm's sampling provenance, which means a set written without
    the unit rule (a mix cannot be ruled out). An interrupted sampling's work directory beside it is
    reported. Returns the manifest (None without one).

    Raises:
        SampleSetError: naming the directory and the file at fault.
    """
    directory = Path(directory)
    partial = directory.parent / f".{directory.name}.partial"
    manifest = read_manifest(directory)
    if manifest is None:
        if partial.is_dir():
            raise SampleSetError(
                f"{directory}: sampling into it was interrupted and never finished ({partial} holds its "
                "chunks); rerun the same gsgm sample command to complete it"
            )
        _refuse_unmanifested_gsgm_files(directory, names)
        return None
    listed = manifest["files"]
    for name in names:
        path = directory / name
        if name not in listed:
            raise SampleSetError(
                f"{path} is not part of the sample set in {directory} (its {MANIFEST_NAME} lists "
                f"{', '.join(sorted(listed))}): a mixed directory; sample again into a new --out"
            )
        if sha256_file(path) != listed[name]:
            raise SampleSetError(
                f"{path} differs from the file the sample set recorded (sha256 mismatch): a mixed or "
                "changed set; sample again into a new --out"
            )
    strays = sorted(
        p.name for p in directory.iterdir() if p.suffix in (".hdf5", ".h5") and p.name not in listed
    )
    if strays:
        raise SampleSetError(
            f"{directory} holds files that are not part of its sample set ({_describe(strays)}): a mixed "
            "directory; sample again into a new --out"
        )
    return manifest


def _refuse_unmanifested_gsgm_files(directory: Path, names: Sequence[str]) -> None:
    import h5py

    for name in names:
        path = directory / name
        try:
            with h5py.File(path, "r") as handle:
                generator = handle.attrs.get("generator", "")
        except OSError:
            continue  # the format reader reports unreadable files
        generator = generator.decode() if isinstance(generator, bytes) else str(generator)
        # samplers write "gsgm FPCD", "gsgm jet images, ..."; data generators "gsgm.data.<module> ..."
        if generator.startswith("gsgm "):
            raise SampleSetError(
                f"{path} was sampled by gsgm but {directory} has no {MANIFEST_NAME}: the set may mix "
                "files of several runs (written before sample sets had manifests); sample again into a "
                "new --out"
            )


def verify_sample_file(
    path: str | os.PathLike, arrays: Sequence[np.ndarray], manifest_text: Any
) -> dict | None:
    """Check a single-file sample set against the manifest stored in its ``gsgm_manifest`` attribute.

    ``arrays`` are the file's datasets in the order the writer hashed them. Returns the manifest (None
    for a file without one, e.g. written before manifests existed).

    Raises:
        SampleSetError: the arrays do not match the recorded content hash.
    """
    if manifest_text is None:
        return None
    if isinstance(manifest_text, bytes):
        manifest_text = manifest_text.decode()
    try:
        manifest = json.loads(manifest_text)
    except (TypeError, json.JSONDecodeError):
        raise SampleSetError(f"{path}: corrupt {MANIFEST_ATTRIBUTE} attribute") from None
    if arrays_hash(arrays) != manifest.get("content_sha256"):
        raise SampleSetError(
            f"{path}: its samples differ from those its manifest recorded (content hash mismatch): a "
            "changed or damaged file; sample again"
        )
    return manifest


def calo_arrays(sample) -> list[np.ndarray]:
    """The arrays of a shower file (:class:`gsgm.data.calo_format.CaloSample`) as stored: what the
    content hash of its manifest covers."""
    return [
        sample.energies.astype(np.float32),
        sample.points.astype(np.float32),
        sample.num_points.astype(np.int32),
    ]


def read_calo_samples(path: str | os.PathLike):
    """A generated shower file, checked against its manifest (see :func:`verify_sample_file`).

    Raises:
        CaloFormatError: not a valid point-cloud file. SampleSetError: its showers changed since written.
    """
    import h5py

    from gsgm.data.calo_format import read_point_cloud_file

    sample = read_point_cloud_file(path)
    with h5py.File(path, "r") as handle:
        manifest = handle.attrs.get(MANIFEST_ATTRIBUTE)
    verify_sample_file(path, calo_arrays(sample), manifest)
    return sample
