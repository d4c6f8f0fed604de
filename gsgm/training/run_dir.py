"""The run-directory convention shared by every gsgm training job.

A run directory holds everything needed to resume training or to sample from a model::

    RUN/config.json            the validated config the run was started with
    RUN/preprocessing.json     statistics of the reversible preprocessing (gsgm.data.preprocessing)
    RUN/metadata.json          seed, package versions, data source and SHA-256 of the training arrays
    RUN/history.csv            one row per finished epoch (losses, learning rate, wall time)
    RUN/best.weights.h5        weights of the epoch with the lowest validation loss
    RUN/checkpoints/latest.json   which epoch directory is the newest complete checkpoint
    RUN/checkpoints/epoch-NNNN/   model weights, optimizer state and loop state after epoch NNNN
    RUN/checksums.json         SHA-256 of best.weights.h5 (each checkpoint has its own checksums.json)

Every file is written under a temporary name and renamed, so a run killed at any moment (kill -9)
leaves the previous complete checkpoint usable. Weights and checkpoints are verified against their
recorded checksums when loaded; a corrupt file is named, and the previous checkpoint (two are kept)
is the way back.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gsgm.utils.atomic import write_json_atomic, write_text_atomic
from gsgm.utils.checksums import CHECKSUMS_NAME, verify_recorded

#: Environment variable naming the run directory when ``--out`` is not given.
ENV_RUN_DIR = "GSGM_RUN_DIR"
#: Parent of the default run directories (``runs/<config name>``), relative to the working directory.
DEFAULT_RUNS_ROOT = "runs"


def default_run_dir(config_name: str, environ: Mapping[str, str] | None = None) -> Path:
    """The run directory when none is given: ``$GSGM_RUN_DIR``, else ``runs/<config name>``."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(ENV_RUN_DIR) or Path(DEFAULT_RUNS_ROOT) / config_name)


class RunDirectoryError(FileNotFoundError):
    """A run directory is missing, incomplete or inconsistent; the message says what and where."""


