"""One Keras model that owns FPCD's two diffusion networks and trains them together (paper eq. 6).

The jet network learns the v-parameterised denoiser of the normalised jet features (pt, eta, mass,
multiplicity); the particle network learns that of the normalised particle features, conditioned on
the clean jet features. Both share one optimizer step: L = L_jet + L_particle.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from gsgm.diffusion import diffuse, v_loss


def _exponential_moving_average(source: keras.Model, target: keras.Model, decay: float) -> None:
    for weight, ema_weight in zip(source.weights, target.weights, strict=True):
        ema_weight.assign(decay * ema_weight + (1.0 - decay) * weight)


class FPCDModel(keras.Model):
    """FPCD training model: ``train_step``/``test_step`` compute L_jet + L_particle on v (paper eq. 1, 6).

    Batches are dicts from ``gsgm.data.pipeline.make_dataset``: ``particles`` [B, P, 3], ``jets``
    [B, 4], ``class_onehot`` [B, C], ``mask`` [B, P, 1], all normalised and float32.

    Randomness (diffusion time and noise) is stateless and derived from (seed, optimizer step), so a
    run resumed from a checkpoint draws exactly the numbers the uninterrupted run would have drawn.
    EMA copies of both networks (``ema_jet_net``, ``ema_particle_net``) are updated after every step;
    validation and sampling use them.

    Data-parallel training: ``distributed`` (a :class:`gsgm.training.distributed.Distributed`, set by
    ``fit_epochs``) averages the gradients over ranks in :meth:`transform_gradients`, and each rank
    draws its own noise (stream counter ``counter * size + rank``; unchanged on one process).
    """

    distributed = None

    def __init__(
        self,
        jet_net: keras.Model,
        particle_net: keras.Model,
        ema_decay: float = 0.999,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.jet_net = jet_net
        self.particle_net = particle_net
        self.ema_jet_net = keras.models.clone_model(jet_net)
        self.ema_particle_net = keras.models.clone_model(particle_net)
        self.ema_jet_net.set_weights(jet_net.get_weights())
        self.ema_particle_net.set_weights(particle_net.get_weights())
        self.ema_jet_net.trainable = False
        self.ema_particle_net.trainable = False
        self.ema_decay = float(ema_decay)
        self.seed = int(seed)
        # Counts validation batches within an epoch; reset every epoch so that each validation pass
        # draws the same noise and epoch-to-epoch differences come from the weights alone.
        self.eval_counter = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="eval_counter"
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.jet_loss_tracker = keras.metrics.Mean(name="loss_jet")
        self.particle_loss_tracker = keras.metrics.Mean(name="loss_particle")
        # The sub-networks are functional models, built at construction; mark the container built so
        # that weights can be saved and loaded before the first call.
        self.built = True

    @property
    def optimized_variables(self) -> list:
        """Variables the optimizer updates, in the fixed order its slot variables are saved in."""
        return self.jet_net.trainable_variables + self.particle_net.trainable_variables

    @property
    def metrics(self):
        return [self.loss_tracker, self.jet_loss_tracker, self.particle_loss_tracker]

    def call(self, inputs, training=False):
        jets_v = self.jet_net(
            {"z": inputs["jets"], "t": inputs["t"], "class_onehot": inputs["class_onehot"]}, training=training
        )
        particles_v = self.particle_net(
            {
                "z": inputs["particles"],
                "t": inputs["t"],
                "jets": inputs["jets"],
                "class_onehot": inputs["class_onehot"],
                "mask": inputs["mask"],
            },
            training=training,
        )
        return jets_v, particles_v

    def jet_denoiser(self, z, t, *, class_onehot):
        """EMA jet network as a DDIM denoiser: z [B, 4], t [B] -> v_hat [B, 4]."""
        return self.ema_jet_net({"z": z, "t": t, "class_onehot": class_onehot}, training=False)

    def particle_denoiser(self, z, t, *, jets, class_onehot, mask):
        """EMA particle network as a DDIM denoiser: z [B, P, 3], t [B] -> v_hat [B, P, 3]."""
        return self.ema_particle_net(
            {"z": z, "t": t, "jets": jets, "class_onehot": class_onehot, "mask": mask}, training=False
        )

    def _stream_seeds(self, stream: int, counter, num: int) -> tf.Tensor:
        """``num`` independent stateless seeds [num, 2] from (seed, stream, counter)."""
        base = tf.stack([tf.constant(self.seed, tf.int64) * 4 + stream, tf.cast(counter, tf.int64)])
        return tf.random.experimental.stateless_split(base, num=num)

    def _diffusion_losses(self, batch, stream: int, counter, use_ema: bool, training: bool):
        """L_jet, L_particle of one batch; noise from the stateless stream (seed, stream, counter)."""
        jets, particles, mask, onehot = (
            batch["jets"],
            batch["particles"],
            batch["mask"],
            batch["class_onehot"],
        )
        batch_size = tf.shape(jets)[0]
        seeds = self._stream_seeds(stream, counter, 3)
        # FPCD draws one diffusion time per jet, shared by the jet and the particle model.
        t = tf.random.stateless_uniform([batch_size], seed=seeds[0], dtype=tf.float32)
        jet_noise = tf.random.stateless_normal(tf.shape(jets), seed=seeds[1], dtype=tf.float32)
        particle_noise = tf.random.stateless_normal(tf.shape(particles), seed=seeds[2], dtype=tf.float32)

        jet_net = self.ema_jet_net if use_ema else self.jet_net
        particle_net = self.ema_particle_net if use_ema else self.particle_net
        z_jets, v_jets = diffuse(jets, t, jet_noise)
        v_hat_jets = jet_net({"z": z_jets, "t": t, "class_onehot": onehot}, training=training)
        z_particles, v_particles = diffuse(particles, t, particle_noise, mask=mask)
        v_hat_particles = particle_net(
            {"z": z_particles, "t": t, "jets": jets, "class_onehot": onehot, "mask": mask}, training=training
        )
        loss_jet = v_loss(v_jets, v_hat_jets)
        loss_particle = v_loss(v_particles, v_hat_particles, mask)
        return loss_jet, loss_particle

    def _record(self, loss_jet, loss_particle):
        self.loss_tracker.update_state(loss_jet + loss_particle)
        self.jet_loss_tracker.update_state(loss_jet)
        self.particle_loss_tracker.update_state(loss_particle)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss_jet, loss_particle = self._diffusion_losses(
                data,
                stream=0,
                counter=self._replica_counter(self.optimizer.iterations),
                use_ema=False,
                training=True,
            )
            loss = loss_jet + loss_particle
        variables = self.optimized_variables
        gradients = tape.gradient(loss, variables)
        gradients = self.transform_gradients(gradients)
        self.optimizer.apply(gradients, variables)
        _exponential_moving_average(self.jet_net, self.ema_jet_net, self.ema_decay)
        _exponential_moving_average(self.particle_net, self.ema_particle_net, self.ema_decay)
        return self._record(loss_jet, loss_particle)

    def transform_gradients(self, gradients):
        """Hook for distributed training (a Horovod allreduce); identity on one process."""
        if self.distributed is None:
            return gradients
        return self.distributed.average_gradients(gradients)

    def _replica_counter(self, counter):
        """Noise-stream counter of this rank: ranks draw independent noise for their different jets."""
        if self.distributed is None or self.distributed.size == 1:
            return counter
        size, rank = self.distributed.size, self.distributed.rank
        return tf.cast(counter, tf.int64) * size + rank

    def test_step(self, data):
        loss_jet, loss_particle = self._diffusion_losses(
            data, stream=1, counter=self._replica_counter(self.eval_counter), use_ema=True, training=False
        )
        self.eval_counter.assign_add(1)
        return self._record(loss_jet, loss_particle)
