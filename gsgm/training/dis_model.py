"""Keras training model of the DIS family: learned-variance DDPM, hybrid loss, importance-sampled t.

The U-Net predicts ``[eps, v]`` (3 + 3 channels) from ``(z_t, t)`` with the step index ``t`` of a
:class:`~gsgm.diffusion.schedules.DiscreteCosineSchedule`; :class:`~gsgm.diffusion.EpsDenoiser` with
``learned_variance`` turns it into the gsgm denoiser convention, and the variance
``exp(v log beta + (1 - v) log beta_tilde)`` is learned through ``L_vlb`` only (stop-gradient on the
mean). Training loss per batch (Nichol & Dhariwal 2021):

    mean_b  w_b (L_simple,b + lambda T L_(t_b - 1),b),   w_b = 1 / (T p_(t_b))

with t drawn by :class:`~gsgm.diffusion.importance.LossSecondMomentSampler` (w = 1 and uniform t while
it warms up, or with importance sampling off). The loss history is a pair of non-trainable weights, so
checkpoints hold it and a resumed run continues exactly; with several ranks every rank records every
rank's (t, L_t) (an allgather), so all ranks keep the same history. Validation: EMA network, uniform
t, unweighted (comparable between epochs). Reported: ``loss``, ``l_simple``, ``l_vlb`` (= T L_t).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from gsgm.diffusion import DiscreteCosineSchedule, EpsDenoiser, Prediction, diffuse
from gsgm.diffusion.clipping import ClippedDenoiser
from gsgm.diffusion.importance import LossSecondMomentSampler
from gsgm.diffusion.vlb import hybrid_loss_terms
from gsgm.models.precision import mixed_precision_copy
from gsgm.models.unet import unet_keeps_float32
from gsgm.training.base_model import DiffusionTrainingModel

__all__ = ["DisDiffusionModel"]


def _time_net(net: keras.Model, training: bool):
    def call(z, t):
        return net({"x": z, "t": tf.cast(t, tf.float32)}, training=training)

    return call


class DisDiffusionModel(DiffusionTrainingModel):
    """Args: ``net``/``ema_net`` U-Nets ``{"x", "t"} -> [B, n, n, 2 C]``; ``schedule``; ``vlb_weight``
    (lambda); ``importance`` (None: uniform t); ``ema_decay``; ``seed``."""

    def __init__(
        self,
        net: keras.Model,
        ema_net: keras.Model,
        schedule: DiscreteCosineSchedule,
        vlb_weight: float = 1e-3,
        importance: LossSecondMomentSampler | None = None,
        ema_decay: float = 0.9999,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(
            ema_decay=ema_decay, seed=seed, metric_names=("loss", "l_simple", "l_vlb"), num_seeds=2, **kwargs
        )
        self.net = net
        self.ema_net = ema_net
        self.add_ema("net", "ema_net")
        self.schedule = schedule
        self.vlb_weight = float(vlb_weight)
        self.importance = importance
        history = importance.history if importance is not None else 1
        self.loss_history = self.add_weight(
            shape=(schedule.num_steps, history), initializer="zeros", trainable=False, name="vlb_history"
        )
        self.loss_counts = self.add_weight(
            shape=(schedule.num_steps,),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            name="vlb_counts",
        )
        self._train_denoiser = EpsDenoiser(_time_net(net, True), schedule, learned_variance=True)
        self._ema_denoiser = EpsDenoiser(_time_net(ema_net, False), schedule, learned_variance=True)
        self._sampling_denoisers: dict = {}  # (clip_x0, precision, jit_compile) -> tf.function
        self._compiled = tf.function(
            lambda z, t: tuple(self._ema_denoiser.predict(z, t)), reduce_retracing=True
        )

    @property
    def denoiser(self) -> DenoiserView:
        """The EMA network as a compiled denoiser (``predict`` gives x0, eps and the variance weight)."""
        return DenoiserView(self._compiled)

    def sampling_denoiser(
        self, clip_x0: bool = True, precision: str = "float32", jit_compile: bool = False
    ) -> DenoiserView:
        """:attr:`denoiser`, with x0 clipped to [-1, 1] (:class:`ClippedDenoiser`) when ``clip_x0``.

        ``precision`` "bfloat16" / "float16" computes with a mixed-precision copy of the EMA U-Net
        (:func:`gsgm.models.precision.mixed_precision_copy`; time features and output layers stay
        float32, so eps and the variance interpolation come back float32); ``jit_compile`` compiles
        each network call with XLA. One compiled function per setting, made on first use; a 16-bit
        copy holds the weights of the moment it was made.
        """
        key = (bool(clip_x0), precision, bool(jit_compile))
        if key == (False, "float32", False):
            return self.denoiser
        if key not in self._sampling_denoisers:
            adapter = self._ema_denoiser
            if precision != "float32":
                copy = mixed_precision_copy(self.ema_net, precision, unet_keeps_float32)
                adapter = EpsDenoiser(_time_net(copy, False), self.schedule, learned_variance=True)
            if clip_x0:
                adapter = ClippedDenoiser(adapter, self.schedule)
            self._sampling_denoisers[key] = tf.function(
                lambda z, t, adapter=adapter: tuple(adapter.predict(z, t)),
                reduce_retracing=True,
                jit_compile=bool(jit_compile),
            )
        return DenoiserView(self._sampling_denoisers[key])

    def _gather(self, tensor: tf.Tensor) -> tf.Tensor:
        dist = self.distributed
        if dist is None or dist.size == 1:
            return tensor
        return dist.allgather_tensor(tensor)

    def compute_losses(self, batch, seeds, *, training: bool, step) -> dict[str, tf.Tensor]:
        x = tf.cast(batch["images"], tf.float32)
        size = tf.shape(x)[0]
        use_importance = training and self.importance is not None
        if use_importance:
            probabilities = self.importance.probabilities(self.loss_history, self.loss_counts)
            t, weights = self.importance.sample(probabilities, size, seeds[0])
        else:
            t = self.schedule.training_times(tf.reshape(size, [1]), seeds[0])
            weights = tf.ones_like(t)
        noise = tf.random.stateless_normal(tf.shape(x), seeds[1], dtype=tf.float32)
        z = diffuse(x, t, noise, self.schedule)
        adapter = self._train_denoiser if training else self._ema_denoiser
        l_simple, l_vlb = hybrid_loss_terms(adapter.predict(z, t), x, z, t, noise, self.schedule)
        scaled_vlb = float(self.schedule.num_steps) * l_vlb
        loss = tf.reduce_mean(weights * (l_simple + self.vlb_weight * scaled_vlb))
        if use_importance:
            history, counts = self.importance.update(
                self.loss_history, self.loss_counts, self._gather(t), self._gather(tf.stop_gradient(l_vlb))
            )
            self.loss_history.assign(history)
            self.loss_counts.assign(counts)
        return {
            "loss": loss,
            "l_simple": tf.reduce_mean(weights * l_simple),
            "l_vlb": tf.reduce_mean(weights * scaled_vlb),
        }


class DenoiserView:
    """A compiled ``(z, t) -> Prediction`` as a gsgm denoiser (inputs cast to float32)."""

    def __init__(self, compiled):
        self._compiled = compiled

    def predict(self, z, t) -> Prediction:
        return Prediction(*self._compiled(tf.cast(z, tf.float32), tf.cast(t, tf.float32)))

    def __call__(self, z, t) -> tf.Tensor:
        return self.predict(z, t).x0
