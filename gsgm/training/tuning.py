"""KerasTuner Hyperband search over FPCD's architecture and learning rate (paper section III).

The search space maps dotted config keys (``particle_net.num_heads``) to the values to try: a list
of choices, or ``{"min": ..., "max": ..., "sampling": "log"}`` for a numeric range (``"step"``
optional, integers when min and max are integers). List-valued fields (``embedding.time_dims``) take
their choices as comma-separated strings (``"32,64"``). :data:`DEFAULT_SPACE` covers what the paper
tuned: the embedding sizes, the jet ResNet's depth and width, the particle transformer's width,
blocks and heads, and the learning rate. A space file is a JSON object of the same form.

Every trial builds the FPCD model of the base config with the trial's values, trains it with the
same loss, optimizer and cosine schedule (over ``max_epochs``) as ``scripts/train.py`` and reports
the validation loss (objective ``val_loss``, lower is better) after each epoch; Hyperband stops the
weaker trials early. The tuner directory keeps every finished trial, so running the same search
again continues where it stopped (``overwrite=True`` starts afresh). The best trial is exported as
a complete config file that ``scripts/train.py --config`` takes unchanged.

With Horovod, each trial is trained data-parallel on all ranks: rank 0 owns the tuner (the oracle,
the tuner directory, the export) and, before each trial, broadcasts the trial's values and epochs;
the other ranks build the same model, receive rank 0's weights (including those Hyperband carries
over from an earlier bracket), train on their shards with averaged gradients, and average the epoch
metrics, so that rank 0 reports the validation loss of all ranks' validation shards. When the search
ends, rank 0 tells the other ranks to stop.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import keras

from gsgm.config import FPCDConfig, config_from_dict, config_to_dict, load_config, save_config
from gsgm.data.pipeline import make_dataset
from gsgm.training.distributed import Distributed
from gsgm.training.trainer import (
    SYNC_RTOL,
    TrainingData,
    TrainingSetupError,
    build_model,
    load_training_data,
    make_optimizer,
)
from gsgm.utils.atomic import write_json_atomic

#: What the paper tuned (section III): embedding sizes, layer counts and widths, transformer heads
#: and blocks, learning rate. The paper's choices (64 / 8 blocks / 512 x 5 / 16e-4 on 16 ranks, i.e.
#: 1e-4 per rank: the tuned learning rate is per rank like the configs') are inside.
DEFAULT_SPACE: dict[str, Any] = {
    "embedding.fourier_features": [16, 32, 64],
    "embedding.time_dims": ["16,32", "32,64", "64,128"],
    "embedding.cond_dim": [32, 64, 128],
    "jet_net.num_blocks": [3, 5, 7],
    "jet_net.width": [128, 256, 512],
    "particle_net.embed_dim": [32, 64, 128],
    "particle_net.num_transformer_blocks": [4, 6, 8],
    "particle_net.num_heads": [1, 2, 4],
    "particle_net.ffn_dim": [64, 128, 256],
    "particle_net.output_hidden_dim": [32, 64, 128],
    "training.learning_rate": {"min": 3e-5, "max": 3e-3, "sampling": "log"},
}
TUNABLE_SECTIONS = ("embedding", "jet_net", "particle_net", "training")
OBJECTIVE = "val_loss"


def _import_keras_tuner():
    try:
        import keras_tuner
    except ImportError as err:
        raise TrainingSetupError(
            f"KerasTuner is not installed ({err}): pip install keras-tuner==1.4.8 tensorboard "
            "(its search imports tensorboard)"
        ) from None
    return keras_tuner


def load_space(path: str | os.PathLike | None) -> dict[str, Any]:
    """The search space in the JSON file ``path``, or :data:`DEFAULT_SPACE` when None."""
    if path is None:
        return copy.deepcopy(DEFAULT_SPACE)
    try:
        space = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise TrainingSetupError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(space, dict) or not space:
        raise TrainingSetupError(f"{path}: the search space must be a non-empty JSON object")
    return space


def _field_value(base: dict[str, Any], key: str, value: Any) -> Any:
    """``value`` converted for the field ``key`` (comma-separated strings for list fields)."""
    section, name = key.split(".")
    if isinstance(base[section][name], list) and isinstance(value, str):
        return [int(v) for v in value.split(",")]
    return value


def apply_values(base: FPCDConfig, values: dict[str, Any], source: str = "<search space>") -> FPCDConfig:
    """A validated copy of ``base`` with the dotted keys of ``values`` replaced.

    Raises:
        gsgm.config.ConfigError: a value is invalid for its field (or for the combination).
    """
    data = config_to_dict(base)
    for key, value in values.items():
        section, name = key.split(".")
        data[section][name] = _field_value(data, key, value)
    return config_from_dict(data, source)


def check_space(base: FPCDConfig, space: dict[str, Any]) -> None:
    """Reject unknown keys, malformed ranges and choices the config validation would refuse.

    Each choice is checked alone against ``base``, and every (embed_dim, num_heads) pair together
    (the heads must divide the width), so that no trial fails at build time.
    """
    data = config_to_dict(base)
    for key, spec in space.items():
        parts = key.split(".")
        if len(parts) != 2 or parts[0] not in TUNABLE_SECTIONS or parts[1] not in data.get(parts[0], {}):
            raise TrainingSetupError(
                f"search space key {key!r} is not a tunable config field (sections: {TUNABLE_SECTIONS})"
            )
        if isinstance(spec, list):
            if not spec:
                raise TrainingSetupError(f"search space key {key!r} has no choices")
            for choice in spec:
                apply_values(base, {key: choice}, f"search space {key}={choice!r}")
        elif isinstance(spec, dict):
            if not {"min", "max"} <= set(spec) or set(spec) - {"min", "max", "sampling", "step"}:
                raise TrainingSetupError(
                    f"search space key {key!r}: a range needs min and max (and optionally sampling, step)"
                )
            if not spec["min"] < spec["max"]:
                raise TrainingSetupError(f"search space key {key!r}: min must be < max")
            for bound in (spec["min"], spec["max"]):
                apply_values(base, {key: bound}, f"search space {key}={bound!r}")
        else:
            raise TrainingSetupError(f"search space key {key!r}: expected a list of choices or a range")
    widths = space.get("particle_net.embed_dim", [base.particle_net.embed_dim])
    heads = space.get("particle_net.num_heads", [base.particle_net.num_heads])
    if isinstance(widths, list) and isinstance(heads, list):
        bad = [(w, h) for w, h in product(widths, heads) if w % h]
        if bad:
            raise TrainingSetupError(
                f"search space: particle_net.num_heads must divide particle_net.embed_dim; failing pairs "
                f"(embed_dim, num_heads): {bad}"
            )


def declare(hp: Any, space: dict[str, Any]) -> dict[str, Any]:
    """Register ``space`` with the KerasTuner HyperParameters ``hp``; return this trial's values."""
    values = {}
    for key, spec in space.items():
        if isinstance(spec, list):
            values[key] = hp.Choice(key, spec)
        elif isinstance(spec["min"], int) and isinstance(spec["max"], int):
            values[key] = hp.Int(
                key,
                spec["min"],
                spec["max"],
                step=spec.get("step", 1),
                sampling=spec.get("sampling", "linear"),
            )
        else:
            values[key] = hp.Float(
                key, spec["min"], spec["max"], step=spec.get("step"), sampling=spec.get("sampling", "linear")
            )
    return values


