"""KerasTuner Hyperband search over any family's architecture and learning rate (FPCD paper section III).

The search space maps dotted config keys (``particle_net.num_heads``, ``score.unet.base_channels``)
to the values to try: a list
of choices, or ``{"min": ..., "max": ..., "sampling": "log"}`` for a numeric range (``"step"``
optional, integers when min and max are integers). List-valued fields (``embedding.time_dims``) take
their choices as comma-separated strings (``"32,64"``). Each family brings its default space
(:meth:`Family.default_search_space`); FPCD's (:data:`DEFAULT_SPACE`) covers what the paper tuned: the
embedding sizes, the jet ResNet's depth and width, the particle transformer's width, blocks and heads,
and the learning rate. A space file is a JSON object of the same form.

Every trial builds the family's training model of the base config with the trial's values, trains it
with the same loss, optimizer and schedule (over ``max_epochs``) as ``scripts/train.py`` and reports
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
from pathlib import Path
from typing import Any

import keras

from gsgm.training.distributed import Distributed
from gsgm.training.driver import epoch_shuffle_seed
from gsgm.training.family import Family, PreparedData
from gsgm.training.loop import SYNC_RTOL, TrainingSetupError
from gsgm.training.optim import make_optimizer
from gsgm.utils.atomic import write_json_atomic

#: Top-level config keys that are never searched (what the data are and what the run is called).
UNTUNABLE = ("name", "description", "family", "data")
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


def load_space(path: str | os.PathLike | None, family: Family) -> dict[str, Any]:
    """The search space in the JSON file ``path``, or the family's default when None."""
    if path is None:
        return copy.deepcopy(family.default_search_space())
    try:
        space = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise TrainingSetupError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(space, dict) or not space:
        raise TrainingSetupError(f"{path}: the search space must be a non-empty JSON object")
    return space


def _lookup(tree: dict[str, Any], key: str) -> tuple[dict[str, Any], str] | None:
    """(the dict holding the dotted ``key``'s last part, that part), or None if there is no such field."""
    *sections, name = key.split(".")
    node = tree
    for section in sections:
        node = node.get(section) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return None
    return (node, name) if name in node and not isinstance(node[name], dict) else None


def apply_values(family: Family, base: Any, values: dict[str, Any], source: str = "<search space>") -> Any:
    """A validated copy of config ``base`` with the dotted keys of ``values`` replaced.

    Raises:
        gsgm.config.ConfigError: a value is invalid for its field (or for the combination).
    """
    data = family.config_to_dict(base)
    for key, value in values.items():
        node, name = _lookup(data, key)
        # List-valued fields take their choices as comma-separated strings ("32,64").
        node[name] = (
            [int(v) for v in value.split(",")]
            if isinstance(node[name], list) and isinstance(value, str)
            else value
        )
    return family.config_from_dict(data, source)


