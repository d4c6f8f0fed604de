"""Keras training models for jet images: the VE score model (Alg. 1) and the consistency model (Alg. 2).

Both are :class:`gsgm.training.base_model.DiffusionTrainingModel` subclasses (EMA, stateless noise from
(seed, stream, counter), eval counter, gradient averaging), so the shared epoch loop
:func:`gsgm.training.loop.fit_epochs` drives them. (Dropout masks are the exception to stateless
randomness: Keras draws them from a seed generator whose state is not saved; the quick config has no
dropout.)

Batches are dicts ``images`` [B, N, N, 1] (pt_rel intensities) and ``labels`` [B] int32
(:func:`gsgm.data.images.make_image_dataset`). Networks are U-Nets from :func:`gsgm.models.unet.build_unet`;
the formulas come from :mod:`gsgm.diffusion` (schedules, denoiser adapters, losses). For sampling each
model exposes ``denoiser``: its EMA network as a compiled denoiser (time = sigma).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from gsgm.config import ConsistencyConfig
from gsgm.diffusion import (
    ConsistencyDenoiser,
    KarrasSchedule,
    PreconditionedDenoiser,
    Prediction,
    VEGeometricSchedule,
    diffuse,
    dsm_loss,
)
from gsgm.diffusion.consistency import consistency_loss, ct_num_points, ct_target_decay
from gsgm.diffusion.denoisers import score_of
from gsgm.diffusion.schedules import scales_like
from gsgm.training.base_model import DiffusionTrainingModel

__all__ = ["CompiledDenoiser", "ConsistencyImageModel", "ScoreImageModel", "unet_callable"]


def unet_callable(net: keras.Model, training: bool = False) -> Callable[..., tf.Tensor]:
    """``(x_in, log_sigma, *, label) -> F``: a U-Net in the network signature of the adapters."""

    def call(x_in, log_sigma, *, label):
        return net({"x": x_in, "log_sigma": log_sigma, "label": label}, training=training)

    return call


class CompiledDenoiser:
    """A label-conditioned adapter with ``predict`` compiled once (``tf.function``, relaxed shapes).

    Samplers calling it in a Python loop pay the tracing only on the first call. Inputs: ``z [B, N, N, 1]``,
    ``t = sigma [B]``, ``label [B]`` (cast to int32). ``jit_compile`` compiles the network call with
    XLA (one compiled function per batch shape).
    """

    def __init__(self, adapter, jit_compile: bool = False):
        self.adapter = adapter
        self.jit_compile = bool(jit_compile)
        self._compiled = tf.function(
            lambda z, t, label: tuple(adapter.predict(z, t, label=label)),
            reduce_retracing=True,
            jit_compile=self.jit_compile,
        )

    def predict(self, z, t, *, label) -> Prediction:
        out = self._compiled(
            tf.convert_to_tensor(z, tf.float32), tf.convert_to_tensor(t, tf.float32), tf.cast(label, tf.int32)
        )
        return Prediction(*out)

    def __call__(self, z, t, *, label) -> tf.Tensor:
        return self.predict(z, t, label=label).x0


class ScoreImageModel(DiffusionTrainingModel):
    """Score network of the VE SDE trained by denoising score matching (paper Alg. 1, part 1).

    Per example ``sigma`` from ``VEGeometricSchedule.training_times`` (``sigma_min (sigma_max /
    sigma_min)^u``, ``u ~ U(0, 1)``), ``x_t = x_0 + sigma z``; the loss is
    :func:`gsgm.diffusion.dsm_loss` of the score of a :class:`~gsgm.diffusion.PreconditionedDenoiser`
    ("noise" or "denoiser"), weighted so that the network's target has unit variance at every level.
    Validation and sampling (``denoiser``) use the EMA network.
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
        super().__init__(ema_decay=ema_decay, seed=seed, **kwargs)
        self.net = net
        self.ema_net = ema_net
        self.add_ema("net", "ema_net")
        self.sigma_min, self.sigma_max, self.sigma_data = (
            float(sigma_min),
            float(sigma_max),
            float(sigma_data),
        )
        self.parameterization = parameterization
        self.schedule = VEGeometricSchedule(self.sigma_min, self.sigma_max)
        self._train_denoiser = PreconditionedDenoiser(
            unet_callable(net, training=True), sigma_data, parameterization
        )
        self._ema_denoiser = self.sampling_adapter(ema_net)
        self.denoiser = CompiledDenoiser(self._ema_denoiser)

    def sampling_adapter(self, net: keras.Model) -> PreconditionedDenoiser:
        """The denoiser adapter of this model over ``net`` (the EMA U-Net, or a 16-bit copy of it)."""
        return PreconditionedDenoiser(unet_callable(net), self.sigma_data, self.parameterization)

    def compute_losses(self, batch, seeds, *, training: bool, step) -> dict[str, tf.Tensor]:
        images, labels = batch["images"], batch["labels"]
        adapter = self._train_denoiser if training else self._ema_denoiser
        sigma = self.schedule.training_times(tf.shape(labels), seeds[0])
        noise = tf.random.stateless_normal(tf.shape(images), seeds[1], dtype=tf.float32)
        x_t = diffuse(images, sigma, noise, self.schedule)
        alpha, sigma_x = scales_like(self.schedule, sigma, x_t)
        score = score_of(adapter.predict(x_t, sigma, label=labels), x_t, alpha, sigma_x)
        return {"loss": dsm_loss(score, noise, sigma, adapter.loss_weight(sigma))}