class _EpochSync(keras.callbacks.Callback):
    """Per-epoch bookkeeping of a trial: repeatable validation noise, metrics averaged over ranks.

    Placed before KerasTuner's callbacks, so that they (and the History) see the averaged values.
    """

    def __init__(self, dist: Distributed):
        super().__init__()
        self.dist = dist

    def on_test_begin(self, logs=None):
        self.model.eval_counter.assign(0)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self.dist.size == 1:
            return
        logs.update(self.dist.average_scalars({k: float(v) for k, v in logs.items()}))
        if self.dist.average:
            in_sync, spread = self.dist.weights_in_sync(self.model.weights, rtol=SYNC_RTOL)
            if not in_sync:
                raise TrainingSetupError(f"ranks hold different weights after epoch {epoch} ({spread:.2e})")


def _make_hypermodel_class(keras_tuner):
    class FPCDHyperModel(keras_tuner.HyperModel):
        """Builds and trains FPCD models for the trials; also used by the non-zero ranks."""

        def __init__(self, base, space, data, dist, max_epochs, verbose):
            super().__init__(name="fpcd")
            self.base, self.space, self.data, self.dist = base, space, data, dist
            self.verbose = verbose
            batch = base.training.batch_size
            self.steps_per_epoch = dist.steps_per_epoch(len(data.train_idx), batch)
            self.max_epochs = max_epochs
            seed = base.training.seed
            self.train_dataset = make_dataset(
                *data.train_arrays, batch_size=batch, shuffle=True, seed=seed + 1_000_003 * dist.rank,
                rank=dist.rank, num_ranks=dist.size,
            )  # fmt: skip
            self.valid_dataset = make_dataset(
                *data.valid_arrays, batch_size=batch, shuffle=False, rank=dist.rank, num_ranks=dist.size
            )

        def declare_hyperparameters(self, hp):
            declare(hp, self.space)

        def build(self, hp):
            return self.build_from_values(declare(hp, self.space))

        def build_from_values(self, values):
            cfg = apply_values(self.base, values)
            model = build_model(cfg, cfg.data.num_particles, cfg.training.seed)
            # The schedule spans max_epochs, the longest any trial trains.
            tuning_cfg = copy.deepcopy(cfg)
            tuning_cfg.training.epochs = self.max_epochs
            model.compile(
                optimizer=make_optimizer(tuning_cfg, self.steps_per_epoch, self.dist.size),
                jit_compile=False if self.dist.size > 1 else "auto",
            )
            # Slots exist before KerasTuner loads a previous bracket's weights, so those include them.
            model.optimizer.build(model.optimized_variables)
            return model

        def fit(self, hp, model, *args, epochs=1, initial_epoch=0, callbacks=None, **kwargs):
            if self.dist.size > 1:
                values = {k: hp.get(k) for k in self.space}
                self.dist.broadcast_object(
                    {"command": "trial", "values": values, "epochs": epochs, "initial_epoch": initial_epoch}
                )
            return self.train(model, epochs, initial_epoch, list(callbacks or []))

        def train(self, model, epochs, initial_epoch, callbacks):
            if self.dist.size > 1:
                model.distributed = self.dist
                self.dist.broadcast_variables(list(model.weights) + list(model.optimizer.variables))
            return model.fit(
                self.train_dataset,
                validation_data=self.valid_dataset,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=self.steps_per_epoch if self.dist.size > 1 else None,
                callbacks=[_EpochSync(self.dist), *callbacks],
                verbose=self.dist.verbosity(self.verbose),
                shuffle=False,  # the dataset reshuffles itself every epoch
            )

        def follow(self):
            """Non-zero ranks: train the trials rank 0 announces until it says stop."""
            while True:
                message = self.dist.broadcast_object(None)
                if message["command"] == "stop":
                    return
                keras.backend.clear_session()  # as KerasTuner does on rank 0 before each build
                model = self.build_from_values(message["values"])
                self.train(model, message["epochs"], message["initial_epoch"], [])

    return FPCDHyperModel


