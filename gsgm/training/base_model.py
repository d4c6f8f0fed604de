"""One base Keras training model for every diffusion family: EMA, stateless noise, eval counter, gradients.

A family's training model subclasses :class:`DiffusionTrainingModel`, assigns its networks as
attributes, registers each network that has an averaged copy with :meth:`~DiffusionTrainingModel.add_ema`
and implements :meth:`~DiffusionTrainingModel.compute_losses` (and, for sampling, a denoiser in the
:mod:`gsgm.diffusion.denoisers` convention). Everything the epoch loop
(:func:`gsgm.training.loop.fit_epochs`) relies on lives here:

* ``train_step``/``test_step`` report ``loss`` (plus the family's further loss terms);
* ``eval_counter`` counts validation batches and is reset by the loop every epoch, so each validation
  pass draws the same noise and epoch-to-epoch differences come from the weights alone;
* ``optimized_variables``: the trainable variables of the registered source networks, in registration
  order (the order the optimizer's slot variables are saved in);
* randomness is stateless: seeds derive from ``(seed, stream, counter)`` with the optimizer's iteration
  counter for training (stream 0) and ``eval_counter`` for validation (stream 1), so a run resumed from
  a checkpoint draws exactly the numbers an uninterrupted run would have drawn;
* data-parallel training: when the loop sets ``distributed``
  (a :class:`gsgm.training.distributed.Distributed`), gradients pass through
  ``distributed.average_gradients`` and each rank draws its own noise (counter
  ``counter * size + rank``); on one process nothing changes.

Gradient clipping is the optimizer's (``clipnorm``, per tensor, set by the run's optimizer factory), so
it applies after averaging, identically on every rank.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import tensorflow as tf

__all__ = ["DiffusionTrainingModel", "exponential_moving_average"]


def exponential_moving_average(source: keras.Model, target: keras.Model, decay) -> None:
    """``target <- decay target + (1 - decay) source``, weight by weight (same architecture)."""
    for weight, ema_weight in zip(source.weights, target.weights, strict=True):
        ema_weight.assign(decay * ema_weight + (1.0 - decay) * weight)


class DiffusionTrainingModel(keras.Model):
    """Base training model (see the module docstring).

    Args:
        ema_decay: decay of the EMA copies (per train step).
        seed: seed of the stateless noise streams.
        metric_names: names of the reported losses; the first must be "loss" (the sum the optimizer
            minimises). :meth:`compute_losses` returns a dict with exactly these keys.
        num_seeds: independent seeds per step handed to :meth:`compute_losses`.
    """

    distributed = None

    def __init__(
        self,
        *,
        ema_decay: float,
        seed: int,
        metric_names: tuple[str, ...] = ("loss",),
        num_seeds: int = 2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if metric_names[0] != "loss":
            raise ValueError(f"the first metric must be 'loss', got {metric_names}")
        self.ema_decay = float(ema_decay)
        self.seed = int(seed)
        self.num_seeds = int(num_seeds)
        # (source attribute, EMA attribute) names; strings, so Keras tracks no extra references.
        self._ema_names: list[tuple[str, str]] = []
        self.eval_counter = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="eval_counter"
        )
        self._metric_names = tuple(metric_names)
        self._trackers = {name: keras.metrics.Mean(name=name) for name in metric_names}
        # Networks are functional models, built at construction; mark the container built so that
        # weights can be saved and loaded before the first call.
        self.built = True

    # --- networks and EMA ------------------------------------------------------------------------------
    def add_ema(self, source: str, ema: str) -> None:
        """Register attribute ``ema`` as the averaged copy of ``source`` (copies weights, freezes it)."""
        ema_net = getattr(self, ema)
        ema_net.set_weights(getattr(self, source).get_weights())
        ema_net.trainable = False
        self._ema_names.append((source, ema))

    @property
    def optimized_variables(self) -> list:
        """Variables the optimizer updates, in the fixed order its slot variables are saved in."""
        sources = dict.fromkeys(source for source, _ in self._ema_names)
        return [v for source in sources for v in getattr(self, source).trainable_variables]

    def ema_decays(self, step) -> dict[str, tf.Tensor | float]:
        """Decay per EMA attribute at optimizer step ``step`` (default: ``ema_decay`` for all)."""
        return {ema: self.ema_decay for _, ema in self._ema_names}

    def update_ema(self, decays: Mapping[str, tf.Tensor | float]) -> None:
        for source, ema in self._ema_names:
            exponential_moving_average(getattr(self, source), getattr(self, ema), decays[ema])

    # --- randomness ------------------------------------------------------------------------------------
    def noise_seeds(self, stream: int, counter, num: int | None = None) -> tf.Tensor:
        """``[num, 2]`` independent stateless seeds from (seed, stream, counter), per rank."""
        counter = tf.cast(counter, tf.int64)
        if self.distributed is not None and self.distributed.size > 1:
            counter = counter * self.distributed.size + self.distributed.rank
        base = tf.stack([tf.constant(self.seed, tf.int64) * 4 + stream, counter])
        return tf.random.experimental.stateless_split(base, num=num or self.num_seeds)

    # --- the family's part -----------------------------------------------------------------------------
    def compute_losses(self, batch, seeds: tf.Tensor, *, training: bool, step) -> dict[str, tf.Tensor]:
        """The family's losses of one batch: a dict with the keys of ``metric_names``.

        Args:
            batch: one element of the family's dataset.
            seeds: ``[num_seeds, 2]`` stateless seeds for this batch.
            training: True in ``train_step`` (raw networks, training mode), False in ``test_step``
                (EMA networks, inference mode).
            step: the optimizer step (training) or the eval counter (validation), an int tensor.
        """
        raise NotImplementedError

    # --- Keras steps -----------------------------------------------------------------------------------
    @property
    def metrics(self):
        return list(self._trackers.values())

    def record(self, losses: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        for name in self._metric_names:
            self._trackers[name].update_state(losses[name])
        return {name: self._trackers[name].result() for name in self._metric_names}

    def transform_gradients(self, gradients):
        """Average over ranks (a Horovod allreduce); identity on one process."""
        if self.distributed is None:
            return gradients
        return self.distributed.average_gradients(gradients)

    def train_step(self, data):
        # A snapshot of the step: schedules read from it must see the value before this update.
        step = tf.convert_to_tensor(self.optimizer.iterations)
        seeds = self.noise_seeds(0, step)
        decays = self.ema_decays(step)
        with tf.GradientTape() as tape:
            losses = self.compute_losses(data, seeds, training=True, step=step)
        variables = self.optimized_variables
        gradients = self.transform_gradients(tape.gradient(losses["loss"], variables))
        self.optimizer.apply(gradients, variables)
        self.update_ema(decays)
        return self.record(losses)

    def test_step(self, data):
        step = tf.convert_to_tensor(self.eval_counter)
        losses = self.compute_losses(data, self.noise_seeds(1, step), training=False, step=step)
        self.eval_counter.assign_add(1)
        return self.record(losses)