def check_space(family: Family, base: Any, space: dict[str, Any]) -> None:
    """Reject unknown keys, malformed ranges and choices the config validation would refuse.

    Each choice is checked alone against ``base``, then the family checks combinations (FPCD: every
    (embed_dim, num_heads) pair, the heads must divide the width), so that no trial fails at build time.
    """
    data = family.config_to_dict(base)
    for key, spec in space.items():
        if key.split(".")[0] in UNTUNABLE or _lookup(data, key) is None:
            raise TrainingSetupError(
                f"search space key {key!r} is not a tunable config field of {family.name} "
                f"(a dotted key of the config, outside {', '.join(UNTUNABLE)})"
            )
        if isinstance(spec, list):
            if not spec:
                raise TrainingSetupError(f"search space key {key!r} has no choices")
            for choice in spec:
                apply_values(family, base, {key: choice}, f"search space {key}={choice!r}")
        elif isinstance(spec, dict):
            if not {"min", "max"} <= set(spec) or set(spec) - {"min", "max", "sampling", "step"}:
                raise TrainingSetupError(
                    f"search space key {key!r}: a range needs min and max (and optionally sampling, step)"
                )
            if not spec["min"] < spec["max"]:
                raise TrainingSetupError(f"search space key {key!r}: min must be < max")
            for bound in (spec["min"], spec["max"]):
                apply_values(family, base, {key: bound}, f"search space {key}={bound!r}")
        else:
            raise TrainingSetupError(f"search space key {key!r}: expected a list of choices or a range")
    family.check_search_space(base, space)


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
    class FamilyHyperModel(keras_tuner.HyperModel):
        """Builds and trains a family's models for the trials; also used by the non-zero ranks."""

        def __init__(self, family, base, space, prepared, options, dist, max_epochs, verbose):
            super().__init__(name=family.name)
            self.family, self.base, self.space, self.prepared = family, base, space, prepared
            self.options, self.dist, self.verbose = options, dist, verbose
            training = family.training_section(base)
            batch = training.batch_size
            self.steps_per_epoch = dist.steps_per_epoch(len(prepared.train_arrays[0]), batch)
            self.max_epochs = max_epochs

            def dataset(arrays, shuffle, seed):
                return family.make_dataset(
                    arrays, batch_size=batch, shuffle=shuffle, seed=seed, rank=dist.rank, num_ranks=dist.size
                )

            # One dataset for all epochs of a trial (it reshuffles itself every epoch when it can).
            self.train_dataset = dataset(
                prepared.train_arrays, True, epoch_shuffle_seed(training.seed, 0, dist.rank)
            )
            self.valid_dataset = dataset(prepared.valid_arrays, False, 0)

        def declare_hyperparameters(self, hp):
            declare(hp, self.space)

        def build(self, hp):
            return self.build_from_values(declare(hp, self.space))

        def build_from_values(self, values):
            cfg = apply_values(self.family, self.base, values)
            # The schedule spans max_epochs, the longest any trial trains.
            training = copy.deepcopy(self.family.training_section(cfg))
            training.epochs = self.max_epochs
            model = self.family.build_training_model(
                cfg, self.prepared, options=self.options, steps_per_epoch=self.steps_per_epoch
            )
            model.compile(
                optimizer=make_optimizer(
                    training, self.steps_per_epoch, self.dist.size, self.family.learning_rate_schedule
                ),
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

    return FamilyHyperModel


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
    config: Any
    val_loss: float
    trial_id: str
    num_trials: int
    export_path: Path | None


def run_search(
    family: Family,
    config: str | os.PathLike | Any,
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
    project_name: str | None = None,
    options: dict[str, Any] | None = None,
    distributed: Distributed | None = None,
    verbose: int = 1,
) -> SearchResult | None:
    """Run (or continue) a Hyperband search and export the best trial's config.

    Args:
        family: the model family (:mod:`gsgm.families`).
        config: base config (file or object); the search overrides the fields of ``space``.
        data: the family's data (a directory of JetNet files or ``"builtin"``).
        tuner_dir: KerasTuner directory (``tuner_dir/project_name``); reused unless ``overwrite``.
        max_epochs: epochs of the longest trials (Hyperband's max_epochs); also the length of the
            cosine learning-rate schedule of every trial.
        factor: Hyperband's reduction factor (keeps 1/factor of the trials per round).
        hyperband_iterations: full Hyperband runs.
        max_trials: stop after this many trials in all (a budget cap: the last brackets stay
            incomplete); default: as many as Hyperband plans.
        space: search space (default: the family's :meth:`Family.default_search_space`).
        export: where to write the best config (default ``tuner_dir/best.json``).
        project_name: KerasTuner project (default: the family's name).
        options: the family's options (jet images: ``mode``, ``teacher``).
        distributed: process group; with several ranks rank 0 runs the tuner and the others follow.

    Returns:
        the best trial on rank 0, None on the other ranks.
    """
    keras_tuner = _import_keras_tuner()
    dist = distributed or Distributed()
    project_name = project_name or family.name
    if isinstance(config, str | os.PathLike):
        base = family.run_config(family.load_config(config), options or {}, str(config))
    else:
        base = family.run_config(config, options or {}, "<config>")
    options = family.check_options(base, options or {})
    space = copy.deepcopy(family.default_search_space() if space is None else space)
    check_space(family, base, space)
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
                "family": family.name,
                "base_config": family.config_to_dict(base),
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
    prepared: PreparedData = family.prepare_data(
        base, data, max_per_class=max_jets_per_class, options=options, resume_run=None
    )
    base = prepared.config  # a family may resolve values from the data (jet images: noise levels)
    hypermodel = _make_hypermodel_class(keras_tuner)(
        family, base, space, prepared, options, dist, max_epochs, verbose
    )
    if not dist.is_chief:
        hypermodel.follow()
        return None

    tuner = keras_tuner.Hyperband(
        hypermodel,
        objective=keras_tuner.Objective(OBJECTIVE, direction="min"),
        max_epochs=max_epochs,
        factor=factor,
        hyperband_iterations=hyperband_iterations,
        seed=family.training_section(base).seed,
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
    best = apply_values(family, base, values)
    best.name = f"{base.name}-tuned"
    summary = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    best.description = (
        f"{base.name} with the best Hyperband trial ({best_trial.trial_id}, val_loss {val_loss:.4g} after "
        f"at most {max_epochs} epochs on {dist.size} rank(s); factor {factor}): {summary}. "
        f"Base: {base.description}"
    )
    export_path = Path(export) if export is not None else tuner_dir / "best.json"
    export_path.parent.mkdir(parents=True, exist_ok=True)
    family.save_config(best, export_path)
    num_trials = len(tuner.oracle.trials)
    return SearchResult(values, best, val_loss, best_trial.trial_id, num_trials, export_path)


__all__ = [
    "OBJECTIVE",
    "SearchResult",
    "apply_values",
    "check_space",
    "declare",
    "load_space",
    "run_search",
]
