"""Train any registered family into a run directory: config -> data -> model -> epochs, resumable.

:func:`train_run` is the one training entry point (``scripts/train.py``, ``scripts/train_images.py``
and ``gsgm train`` call it with their family). It owns everything that is not family-specific: the
run directory and its metadata, resume decisions and checks (same config, same data, same ranks),
the optimizer and its learning-rate scaling, sharding over Horovod ranks, and the epoch loop.
"""

from __future__ import annotations

import numbers
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gsgm.data.loading import resolve_data_dir
from gsgm.training.distributed import Distributed, launcher_world_size
from gsgm.training.family import Family
from gsgm.training.loop import TrainingSetupError, fit_epochs
from gsgm.training.optim import effective_learning_rate, make_optimizer
from gsgm.training.run_dir import RunDirectory
from gsgm.utils.outputs import check_output_dir
from gsgm.utils.provenance import now_iso, package_versions

__all__ = [
    "dump_epoch_indices",
    "dump_final_weights",
    "epoch_shuffle_seed",
    "flatten_config",
    "rank_datasets",
    "train_run",
]


def epoch_shuffle_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """Shuffle seed of ``epoch`` on ``rank``: depends only on (seed, epoch, rank), so resuming repeats it.

    Each rank shuffles with its own seed (rank 0 with the single-process one): with one shared seed,
    equal-sized strided shards would be permuted alike and every step would pair neighbouring samples
    of the class-ordered data across ranks.
    """
    return int(seed) * 100_003 + int(epoch) + 1_000_003 * int(rank)


