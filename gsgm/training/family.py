"""What the generic training machinery needs to know about a model family, and nothing more.

A *family* (FPCD jets, jet-image score or consistency models, ...) is a subclass of :class:`Family`
registered by name in :mod:`gsgm.families`. The generic driver (:func:`gsgm.training.driver.train_run`),
progressive distillation (:mod:`gsgm.training.distill`) and the tuner (:mod:`gsgm.training.tuning`)
take a family object and call only the methods below; they never import a family module. So a new
family is one config section, one registered :class:`Family` subclass and, if it has new data, one
data module, and it gets the loop, exact resume, Horovod, tuning and the ``gsgm`` command for free.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from gsgm.training.run_dir import RunDirectory

__all__ = ["Family", "PreparedData"]


@dataclass
class PreparedData:
    """A family's training data, normalised and split, before sharding over ranks.

    Attributes:
        config: the run's config; a family may resolve values from the data here (jet images choose
            their noise levels from the training images when a run starts).
        train_arrays, valid_arrays: per-sample arrays (sample axis first, equal lengths) that the
            family's :meth:`Family.make_dataset` turns into batches.
        train_index: [N_train] indices of the training samples in the loaded sample (debug dumps).
        sha256: hash of the loaded arrays; a resumed run must see the same.
        write_files: writes the family's own files (e.g. preprocessing.json) into a new run directory;
            called on rank 0 only, before the config and metadata.
        metadata: family-specific entries for metadata.json (sample counts, classes, ...).
        context: anything :meth:`Family.build_training_model` needs besides the config (a teacher
            model, the fitted preprocessor, ...).
    """

    config: Any
    train_arrays: tuple[np.ndarray, ...]
    valid_arrays: tuple[np.ndarray, ...]
    train_index: np.ndarray
    sha256: str
    write_files: Callable[[RunDirectory], None] = lambda run: None
    metadata: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


class Family:
    """Base class of a model family; subclasses set :attr:`name` and implement the methods.

    ``options`` are the family's command-line choices (jet images: ``model``, ``mode``, ``teacher``;
    FPCD: ``num_particles``), recorded in the run's metadata so that a resumed run keeps them.
    """

    #: registry name, written into every run's metadata (``family``)
    name: ClassVar[str] = ""
    #: the options this family accepts (others given by a user are an error, not silently ignored)
    option_names: ClassVar[tuple[str, ...]] = ()
    #: learning-rate schedule of :func:`gsgm.training.optim.make_optimizer`: "cosine" or "constant"
    learning_rate_schedule: ClassVar[str] = "cosine"

    # -- configs ----------------------------------------------------------------------------------
    def load_config(self, path: str | os.PathLike) -> Any:
        """Read and validate a config file of this family."""
        raise NotImplementedError

    def save_config(self, cfg: Any, path: str | os.PathLike) -> None:
        """Validate ``cfg`` and write it atomically."""
        raise NotImplementedError

    def config_to_dict(self, cfg: Any) -> dict[str, Any]:
        """The JSON dict of ``cfg`` (compared key by key when a run is resumed with a config)."""
        raise NotImplementedError

    def config_from_dict(self, data: dict[str, Any], source: str = "<dict>") -> Any:
        """Validate a parsed config of this family (the inverse of :meth:`config_to_dict`)."""
        raise NotImplementedError

    def training_section(self, cfg: Any) -> Any:
        """The section with batch_size, learning_rate, optimizer, epochs, early_stopping_patience,
        valid_fraction, grad_clip_norm and seed."""
        return cfg.training

    def run_config(self, cfg: Any, options: Mapping[str, Any], source: str) -> Any:
        """The config a new run stores, given the user's config and options (default: unchanged)."""
        return cfg

    def check_options(self, cfg: Any, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the options against the run's config; return them as recorded in metadata."""
        return dict(options)

    def resumed_options(self, metadata: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
        """The options of a resumed run: what its metadata recorded, else what was given."""
        recorded = metadata.get("options") or {}
        return {**dict(options), **recorded}

    # -- tuning -----------------------------------------------------------------------------------
    def default_search_space(self) -> dict[str, Any]:
        """The KerasTuner search space (dotted config keys -> choices or ranges) of ``gsgm tune``."""
        return {"training.learning_rate": {"min": 1e-5, "max": 1e-3, "sampling": "log"}}

    def check_search_space(self, base: Any, space: Mapping[str, Any]) -> None:
        """Reject combinations of choices that no config of this family allows (default: none)."""

    # -- data -------------------------------------------------------------------------------------
    def prepare_data(
        self,
        cfg: Any,
        data: str,
        *,
        max_per_class: int | None,
        options: Mapping[str, Any],
        resume_run: RunDirectory | None,
    ) -> PreparedData:
        """Load, split and normalise the training data (deterministic: every rank computes the same).

        ``resume_run`` is the run being resumed (its fitted preprocessing must be reused), else None.
        """
        raise NotImplementedError

    def make_dataset(
        self,
        arrays: tuple[np.ndarray, ...],
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        num_ranks: int = 1,
        index: np.ndarray | None = None,
    ) -> tf.data.Dataset:
        """Batches of rank ``rank``'s shard of ``arrays`` as the training model's ``train_step`` takes
        them; with ``index`` (one per sample) every batch also carries ``"index"`` [B] int64."""
        raise NotImplementedError

    # -- models -----------------------------------------------------------------------------------
    def build_training_model(
        self, cfg: Any, prepared: PreparedData, *, options: Mapping[str, Any], steps_per_epoch: int
    ) -> keras.Model:
        """The Keras training model (networks, EMA copies, loss) with fixed initial weights."""
        raise NotImplementedError

    def load_run(self, run_dir: str | os.PathLike) -> tuple[keras.Model, Any]:
        """A trained run's model with its inference weights, and its config."""
        raise NotImplementedError

    def distillation_start_steps(self, cfg: Any) -> int:
        """Steps of the undistilled teacher a ``gsgm distill`` chain starts from (default: the config's
        ``sampling.num_steps``). A family that distils to one step in a single stage (consistency
        distillation) returns 2, so that the chain is the one stage ``steps-001``."""
        return int(cfg.sampling.num_steps)

    def build_distillation_model(
        self, cfg: Any, teacher: keras.Model, num_steps: int, seed: int
    ) -> keras.Model:
        """A progressive-distillation student that samples in ``num_steps`` steps where ``teacher``
        (from :meth:`load_run`) takes ``2 * num_steps``, initialised with the teacher's EMA weights."""
        raise NotImplementedError(f"the {self.name} family does not support progressive distillation")
