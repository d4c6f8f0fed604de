"""Train FPCD end to end: data -> preprocessing -> epochs with atomic checkpoints -> best EMA weights.

The loop follows the paper (section III) and the released code: Adamax with a cosine-decay learning
rate (scaled by the number of replicas), per-tensor gradient-norm clipping, EMA weights, and early
stopping on the loss of a held-out fraction of the training split. Epochs are run one ``fit`` call at a
time so that the data order of epoch e depends only on (seed, e): a resumed run sees exactly the
batches the uninterrupted run would have seen.

Data-parallel training (Horovod) goes through a :class:`gsgm.training.distributed.Distributed`
passed as ``distributed=``: every rank trains on its own shard with the configured batch size, the
learning rate is multiplied by the number of ranks, gradients are averaged every step, validation
metrics are averaged over ranks, and only rank 0 writes the run directory. Without it (or with the
default single-process object) nothing changes.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gsgm.config import FPCDConfig, load_config, save_config
from gsgm.data.jetnet_format import JET_CLASSES, JetSample
from gsgm.data.loading import load_jets, resolve_data_dir
from gsgm.data.pipeline import make_dataset, train_valid_split
from gsgm.data.preprocessing import JetPreprocessor
from gsgm.models import build_fpcd_networks
from gsgm.training.distributed import Distributed, launcher_world_size
from gsgm.training.fpcd_model import FPCDModel
from gsgm.training.run_dir import RunDirectory
from gsgm.utils.provenance import hash_arrays, now_iso, package_versions

# Largest relative difference between the ranks' per-variable weight sums that still counts as "the
# same weights" after an epoch (they are bitwise equal on CPU; GPU kernels may differ in the last bits).
SYNC_RTOL = 1e-4


class TrainingSetupError(ValueError):
    """The requested training run is inconsistent (config vs data, resume vs fresh run...)."""


@dataclass
class LoopState:
    """What the epoch loop needs besides weights to continue exactly where it stopped."""

    next_epoch: int = 0
    best_val_loss: float = float("inf")
    best_epoch: int = -1
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def build_model(cfg: FPCDConfig, num_particles: int, seed: int) -> FPCDModel:
    """Construct the FPCD training model (networks + EMA copies) for ``cfg`` with fixed initial weights."""
    keras.utils.set_random_seed(seed)
    jet_net, particle_net = build_fpcd_networks(cfg, num_particles, any_particle_count=True)
    return FPCDModel(jet_net, particle_net, ema_decay=cfg.training.ema_decay, seed=seed)


def make_optimizer(
    cfg: FPCDConfig, steps_per_epoch: int, num_replicas: int = 1
) -> keras.optimizers.Optimizer:
    """The configured optimizer (released code: Adamax) with cosine decay over all planned steps.

    The initial learning rate is scaled by the number of replicas, as the released code does with
    Horovod; ``clipnorm`` clips each gradient tensor separately, like its per-tensor clip_by_norm.
    """
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.training.learning_rate * num_replicas,
        decay_steps=max(1, cfg.training.epochs * steps_per_epoch),
    )
    optimizers = {
        "adam": keras.optimizers.Adam,
        "adamax": keras.optimizers.Adamax,
        "adamw": keras.optimizers.AdamW,
    }
    return optimizers[cfg.training.optimizer](learning_rate=schedule, clipnorm=cfg.training.grad_clip_norm)


def _save_weights_atomic(model: keras.Model, path: Path) -> None:
    # Keras insists on the ".weights.h5" suffix, so the temporary name keeps it.
    tmp = path.with_name(f".tmp-{os.getpid()}.{path.name}")
    model.save_weights(tmp)
    os.replace(tmp, path)


def save_checkpoint(run: RunDirectory, model: FPCDModel, state: LoopState, epoch: int) -> Path:
    """Write weights (raw, EMA and the optimizer's, which Keras saves with the model) and loop state."""
    staging = run.new_staging_dir(epoch)
    model.save_weights(staging / "model.weights.h5")
    (staging / "state.json").write_text(json.dumps(state.to_dict(), indent=2))
    return run.commit_checkpoint(staging, epoch)


def restore_checkpoint(run: RunDirectory, model: FPCDModel) -> LoopState:
    """Load the newest checkpoint into ``model`` (weights and optimizer); return its loop state."""
    latest = run.latest_checkpoint()
    if latest is None:
        return LoopState()
    # The optimizer must exist with all its slots before loading, or Keras skips its saved state.
    model.optimizer.build(model.optimized_variables)
    model.load_weights(latest / "model.weights.h5")
    return LoopState(**json.loads((latest / "state.json").read_text()))


def _load_training_sample(
    data: str, classes: list[str], num_particles: int, max_jets_per_class: int | None
) -> JetSample:
    return load_jets(
        resolve_data_dir(data), classes, num_particles, split="train", max_jets_per_class=max_jets_per_class
    )


@dataclass
class TrainingData:
    """The normalised training and validation arrays of a run (before sharding over ranks).

    ``train_arrays``/``valid_arrays`` are (particles [N, P, 3], jets [N, 4], mask [N, P], labels [N])
    as :func:`gsgm.data.pipeline.make_dataset` takes them; ``train_idx``/``valid_idx`` index ``sample``.
    """

    sample: JetSample
    sha256: str
    train_idx: np.ndarray
    valid_idx: np.ndarray
    preprocessor: JetPreprocessor
    train_arrays: list[np.ndarray]
    valid_arrays: list[np.ndarray]


def load_training_data(
    cfg: FPCDConfig,
    data: str,
    max_jets_per_class: int | None = None,
    preprocessor: JetPreprocessor | None = None,
) -> TrainingData:
    """Load the training split, hold out the validation jets and normalise both.

    The split depends only on ``cfg.training.seed``; the preprocessing is fitted on the training jets
    unless ``preprocessor`` (a resumed run's) is given. Deterministic, so every rank computes the same.
    """
    sample = _load_training_sample(data, list(cfg.data.classes), cfg.data.num_particles, max_jets_per_class)
    sha256 = hash_arrays([sample.particles, sample.jets, sample.labels])
    train_idx, valid_idx = train_valid_split(len(sample), cfg.training.valid_fraction, cfg.training.seed)
    if preprocessor is None:
        preprocessor = JetPreprocessor.fit(sample.select(train_idx), recenter=cfg.data.recenter)
    particles, jets, mask = preprocessor.transform(sample)
    arrays = (particles, jets, mask, sample.labels)
    return TrainingData(
        sample=sample,
        sha256=sha256,
        train_idx=train_idx,
        valid_idx=valid_idx,
        preprocessor=preprocessor,
        train_arrays=[a[train_idx] for a in arrays],
        valid_arrays=[a[valid_idx] for a in arrays],
    )


def _epoch_dataset(
    arrays: list[np.ndarray], epoch: int, cfg: FPCDConfig, dist: Distributed
) -> tf.data.Dataset:
    """Training batches of ``epoch`` for this rank: its shard, shuffled with an epoch-dependent seed.

    Each rank shuffles with its own seed (rank 0 with the single-process one): with one shared seed,
    equal-sized strided shards would be permuted alike and every step would pair neighbouring jets
    of the class-ordered sample across ranks.
    """
    return make_dataset(
        *arrays,
        batch_size=cfg.training.batch_size,
        shuffle=True,
        seed=cfg.training.seed * 100_003 + epoch + 1_000_003 * dist.rank,
        rank=dist.rank,
        num_ranks=dist.size,
    )


def _dump_epoch_jets(
    debug_dir: Path, data: TrainingData, epoch: int, steps: int, cfg: FPCDConfig, dist: Distributed
) -> None:
    """Testing aid: write the sample indices of the jets this rank trains on in ``epoch``, in order.

    The epoch's dataset is rebuilt with the jets' sample indices in place of the jet features; the
    shuffle depends only on the seed and the number of jets, so it yields exactly the jets (and order)
    of the real dataset. Only the ``steps`` batches that training consumes are recorded.
    """
    ids = np.zeros_like(data.train_arrays[1])
    ids[:, 0] = data.train_idx
    arrays = [data.train_arrays[0], ids, data.train_arrays[2], data.train_arrays[3]]
    seen = [batch["jets"][:, 0].numpy() for batch in _epoch_dataset(arrays, epoch, cfg, dist).take(steps)]
    target = debug_dir / f"rank{dist.rank}"
    target.mkdir(parents=True, exist_ok=True)
    np.save(target / f"epoch{epoch:04d}-jets.npy", np.concatenate(seen).astype(np.int64))


def _dump_final_weights(debug_dir: Path, model: keras.Model, dist: Distributed) -> None:
    """Testing aid: every rank writes its final weights (raw, EMA, optimizer), to compare ranks."""
    target = debug_dir / f"rank{dist.rank}"
    target.mkdir(parents=True, exist_ok=True)
    variables = list(model.weights) + list(model.optimizer.variables)
    np.savez(target / "final-weights.npz", *[keras.ops.convert_to_numpy(v) for v in variables])


def train(
    config: str | os.PathLike | FPCDConfig,
    data: str,
    out: str | os.PathLike,
    num_particles: int | None = None,
    epochs: int | None = None,
    resume: bool = False,
    seed: int | None = None,
    max_jets_per_class: int | None = None,
    verbose: int = 1,
    num_replicas: int | None = None,
    distributed: Distributed | None = None,
    debug_dump: str | os.PathLike | None = None,
) -> RunDirectory:
    """Train FPCD on the JetNet files in ``data`` (a directory or ``"builtin"``) into run directory ``out``.

    Args:
        config: path of a JSON config (validated) or an FPCDConfig; ignored when resuming (the run's
            own config.json is used).
        data: directory with JetNet files, or ``"builtin"`` for the shipped Pythia sample.
        out: run directory; must not hold a run unless ``resume``.
        num_particles: 30 or 150; must match the config's data.num_particles if given.
        epochs: overrides training.epochs (also the length of the cosine schedule).
        resume: continue from the run's newest checkpoint with the same schedule position.
        seed: overrides training.seed.
        max_jets_per_class: use only the first jets of each class's training split (quick runs).
        verbose: Keras verbosity (0 silent, 1 progress bar, 2 one line per epoch).
        num_replicas: scales the learning rate as the released code does; default: the number of ranks.
        distributed: data-parallel set-up from :func:`gsgm.training.distributed.init_distributed`;
            default single process. Each rank trains on its shard with ``training.batch_size`` jets
            per step; only rank 0 writes ``out``, which all ranks must see (a shared file system)
            when resuming.
        debug_dump: testing aid: every rank writes the sample indices of the jets it trains on
            (``rank<r>/epoch<e>-jets.npy``) and its final weights (``rank<r>/final-weights.npz``) here.
    """
    dist = distributed or Distributed()
    if distributed is None and launcher_world_size() > 1:
        raise TrainingSetupError(
            f"this process is one of {launcher_world_size()} started by a launcher, but train() got no "
            "distributed= set-up: pass distributed=init_distributed() (gsgm.training.distributed)"
        )
    num_replicas = dist.size if num_replicas is None else int(num_replicas)
    run = RunDirectory(out)
    if resume:
        run.require()
        cfg = load_config(run.config_path)
        metadata = run.read_metadata()
        if epochs is not None and epochs != cfg.training.epochs:
            raise TrainingSetupError(
                f"--epochs {epochs} differs from the run's training.epochs={cfg.training.epochs}; "
                "a resumed run keeps its schedule"
            )
        data = metadata.get("data_source", data)
        max_jets_per_class = metadata.get("max_jets_per_class", max_jets_per_class)
        if metadata.get("num_ranks", 1) != dist.size:
            raise TrainingSetupError(
                f"{run.path} was trained with {metadata.get('num_ranks', 1)} rank(s); resume it with the "
                f"same number (got {dist.size}): the learning rate and the data shards depend on it"
            )
    else:
        if run.exists():
            raise TrainingSetupError(f"{run.path} already holds a run: pass --resume or choose another --out")
        cfg = config if isinstance(config, FPCDConfig) else load_config(config)
        if epochs is not None:
            cfg.training.epochs = int(epochs)
        if seed is not None:
            cfg.training.seed = int(seed)
        metadata = {}
    if num_particles is not None and num_particles != cfg.data.num_particles:
        raise TrainingSetupError(
            f"--particles {num_particles} does not match the config's data.num_particles="
            f"{cfg.data.num_particles}; use a config made for {num_particles} particles"
        )
    num_particles = cfg.data.num_particles
    seed = cfg.training.seed
    classes = list(cfg.data.classes)

    preprocessor = JetPreprocessor.load(run.preprocessing_path) if resume else None
    prepared = load_training_data(cfg, data, max_jets_per_class, preprocessor)
    sample, data_hash, train_idx, valid_idx = (
        prepared.sample,
        prepared.sha256,
        prepared.train_idx,
        prepared.valid_idx,
    )
    if resume and metadata.get("data_sha256") not in (None, data_hash):
        raise TrainingSetupError(
            f"the training data in {data} differ from the data {run.path} was trained on "
            f"(sha256 {data_hash[:12]} != {metadata['data_sha256'][:12]})"
        )
    # Every rank has checked the run directory above before rank 0 creates it.
    dist.barrier()
    if not resume and dist.is_chief:
        run.path.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run.config_path)
        prepared.preprocessor.save(run.preprocessing_path)
        run.write_metadata(
            {
                "created": now_iso(),
                "command": " ".join(shlex.quote(a) for a in sys.argv),
                "seed": seed,
                "versions": package_versions(),
                "data_source": str(data),
                "data_dir": str(resolve_data_dir(data)),
                "data_sha256": data_hash,
                "num_jets": len(sample),
                "num_train": int(len(train_idx)),
                "num_valid": int(len(valid_idx)),
                "max_jets_per_class": max_jets_per_class,
                "num_particles": num_particles,
                "classes": classes,
                "class_index": {c: JET_CLASSES.index(c) for c in classes},
                "num_ranks": dist.size,
                "per_rank_batch_size": cfg.training.batch_size,
                "learning_rate_scale": num_replicas,
            }
        )

    batch_size = cfg.training.batch_size
    # Steps of one rank per epoch (optimizer steps; every rank runs the same number).
    steps_per_epoch = dist.steps_per_epoch(len(train_idx), batch_size)
    debug_dir = Path(debug_dump) if debug_dump is not None else None

    def make_train_dataset(epoch: int) -> tf.data.Dataset:
        if debug_dir is not None:
            _dump_epoch_jets(debug_dir, prepared, epoch, steps_per_epoch, cfg, dist)
        return _epoch_dataset(prepared.train_arrays, epoch, cfg, dist)

    model = build_model(cfg, num_particles, seed)
    model.compile(
        optimizer=make_optimizer(cfg, steps_per_epoch, num_replicas),
        # Horovod's ops have no XLA kernels unless built and enabled for it: no XLA with several ranks.
        jit_compile=False if dist.size > 1 else "auto",
    )
    fit_epochs(
        run,
        model,
        make_train_dataset,
        make_dataset(
            *prepared.valid_arrays, batch_size=batch_size, shuffle=False, rank=dist.rank, num_ranks=dist.size
        ),
        epochs=cfg.training.epochs,
        patience=cfg.training.early_stopping_patience,
        resume=resume,
        verbose=verbose,
        distributed=dist,
        steps_per_epoch=steps_per_epoch if dist.size > 1 else None,
    )
    if debug_dir is not None:
        _dump_final_weights(debug_dir, model, dist)
    return run