class RunDirectory:
    """Paths and small helpers for one run directory (see the module docstring for the layout)."""

    KEEP_CHECKPOINTS = 2

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    preprocessing_path = property(lambda self: self.path / "preprocessing.json")
    metadata_path = property(lambda self: self.path / "metadata.json")
    history_path = property(lambda self: self.path / "history.csv")
    best_weights_path = property(lambda self: self.path / "best.weights.h5")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")

    def exists(self) -> bool:
        return self.config_path.is_file()

    def require(self) -> RunDirectory:
        """Raise RunDirectoryError unless this looks like a run directory."""
        if not self.path.is_dir():
            raise RunDirectoryError(f"run directory not found: {self.path}")
        # preprocessing.json is a family's own file (FPCD, jet images); the loaders that need it say so.
        for needed in (self.config_path,):
            if not needed.is_file():
                raise RunDirectoryError(f"{self.path} is not a complete gsgm run: missing {needed.name}")
        return self

    # metadata ---------------------------------------------------------------------------------
    def write_metadata(self, payload: dict[str, Any]) -> None:
        write_json_atomic(self.metadata_path, payload)

    def read_metadata(self) -> dict[str, Any]:
        if not self.metadata_path.is_file():
            return {}
        try:
            payload = json.loads(self.metadata_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RunDirectoryError(f"{self.metadata_path}: corrupt run metadata ({err})") from None
        if not isinstance(payload, dict):
            raise RunDirectoryError(f"{self.metadata_path}: corrupt run metadata (expected a JSON object)")
        return payload

    # history ----------------------------------------------------------------------------------
    def read_history(self) -> list[dict[str, float]]:
        """Rows of history.csv as dicts of floats (empty list when no epoch has finished)."""
        if not self.history_path.is_file():
            return []
        with self.history_path.open(newline="") as handle:
            try:
                return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
            except (TypeError, ValueError) as err:
                raise RunDirectoryError(f"{self.history_path}: corrupt training history ({err})") from None

    def write_history(self, rows: list[dict[str, float]]) -> None:
        """Rewrite history.csv atomically with ``rows`` (keys of the first row define the columns)."""
        if not rows:
            return
        columns = list(rows[0].keys())
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, float("nan")) for k in columns})
        write_text_atomic(self.history_path, buffer.getvalue())

    # checkpoints ------------------------------------------------------------------------------
    def epoch_dir(self, epoch: int) -> Path:
        return self.checkpoints_dir / f"epoch-{epoch:04d}"

    def latest_checkpoint(self) -> Path | None:
        """Directory of the newest complete checkpoint, or None if training never finished an epoch.

        When the checkpoint ``latest.json`` names was deleted (the recovery from a corrupt checkpoint
        that :meth:`verify_checkpoint` suggests), the newest remaining one is used.
        """
        pointer = self.checkpoints_dir / "latest.json"
        if not pointer.is_file():
            return None
        try:
            target = self.checkpoints_dir / json.loads(pointer.read_text())["dir"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            raise RunDirectoryError(
                f'{pointer}: corrupt checkpoint pointer; write {{"dir": "epoch-NNNN"}} naming one of '
                f"{', '.join(p.name for p in self._epoch_dirs()) or 'no checkpoint'}"
            ) from None
        if target.is_dir():
            return target
        older = [p for p in self._epoch_dirs() if p.name < target.name]
        if older:
            return older[-1]
        raise RunDirectoryError(f"{pointer} points to {target.name}, which does not exist")

    def _epoch_dirs(self) -> list[Path]:
        return sorted(p for p in self.checkpoints_dir.glob("epoch-*") if p.is_dir())

    def verify_checkpoint(self, checkpoint: Path) -> None:
        """Check a checkpoint's files against the checksums recorded when it was written.

        Raises:
            ChecksumError: naming the corrupt file and the previous checkpoint to resume from.
        """
        previous = [p for p in self._epoch_dirs() if p.name < checkpoint.name]
        if previous:
            recovery = (
                f"the previous checkpoint {previous[-1]} is kept for this: delete {checkpoint} and "
                "rerun to resume from it"
            )
        else:
            recovery = f"no earlier checkpoint is left: delete {self.checkpoints_dir} to train from the start"
        if not (checkpoint / CHECKSUMS_NAME).is_file():
            return  # written before checksums existed
        for name in ("model.weights.h5", "state.json"):
            verify_recorded(checkpoint / name, recovery)

    def commit_checkpoint(self, staging: Path, epoch: int) -> Path:
        """Move a fully written ``staging`` directory into place as epoch ``epoch`` and point latest at it.

        The pointer file is replaced only after the directory rename, so a crash in between leaves the
        previous checkpoint as ``latest``; older checkpoints beyond KEEP_CHECKPOINTS are then removed.
        """
        final = self.epoch_dir(epoch)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        write_json_atomic(self.checkpoints_dir / "latest.json", {"dir": final.name, "epoch": epoch})
        for old in self._epoch_dirs()[: -self.KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in self.checkpoints_dir.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return final

    def new_staging_dir(self, epoch: int) -> Path:
        staging = self.checkpoints_dir / f".staging-{epoch:04d}-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        return staging

    def inference_weights(self) -> Path:
        """Weights to sample from: the best epoch if recorded, else the latest checkpoint; verified.

        Raises:
            ChecksumError: the file does not match its recorded checksum (named, with the way back).
            RunDirectoryError: no trained weights at all.
        """
        if self.best_weights_path.is_file():
            verify_recorded(
                self.best_weights_path,
                f"delete it to sample from the latest checkpoint in {self.checkpoints_dir}, or retrain",
            )
            return self.best_weights_path
        latest = self.latest_checkpoint()
        if latest is not None:
            self.verify_checkpoint(latest)
            return latest / "model.weights.h5"
        raise RunDirectoryError(
            f"{self.path} has no trained weights (no best.weights.h5 and no checkpoint): "
            "train it first with scripts/train.py or pass another --run"
        )
