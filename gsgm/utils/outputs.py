"""Check output locations before any work is done, so that no compute is lost to a bad path.

:func:`check_output_dir` and :func:`check_output_file` are called by every command before it samples,
trains or evaluates: the location must be (or be creatable as) a directory / a file in a directory,
writable (tested by creating a file there, which also catches read-only file systems and root-owned
directories that ``os.access`` would pass), and the file system must have room for the estimated
output. Every problem is a :class:`OutputLocationError` (one line, exit status 2) naming the path.
Temporary files left there by a killed writer (:func:`gsgm.utils.atomic.remove_stale_temporaries`)
are removed on the way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from gsgm.utils.atomic import remove_stale_temporaries
from gsgm.utils.cli import UserError

__all__ = ["OutputLocationError", "check_output_dir", "check_output_file", "format_bytes"]

#: Free space kept beyond the estimate (HDF5 metadata, the timing file, a checkpoint's temporaries).
SAFETY_MARGIN_BYTES = 16 * 1024 * 1024


class OutputLocationError(UserError):
    """An output path cannot be written: not a directory, not writable, or not enough free space."""


def format_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``: sizes in error messages."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} B" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def _existing_ancestor(path: Path) -> Path:
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    return probe


def _check_writable_dir(directory: Path, option: str, target: Path) -> None:
    if not directory.is_dir():
        raise OutputLocationError(f"{option} {target}: {directory} exists and is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".gsgm-write-test-", dir=directory)
    except OSError as err:
        raise OutputLocationError(
            f"{option} {target}: cannot write into {directory} ({err.strerror or err})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def _check_free_space(directory: Path, option: str, target: Path, estimated_bytes: int) -> None:
    if estimated_bytes <= 0:
        return
    free = shutil.disk_usage(directory).free
    needed = int(estimated_bytes) + SAFETY_MARGIN_BYTES
    if free < needed:
        raise OutputLocationError(
            f"{option} {target}: not enough free space on its file system: the output needs about "
            f"{format_bytes(needed)}, {format_bytes(free)} are free"
        )


def check_output_dir(path: str | os.PathLike, *, estimated_bytes: int = 0, option: str = "--out") -> Path:
    """Check that ``path`` is (or can be created as) a writable directory with room for the output.

    Nothing is created; temporary files that killed writers left in ``path`` are removed.
    ``estimated_bytes`` is the expected size of what will be written [bytes].

    Raises:
        OutputLocationError: ``path`` or an ancestor is a file, the directory is not writable, or
            its file system has less free space than the estimate plus a margin.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise OutputLocationError(f"{option} {target}: exists and is not a directory")
    anchor = _existing_ancestor(target)
    _check_writable_dir(anchor, option, target)
    _check_free_space(anchor, option, target, estimated_bytes)
    remove_stale_temporaries(target)
    return target


def check_output_file(path: str | os.PathLike, *, estimated_bytes: int = 0, option: str = "--out") -> Path:
    """Check that the file ``path`` can be written: not a directory, parent writable, room for it.

    Raises:
        OutputLocationError: as :func:`check_output_dir`, or ``path`` is an existing directory.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputLocationError(f"{option} {target}: is a directory, expected a file name")
    anchor = _existing_ancestor(target.parent)
    _check_writable_dir(anchor, option, target)
    _check_free_space(anchor, option, target, estimated_bytes)
    remove_stale_temporaries(target.parent)
    return target
