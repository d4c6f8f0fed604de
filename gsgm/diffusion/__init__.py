"""gsgm.diffusion: noise schedules, denoiser adapters, losses and samplers shared by all model families.

Tensors in, tensors out: nothing here imports networks, training code, data or files.

* :mod:`.schedules`: ``VPCosineSchedule``, ``VEGeometricSchedule``, ``KarrasSchedule``,
  ``DiscreteCosineSchedule`` (objects with ``alpha_sigma(t)``, ``sampling_times(N)``,
  ``training_times(shape, seed)``, ``posterior(t, s)``).
* :mod:`.denoisers`: the one convention ``denoiser(z, t, **cond) -> x0_hat`` (``t`` = the schedule's
  time) and the adapters ``VDenoiser``, ``EpsDenoiser``, ``ScoreDenoiser``, ``PreconditionedDenoiser``,
  ``ConsistencyDenoiser``.
* Samplers ``(denoiser, x_T, schedule, num_steps, **options)``: :func:`.ddim.ddim_sample`,
  :mod:`.samplers` (``sample_ancestral``, ``sample_pc``, ``sample_probability_flow``),
  :func:`.consistency.sample_consistency`; :mod:`.point_cloud` around DDIM.
* Losses: :mod:`.losses` (``diffuse``, ``v_loss``, ``eps_loss``, ``dsm_loss``), :mod:`.vlb`
  (``hybrid_loss``), :func:`.consistency.consistency_loss`, :mod:`.distillation`.
* :mod:`.qspace` (Langevin diffusion in RAMBO's q-space: schedule, exact drift, forward and reverse
  processes), :mod:`.flow_matching` (straight-path flow matching, ODE sampler, fitted Gaussian prior),
  :mod:`.score_matching` (implicit score matching with the exact divergence).
"""

from gsgm.diffusion.ddim import SOLVERS, ddim_sample, ddim_step, multistep_coefficients
from gsgm.diffusion.denoisers import (
    ConsistencyDenoiser,
    Denoiser,
    EpsDenoiser,
    PreconditionedDenoiser,
    Prediction,
    ScoreDenoiser,
    VDenoiser,
    predict,
)
from gsgm.diffusion.losses import (
    diffuse,
    diffuse_with_v_target,
    dsm_loss,
    eps_loss,
    masked_mse,
    v_loss,
    v_target,
)
from gsgm.diffusion.parameterization import (
    eps_from_v,
    eps_from_x,
    score_from_v,
    v_from_x,
    v_from_x_eps,
    x_from_eps,
    x_from_v,
)
from gsgm.diffusion.schedules import (
    LOGSNR_MAX,
    LOGSNR_MIN,
    DiscreteCosineSchedule,
    KarrasSchedule,
    Schedule,
    VEGeometricSchedule,
    VPCosineSchedule,
)
from gsgm.diffusion.tensors import as_float_tensor, expand_like

__all__ = [
    "LOGSNR_MAX",
    "LOGSNR_MIN",
    "ConsistencyDenoiser",
    "Denoiser",
    "DiscreteCosineSchedule",
    "EpsDenoiser",
    "KarrasSchedule",
    "PreconditionedDenoiser",
    "Prediction",
    "Schedule",
    "ScoreDenoiser",
    "VDenoiser",
    "VEGeometricSchedule",
    "VPCosineSchedule",
    "as_float_tensor",
    "SOLVERS",
    "ddim_sample",
    "ddim_step",
    "multistep_coefficients",
    "diffuse",
    "diffuse_with_v_target",
    "dsm_loss",
    "eps_from_v",
    "eps_from_x",
    "eps_loss",
    "expand_like",
    "masked_mse",
    "predict",
    "score_from_v",
    "v_from_x",
    "v_from_x_eps",
    "v_loss",
    "v_target",
    "x_from_eps",
    "x_from_v",
]
