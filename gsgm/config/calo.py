"""Calorimeter-shower point-cloud config (family ``"calo"``): CaloClouds-style diffusion, JSON validated.

A config file holds the family key and exactly the sections of :class:`CaloConfig`::

    {
      "family": "calo", "name": "...", "description": "...",
      "data":         {"dequantize": true, "max_showers": null},
      "embedding":    {"fourier_features": 16, "fourier_scale": 1.0, "time_dims": [32, 64], "cond_dim": 64},
      "point_net":    {"embed_dim": 64, "num_transformer_blocks": 2, "num_heads": 2, "ffn_dim": 128,
                       "output_hidden_dim": 64, "leaky_slope": 0.01, "dropout": 0.0},
      "flow_net":     {"width": 256, "depth": 3},
      "diffusion":    {"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0, "p_mean": -1.2, "p_std": 1.2,
                       "sigma_data": 1.0},
      "training":     {... as every family's, "ema_decay": 0.999},
      "sampling":     {"num_steps": 25, "ddpm_steps": 100, "calibration_showers": 64},
      "distillation": {"num_points": 18, "target_ema": 0.95, "solver": "heun"}
    }

``point_net`` is the FPCD particle network (a permutation-equivariant DeepSets/Transformer set
network) over the points (x, y, z, log E), conditioned on the incident energy and the number of
points; ``flow_net`` is the small MLP of the "shower flow" model that generates the number of points and
the per-layer energies and hit counts. Both are EDM (Karras et al. 2022) denoisers: noise levels from a
log-normal (p_mean, p_std), sampled with Heun's method on the Karras grid (``sampling.num_steps``, the
CaloClouds II sampler) or with ancestral DDPM steps (``sampling.ddpm_steps``, the CaloClouds I sampler);
``distillation`` configures consistency distillation to one step (CaloClouds II (CM)).
"""

from __future__ import annotations

from pydantic import Field

from gsgm.config.base import PositiveFloat, PositiveInt, Section, invalid
from gsgm.config.fpcd import EmbeddingConfig, ParticleNetConfig
from gsgm.config.registry import register_config_family
from gsgm.config.training import (
    BatchSize,
    EarlyStoppingPatience,
    EmaDecay,
    Epochs,
    GradClipNorm,
    LearningRate,
    Optimizer,
    Seed,
    ValidFraction,
)

__all__ = [
    "CALO_FAMILY",
    "CaloConfig",
    "CaloDataConfig",
    "CaloDiffusionConfig",
    "CaloDistillationConfig",
    "CaloFlowNetConfig",
    "CaloSamplingConfig",
    "CaloTrainingConfig",
]

CALO_FAMILY = "calo"


class CaloDataConfig(Section):
    """dequantize: spread each hit uniformly over its cell (x, y) and layer (z) before training, so the
    model learns a density rather than a lattice (seeded by training.seed).
    max_showers: use only the first this many showers of the file (null: all)."""

    dequantize: bool = True
    max_showers: PositiveInt | None = None


class CaloFlowNetConfig(Section):
    """MLP of the shower-flow model: ``depth`` hidden layers of ``width`` units."""

    width: PositiveInt = 256
    depth: PositiveInt = 3


class CaloDiffusionConfig(Section):
    """EDM noise levels: sampling grid [sigma_min, sigma_max] with exponent rho; training sigmas
    log-normal with mean p_mean and std p_std of ln sigma; sigma_data the data scale of the
    preconditioning (the features are standardised, so 1)."""

    sigma_min: PositiveFloat = 0.002
    sigma_max: PositiveFloat = 80.0
    rho: PositiveFloat = 7.0
    p_mean: float = -1.2
    p_std: PositiveFloat = 1.2
    sigma_data: PositiveFloat = 1.0

    def check(self) -> None:
        if not self.sigma_min < self.sigma_max:
            raise invalid("sigma_max", f"must exceed sigma_min={self.sigma_min}, got {self.sigma_max}")


class CaloTrainingConfig(Section):
    """Optimisation of both networks (trained together: loss = L_points + L_flow); fields as FPCD's."""

    batch_size: BatchSize = 64
    learning_rate: LearningRate = 1e-3
    optimizer: Optimizer = "adam"
    epochs: Epochs = 100
    early_stopping_patience: EarlyStoppingPatience = 20
    valid_fraction: ValidFraction = 0.2
    ema_decay: EmaDecay = 0.999
    grad_clip_norm: GradClipNorm = 1.0
    seed: Seed = 1


class CaloSamplingConfig(Section):
    """num_steps: Heun steps of the EDM sampler (CaloClouds II: 25; a distilled stage: 1).
    ddpm_steps: ancestral steps of the DDPM sampler (CaloClouds I: 100).
    calibration_showers: showers generated to calibrate the hit count (0: no calibration)."""

    num_steps: PositiveInt = 25
    ddpm_steps: PositiveInt = 100
    calibration_showers: int = Field(default=64, ge=0)


class CaloDistillationConfig(Section):
    """Consistency distillation (Song et al. 2023): ``num_points`` Karras levels, EMA decay of the
    target network, ODE solver of the teacher step ("heun" or "euler")."""

    num_points: PositiveInt = 18
    target_ema: EmaDecay = 0.95
    solver: str = "heun"

    def check(self) -> None:
        if self.num_points < 2:
            raise invalid("num_points", f"must be >= 2, got {self.num_points}")
        if self.solver not in ("heun", "euler"):
            raise invalid("solver", f"must be 'heun' or 'euler', got {self.solver!r}")


class CaloConfig(Section):
    """A complete calorimeter-shower experiment."""

    name: str
    description: str
    data: CaloDataConfig
    embedding: EmbeddingConfig
    point_net: ParticleNetConfig
    flow_net: CaloFlowNetConfig
    diffusion: CaloDiffusionConfig
    training: CaloTrainingConfig
    sampling: CaloSamplingConfig
    distillation: CaloDistillationConfig

    def check(self) -> None:
        if not self.name:
            raise invalid("name", "must not be empty")


register_config_family(CALO_FAMILY, CaloConfig)
