"""Conventions shared by the command-line scripts in scripts/."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

# Errors a user can fix from the message alone: printed as one line, no traceback, exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, ValueError, KeyError)


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up chatter (must run before tensorflow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_cli(main: Callable[[], int | None]) -> None:
    """Run ``main`` and exit; a user error becomes ``error: <message>`` on stderr and exit status 2."""
    try:
        status = main()
    except USER_ERRORS as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    sys.exit(status or 0)