class ConsistencyImageModel(DiffusionTrainingModel):
    """Consistency model trained in isolation (CT, paper Alg. 2) or distilled from a score model (CD).

    Three copies of the U-Net: the online network ``net`` (optimised), the target network
    ``target_net`` (``theta^-``, EMA with decay ``mu(k)``: the CT schedule, or fixed for CD) and
    ``ema_net`` (EMA with ``ema_decay``, used for validation and sampling). The loss is
    :func:`gsgm.diffusion.consistency.consistency_loss` on a :class:`~gsgm.diffusion.KarrasSchedule`
    over ``[sigma_min, sigma_max]`` with ``N(k)`` points (``total_steps`` = K of the CT schedule).

    The validation loss is the CT estimator with the EMA network on both sides, on the finest grid
    (``final_discretization + 1`` points for CT, ``distill_discretization`` for CD): it measures
    self-consistency with a fixed protocol, comparable between epochs (the training loss is not,
    since N(k) grows).

    Args:
        teacher_denoiser: for ``mode="distill"``, the teacher as a denoiser ``(x, sigma [B], *, label)``
            (e.g. ``ScoreImageModel.denoiser``). Kept as a plain callable, so the teacher's weights are
            not part of this model's checkpoints.
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
        teacher_denoiser: Callable[..., tf.Tensor] | None = None,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(ema_decay=cfg.ema_decay, seed=seed, **kwargs)
        if mode not in ("isolation", "distill"):
            raise ValueError(f"mode must be 'isolation' or 'distill', got {mode!r}")
        self.net = net
        self.ema_net = ema_net
        self.add_ema("net", "ema_net")
        self.target_net = target_net
        self.add_ema("net", "target_net")
        self.sigma_min, self.sigma_max, self.sigma_data = (
            float(sigma_min),
            float(sigma_max),
            float(sigma_data),
        )
        self.cfg = cfg
        self.total_steps = int(total_steps)
        self.mode = mode
        self.teacher_denoiser = teacher_denoiser
        self.schedule = KarrasSchedule(self.sigma_min, self.sigma_max, cfg.rho)
        self._online = ConsistencyDenoiser(unet_callable(net, training=True), sigma_min, sigma_data)
        self._target = ConsistencyDenoiser(unet_callable(target_net), sigma_min, sigma_data)
        self._ema = self.sampling_adapter(ema_net)
        self.denoiser = CompiledDenoiser(self._ema)

    def sampling_adapter(self, net: keras.Model) -> ConsistencyDenoiser:
        """The consistency adapter of this model over ``net`` (the EMA U-Net, or a 16-bit copy of it)."""
        return ConsistencyDenoiser(unet_callable(net), self.sigma_min, self.sigma_data)

    def discretization(self, step) -> tuple[tf.Tensor, tf.Tensor]:
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

    def ema_decays(self, step) -> dict:
        return {"ema_net": self.ema_decay, "target_net": self.discretization(step)[1]}

    def compute_losses(self, batch, seeds, *, training: bool, step) -> dict[str, tf.Tensor]:
        images, labels = batch["images"], batch["labels"]
        if training:
            if self.mode == "distill" and self.teacher_denoiser is None:
                raise ValueError("consistency distillation needs a teacher_denoiser")
            num_points, _ = self.discretization(step)
            online, target = self._online, self._target
            teacher = self.teacher_denoiser if self.mode == "distill" else None
        else:
            final = (
                self.cfg.distill_discretization
                if self.mode == "distill"
                else self.cfg.final_discretization + 1
            )
            num_points, online, target, teacher = tf.constant(final, tf.int32), self._ema, self._ema, None
        index = tf.random.stateless_uniform(
            tf.shape(labels), seeds[0], minval=0, maxval=num_points - 1, dtype=tf.int32
        )
        noise = tf.random.stateless_normal(tf.shape(images), seeds[1], dtype=tf.float32)
        loss = consistency_loss(
            online,
            target,
            images,
            index,
            num_points,
            noise,
            self.schedule,
            teacher=teacher,
            solver=self.cfg.distill_solver,
            distance=self.cfg.distance,
            cond={"label": labels},
        )
        return {"loss": loss}
