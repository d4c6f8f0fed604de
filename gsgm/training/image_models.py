"""Keras training models for jet images: the VE score model (Alg. 1) and the consistency model (Alg. 2).

Both follow the conventions of :class:`gsgm.training.fpcd_model.FPCDModel`, so that the shared epoch
loop :func:`gsgm.training.trainer.fit_epochs` drives them: ``train_step``/``test_step`` report ``loss``,
``eval_counter`` restarts the validation noise every epoch, ``optimized_variables`` lists what the
optimizer updates, and every random number is stateless, derived from (seed, stream, counter) with the
optimizer's iteration counter as the training counter, so a resumed run draws exactly the numbers of
an uninterrupted one. (Dropout masks are the exception: Keras draws them from a seed generator whose
state is not saved; the quick config has no dropout.)

Batches are dicts ``images`` [B, N, N, 1] (pt_rel intensities) and ``labels`` [B] int32
(:func:`gsgm.data.images.make_image_dataset`). Networks are U-Nets from :func:`gsgm.models.unet.build_unet`;
the diffusion formulas come from :mod:`gsgm.diffusion.ve_sde` and :mod:`gsgm.diffusion.consistency`.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from gsgm.config import ConsistencyConfig
from gsgm.diffusion.consistency import (
    ConsistencyParameterization,
    consistency_distance,
    ct_num_points,
    ct_target_decay,
    karras_sigma,
)
from gsgm.diffusion.ve_sde import ScoreParameterization, dsm_loss, probability_flow_step, ve_perturb, ve_sigma
from gsgm.training.fpcd_model import _exponential_moving_average

__all__ = ["ConsistencyImageModel", "ScoreImageModel", "unet_callable"]


def unet_callable(net: keras.Model, training: bool = False) -> Callable[..., tf.Tensor]:
    """``(x_in, log_sigma, *, label) -> F``: a U-Net in the network signature of the parameterisations."""

    def call(x_in, log_sigma, *, label):
        return net({"x": x_in, "log_sigma": log_sigma, "label": label}, training=training)

    return call


class _ImageDiffusionModel(keras.Model):
    """Shared plumbing: EMA network, validation counter, loss metric, stateless seeds.

    Data-parallel training follows FPCDModel: if the epoch loop sets ``distributed`` (an object with
    ``size``, ``rank`` and ``average_gradients``), gradients are averaged over ranks and each rank
    draws its own noise (counter ``counter * size + rank``); on one process nothing changes.
    """

    distributed = None

    def __init__(self, net: keras.Model, ema_net: keras.Model, ema_decay: float, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.ema_net = ema_net
        self.ema_net.set_weights(net.get_weights())
        self.ema_net.trainable = False
        self.ema_decay = float(ema_decay)
        self.seed = int(seed)
        self.eval_counter = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="eval_counter"
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    @property
    def optimized_variables(self) -> list:
        """Variables the optimizer updates, in a fixed order."""
        return self.net.trainable_variables

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, inputs, training=False):
        return self.net(inputs, training=training)

    def transform_gradients(self, gradients):
        """Hook for distributed training (a Horovod allreduce); identity on one process."""
        if self.distributed is None:
            return gradients
        return self.distributed.average_gradients(gradients)

    def _seeds(self, stream: int, counter, num: int) -> tf.Tensor:
        counter = tf.cast(counter, tf.int64)
        if self.distributed is not None and self.distributed.size > 1:
            counter = counter * self.distributed.size + self.distributed.rank
        base = tf.stack([tf.constant(self.seed, tf.int64) * 4 + stream, counter])
        return tf.random.experimental.stateless_split(base, num=num)

    def _apply(self, tape: tf.GradientTape, loss) -> None:
        variables = self.optimized_variables
        gradients = self.transform_gradients(tape.gradient(loss, variables))
        self.optimizer.apply(gradients, variables)

    def _record(self, loss):
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


class ScoreImageModel(_ImageDiffusionModel):
    """Score network of the VE SDE trained by denoising score matching (paper Alg. 1, part 1).

    Per example ``t ~ U(0, 1)``, ``sigma = sigma_min (sigma_max / sigma_min)^t``, ``x_t = x_0 + sigma z``;
    the loss is :func:`gsgm.diffusion.ve_sde.dsm_loss` of the parameterised score
    (:class:`gsgm.diffusion.ve_sde.ScoreParameterization`, "noise" or "denoiser"), weighted so that the
    network's target has unit variance at every level. Validation and sampling use the EMA network.
    """

    def __init__(
        self,
        net: keras.Model,
        ema_net: keras.Model,
        sigma_min: float,
        sigma_max: float,
        sigma_data: float,
        ema_decay: float = 0.9999,
        seed: int = 0,
        parameterization: str = "noise",
        **kwargs,
    ):
        super().__init__(net, ema_net, ema_decay, seed, **kwargs)
        self.sigma_min, self.sigma_max, self.sigma_data = (
            float(sigma_min),
            float(sigma_max),
            float(sigma_data),
        )
        self.parameterization = parameterization
        self._train_score = ScoreParameterization(
            unet_callable(net, training=True), sigma_data, parameterization
        )
        self._ema_score = ScoreParameterization(unet_callable(ema_net), sigma_data, parameterization)
        self._compiled_score = None

    def _loss(self, batch, score: ScoreParameterization, stream: int, counter):
        images, labels = batch["images"], batch["labels"]
        seeds = self._seeds(stream, counter, 2)
        t = tf.random.stateless_uniform(tf.shape(labels), seeds[0], dtype=tf.float32)
        sigma = ve_sigma(t, self.sigma_min, self.sigma_max)
        noise = tf.random.stateless_normal(tf.shape(images), seeds[1], dtype=tf.float32)
        estimate = score(ve_perturb(images, sigma, noise), sigma, label=labels)
        return dsm_loss(estimate, noise, sigma, score.loss_weight(sigma))

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self._loss(data, self._train_score, 0, self.optimizer.iterations)
        self._apply(tape, loss)
        _exponential_moving_average(self.net, self.ema_net, self.ema_decay)
        return self._record(loss)

    def test_step(self, data):
        loss = self._loss(data, self._ema_score, 1, self.eval_counter)
        self.eval_counter.assign_add(1)
        return self._record(loss)

    def score(self, x, sigma, *, label) -> tf.Tensor:
        """Score of the EMA network: ``x [B, N, N, 1]``, ``sigma [B]``, ``label [B]`` -> ``[B, N, N, 1]``.

        Compiled once per model (``tf.function``, relaxed shapes), so a sampler calling it in a loop
        pays the tracing only on the first call.
        """
        if self._compiled_score is None:
            self._compiled_score = tf.function(
                lambda x, sigma, label: self._ema_score(x, sigma, label=label), reduce_retracing=True
            )
        return self._compiled_score(
            tf.convert_to_tensor(x, tf.float32),
            tf.convert_to_tensor(sigma, tf.float32),
            tf.cast(label, tf.int32),
        )


class ConsistencyImageModel(_ImageDiffusionModel):
    """Consistency model trained in isolation (CT, paper Alg. 2) or distilled from a score model (CD).

    Three copies of the U-Net: the online network ``net`` (optimised), the target network
    ``target_net`` (``theta^-``, EMA with decay ``mu(k)``: the CT schedule, or fixed for CD) and
    ``ema_net`` (EMA with ``ema_decay``, used for validation and sampling). Per example
    ``n ~ U{0, ..., N - 2}`` on the Karras discretisation ``t_0 = eps < ... < t_(N-1) = T``; with
    ``x_hi = x + t_(n+1) z`` the loss is ``d(f_theta(x_hi, t_(n+1)), f_theta^-(x_lo, t_n))`` where
    ``x_lo = x + t_n z`` (CT, same ``z``) or one probability-flow ODE step of the teacher from ``x_hi``
    to ``t_n`` (CD). ``N(k)`` uses ``total_steps`` (K of the schedule) and the optimizer's iteration
    counter.

    The validation loss is the CT estimator with the EMA network on both sides, on the finest grid
    (``final_discretization + 1`` points for CT, ``distill_discretization`` for CD): it measures
    self-consistency with a fixed protocol, comparable between epochs (the training loss is not,
    since N(k) grows).

    Args:
        teacher_score: for ``mode="distill"``, the teacher's score function ``(x, sigma [B], *, label)``
            (e.g. ``ScoreImageModel.score``). It is kept as a plain callable, so the teacher's weights
            are not part of this model's checkpoints.
    """

    def __init__(
        self,
        net: keras.Model,
        ema_net: keras.Model,
        target_net: keras.Model,
        sigma_min: float,
        sigma_max: float,
        sigma_data: float,
        cfg: ConsistencyConfig,
        total_steps: int,
        mode: str = "isolation",
        teacher_score: Callable[..., tf.Tensor] | None = None,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(net, ema_net, cfg.ema_decay, seed, **kwargs)
        if mode not in ("isolation", "distill"):
            raise ValueError(f"mode must be 'isolation' or 'distill', got {mode!r}")
        self.target_net = target_net
        self.target_net.set_weights(net.get_weights())
        self.target_net.trainable = False
        self.sigma_min, self.sigma_max, self.sigma_data = (
            float(sigma_min),
            float(sigma_max),
            float(sigma_data),
        )
        self.cfg = cfg
        self.total_steps = int(total_steps)
        self.mode = mode
        self.teacher_score = teacher_score
        self._online = ConsistencyParameterization(unet_callable(net, training=True), sigma_min, sigma_data)
        self._target = ConsistencyParameterization(unet_callable(target_net), sigma_min, sigma_data)
        self._ema = ConsistencyParameterization(unet_callable(ema_net), sigma_min, sigma_data)
        self._compiled_f = None

    def _levels(self, num_points, index):
        rho = self.cfg.rho
        lo = karras_sigma(index, num_points, self.sigma_min, self.sigma_max, rho)
        hi = karras_sigma(index + 1, num_points, self.sigma_min, self.sigma_max, rho)
        return lo, hi

    def _pair_loss(self, batch, online, target, num_points, seeds, teacher: bool):
        images, labels = batch["images"], batch["labels"]
        index = tf.random.stateless_uniform(
            tf.shape(labels), seeds[0], minval=0, maxval=num_points - 1, dtype=tf.int32
        )
        sigma_lo, sigma_hi = self._levels(num_points, index)
        noise = tf.random.stateless_normal(tf.shape(images), seeds[1], dtype=tf.float32)
        x_hi = ve_perturb(images, sigma_hi, noise)
        if teacher:
            x_lo = probability_flow_step(
                self.teacher_score, x_hi, sigma_hi, sigma_lo, self.cfg.distill_solver, {"label": labels}
            )
        else:
            x_lo = ve_perturb(images, sigma_lo, noise)
        prediction = online(x_hi, sigma_hi, label=labels)
        reference = tf.stop_gradient(target(x_lo, sigma_lo, label=labels))
        return consistency_distance(prediction, reference, self.cfg.distance)

    def schedule(self, step):
        """``(N, mu)`` at optimizer step ``step``: the CT schedule, or the fixed CD values."""
        if self.mode == "distill":
            return tf.constant(self.cfg.distill_discretization, tf.int32), tf.constant(
                self.cfg.distill_target_ema, tf.float32
            )
        num_points = ct_num_points(
            step, self.total_steps, self.cfg.initial_discretization, self.cfg.final_discretization
        )
        return num_points, ct_target_decay(
            num_points, self.cfg.initial_discretization, self.cfg.initial_target_ema
        )

    def train_step(self, data):
        if self.mode == "distill" and self.teacher_score is None:
            raise ValueError("consistency distillation needs a teacher_score")
        step = self.optimizer.iterations
        num_points, target_decay = self.schedule(step)
        seeds = self._seeds(0, step, 2)
        with tf.GradientTape() as tape:
            loss = self._pair_loss(
                data, self._online, self._target, num_points, seeds, self.mode == "distill"
            )
        self._apply(tape, loss)
        _exponential_moving_average(self.net, self.target_net, target_decay)
        _exponential_moving_average(self.net, self.ema_net, self.ema_decay)
        return self._record(loss)

    def test_step(self, data):
        final = (
            self.cfg.distill_discretization if self.mode == "distill" else self.cfg.final_discretization + 1
        )
        seeds = self._seeds(1, self.eval_counter, 2)
        loss = self._pair_loss(data, self._ema, self._ema, tf.constant(final, tf.int32), seeds, teacher=False)
        self.eval_counter.assign_add(1)
        return self._record(loss)

    def consistency_fn(self, x, sigma, *, label) -> tf.Tensor:
        """``f(x, sigma)`` of the EMA network: ``x [B, N, N, 1]``, ``sigma [B]``, ``label [B]``.

        Compiled once per model, like :meth:`ScoreImageModel.score`.
        """
        if self._compiled_f is None:
            self._compiled_f = tf.function(
                lambda x, sigma, label: self._ema(x, sigma, label=label), reduce_retracing=True
            )
        return self._compiled_f(
            tf.convert_to_tensor(x, tf.float32),
            tf.convert_to_tensor(sigma, tf.float32),
            tf.cast(label, tf.int32),
        )
