"""Training model of the phase-space family: one MLP, four methods (``model.method``).

Every method works on x [B, N, 3] (q-space vectors, or 3-momenta divided by ``scale``):

* ``qspace_diffusion``: with ``loss: noise`` the scalable noise-prediction loss of the q-space
  Langevin process
  (:mod:`gsgm.diffusion.qspace`; appendix A.2 eqs. 25-28), step t uniform in [0, T-1], weighted by
  gamma_t / mean(gamma) for ``time_weighting: step_size`` (late times, where the reverse process
  takes its largest steps, count more); with ``loss: implicit`` implicit score matching (eq. 5, the
  paper's 3-particle loss) at q_t, the network being the score itself; sampled by the reverse process
  eq. 11 from RAMBO's q-law.
* ``qspace_flow`` / ``pspace_flow``: flow matching (eqs. 12-13) from the fitted Gaussian ``prior``.
* ``pspace_diffusion``: v-prediction on the VP cosine schedule, DDIM sampling (the FPCD recipe on
  3-momenta, standing in for the paper's DDPM baseline).

:meth:`PhaseSpaceTrainingModel.generate` returns x; the family maps it to events.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gsgm.diffusion import VDenoiser, VPCosineSchedule, diffuse, v_loss
from gsgm.diffusion.ddim import ddim_sample
from gsgm.diffusion.flow_matching import GaussianPrior, flow_matching_loss, interpolate, sample_flow
from gsgm.diffusion.qspace import LangevinSchedule, forward_step, forward_to, reverse_sample, sample_rambo_q
from gsgm.diffusion.score_matching import implicit_score_matching_terms
from gsgm.training.base_model import DiffusionTrainingModel

__all__ = ["PhaseSpaceTrainingModel"]


class PhaseSpaceTrainingModel(DiffusionTrainingModel):
    """Args: net (x, t) -> [B, N, 3]; ``method``; ``langevin`` schedule (q-space diffusion);
    ``prior`` (flows); ``time_weighting``; EMA decay and seed as :class:`DiffusionTrainingModel`."""

    def __init__(
        self,
        net,
        ema_net,
        *,
        method: str,
        langevin: LangevinSchedule,
        prior: GaussianPrior | None,
        time_weighting: str,
        loss: str = "noise",
        ema_decay: float,
        seed: int,
        **kwargs,
    ):
        super().__init__(ema_decay=ema_decay, seed=seed, metric_names=("loss",), num_seeds=3, **kwargs)
        if method in ("qspace_flow", "pspace_flow") and prior is None:
            raise ValueError(f"method {method!r} needs a fitted Gaussian prior")
        if loss not in ("noise", "implicit"):
            raise ValueError(f"loss must be 'noise' or 'implicit', got {loss!r}")
        self.method = method
        self.loss = loss
        self.langevin = langevin
        self.prior = prior
        self.vp = VPCosineSchedule()
        self.net = net
        self.ema_net = ema_net
        self.add_ema("net", "ema_net")
        gammas = langevin.step_sizes
        weights = gammas / gammas.mean() if time_weighting == "step_size" else np.ones_like(gammas)
        self._time_weights = tf.constant(weights, tf.float32)

    def _call(self, x, t, training: bool):
        net = self.net if training else self.ema_net
        return net({"x": x, "t": t}, training=training)

    def compute_losses(self, batch, seeds, *, training: bool, step) -> dict[str, tf.Tensor]:
        x = batch["x"]
        shape = tf.shape(x)
        if self.method == "qspace_diffusion" and self.loss == "implicit":
            # eq. 5 at q_t, t in [1, T]: the network is the score of p_t at time t / T
            steps = self.langevin.num_steps
            index = tf.random.stateless_uniform(
                shape[:1], seed=seeds[0], minval=1, maxval=steps + 1, dtype=tf.int32
            )
            q_t = forward_to(x, index, seeds[1], self.langevin)
            time = tf.cast(index, tf.float32) / steps
            terms = implicit_score_matching_terms(lambda q: self._call(q, time, training), q_t)
            return {"loss": tf.reduce_mean(tf.gather(self._time_weights, index - 1) * terms)}
        if self.method == "qspace_diffusion":
            steps = self.langevin.num_steps
            index = tf.random.stateless_uniform(shape[:1], seed=seeds[0], maxval=steps, dtype=tf.int32)
            q_t = forward_to(x, index, seeds[1], self.langevin)
            eps = tf.random.stateless_normal(shape, seed=seeds[2])
            q_next = forward_step(q_t, index, eps, self.langevin)
            time = tf.cast(index + 1, tf.float32) / steps
            err = tf.reduce_mean(tf.square(self._call(q_next, time, training) - eps), axis=[1, 2])
            return {"loss": tf.reduce_mean(tf.gather(self._time_weights, index) * err)}
        t = tf.random.stateless_uniform(shape[:1], seed=seeds[0])
        if self.method in ("qspace_flow", "pspace_flow"):
            x0 = self.prior.sample(shape, seeds[1])
            x_t, target = interpolate(x0, x, t)
            return {"loss": flow_matching_loss(self._call(x_t, t, training), target)}
        if self.method == "pspace_diffusion":
            noise = tf.random.stateless_normal(shape, seed=seeds[1])
            z = diffuse(x, t, noise, self.vp)
            return {"loss": v_loss(self._call(z, t, training), x, noise, t, self.vp)}
        raise ValueError(f"unknown method {self.method!r}")

    def generate(
        self, n: int, num_particles: int, *, steps: int, seed: int, ode_method: str = "heun"
    ) -> np.ndarray:
        """n samples x [n, N, 3] (float32) from the EMA network; same seed, same samples."""
        fn = tf.function(lambda x, t: self.ema_net({"x": x, "t": t}, training=False), reduce_retracing=True)
        shape = (n, num_particles, 3)
        if self.method == "qspace_diffusion":
            q_end = sample_rambo_q(shape[:2], tf.constant([seed, 11], tf.int64))
            if self.loss == "implicit":  # a score network: eps = -sqrt(2 gamma_t) s (eq. 26)
                gammas = tf.constant(self.langevin.step_sizes, tf.float32)
                steps_total = self.langevin.num_steps

                def eps_of_score(q, t):
                    index = tf.cast(tf.round(t * steps_total), tf.int32) - 1
                    return -tf.sqrt(2.0 * tf.gather(gammas, index))[:, None, None] * fn(q, t)

                return reverse_sample(eps_of_score, q_end, self.langevin, seed).numpy()
            return reverse_sample(fn, q_end, self.langevin, seed).numpy()
        if self.method in ("qspace_flow", "pspace_flow"):
            x0 = self.prior.sample(shape, tf.constant([seed, 13], tf.int32))
            return sample_flow(fn, x0, steps, ode_method).numpy()
        noise = tf.random.stateless_normal(shape, seed=[seed, 17])
        denoiser = VDenoiser(lambda z, t: fn(z, t), self.vp)
        return np.asarray(ddim_sample(denoiser, noise, self.vp, steps))