def _check_same_search(path: Path, settings: dict[str, Any], overwrite: bool) -> None:
    """Record the settings of a new search; refuse to continue one that had other settings.

    KerasTuner would silently reload the old oracle and mix trials of two different searches.
    """
    settings = json.loads(json.dumps(settings))  # normalised as JSON (tuples -> lists)
    if path.is_file() and not overwrite:
        previous = json.loads(path.read_text())
        changed = sorted(k for k in set(settings) | set(previous) if settings.get(k) != previous.get(k))
        if changed:
            raise TrainingSetupError(
                f"{path.parent} holds a search with other settings ({', '.join(changed)}); continue it with "
                "the same ones, or pass --overwrite (overwrite=True) or another tuner directory"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, settings)


@dataclass
class SearchResult:
    """The best trial of a finished search (on rank 0)."""

    values: dict[str, Any]
    config: FPCDConfig
    val_loss: float
    trial_id: str
    num_trials: int
    export_path: Path | None


def run_search(
    config: str | os.PathLike | FPCDConfig,
    data: str,
    tuner_dir: str | os.PathLike,
    *,
    max_epochs: int,
    factor: int = 3,
    hyperband_iterations: int = 1,
    max_trials: int | None = None,
    space: dict[str, Any] | None = None,
    max_jets_per_class: int | None = None,
    export: str | os.PathLike | None = None,
    overwrite: bool = False,
    project_name: str = "fpcd",
    distributed: Distributed | None = None,
    verbose: int = 1,
) -> SearchResult | None:
    """Run (or continue) a Hyperband search and export the best trial's config.

    Args:
        config: base config (file or object); the search overrides the fields of ``space``.
        data: directory of JetNet files or ``"builtin"``.
        tuner_dir: KerasTuner directory (``tuner_dir/project_name``); reused unless ``overwrite``.
        max_epochs: epochs of the longest trials (Hyperband's max_epochs); also the length of the
            cosine learning-rate schedule of every trial.
        factor: Hyperband's reduction factor (keeps 1/factor of the trials per round).
        hyperband_iterations: full Hyperband runs.
        max_trials: stop after this many trials in all (a budget cap: the last brackets stay
            incomplete); default: as many as Hyperband plans.
        space: search space (default :data:`DEFAULT_SPACE`).
        export: where to write the best config (default ``tuner_dir/best.json``).
        distributed: process group; with several ranks rank 0 runs the tuner and the others follow.

    Returns:
        the best trial on rank 0, None on the other ranks.
    """
    keras_tuner = _import_keras_tuner()
    dist = distributed or Distributed()
    base = config if isinstance(config, FPCDConfig) else load_config(config)
    space = copy.deepcopy(DEFAULT_SPACE if space is None else space)
    check_space(base, space)
    if (
        max_epochs < 1
        or factor < 2
        or hyperband_iterations < 1
        or (max_trials is not None and max_trials < 1)
    ):
        raise TrainingSetupError(
            "need max_epochs >= 1, factor >= 2, hyperband_iterations >= 1 and max_trials >= 1 (or None)"
        )
    tuner_dir = Path(tuner_dir)
    if dist.is_chief:
        _check_same_search(
            tuner_dir / f"{project_name}.search.json",
            {
                "base_config": config_to_dict(base),
                "space": space,
                "data": str(data),
                "max_jets_per_class": max_jets_per_class,
                "max_epochs": max_epochs,
                "factor": factor,
                "hyperband_iterations": hyperband_iterations,
                "num_ranks": dist.size,
            },
            overwrite,
        )
    prepared: TrainingData = load_training_data(base, data, max_jets_per_class)
    hypermodel = _make_hypermodel_class(keras_tuner)(base, space, prepared, dist, max_epochs, verbose)
    if not dist.is_chief:
        hypermodel.follow()
        return None

    tuner = keras_tuner.Hyperband(
        hypermodel,
        objective=keras_tuner.Objective(OBJECTIVE, direction="min"),
        max_epochs=max_epochs,
        factor=factor,
        hyperband_iterations=hyperband_iterations,
        seed=base.training.seed,
        directory=str(tuner_dir),
        project_name=project_name,
        overwrite=overwrite,
    )
    # Hyperband itself takes no trial budget; its oracle honours the base oracle's max_trials.
    tuner.oracle.max_trials = max_trials
    tuner.search(verbose=verbose)
    # Only after a search that ended normally: after a failure, the other ranks may be waiting in
    # another collective; rank 0 then exits with an error and the launcher stops them.
    if dist.size > 1:
        dist.broadcast_object({"command": "stop"})

    best_trial = tuner.oracle.get_best_trials(1)[0]
    values = {k: best_trial.hyperparameters.get(k) for k in space}
    val_loss = float(best_trial.score)
    best = apply_values(base, values)
    best.name = f"{base.name}-tuned"
    summary = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    best.description = (
        f"{base.name} with the best Hyperband trial ({best_trial.trial_id}, val_loss {val_loss:.4g} after "
        f"at most {max_epochs} epochs on {dist.size} rank(s); factor {factor}): {summary}. "
        f"Base: {base.description}"
    )
    export_path = Path(export) if export is not None else tuner_dir / "best.json"
    export_path.parent.mkdir(parents=True, exist_ok=True)
    save_config(best, export_path)
    num_trials = len(tuner.oracle.trials)
    return SearchResult(values, best, val_loss, best_trial.trial_id, num_trials, export_path)


__all__ = [
    "DEFAULT_SPACE",
    "OBJECTIVE",
    "SearchResult",
    "apply_values",
    "check_space",
    "declare",
    "load_space",
    "run_search",
]
