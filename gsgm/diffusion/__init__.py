"""gsgm.diffusion: noise schedule, parameterisations, losses and samplers shared by all models.

Everything here is a plain function over tensors ``[B, ...]`` (batch first, any rank); samplers take a
denoiser callable ``denoiser(z, t, **extra_args) -> v_hat`` and know nothing about networks.
"""

from gsgm.diffusion.ddim import Denoiser, ddim_sample, ddim_step
from gsgm.diffusion.losses import diffuse, v_loss
from gsgm.diffusion.parameterization import (
    eps_from_v,
    eps_from_x,
    expand_like,
    score_from_v,
    v_from_x,
    v_from_x_eps,
    x_from_eps,
    x_from_v,
)
from gsgm.diffusion.schedule import (
    LOGSNR_MAX,
    LOGSNR_MIN,
    cosine_alpha_sigma,
    logsnr,
    t_from_logsnr,
    time_grid,
)

__all__ = [
    "LOGSNR_MAX",
    "LOGSNR_MIN",
    "Denoiser",
    "cosine_alpha_sigma",
    "ddim_sample",
    "ddim_step",
    "diffuse",
    "eps_from_v",
    "eps_from_x",
    "expand_like",
    "logsnr",
    "score_from_v",
    "t_from_logsnr",
    "time_grid",
    "v_from_x",
    "v_from_x_eps",
    "v_loss",
    "x_from_eps",
    "x_from_v",
]
