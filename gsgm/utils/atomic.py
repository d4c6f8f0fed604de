"""Write files so that a crash never leaves a half-written output behind.

Temporary files and directories live next to their target and carry the writer's host and process
id in their name (``.t.hdf5.<host>~<pid>.<random>.tmp``), so that the next run can tell the leftovers
of a killed writer (whose process is gone) from the work of one still running, and remove them
(:func:`remove_stale_temporaries`). Temporaries of other hosts (a shared file system under Slurm)
are never touched: their processes cannot be seen from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_directory",
    "atomic_path",
    "remove_stale_temporaries",
    "replace_directory",
    "write_json_atomic",
    "write_text_atomic",
    "writer_token",
]

# ".<name>.<host>~<pid>.<random>.tmp" (files), ".<name>.<host>~<pid>.<random>.tmpdir" (directories),
# or ".<host>~<pid>.partial.<name>" (files whose writer insists on a suffix: Keras' ".weights.h5")
_TEMP_NAME = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_-]+)~(?P<pid>\d+)\.[^.]+\.tmp(dir)?$")
_SUFFIXED_TEMP_NAME = re.compile(r"^\.(?P<host>[A-Za-z0-9_-]+)~(?P<pid>\d+)\.partial\..+$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "host"


def writer_token() -> str:
    """``<host>~<pid>``: the part of a temporary name that says who is writing it."""
    return f"{_host()}~{os.getpid()}"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary files/directories in ``directory`` left by writers that no longer run.

    Returns the removed paths. A temporary of a live process (another writer) is left alone.
    """
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        match = _TEMP_NAME.match(entry.name) or _SUFFIXED_TEMP_NAME.match(entry.name)
        if match is None or match["host"] != _host() or _process_alive(int(match["pid"])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _default_permissions(path: Path, directory: bool) -> None:
    # mkstemp/mkdtemp create 0600/0700; give the output the permissions a plain open()/mkdir() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if directory else 0o666) & ~umask)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file lives in the same directory so that the final ``os.replace`` is atomic on
    POSIX file systems. On error (a full disk included) the temporary file is removed and ``path`` is
    left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.{writer_token()}.", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            _default_permissions(tmp, directory=False)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_directory(staged: Path, target: Path) -> None:
    """Put the complete directory ``staged`` at ``target``, replacing a directory there.

    A reader sees either the old directory or the new one, never a mix: the old one is first renamed
    aside (a name :func:`remove_stale_temporaries` knows), the new one renamed into place, then the
    old one deleted.
    """
    aside = None
    if target.exists():
        aside = target.with_name(f".{target.name}.{writer_token()}.old.tmpdir")
        if aside.exists():
            shutil.rmtree(aside)
        os.replace(target, aside)
    try:
        os.replace(staged, target)
    except BaseException:
        if aside is not None:
            os.replace(aside, target)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory next to ``path``; it replaces ``path`` if the block succeeds.

    On error the temporary directory is removed and ``path`` (if it existed) is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.{writer_token()}.", suffix=".tmpdir", dir=target.parent)
    )
    try:
        yield tmp
        _default_permissions(tmp, directory=True)
        replace_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
