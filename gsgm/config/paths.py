"""Which config file a command uses: the command line, ``$GSGM_CONFIG``, then the paper's JetNet30."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DEFAULT_CONFIG", "ENV_CONFIG", "explicit_config", "resolve_config_path"]

#: Environment variable naming the config of a new run when none is given on the command line.
ENV_CONFIG = "GSGM_CONFIG"
#: The config of a new run when neither ``--config`` nor ``$GSGM_CONFIG`` is given: the paper's JetNet30.
DEFAULT_CONFIG = "configs/fpcd_jetnet30.json"
#: The checkout's root (``configs/`` lives there); relative config paths are also looked up in it.
_CHECKOUT = Path(__file__).resolve().parents[2]


def explicit_config(cli_value: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The config a user asked for: the command-line value, else ``$GSGM_CONFIG``, else None."""
    environ = os.environ if environ is None else environ
    return cli_value or environ.get(ENV_CONFIG) or None


def resolve_config_path(spec: str | os.PathLike | None) -> Path:
    """Path of config ``spec`` (None: :data:`DEFAULT_CONFIG`).

    A relative path is taken relative to the working directory and, if no such file exists there,
    relative to the gsgm checkout, so ``configs/quick.json`` works from any directory.
    """
    path = Path(DEFAULT_CONFIG if spec is None else spec).expanduser()
    if not path.is_absolute() and not path.exists() and (_CHECKOUT / path).is_file():
        return _CHECKOUT / path
    return path
