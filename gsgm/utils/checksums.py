"""SHA-256 checksums recorded when a file is written and verified when it is read back.

A run directory's weights and checkpoints are large binary files that a truncated copy, a full disk
or a bad sector can corrupt without a trace until Keras fails deep inside ``load_weights`` with an
error that names no file. Their checksums go into a small JSON record next to them
(``checksums.json``: ``{file name: {"sha256": ..., "pending": ...}}``) and are checked on load.

Replacing a recorded file is crash-safe in three steps: the new file's hash is recorded as
``pending``, the file is renamed into place, then ``pending`` becomes ``sha256``. A kill at any
moment leaves a file whose hash is one of the two recorded, so a verified file is never reported
corrupt because its writer was interrupted.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from gsgm.utils.atomic import write_json_atomic, writer_token
from gsgm.utils.cli import UserError

__all__ = [
    "CHECKSUMS_NAME",
    "ChecksumError",
    "sha256_file",
    "verify_recorded",
    "write_checksums",
    "write_recorded",
]

#: Name of the checksum record in a directory.
CHECKSUMS_NAME = "checksums.json"
_CHUNK = 1 << 20


class ChecksumError(UserError):
    """A file does not match the checksum recorded when it was written (corrupt or changed)."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_record(record: Path) -> dict:
    if not record.is_file():
        return {}
    try:
        payload = json.loads(record.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ChecksumError(f"{record}: corrupt checksum record ({err})") from None
    if not isinstance(payload, dict):
        raise ChecksumError(f"{record}: corrupt checksum record (expected a JSON object)")
    return payload


def write_checksums(directory: str | os.PathLike, names: list[str]) -> Path:
    """Record the SHA-256 of ``directory/name`` for each name (for a directory written as one unit)."""
    directory = Path(directory)
    record = directory / CHECKSUMS_NAME
    write_json_atomic(record, {name: {"sha256": sha256_file(directory / name)} for name in names})
    return record


def write_recorded(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write ``path`` atomically with ``write(temporary path)`` and record its checksum (see module doc).

    ``write`` receives a temporary path with the target's full name as suffix (Keras insists on
    ``.weights.h5``).
    """
    path = Path(path)
    record = path.parent / CHECKSUMS_NAME
    tmp = path.with_name(f".{writer_token()}.partial.{path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write(tmp)
        new = sha256_file(tmp)
        entries = _read_record(record)
        entry = dict(entries.get(path.name, {}))
        entry["pending"] = new
        entries[path.name] = entry
        write_json_atomic(record, entries)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    entries[path.name] = {"sha256": new}
    write_json_atomic(record, entries)
    return path


def verify_recorded(path: str | os.PathLike, recovery: str = "") -> bool:
    """Check ``path`` against the ``checksums.json`` of its directory.

    Returns False when no checksum is recorded for it (files written before checksums existed), True
    when it matches.

    Raises:
        ChecksumError: naming the file, the expected and actual hash prefixes, and ``recovery``.
    """
    path = Path(path)
    entry = _read_record(path.parent / CHECKSUMS_NAME).get(path.name)
    if not entry:
        return False
    if not path.is_file():
        raise ChecksumError(
            f"{path}: missing, but its checksum is recorded{'; ' + recovery if recovery else ''}"
        )
    actual = sha256_file(path)
    accepted = [value for value in (entry.get("sha256"), entry.get("pending")) if value]
    if actual not in accepted:
        hint = f"; {recovery}" if recovery else ""
        raise ChecksumError(
            f"{path}: checksum mismatch, the file is corrupt or was changed since it was written "
            f"(sha256 {actual[:12]}, recorded {accepted[0][:12]}){hint}"
        )
    return True
