"""Electron-proton DIS image configuration (family ``"dis"``: learned-variance DDPM on event images).

Same rules as every gsgm config (:mod:`gsgm.config.base`); a file looks like::

    {
      "family": "dis", "name": "...", "description": "...",
      "data": {"num_pixels": 64, "max_events": null,
               "rescaling": {"z1": 0.1, "z2": 0.8, "c1": 5.0, "c2": 1e-05, "alpha": 15.0, "beta": 0.45,
                             "z_prime_min": -0.76, "z_prime_max": 0.86}},
      "unet": {<UNetConfig keys>, "padding": "circular_phi", "attention_resolutions": [16],
               "attention_heads": 4},
      "diffusion": {"num_steps": 500, "vlb_weight": 0.001, "importance_sampling": true,
                    "importance_history": 10, "importance_uniform": 0.5, "ema_decay": 0.9999},
      "training": {"batch_size": 8, "learning_rate": 0.0001, "optimizer": "adamw", "epochs": 30,
                   "early_stopping_patience": 30, "valid_fraction": 0.1, "grad_clip_norm": null,
                   "seed": 1234},
      "sampling": {"sampler": "ancestral", "num_steps": 500, "clip_x0": true}
    }

The data file (``gsgm train --data``) is a DIS event file (:mod:`gsgm.data.dis_format`) or ``builtin``.
"""

from __future__ import annotations

import os
import typing
from typing import ClassVar, Literal

from pydantic import Field

from gsgm.config.base import (
    Fraction,
    PositiveFloat,
    PositiveInt,
    Section,
    invalid,
    read_config_json,
    validate_section,
)
from gsgm.config.fpcd import SamplingPrecision
from gsgm.config.jet_images import UNetConfig
from gsgm.config.registry import config_from_any_dict, register_config_family, save_any_config
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
    "FAMILY",
    "DisConfig",
    "DisDataConfig",
    "DisDiffusionConfig",
    "DisSamplingConfig",
    "DisTrainingConfig",
    "DisUNetConfig",
    "RescalingConfig",
    "load_dis_config",
    "save_dis_config",
]

FAMILY = "dis"
Padding = Literal["same", "circular_phi"]
DisSampler = Literal["ancestral", "ddim"]
DIS_SAMPLERS: tuple[str, ...] = typing.get_args(DisSampler)


class RescalingConfig(Section):
    """Parameters of the z rescaling (paper eqs. 13-17, :class:`gsgm.data.dis_images.ZRescaling`).

    z1 < z2 in (0, 1): where L and E meet the line y = z; c1 > 0: growth of the exponential part;
    c2 > 0: offset of the logarithm; alpha, beta: slope and centre of the sigmoid; z_prime_min,
    z_prime_max: where z = 0+ and z = 1 land (paper: -0.76, 0.86; empty pixels are -1).
    """

    z1: PositiveFloat = 0.1
    z2: PositiveFloat = 0.8
    c1: PositiveFloat = 5.0
    c2: PositiveFloat = 1e-5
    alpha: PositiveFloat = 15.0
    beta: float = 0.45
    z_prime_min: float = -0.76
    z_prime_max: float = 0.86

    def check(self) -> None:
        if not self.z1 < self.z2 < 1:
            raise invalid("z2", f"need z1 < z2 < 1, got z1={self.z1}, z2={self.z2}")
        if not -1 < self.z_prime_min < self.z_prime_max <= 1:
            raise invalid("z_prime_max", "need -1 < z_prime_min < z_prime_max <= 1")


class DisDataConfig(Section):
    """num_pixels: image size n (paper 64; 16 and 32 show the pixelation); max_events: use at most
    this many events of the file (null: all); rescaling: the z map."""

    num_pixels: PositiveInt = 64
    max_events: PositiveInt | None = None
    rescaling: RescalingConfig = Field(default_factory=RescalingConfig)

    def check(self) -> None:
        if self.num_pixels < 4:
            raise invalid("num_pixels", f"must be >= 4, got {self.num_pixels}")


