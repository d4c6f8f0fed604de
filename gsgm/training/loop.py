"""The epoch loop every gsgm training job runs: checkpoints, exact resume, early stopping, history.

:func:`fit_epochs` knows no model family. Its contract with the model (any compiled ``keras.Model``):

* ``train_step``/``test_step`` report ``loss`` (so ``fit`` logs ``loss`` and ``val_loss``);
* an ``eval_counter`` variable, reset to 0 before every epoch so that validation noise repeats;
* ``optimized_variables``: the variables its optimizer updates, in a fixed order (checkpoints and
  the Horovod broadcast need the optimizer built on them before loading);
* with several ranks, gradients pass through ``self.distributed.average_gradients`` (the loop sets
  ``model.distributed``; :class:`gsgm.training.base_model.DiffusionTrainingModel` does it).

Each epoch is one ``fit`` call so that the data order of epoch e depends only on (seed, e): a resumed
run sees exactly the batches the uninterrupted run would have seen. After each epoch history.csv is
rewritten, best.weights.h5 is replaced when ``val_loss`` improved, and a complete checkpoint is
committed, all atomically (a kill -9 at any moment leaves the previous checkpoint usable).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from gsgm.training.distributed import Distributed, launcher_world_size
from gsgm.training.run_dir import RunDirectory
from gsgm.utils.checksums import write_checksums, write_recorded

# Largest relative difference between the ranks' per-variable weight sums that still counts as "the
# same weights" after an epoch (they are bitwise equal on CPU; GPU kernels may differ in the last bits).
SYNC_RTOL = 1e-4


class TrainingSetupError(ValueError):
    """The requested training run is inconsistent (config vs data, resume vs fresh run...)."""


class NonFiniteLossError(ValueError):
    """Training produced a NaN or infinite loss; the run directory keeps its last good checkpoint."""


@dataclass
class LoopState:
    """What the epoch loop needs besides weights to continue exactly where it stopped."""

    next_epoch: int = 0
    best_val_loss: float = float("inf")
    best_epoch: int = -1
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _save_weights_atomic(model: keras.Model, path: Path) -> None:
    # atomic, with its checksum recorded in the run's checksums.json (verified when sampling)
    write_recorded(path, model.save_weights)


def save_checkpoint(run: RunDirectory, model: keras.Model, state: LoopState, epoch: int) -> Path:
    """Write weights (raw, EMA and the optimizer's, which Keras saves with the model), loop state and
    the checksums of both (verified by :func:`restore_checkpoint`)."""
    staging = run.new_staging_dir(epoch)
    model.save_weights(staging / "model.weights.h5")
    (staging / "state.json").write_text(json.dumps(state.to_dict(), indent=2))
    write_checksums(staging, ["model.weights.h5", "state.json"])
    return run.commit_checkpoint(staging, epoch)


def restore_checkpoint(run: RunDirectory, model: keras.Model) -> LoopState:
    """Load the newest checkpoint into ``model`` (weights and optimizer); return its loop state.

    Raises:
        ChecksumError: a checkpoint file does not match its recorded checksum (the message names the
            file and the previous checkpoint to resume from).
    """
    latest = run.latest_checkpoint()
    if latest is None:
        return LoopState()
    run.verify_checkpoint(latest)
    # The optimizer must exist with all its slots before loading, or Keras skips its saved state.
    model.optimizer.build(model.optimized_variables)
    weights = latest / "model.weights.h5"
    try:
        model.load_weights(weights)
        return LoopState(**json.loads((latest / "state.json").read_text()))
    except (OSError, ValueError, TypeError, json.JSONDecodeError) as err:
        # a checkpoint written before checksums existed, or damaged in a way the checksum cannot see
        raise TrainingSetupError(
            f"{latest}: cannot load the checkpoint ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:200]}); delete {latest} to resume from the previous checkpoint"
        ) from None


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
        # Keras' own progress output would read "Epoch 7/7" (fit runs one epoch at a time): it stays
        # silent, and the loop prints "epoch 7/30" itself (plus a batch bar with verbose=1).
        # With several ranks every rank must run the same steps (collectives): the guard then only
        # watches, and the decision is taken on the rank-averaged epoch metrics below.
        guard = NonFiniteLossGuard(stop=dist.size == 1)
        callbacks: list[keras.callbacks.Callback] = [guard]
        if verbose == 1:
            callbacks.append(BatchProgressBar(steps))
        result = model.fit(
            train_dataset,
            validation_data=valid_dataset,
            epochs=epoch + 1,
            initial_epoch=epoch,
            steps_per_epoch=steps,
            verbose=0,
            callbacks=callbacks,
            shuffle=False,  # the dataset is already shuffled with an epoch-dependent seed
        ).history
        metrics = dist.average_scalars({k: float(v[-1]) for k, v in result.items()})
        _stop_if_not_finite(run, epoch, guard, metrics, state)
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
        if verbose:
            print(format_epoch_line(row, epochs), flush=True)
        if state.stopped_early and verbose:
            print(f"early stopping after epoch {epoch}: no improvement since epoch {state.best_epoch}")
    return state


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Record the first training step whose loss is NaN or infinite (and stop the epoch there)."""

    def __init__(self, stop: bool = True):
        super().__init__()
        self.stop = stop
        self.bad_step: int | None = None
        self.bad_value: float | None = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or self.bad_step is not None:
            return
        value = float(loss)
        if not math.isfinite(value):
            self.bad_step, self.bad_value = int(batch), value
            if self.stop:
                self.model.stop_training = True


def _stop_if_not_finite(
    run: RunDirectory, epoch: int, guard: NonFiniteLossGuard, metrics: dict[str, float], state: LoopState
) -> None:
    """Raise NonFiniteLossError if the epoch's losses are not finite; nothing of the epoch is written."""
    bad_metrics = sorted(k for k, v in metrics.items() if not math.isfinite(v))
    if guard.bad_step is None and not bad_metrics:
        return
    where = (
        f"at step {guard.bad_step + 1} of epoch {epoch + 1}"
        if guard.bad_step is not None
        else (f"in epoch {epoch + 1} ({', '.join(f'{k}={metrics[k]}' for k in bad_metrics)})")
    )
    value = f" (loss={guard.bad_value})" if guard.bad_value is not None else ""
    last_good = run.epoch_dir(state.next_epoch - 1)
    kept = (
        f"the last good checkpoint (epoch {state.next_epoch}) is kept in {last_good}"
        if state.next_epoch > 0
        else "no epoch finished, so no checkpoint was written"
    )
    raise NonFiniteLossError(
        f"training stopped: the loss became non-finite {where}{value}; {kept}. "
        "Lower training.learning_rate or check the data, then train again"
    )


def format_epoch_line(row: dict[str, float], epochs: int) -> str:
    """One line per finished epoch: ``epoch 7/30 - loss 0.1234 - val_loss 0.1301 - lr 1.5e-03 - 12.1 s``.

    ``row`` is a history row (0-based ``epoch``, the metrics, ``learning_rate``, ``seconds``); the
    epoch is printed 1-based out of the run's total.
    """
    parts = [f"epoch {int(row['epoch']) + 1}/{epochs}"]
    for key, value in row.items():
        if key not in ("epoch", "learning_rate", "seconds"):
            parts.append(f"{key} {value:.4f}")
    parts.append(f"lr {row['learning_rate']:.2e}")
    parts.append(f"{row['seconds']:.1f} s")
    return " - ".join(parts)


class BatchProgressBar(keras.callbacks.Callback):
    """A progress bar over the batches of one epoch (with the running losses and an ETA)."""

    def __init__(self, steps: int | None):
        super().__init__()
        self.steps = steps
        self._bar: keras.utils.Progbar | None = None

    def on_train_begin(self, logs=None):
        self._bar = None

    def on_train_batch_end(self, batch, logs=None):
        values = [(k, float(v)) for k, v in (logs or {}).items()]
        if self._bar is None:
            # The logged losses are already running means: shown as they are, not averaged again.
            names = [k for k, _ in values]
            self._bar = keras.utils.Progbar(self.steps, stateful_metrics=names, unit_name="step")
        self._bar.update(batch + 1, values=values)


def _common_steps(dataset: tf.data.Dataset, dist: Distributed) -> int:
    """The smallest number of batches any rank's ``dataset`` has (all ranks must run as many steps)."""
    batches = int(dataset.cardinality())
    if batches < 0:
        raise TrainingSetupError(
            "with several ranks, fit_epochs needs training datasets of known length or steps_per_epoch="
        )
    return int(min(dist.allgather_object(batches)))