def flatten_config(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (for naming the keys in which two configs differ)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _require_same_config(family: Family, given: Any, run_cfg: Any, run: RunDirectory, source: str) -> None:
    """Refuse to resume ``run`` with a config other than its own (it would be silently ignored)."""
    mine = flatten_config(family.config_to_dict(given))
    theirs = flatten_config(family.config_to_dict(run_cfg))
    differing = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if differing:
        more = " ..." if len(differing) > 5 else ""
        raise TrainingSetupError(
            f"{run.path} holds a run made from another config ({source} differs in "
            f"{', '.join(differing[:5])}{more}): resume it without a config, or choose another run "
            "directory (--out / $GSGM_RUN_DIR)"
        )


def _load_given_config(family: Family, config: Any) -> tuple[Any, str]:
    if isinstance(config, str | os.PathLike):
        return family.load_config(config), str(config)
    return config, "the given config"


def train_run(
    family: Family,
    config: Any,
    data: str,
    out: str | os.PathLike,
    *,
    epochs: int | None = None,
    resume: bool | str = False,
    seed: int | None = None,
    max_per_class: int | None = None,
    options: Mapping[str, Any] | None = None,
    verbose: int = 1,
    num_replicas: int | None = None,
    distributed: Distributed | None = None,
    debug_dump: str | os.PathLike | None = None,
) -> RunDirectory:
    """Train ``family`` on ``data`` into run directory ``out``.

    Args:
        family: the model family (:mod:`gsgm.families`).
        config: a config file path or config object of the family; None only when resuming. When
            resuming, the run's own config.json is used and a ``config`` given here must equal it
            (after the ``epochs``/``seed`` overrides), else TrainingSetupError.
        data: the family's data source (a directory, or ``"builtin"`` for the shipped sample).
        out: run directory.
        epochs, seed: override ``training.epochs`` / ``training.seed`` of a new run (a resumed run
            must keep its own).
        resume: True: continue the run's newest checkpoint; False: new run (``out`` must not hold
            one); ``"auto"``: resume when ``out`` holds a run, else start one (what a requeued batch
            job needs). Under several ranks the decision is rank 0's, taken before any rank writes.
        max_per_class: only the first samples of each class (quick runs).
        options: the family's choices (see :class:`gsgm.training.family.Family`).
        verbose: 0 silent, 1 a batch progress bar, 2 one line per epoch.
        num_replicas: scales the learning rate; default: the number of ranks.
        distributed: the process group from :func:`gsgm.training.distributed.init_distributed`;
            default single process. Each rank trains on its shard with ``training.batch_size`` samples
            per step; only rank 0 writes ``out``, which all ranks must see when resuming.
        debug_dump: testing aid: every rank writes the sample indices it trains on per epoch
            (``rank<r>/epoch<e>-jets.npy``) and its final weights (``rank<r>/final-weights.npz``).
    """
    for flag, value, lowest in (
        ("--epochs", epochs, 1),
        ("--max-jets-per-class", max_per_class, 1),
        ("--seed", seed, 0),
    ):
        # a zero is an error, never "use the default": checked before anything is read or created
        integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if value is not None and (not integral or value < lowest):
            raise TrainingSetupError(f"{flag} must be an integer >= {lowest}, got {value!r}")
    dist = distributed or Distributed()
    if distributed is None and launcher_world_size() > 1:
        raise TrainingSetupError(
            f"this process is one of {launcher_world_size()} started by a launcher, but got no "
            "distributed= set-up: pass distributed=init_distributed() (gsgm.training.distributed)"
        )
    num_replicas = dist.size if num_replicas is None else int(num_replicas)
    options = dict(options or {})
    unknown = sorted(k for k, v in options.items() if v is not None and k not in family.option_names)
    if unknown:
        raise TrainingSetupError(
            f"option(s) {', '.join(unknown)} do not apply to the {family.name} family "
            f"(it takes: {', '.join(family.option_names) or 'none'})"
        )
    run = RunDirectory(out)
    if resume == "auto":
        # Every rank looks before rank 0 can create the directory (only after the barrier below),
        # and all follow rank 0, so the ranks never disagree about resuming.
        resume = bool(dist.allgather_object(run.exists())[0])
    elif resume not in (True, False):
        raise TrainingSetupError(f"resume must be True, False or 'auto', got {resume!r}")

    if resume:
        run.require()
        cfg = family.load_config(run.config_path)
        training = family.training_section(cfg)
        metadata = run.read_metadata()
        if epochs is not None and epochs != training.epochs:
            raise TrainingSetupError(
                f"--epochs {epochs} differs from the run's training.epochs={training.epochs}; "
                "a resumed run keeps its schedule"
            )
        if seed is not None and seed != training.seed:
            raise TrainingSetupError(
                f"--seed {seed} differs from the run's training.seed={training.seed}; "
                "a resumed run keeps its seed"
            )
        recorded_family = metadata.get("family", family.name)
        if recorded_family != family.name:
            raise TrainingSetupError(f"{run.path} holds a {recorded_family} run, not {family.name}")
        options = family.resumed_options(metadata, options)
        if config is not None:
            given, source = _load_given_config(family, config)
            given = family.run_config(given, options, source)
            given_training = family.training_section(given)
            given_training.epochs = training.epochs if epochs is None else int(epochs)
            given_training.seed = training.seed if seed is None else int(seed)
            _require_same_config(family, given, cfg, run, source)
        data = metadata.get("data_source", data)
        max_per_class = metadata.get("max_jets_per_class", max_per_class)
        if metadata.get("num_ranks", 1) != dist.size:
            raise TrainingSetupError(
                f"{run.path} was trained with {metadata.get('num_ranks', 1)} rank(s); resume it with the "
                f"same number (got {dist.size}): the learning rate and the data shards depend on it"
            )
    else:
        if run.exists():
            raise TrainingSetupError(f"{run.path} already holds a run: pass --resume or choose another --out")
        if config is None:
            raise TrainingSetupError("a config is required for a new run")
        cfg, source = _load_given_config(family, config)
        cfg = family.run_config(cfg, options, source)
        training = family.training_section(cfg)
        if epochs is not None:
            training.epochs = int(epochs)
        if seed is not None:
            training.seed = int(seed)
        metadata = {}
    options = family.check_options(cfg, options)
    if dist.is_chief:
        check_output_dir(run.path, option="--out")  # before the data are read: no work lost to a bad path

    prepared = family.prepare_data(
        cfg, data, max_per_class=max_per_class, options=options, resume_run=run if resume else None
    )
    cfg = prepared.config
    training = family.training_section(cfg)
    if resume and metadata.get("data_sha256") not in (None, prepared.sha256):
        raise TrainingSetupError(
            f"the training data in {data} differ from the data {run.path} was trained on "
            f"(sha256 {prepared.sha256[:12]} != {metadata['data_sha256'][:12]})"
        )
    batch_size = int(training.batch_size)
    num_train = len(prepared.train_arrays[0])
    # Steps of one rank per epoch (optimizer steps; every rank runs the same number).
    steps_per_epoch = dist.steps_per_epoch(num_train, batch_size)

    # Every rank has checked the run directory above before rank 0 creates it.
    dist.barrier()
    if not resume and dist.is_chief:
        run.path.mkdir(parents=True, exist_ok=True)
        prepared.write_files(run)
        run.write_metadata(
            {
                "created": now_iso(),
                "command": " ".join(shlex.quote(a) for a in sys.argv),
                "family": family.name,
                "options": options,
                "seed": int(training.seed),
                "versions": package_versions(),
                "data_source": str(data),
                "data_dir": str(resolve_data_dir(data)),
                "data_sha256": prepared.sha256,
                "max_jets_per_class": max_per_class,
                **prepared.metadata,
                "num_ranks": dist.size,
                "per_rank_batch_size": batch_size,
                "global_batch_size": batch_size * dist.size,
                "learning_rate_per_rank": float(training.learning_rate),
                "learning_rate_scale": num_replicas,
                "effective_learning_rate": effective_learning_rate(training, num_replicas),
                "steps_per_epoch": steps_per_epoch,
                "total_steps": int(training.epochs) * steps_per_epoch,
            }
        )
        # Last, so that a directory with config.json is a complete run (RunDirectory.exists()).
        family.save_config(cfg, run.config_path)

    debug_dir = Path(debug_dump) if debug_dump is not None else None

    make_train_dataset, valid_dataset = rank_datasets(
        family, prepared, batch_size, int(training.seed), dist, steps_per_epoch, debug_dir
    )

    model = family.build_training_model(cfg, prepared, options=options, steps_per_epoch=steps_per_epoch)
    model.compile(
        optimizer=make_optimizer(training, steps_per_epoch, num_replicas, family.learning_rate_schedule),
        # Horovod's ops have no XLA kernels unless built and enabled for it: no XLA with several ranks.
        jit_compile=False if dist.size > 1 else "auto",
    )
    fit_epochs(
        run,
        model,
        make_train_dataset,
        valid_dataset,
        epochs=int(training.epochs),
        patience=int(training.early_stopping_patience),
        resume=resume,
        verbose=verbose,
        distributed=dist,
        steps_per_epoch=steps_per_epoch if dist.size > 1 else None,
    )
    if debug_dir is not None:
        dump_final_weights(debug_dir, model, dist)
    return run


def rank_datasets(
    family: Family,
    prepared,
    batch_size: int,
    seed: int,
    dist: Distributed,
    steps_per_epoch: int,
    debug_dir: Path | None = None,
) -> tuple[Callable[[int], tf.data.Dataset], tf.data.Dataset]:
    """This rank's (epoch -> shuffled training batches, validation batches) of ``prepared``.

    The training order of an epoch depends only on (seed, epoch, rank) (:func:`epoch_shuffle_seed`),
    so a resumed run sees the batches of an uninterrupted one. With ``debug_dir`` every epoch first
    records the sample indices this rank trains on (:func:`dump_epoch_indices`).
    """

    def dataset(arrays, shuffle: bool, seed_value: int, index=None) -> tf.data.Dataset:
        return family.make_dataset(
            arrays,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed_value,
            rank=dist.rank,
            num_ranks=dist.size,
            index=index,
        )

    def make_train_dataset(epoch: int) -> tf.data.Dataset:
        epoch_seed = epoch_shuffle_seed(seed, epoch, dist.rank)
        if debug_dir is not None:
            indexed = dataset(prepared.train_arrays, True, epoch_seed, prepared.train_index)
            dump_epoch_indices(debug_dir, indexed, epoch, steps_per_epoch, dist)
        return dataset(prepared.train_arrays, True, epoch_seed)

    return make_train_dataset, dataset(prepared.valid_arrays, False, 0)


def dump_epoch_indices(
    debug_dir: Path, dataset: tf.data.Dataset, epoch: int, steps: int, dist: Distributed
) -> None:
    """Testing aid: the sample indices this rank trains on in ``epoch``, in order.

    ``dataset`` is the epoch's dataset built with the same seed plus an ``index`` feature: the
    shuffle depends only on the seed and the number of samples, so it yields exactly the samples (and
    order) of the real one. Only the ``steps`` batches that training consumes are recorded.
    """
    seen = [batch["index"].numpy() for batch in dataset.take(steps)]
    target = debug_dir / f"rank{dist.rank}"
    target.mkdir(parents=True, exist_ok=True)
    np.save(target / f"epoch{epoch:04d}-jets.npy", np.concatenate(seen).astype(np.int64))


def dump_final_weights(debug_dir: Path, model: keras.Model, dist: Distributed) -> None:
    """Testing aid: every rank writes its final weights (raw, EMA, optimizer), to compare ranks."""
    target = debug_dir / f"rank{dist.rank}"
    target.mkdir(parents=True, exist_ok=True)
    variables = list(model.weights) + list(model.optimizer.variables)
    np.savez(target / "final-weights.npz", *[keras.ops.convert_to_numpy(v) for v in variables])
