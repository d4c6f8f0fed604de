"""One progressive-distillation stage for both FPCD networks: a student FPCDModel taught by a frozen teacher.

The student is an :class:`~gsgm.training.fpcd_model.FPCDModel` whose loss is replaced: instead of the
diffusion loss on clean data (eq. 1), each jet draws one step ``i`` of the student's ``N``-step grid and
the student's velocity at ``(z_t, t = (i + 1) / N)`` is regressed on the target ``v~`` that makes one
student DDIM step match two teacher steps (:mod:`gsgm.diffusion.distillation`). Jet and particle
networks are distilled together, with one step index per jet shared by both, as in base training.

Everything else is inherited unchanged: the optimizer step, gradient averaging (distributed training),
EMA updates, stateless noise from (seed, optimizer step) for exact resume, validation on the EMA weights.
Any schedule with nested N / 2N grids works (:func:`gsgm.diffusion.distillation.student_step_times`);
the student uses its teacher's.
The teacher is kept out of Keras' tracking, so a student's weight files have exactly the layout of an
FPCDModel's: a finished stage is loaded like any run with
:func:`gsgm.families.fpcd.load_trained_model`, and its teacher never enters its checkpoints (a
resumed stage reloads the teacher from the teacher's own run directory).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from gsgm.diffusion import diffuse, masked_mse
from gsgm.diffusion.distillation import distillation_targets, student_step_times
from gsgm.training.fpcd_model import FPCDModel


class _Untracked:
    """Holds an object where Keras' attribute tracking does not look (plain Python container)."""

    def __init__(self, value):
        self.value = value


class DistillationModel(FPCDModel):
    """Student of one distillation stage: learns to sample in ``num_steps`` what the teacher does in twice.

    Batches are those of ``gsgm.data.pipeline.make_dataset`` (``particles`` [B, P, 3], ``jets`` [B, 4],
    ``class_onehot`` [B, C], ``mask`` [B, P, 1]). The reported losses ``loss_jet`` and ``loss_particle``
    are the mean squared errors between the student's and the target velocities (particles: over real
    particles only).

    Args:
        jet_net, particle_net: the student's networks, normally initialised with the teacher's EMA weights
            (see :func:`build_distillation_model`); the student's EMA copies start from the same weights.
        teacher: the teacher, an FPCDModel (or a finished DistillationModel) whose ``jet_denoiser`` and
            ``particle_denoiser`` (its EMA networks, inference mode) provide the targets. Not trained,
            not saved.
        num_steps: the student's number of sampling steps ``N``; the teacher's is ``2 N``.
        ema_decay, seed: as for FPCDModel.
    """

    def __init__(
        self,
        jet_net: keras.Model,
        particle_net: keras.Model,
        teacher: FPCDModel,
        num_steps: int,
        ema_decay: float = 0.999,
        seed: int = 0,
        **kwargs,
    ):
        if isinstance(num_steps, bool) or int(num_steps) != num_steps or num_steps < 1:
            raise ValueError(
                f"num_steps (the student's sampling steps) must be a positive integer, got {num_steps!r}"
            )
        kwargs.setdefault("schedule", teacher.schedule)
        super().__init__(jet_net, particle_net, ema_decay=ema_decay, seed=seed, **kwargs)
        self.num_steps = int(num_steps)
        # A tracked teacher would put its weights into every student checkpoint and change the file layout,
        # so that the stage could no longer be loaded as a plain FPCDModel.
        self._teacher = _Untracked(teacher)

    def get_teacher(self) -> FPCDModel:
        """The teacher (a method, not a property: Keras' weight saving walks properties too)."""
        return self._teacher.value

    def ema_decays(self, step) -> dict[str, tf.Tensor]:
        """``min(ema_decay, (1 + n) / (10 + n))`` at the stage's optimizer step n (EMA warm-up).

        A stage is short (a few thousand steps), and its EMA copies start as the teacher: with a plain
        decay of 0.999 a 3-epoch stage of 1,300 steps would still hold e^-1.3 = 27 % of the teacher's
        weights when it ends (65 % after one epoch), and the 1-step model sampled from that blend is
        twice as far from the truth in W1M as its own trained weights (BENCHMARKS.md, "The 1-step gap").
        With the warm-up the average covers roughly the last tenth of the stage's steps.
        """
        n = tf.cast(step, tf.float32)
        decay = tf.minimum(tf.constant(self.ema_decay, tf.float32), (1.0 + n) / (10.0 + n))
        return {ema: decay for _, ema in self._ema_names}

    def compute_losses(self, batch, seeds, *, training: bool, step) -> dict[str, tf.Tensor]:
        """L_jet, L_particle of one batch against the distillation targets (replaces the eq. 1 losses).

        Randomness (step index, jet noise, particle noise) comes from the base model's stateless seeds,
        so a resumed stage draws the same numbers.
        """
        jets, particles, mask, onehot = (
            batch["jets"],
            batch["particles"],
            batch["mask"],
            batch["class_onehot"],
        )
        step_index = tf.random.stateless_uniform(
            tf.shape(jets)[:1], seed=seeds[0], minval=0, maxval=self.num_steps, dtype=tf.int32
        )
        t, t_mid, s = student_step_times(step_index, self.num_steps, self.schedule)
        jet_noise = tf.random.stateless_normal(tf.shape(jets), seed=seeds[1], dtype=tf.float32)
        particle_noise = tf.random.stateless_normal(tf.shape(particles), seed=seeds[2], dtype=tf.float32)

        # z_t comes from the data, as in base training (and Salimans & Ho): the student learns the teacher's
        # two-step map on the latents it will meet, not on latents of the teacher's own trajectories.
        teacher = self.get_teacher()
        z_jets = diffuse(jets, t, jet_noise, self.schedule)
        v_jets, _ = distillation_targets(
            teacher.jet_denoiser, z_jets, t, t_mid, s, self.schedule, cond={"class_onehot": onehot}
        )
        z_particles = diffuse(particles, t, particle_noise, self.schedule, mask=mask)
        v_particles, _ = distillation_targets(
            teacher.particle_denoiser,
            z_particles,
            t,
            t_mid,
            s,
            self.schedule,
            mask,
            cond={"jets": jets, "class_onehot": onehot, "mask": mask},
        )

        jet_net, particle_net = self.networks(training)
        v_hat_jets = jet_net({"z": z_jets, "t": t, "class_onehot": onehot}, training=training)
        v_hat_particles = particle_net(
            {"z": z_particles, "t": t, "jets": jets, "class_onehot": onehot, "mask": mask}, training=training
        )
        loss_jet = masked_mse(v_jets, v_hat_jets)
        loss_particle = masked_mse(v_particles, v_hat_particles, mask)
        return {"loss": loss_jet + loss_particle, "loss_jet": loss_jet, "loss_particle": loss_particle}