class DisUNetConfig(UNetConfig):
    """The jet-image U-Net's keys plus: padding ("circular_phi": periodic along phi, the paper's;
    "same": zeros), attention_resolutions (pixels; paper: multi-head attention, here 16 for 64 x 64
    as improved DDPM), attention_heads."""

    padding: Padding = "circular_phi"
    attention_resolutions: list[PositiveInt] = Field(default_factory=lambda: [16])
    attention_heads: PositiveInt = 4


class DisDiffusionConfig(Section):
    """Discrete cosine DDPM (Nichol & Dhariwal 2021) with learned variance and the hybrid loss.

    num_steps: T (paper 500); vlb_weight: lambda of L_simple + lambda L_vlb (paper 0.001);
    importance_sampling: draw t with p_t ~ sqrt(E[L_t^2]) once every t has importance_history
    recorded losses (uniform before), mixed with importance_uniform of the uniform distribution;
    both loss terms are weighted by 1 / (T p_t) <= 1 / importance_uniform. Nichol & Dhariwal mix
    in 0.001 for L_vlb alone; with the hybrid loss that lets weights up to 1000 multiply L_simple,
    and a quick run diverged as soon as the sampler warmed up (epoch 4), so gsgm's configs use 0.5
    (weights <= 2; the vlb terms still get half their samples where they are large);
    ema_decay: of the sampling weights.
    """

    num_steps: PositiveInt = 500
    vlb_weight: PositiveFloat = 0.001
    importance_sampling: bool = True
    importance_history: PositiveInt = 10
    importance_uniform: Fraction = 0.5
    ema_decay: EmaDecay = 0.9999


class DisTrainingConfig(Section):
    batch_size: BatchSize = 8
    learning_rate: LearningRate = 1e-4
    optimizer: Optimizer = "adamw"
    epochs: Epochs = 30
    early_stopping_patience: EarlyStoppingPatience = 30
    valid_fraction: ValidFraction = 0.1
    grad_clip_norm: GradClipNorm = None
    seed: Seed = 1234


class DisSamplingConfig(Section):
    """sampler: "ancestral" (learned variance, the paper's) or "ddim" (deterministic, fewer steps);
    num_steps: respaced steps (<= diffusion.num_steps); clip_x0: clip the denoised estimate to [-1, 1]
    at every step (improved DDPM does); precision: the U-Net's compute type, "float32" (default) or
    "bfloat16" / "float16" mixed precision (time features and output layers stay float32);
    jit_compile: XLA-compile each network call. precision and jit_compile are optional in a file
    (older runs: float32 without XLA)."""

    OPTIONAL_KEYS: ClassVar[tuple[str, ...]] = ("precision", "jit_compile")

    sampler: DisSampler = "ancestral"
    num_steps: PositiveInt = 500
    clip_x0: bool = True
    precision: SamplingPrecision = "float32"
    jit_compile: bool = False


class DisConfig(Section):
    name: str
    description: str
    data: DisDataConfig
    unet: DisUNetConfig
    diffusion: DisDiffusionConfig
    training: DisTrainingConfig
    sampling: DisSamplingConfig

    def check(self) -> None:
        if self.sampling.num_steps > self.diffusion.num_steps:
            raise invalid(
                "sampling.num_steps",
                f"must be <= diffusion.num_steps = {self.diffusion.num_steps}, got {self.sampling.num_steps}",
            )
        stages = len(self.unet.channel_multipliers)
        if self.unet.padding == "circular_phi" and self.data.num_pixels % 2 ** (stages - 1):
            raise invalid(
                "data.num_pixels",
                f"must be divisible by 2**(stages - 1) = {2 ** (stages - 1)} for circular padding",
            )


register_config_family(FAMILY, DisConfig)


def load_dis_config(path: str | os.PathLike) -> DisConfig:
    """Read and validate a DIS config file."""
    data, source = read_config_json(path)
    return config_from_any_dict(data, source, family=FAMILY)[1]  # type: ignore[return-value]


def save_dis_config(cfg: DisConfig, path: str | os.PathLike) -> None:
    """Validate ``cfg`` and write it atomically."""
    save_any_config(validate_section(DisConfig, cfg, str(path)), path)
