"""One Keras model that owns FPCD's two diffusion networks and trains them together (paper eq. 6).

The jet network learns the v-parameterised denoiser of the normalised jet features (pt, eta, mass,
multiplicity); the particle network learns that of the normalised particle features, conditioned on
the clean jet features. Both share one optimizer step: L = L_jet + L_particle.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from gsgm.diffusion import VDenoiser, VPCosineSchedule, diffuse_with_v_target, masked_mse
from gsgm.diffusion.schedules import Schedule
from gsgm.training.base_model import DiffusionTrainingModel


class FPCDModel(DiffusionTrainingModel):
    """FPCD training model: ``train_step``/``test_step`` compute L_jet + L_particle on v (paper eq. 1, 6).

    Batches are dicts from ``gsgm.data.pipeline.make_dataset``: ``particles`` [B, P, 3], ``jets``
    [B, 4], ``class_onehot`` [B, C], ``mask`` [B, P, 1], all normalised and float32. EMA copies of both
    networks (``ema_jet_net``, ``ema_particle_net``) are updated after every step; validation and
    sampling use them (``jet_denoiser``, ``particle_denoiser``: :class:`~gsgm.diffusion.VDenoiser` over
    the EMA networks, on ``schedule``). EMA, noise streams, eval counter and gradient averaging come
    from :class:`~gsgm.training.base_model.DiffusionTrainingModel`.
    """

    def __init__(
        self,
        jet_net: keras.Model,
        particle_net: keras.Model,
        ema_decay: float = 0.999,
        seed: int = 0,
        schedule: Schedule | None = None,
        **kwargs,
    ):
        super().__init__(
            ema_decay=ema_decay,
            seed=seed,
            metric_names=("loss", "loss_jet", "loss_particle"),
            num_seeds=3,
            **kwargs,
        )
        self.schedule = schedule or VPCosineSchedule()
        self.jet_net = jet_net
        self.particle_net = particle_net
        self.ema_jet_net = keras.models.clone_model(jet_net)
        self.ema_particle_net = keras.models.clone_model(particle_net)
        self.add_ema("jet_net", "ema_jet_net")
        self.add_ema("particle_net", "ema_particle_net")
        # Stable denoiser objects (one per model): the compiled DDIM loop is cached per object.
        self.jet_denoiser = VDenoiser(self._ema_jet_velocity, self.schedule)
        self.particle_denoiser = VDenoiser(self._ema_particle_velocity, self.schedule)

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

    def _ema_jet_velocity(self, z, t, *, class_onehot):
        """EMA jet network: z [B, 4], t [B] -> v_hat [B, 4]."""
        return self.ema_jet_net({"z": z, "t": t, "class_onehot": class_onehot}, training=False)

    def _ema_particle_velocity(self, z, t, *, jets, class_onehot, mask):
        """EMA particle network: z [B, P, 3], t [B] -> v_hat [B, P, 3]."""
        return self.ema_particle_net(
            {"z": z, "t": t, "jets": jets, "class_onehot": class_onehot, "mask": mask}, training=False
        )

    def networks(self, training: bool) -> tuple[keras.Model, keras.Model]:
        """(jet, particle) networks: raw ones for training, EMA ones for validation."""
        if training:
            return self.jet_net, self.particle_net
        return self.ema_jet_net, self.ema_particle_net

    def compute_losses(self, batch, seeds, *, training: bool, step) -> dict[str, tf.Tensor]:
        """L_jet, L_particle of one batch (eq. 1); one diffusion time per jet, shared by both networks."""
        jets, particles, mask, onehot = (
            batch["jets"],
            batch["particles"],
            batch["mask"],
            batch["class_onehot"],
        )
        t = self.schedule.training_times(tf.shape(jets)[:1], seeds[0])
        jet_noise = tf.random.stateless_normal(tf.shape(jets), seed=seeds[1], dtype=tf.float32)
        particle_noise = tf.random.stateless_normal(tf.shape(particles), seed=seeds[2], dtype=tf.float32)
        jet_net, particle_net = self.networks(training)
        z_jets, v_jets = diffuse_with_v_target(jets, t, jet_noise, self.schedule)
        v_hat_jets = jet_net({"z": z_jets, "t": t, "class_onehot": onehot}, training=training)
        z_particles, v_particles = diffuse_with_v_target(
            particles, t, particle_noise, self.schedule, mask=mask
        )
        v_hat_particles = particle_net(
            {"z": z_particles, "t": t, "jets": jets, "class_onehot": onehot, "mask": mask}, training=training
        )
        loss_jet = masked_mse(v_jets, v_hat_jets)
        loss_particle = masked_mse(v_particles, v_hat_particles, mask)
        return {"loss": loss_jet + loss_particle, "loss_jet": loss_jet, "loss_particle": loss_particle}
