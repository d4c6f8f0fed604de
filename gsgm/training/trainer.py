"""Train FPCD end to end: data -> preprocessing -> epochs with atomic checkpoints -> best EMA weights.

The loop follows the paper (section III) and the released code: Adamax with a cosine-decay learning
rate (scaled by the number of replicas), per-tensor gradient-norm clipping, EMA weights, and early
stopping on the loss of a held-out fraction of the training split. Epochs are run one ``fit`` call at a
time so that the data order of epoch e depends only on (seed, e): a resumed run sees exactly the
batches the uninterrupted run would have seen.
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
from gsgm.training.fpcd_model import FPCDModel
from gsgm.training.run_dir import RunDirectory, hash_arrays, now_iso, package_versions


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
    num_replicas: int = 1,
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
        num_replicas: data-parallel replicas; scales the learning rate as the released code does.
    """
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

    sample = _load_training_sample(data, classes, num_particles, max_jets_per_class)
    data_hash = hash_arrays([sample.particles, sample.jets, sample.labels])
    if resume and metadata.get("data_sha256") not in (None, data_hash):
        raise TrainingSetupError(
            f"the training data in {data} differ from the data {run.path} was trained on "
            f"(sha256 {data_hash[:12]} != {metadata['data_sha256'][:12]})"
        )
    train_idx, valid_idx = train_valid_split(len(sample), cfg.training.valid_fraction, seed)
    if resume:
        preprocessor = JetPreprocessor.load(run.preprocessing_path)
    else:
        preprocessor = JetPreprocessor.fit(sample.select(train_idx), recenter=cfg.data.recenter)
        run.path.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run.config_path)
        preprocessor.save(run.preprocessing_path)
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
            }
        )

    particles, jets, mask = preprocessor.transform(sample)
    arrays = (particles, jets, mask, sample.labels)
    train_arrays = [a[train_idx] for a in arrays]
    valid_arrays = [a[valid_idx] for a in arrays]
    batch_size = cfg.training.batch_size
    steps_per_epoch = int(np.ceil(len(train_idx) / batch_size))

    model = build_model(cfg, num_particles, seed)
    model.compile(optimizer=make_optimizer(cfg, steps_per_epoch, num_replicas))
    fit_epochs(
        run,
        model,
        lambda epoch: make_dataset(
            *train_arrays, batch_size=batch_size, shuffle=True, seed=seed * 100_003 + epoch
        ),
        make_dataset(*valid_arrays, batch_size=batch_size, shuffle=False),
        epochs=cfg.training.epochs,
        patience=cfg.training.early_stopping_patience,
        resume=resume,
        verbose=verbose,
    )
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

    Args:
        make_train_dataset: epoch -> the training batches of that epoch (batches as train_step takes them).
        valid_dataset: validation batches, the same every epoch.
        epochs: total epochs of the run (not the number still to do).
        patience: stop after this many epochs without a lower validation loss.

    Returns:
        the final loop state (next epoch, best epoch and loss, whether it stopped early).
    """
    state = restore_checkpoint(run, model) if resume else LoopState()
    history = [row for row in run.read_history() if row["epoch"] < state.next_epoch] if resume else []
    for epoch in range(state.next_epoch, epochs):
        if state.stopped_early:
            break
        started = time.perf_counter()
        model.eval_counter.assign(0)
        result = model.fit(
            make_train_dataset(epoch),
            validation_data=valid_dataset,
            epochs=epoch + 1,
            initial_epoch=epoch,
            verbose=verbose,
            shuffle=False,  # the dataset is already shuffled with an epoch-dependent seed
        ).history
        row = {"epoch": float(epoch)}
        row.update({k: float(v[-1]) for k, v in sorted(result.items())})
        row["learning_rate"] = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        run.write_history(history)
        if row["val_loss"] < state.best_val_loss:
            state.best_val_loss, state.best_epoch = row["val_loss"], epoch
            _save_weights_atomic(model, run.best_weights_path)
        elif epoch - state.best_epoch >= patience:
            state.stopped_early = True
        state.next_epoch = epoch + 1
        save_checkpoint(run, model, state, epoch)
        if state.stopped_early and verbose:
            print(f"early stopping after epoch {epoch}: no improvement since epoch {state.best_epoch}")
    return state


def load_trained_model(run_dir: str | os.PathLike) -> tuple[FPCDModel, JetPreprocessor, FPCDConfig]:
    """Rebuild the model of a run and load its inference weights (best epoch, else latest checkpoint)."""
    run = RunDirectory(run_dir).require()
    cfg = load_config(run.config_path)
    weights = run.inference_weights()
    preprocessor = JetPreprocessor.load(run.preprocessing_path)
    model = build_model(cfg, cfg.data.num_particles, cfg.training.seed)
    model.load_weights(weights)
    return model, preprocessor, cfg
