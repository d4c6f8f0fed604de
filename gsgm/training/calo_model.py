"""Training models of the calorimeter family: EDM point + shower-flow model, and its consistency student.

:class:`CaloModel` trains two EDM denoisers together (loss = L_points + L_flow, Karras et al. 2022):
the point model over the standardised hits (x, y, z, ln E) of a shower, conditioned on the incident
energy and the number of hits, and the shower-flow model over the per-shower features (ln N, ln E_vis /
E_inc, per-layer hit and energy fractions), conditioned on the incident energy.

:class:`CaloConsistencyModel` is consistency distillation (Song et al. 2023, Alg. 2 with a teacher) of
the point model: the student ``f(x, sigma) = c_skip x + c_out F(c_in x, ln sigma)`` learns to map a
point of the teacher's probability-flow ODE at level ``t_(n+1)`` to where one Heun step of the teacher
ends at ``t_n``, seen through the target network (an EMA of the student). It samples in one step. The
shower-flow model is kept from the teacher.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from gsgm.diffusion.consistency import consistency_loss
from gsgm.diffusion.denoisers import ConsistencyDenoiser, PreconditionedDenoiser
from gsgm.diffusion.edm import edm_loss, edm_training_sigmas
from gsgm.diffusion.schedules import KarrasSchedule
from gsgm.training.base_model import DiffusionTrainingModel

__all__ = ["CaloConsistencyModel", "CaloModel", "point_network_call"]


def point_network_call(net: keras.Model, training: bool = False):
    """``(z_in [B, P, 4], ln sigma [B], *, cond [B, 2], mask [B, P]) -> F`` for a point network."""

    def call(z_in, log_sigma, *, cond, mask):
        batch = tf.shape(z_in)[0]
        inputs = {
            "z": z_in,
            "t": tf.reshape(log_sigma / 4.0, [-1, 1]),
            "jets": cond,
            "class_onehot": tf.ones([batch, 1], z_in.dtype),
            "mask": tf.expand_dims(tf.cast(mask, z_in.dtype), -1),
        }
        return net(inputs, training=training)

    return call


def flow_network_call(net: keras.Model, training: bool = False):
    """``(z_in [B, F], ln sigma [B], *, energy [B]) -> F`` for the shower-flow network."""

    def call(z_in, log_sigma, *, energy):
        inputs = {"z": z_in, "t": tf.reshape(log_sigma / 4.0, [-1, 1]), "energy": tf.reshape(energy, [-1, 1])}
        return net(inputs, training=training)

    return call


class CaloModel(DiffusionTrainingModel):
    """EDM point and shower-flow models; ``point_denoiser`` / ``flow_denoiser`` use the EMA networks.

    Batches: {"points" [B, P, 4], "mask" [B, P], "cond" [B, 2], "flow" [B, F], "energy" [B]}.
    """

    def __init__(self, point_net: keras.Model, flow_net: keras.Model, diffusion, ema_decay: float, seed: int):
        super().__init__(
            ema_decay=ema_decay, seed=seed, metric_names=("loss", "point_loss", "flow_loss"), num_seeds=4
        )
        self.diffusion = diffusion
        self.schedule = KarrasSchedule(diffusion.sigma_min, diffusion.sigma_max, diffusion.rho)
        self.point_net, self.flow_net = point_net, flow_net
        self.ema_point_net = keras.models.clone_model(point_net)
        self.ema_flow_net = keras.models.clone_model(flow_net)
        self.add_ema("point_net", "ema_point_net")
        self.add_ema("flow_net", "ema_flow_net")
        self.point_denoiser = self._denoiser(self.ema_point_net, point_network_call)
        self.flow_denoiser = self._denoiser(self.ema_flow_net, flow_network_call)

    def _denoiser(self, net, wrap, training: bool = False) -> PreconditionedDenoiser:
        return PreconditionedDenoiser(wrap(net, training), self.diffusion.sigma_data, kind="denoiser")

    def compute_losses(self, batch, seeds, *, training: bool, step) -> dict[str, tf.Tensor]:
        points, mask = batch["points"], batch["mask"]
        d = self.diffusion
        batch_size = tf.shape(points)[:1]
        point_net = self.point_net if training else self.ema_point_net
        flow_net = self.flow_net if training else self.ema_flow_net
        point_loss = edm_loss(
            self._denoiser(point_net, point_network_call, training),
            points,
            edm_training_sigmas(batch_size, seeds[0], d.p_mean, d.p_std),
            tf.random.stateless_normal(tf.shape(points), seed=seeds[1]),
            d.sigma_data,
            mask=mask,
            cond={"cond": batch["cond"], "mask": mask},
        )
        flow = batch["flow"]
        flow_loss = edm_loss(
            self._denoiser(flow_net, flow_network_call, training),
            flow,
            edm_training_sigmas(batch_size, seeds[2], d.p_mean, d.p_std),
            tf.random.stateless_normal(tf.shape(flow), seed=seeds[3]),
            d.sigma_data,
            cond={"energy": batch["energy"]},
        )
        return {"loss": point_loss + flow_loss, "point_loss": point_loss, "flow_loss": flow_loss}


class CaloConsistencyModel(DiffusionTrainingModel):
    """Consistency distillation of a point denoiser (the teacher) into a one-step student.

    Args:
        net: the student's point network (initialised by the caller, e.g. with the teacher's EMA weights).
        teacher_denoiser: ``(z, sigma [B], cond=..., mask=...) -> x0_hat`` of the trained model.
        diffusion: the teacher's noise levels (sigma_min, sigma_max, rho, sigma_data).
        num_points: N of the Karras discretisation the student is trained on.
        target_ema: EMA decay of the target network (also the network sampled from).
        solver: the teacher's ODE step, "heun" or "euler".
        network_call: wraps a network into ``(z_in, ln sigma, **cond) -> F`` (default: the point network's).
    """

    def __init__(self, net: keras.Model, teacher_denoiser, diffusion, *, num_points: int, target_ema: float,
                 solver: str, seed: int, network_call=point_network_call):  # fmt: skip
        super().__init__(ema_decay=target_ema, seed=seed, metric_names=("loss",), num_seeds=2)
        self.diffusion, self.num_points, self.solver = diffusion, int(num_points), solver
        self.schedule = KarrasSchedule(diffusion.sigma_min, diffusion.sigma_max, diffusion.rho)
        self.net = net
        self.ema_net = keras.models.clone_model(net)
        self.add_ema("net", "ema_net")
        self._network_call = network_call
        self._teacher = [teacher_denoiser]  # a list: Keras must not track (and save) the teacher
        self.point_denoiser = self.student(self.ema_net)

    def student(self, net: keras.Model, training: bool = False) -> ConsistencyDenoiser:
        return ConsistencyDenoiser(
            self._network_call(net, training), self.diffusion.sigma_min, self.diffusion.sigma_data
        )

    def compute_losses(self, batch, seeds, *, training: bool, step) -> dict[str, tf.Tensor]:
        x = batch["points"]
        cond = {"cond": batch["cond"], "mask": batch["mask"]} if "mask" in batch else {"cond": batch["cond"]}
        index = tf.random.stateless_uniform(
            tf.shape(x)[:1], seed=seeds[0], maxval=self.num_points - 1, dtype=tf.int32
        )
        noise = tf.random.stateless_normal(tf.shape(x), seed=seeds[1])
        if "mask" in batch:
            noise = noise * tf.expand_dims(tf.cast(batch["mask"], x.dtype), -1)
        loss = consistency_loss(
            self.student(self.net if training else self.ema_net, training),
            self.student(self.ema_net),
            x,
            index,
            self.num_points,
            noise,
            self.schedule,
            teacher=self._teacher[0],
            solver=self.solver,
            cond=cond,
        )
        return {"loss": loss}