def fit_epochs(
    run: RunDirectory,
    model: keras.Model,
    make_train_dataset: Callable[[int], tf.data.Dataset],
    valid_dataset: tf.data.Dataset,
    *,
    epochs: int,
    patience: int,
    resume: bool,
    verbose: int = 1,
    distributed: Distributed | None = None,
    steps_per_epoch: int | None = None,
) -> LoopState:
    """The epoch loop shared by every gsgm training job (base FPCD, distillation stages, ...).

    ``model`` is a compiled keras.Model whose ``train_step``/``test_step`` report ``loss``, that owns
    an ``eval_counter`` variable (reset each epoch so validation noise repeats) and an
    ``optimized_variables`` list (the variables its optimizer updates, in a fixed order). Each epoch
    trains on ``make_train_dataset(epoch)``, which must depend only on the epoch number (seeded
    shuffle) so that a resumed run sees the same batches; after it, history.csv is rewritten,
    best.weights.h5 is replaced when ``val_loss`` improved, and a complete checkpoint is committed,
    all atomically. With
    ``resume`` the loop restarts after the newest checkpoint with its optimizer state and history.

    With ``distributed`` (several ranks), the loop sets ``model.distributed``: the model's
    ``train_step`` must pass its gradients through ``self.distributed.average_gradients`` (FPCDModel
    does so in ``transform_gradients``). The loop broadcasts rank 0's weights and optimizer state
    before the first step, runs the same number of steps on every rank, averages the epoch metrics
    over ranks (so early stopping decides the same everywhere), checks after every epoch that the
    ranks still hold the same weights (a model that does not average fails loudly here), and lets
    only rank 0 write files and show progress. Datasets are per rank (already sharded).

    Args:
        make_train_dataset: epoch -> the training batches of that epoch (batches as train_step takes them).
        valid_dataset: validation batches, the same every epoch.
        epochs: total epochs of the run (not the number still to do).
        patience: stop after this many epochs without a lower validation loss.
        distributed: the process group; default single process.
        steps_per_epoch: training steps per epoch; default: all batches, and with several ranks the
            smallest number of batches any rank has (the datasets must then have a known length).

    Returns:
        the final loop state (next epoch, best epoch and loss, whether it stopped early).
    """
    if distributed is None and launcher_world_size() > 1:
        raise TrainingSetupError(
            f"this process is one of {launcher_world_size()} started by a launcher, but fit_epochs got no "
            "distributed= set-up: each would train alone into the same run directory; pass "
            "distributed=init_distributed() (gsgm.training.distributed) or start a single process"
        )
    dist = distributed or Distributed()
    verbose = dist.verbosity(verbose)
    if distributed is not None:
        model.distributed = dist
    state = restore_checkpoint(run, model) if resume else LoopState()
    history = [row for row in run.read_history() if row["epoch"] < state.next_epoch] if resume else []
    if dist.size > 1:
        if model.jit_compile:
            # Horovod's ops have no XLA kernels unless Horovod was built and enabled for XLA.
            model.jit_compile = False
        if not model.optimizer.built:
            model.optimizer.build(model.optimized_variables)
        dist.broadcast_variables(list(model.weights) + list(model.optimizer.variables))
    for epoch in range(state.next_epoch, epochs):
        if state.stopped_early:
            break
        started = time.perf_counter()
        model.eval_counter.assign(0)
        train_dataset = make_train_dataset(epoch)
        steps = steps_per_epoch
        if steps is None and dist.size > 1:
            steps = _common_steps(train_dataset, dist)
        result = model.fit(
            train_dataset,
            validation_data=valid_dataset,
            epochs=epoch + 1,
            initial_epoch=epoch,
            steps_per_epoch=steps,
            verbose=verbose,
            shuffle=False,  # the dataset is already shuffled with an epoch-dependent seed
        ).history
        metrics = dist.average_scalars({k: float(v[-1]) for k, v in result.items()})
        row = {"epoch": float(epoch)}
        row.update(sorted(metrics.items()))
        row["learning_rate"] = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        if dist.size > 1 and dist.average:
            in_sync, spread = dist.weights_in_sync(model.weights, rtol=SYNC_RTOL)
            if not in_sync:
                raise TrainingSetupError(
                    f"after epoch {epoch} the ranks hold different weights (relative spread {spread:.2e}): "
                    f"{type(model).__name__}.train_step does not average its gradients over ranks "
                    "(pass them through self.distributed.average_gradients)"
                )
        if row["val_loss"] < state.best_val_loss:
            state.best_val_loss, state.best_epoch = row["val_loss"], epoch
            if dist.is_chief:
                _save_weights_atomic(model, run.best_weights_path)
        elif epoch - state.best_epoch >= patience:
            state.stopped_early = True
        state.next_epoch = epoch + 1
        if dist.is_chief:
            run.write_history(history)
            save_checkpoint(run, model, state, epoch)
        if state.stopped_early and verbose:
            print(f"early stopping after epoch {epoch}: no improvement since epoch {state.best_epoch}")
    return state


def _common_steps(dataset: tf.data.Dataset, dist: Distributed) -> int:
    """The smallest number of batches any rank's ``dataset`` has (all ranks must run as many steps)."""
    batches = int(dataset.cardinality())
    if batches < 0:
        raise TrainingSetupError(
            "with several ranks, fit_epochs needs training datasets of known length or steps_per_epoch="
        )
    return int(min(dist.allgather_object(batches)))


def load_trained_model(run_dir: str | os.PathLike) -> tuple[FPCDModel, JetPreprocessor, FPCDConfig]:
    """Rebuild the model of a run and load its inference weights (best epoch, else latest checkpoint)."""
    run = RunDirectory(run_dir).require()
    cfg = load_config(run.config_path)
    weights = run.inference_weights()
    preprocessor = JetPreprocessor.load(run.preprocessing_path)
    model = build_model(cfg, cfg.data.num_particles, cfg.training.seed)
    model.load_weights(weights)
    return model, preprocessor, cfg
