"""Conventions shared by the command-line scripts in scripts/ and the ``gsgm`` command.

One error convention (:func:`run_cli`):

* an expected problem (a bad file, key, shape or value; a full disk; an output location that is not
  writable) prints one line ``error: <message>`` on stderr and exits with status 2;
* anything else is a bug: the traceback is printed, then a line asking to report it, exit status 1.

The ``argparse`` types below make every numeric argument checked when parsed: a zero or negative
count, number of steps, batch size or epochs is an error, never a silent default.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
import traceback
from collections.abc import Callable

__all__ = [
    "USER_ERRORS",
    "UserError",
    "class_list",
    "finite_float",
    "is_disk_full",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "quiet_tensorflow",
    "run_cli",
]


class UserError(Exception):
    """An expected problem the user can fix from the message alone (one line, exit status 2)."""


# errno values that describe the user's file system or paths, not a bug in gsgm.
_USER_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOENT,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.EEXIST,
        errno.ENAMETOOLONG,
    }
)

# Errors a user can fix from the message alone: printed as one line, no traceback, exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, FileNotFoundError, ValueError, KeyError)

BUG_LINE = (
    "gsgm: this is a bug, not a problem with your input: please report it with the command line "
    "and the traceback above"
)


def is_disk_full(err: BaseException) -> bool:
    """True for a "no space left on device" / quota error, also when HDF5 wraps it in its message."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    return "No space left on device" in text or "errno = 28" in text or "Disk quota exceeded" in text


def _is_user_os_error(err: BaseException) -> bool:
    return isinstance(err, OSError) and (err.errno in _USER_ERRNOS or is_disk_full(err))


def _one_line(err: BaseException) -> str:
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    if isinstance(err, OSError) and err.filename and str(err.filename) not in str(message):
        message = f"{err.filename}: {err.strerror or message}"
    return " ".join(str(message).split())  # one line, even if a library put newlines in it


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up chatter (must run before tensorflow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _exit_now(status: int) -> None:
    """Exit without the interpreter's teardown.

    After a failed HDF5 write on a full disk, h5py's finalisers may touch the broken file again at
    interpreter exit, which ended in a segmentation fault (exit 139) after the message was printed.
    The message is out and the temporary files are gone, so nothing is lost by skipping teardown.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def run_cli(main: Callable[[], int | None]) -> None:
    """Run ``main`` and exit with the project's error convention (see the module docstring)."""
    try:
        status = main()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except BaseException as err:  # noqa: BLE001 - every error gets one of the two treatments
        if is_disk_full(err):
            print(f"error: no space left on the device: {_one_line(err)}", file=sys.stderr)
            _exit_now(2)
        if isinstance(err, USER_ERRORS) or _is_user_os_error(err):
            print(f"error: {_one_line(err)}", file=sys.stderr)
            sys.exit(2)
        traceback.print_exc()
        print(BUG_LINE, file=sys.stderr)
        sys.exit(1)
    sys.exit(status or 0)


# ---------------------------------------------------------------------------------- argparse types


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (counts, steps, batch sizes, epochs)."""
    value = _parse(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_int_or_list(text: str) -> int | list[int]:
    """argparse type: one integer >= 1 (``3``) or a comma-separated list of them (``1,1,2,3,4,7``)."""
    if "," not in text:
        return positive_int(text)
    try:
        return [positive_int(part.strip()) for part in text.split(",")]
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(
            f"must be positive integers separated by commas, got {text}"
        ) from error


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds)."""
    value = _parse(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (no nan, inf)."""
    value = _parse(text, float, "a number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (energies [GeV], widths)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def class_list(text: str) -> str:
    """argparse type: a non-empty comma-separated list (``--classes ""`` is an error, not "all")."""
    if not [part for part in text.split(",") if part.strip()]:
        raise argparse.ArgumentTypeError(
            f"must name at least one class (e.g. g,t), got {text!r}; leave the option out for all classes"
        )
    return text


def _parse(text: str, kind: type, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
