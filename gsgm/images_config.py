"""Jet-image diffusion configuration (score-based VE SDE and consistency models): JSON validated on load.

Same rules and machinery as :mod:`gsgm.config`: every key is required, no other key is allowed, and an
error (:class:`gsgm.config.ConfigError`) names the file and the dotted key. A file looks like::

    {
      "name": "...", "description": "...",
      "data":  {"num_particles": 30, "classes": ["g", "q", "t", "w", "z"], "num_pixels": 25, "max_r": 0.4},
      "noise": {"sigma_min": null, "sigma_max": null, "sigma_data": null},
      "score": {"unet": {...}, "parameterization": "noise", "ema_decay": 0.9999, "sampler": "pc",
                "num_steps": 15, "snr": 0.16, "corrector_steps": 1},
      "consistency": {"unet": {...}, "ema_decay": 0.999, "distance": "l2", "rho": 7.0,
                      "initial_discretization": 2, "final_discretization": 150, "initial_target_ema": 0.9,
                      "distill_discretization": 18, "distill_target_ema": 0.95, "distill_solver": "heun",
                      "num_steps": 1},
      "training": {"batch_size": 64, "learning_rate": 0.0001, "optimizer": "adam", "epochs": 250,
                   "early_stopping_patience": 50, "valid_fraction": 0.2, "grad_clip_norm": null,
                   "seed": 1234},
      "sampling": {"pixel_threshold": null}
    }

``score`` or ``consistency`` may be ``null`` (at least one must be given): ``scripts/train_images.py
--model score|consistency`` uses that section, and the run's saved config keeps only it, so a run
directory says by itself which model it holds. A ``null`` noise level or threshold is chosen from the
training images when a run starts (see :func:`resolve_from_data`) and the number is written into the
run's config.json.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from gsgm.config import (
    OPTIMIZERS,
    ConfigError,
    _build,
    _Invalid,
    _positive,
    _unit_interval,
    check_particles_and_classes,
    read_config_json,
)
from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.utils.atomic import write_json_atomic

__all__ = [
    "ConsistencyConfig",
    "ImageDataConfig",
    "ImagesConfig",
    "ImageTrainingConfig",
    "NoiseConfig",
    "ScoreConfig",
    "UNetConfig",
    "images_config_from_dict",
    "images_config_to_dict",
    "load_images_config",
    "resolve_from_data",
    "save_images_config",
    "validate_images_config",
]

MODELS = ("score", "consistency")
ACTIVATIONS = ("swish", "gelu")
TIME_EMBEDDINGS = ("fourier", "sinusoidal")
SAMPLERS = ("pc", "ode")
PARAMETERIZATIONS = ("noise", "denoiser")
DISTANCES = ("l2", "l1")
SOLVERS = ("euler", "heun")


@dataclass
class ImageDataConfig:
    """Which jets and which image geometry.

    num_particles: JetNet variant the images are made from (30 or 150 particle slots).
    classes: jet classes to train on (the class label is an index into JET_CLASSES, 5 wide).
    num_pixels: image size N (paper: 25).
    max_r: the image covers eta_rel, phi_rel in [-max_r, max_r] (paper: 0.4).
    """

    num_particles: int = 30
    classes: list[str] = field(default_factory=lambda: list(JET_CLASSES))
    num_pixels: int = 25
    max_r: float = 0.4

    def check(self) -> None:
        check_particles_and_classes(self)
        _positive(self, "num_pixels", "max_r")


@dataclass
class NoiseConfig:
    """Noise range shared by both models (the consistency model's [eps, T] is [sigma_min, sigma_max]).

    sigma_min: smallest noise level (pt_rel units); null: the 5 % quantile of the non-zero training
        pixel intensities, so that all but the softest 5 % of the particles stand out of the last noise
        level (1.4e-3 on the shipped sample).
    sigma_max: largest noise level; null: the largest Euclidean distance between two training images
        (Song & Ermon 2020; about 1.3 on the shipped sample).
    sigma_data: data scale of the preconditioning (network input c_in, consistency c_skip/c_out);
        null: the standard deviation of all training pixels (0.024 on the shipped sample).
    """

    sigma_min: float | None = None
    sigma_max: float | None = None
    sigma_data: float | None = None

    def check(self) -> None:
        for name in ("sigma_min", "sigma_max", "sigma_data"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise _Invalid(name, f"must be > 0 or null, got {value!r}")
        if self.sigma_min is not None and self.sigma_max is not None and self.sigma_min >= self.sigma_max:
            raise _Invalid("sigma_max", f"must be > sigma_min={self.sigma_min}, got {self.sigma_max}")


@dataclass
class UNetConfig:
    """Class- and noise-level-conditional U-Net (paper Table I).

    base_channels: channels of the first stage (paper: 128).
    channel_multipliers: one stage per entry, channels = base_channels * multiplier; the resolution
        halves between stages (paper: [1, 2, 2, 2], i.e. 32 -> 16 -> 8 -> 4 after padding 25 -> 32).
    num_res_blocks: residual blocks per stage (paper: 2).
    norm_groups: groups of every GroupNormalization (paper: 32); must divide every stage's channels.
    dropout: dropout rate inside the residual blocks (paper: 0.1).
    activation: "swish" (score model) or "gelu" (consistency model).
    time_embedding: "fourier" (random Gaussian frequencies, score model) or "sinusoidal"
        (transformer-style, consistency model) embedding of log(sigma).
    time_features: width of that embedding before the MLP (even); the MLP is 4 * base_channels wide.
    time_embedding_scale: "fourier": standard deviation of the frequencies in cycles per unit of
        log(sigma) (Score SDE: 16); "sinusoidal": factor applied to log(sigma) before the embedding with
        periods up to 10,000 (consistency models / EDM: 250, i.e. 1000 * log(sigma) / 4).
    """

    base_channels: int = 128
    channel_multipliers: list[int] = field(default_factory=lambda: [1, 2, 2, 2])
    num_res_blocks: int = 2
    norm_groups: int = 32
    dropout: float = 0.1
    activation: str = "swish"
    time_embedding: str = "fourier"
    time_features: int = 128
    time_embedding_scale: float = 16.0

    def check(self) -> None:
        _positive(self, "base_channels", "num_res_blocks", "norm_groups", "time_features")
        _positive(self, "time_embedding_scale")
        if not self.channel_multipliers or any(m <= 0 for m in self.channel_multipliers):
            raise _Invalid(
                "channel_multipliers", f"must be positive integers, got {self.channel_multipliers}"
            )
        for m in self.channel_multipliers:
            if (self.base_channels * m) % self.norm_groups:
                raise _Invalid(
                    "norm_groups",
                    f"must divide every stage's channels (base_channels * multiplier), "
                    f"{self.base_channels * m} is not divisible by {self.norm_groups}",
                )
        if self.base_channels % self.norm_groups:
            raise _Invalid("norm_groups", f"must divide base_channels={self.base_channels}")
        _unit_interval(self, "dropout")
        if self.activation not in ACTIVATIONS:
            raise _Invalid("activation", f"must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.time_embedding not in TIME_EMBEDDINGS:
            raise _Invalid("time_embedding", f"must be one of {TIME_EMBEDDINGS}, got {self.time_embedding!r}")
        if self.time_features % 2:
            raise _Invalid("time_features", f"must be even (sin and cos halves), got {self.time_features}")


@dataclass
class ScoreConfig:
    """Score-based model with the VE SDE (paper Alg. 1).

    unet: the score network.
    parameterization: "noise" (Score SDE: the network predicts the noise, s = -F / sigma) or
        "denoiser" (Karras et al. preconditioning, s = (D - x) / sigma^2); see
        :class:`gsgm.diffusion.denoisers.PreconditionedDenoiser` for why "noise" struggles at large sigma
        on sparse jet images.
    ema_decay: decay of the weight average used for validation and sampling (paper: 0.9999).
    sampler: "pc" (predictor-corrector, Alg. 1) or "ode" (probability-flow ODE, Heun).
    num_steps: noise levels of the sampler (paper: 15).
    snr: signal-to-noise ratio r of the Langevin corrector (Score SDE, VE: 0.16).
    corrector_steps: Langevin steps M per noise level (Score SDE: 1); 0 gives the predictor alone.
    """

    unet: UNetConfig
    parameterization: str = "noise"
    ema_decay: float = 0.9999
    sampler: str = "pc"
    num_steps: int = 15
    snr: float = 0.16
    corrector_steps: int = 1

    def check(self) -> None:
        if self.parameterization not in PARAMETERIZATIONS:
            raise _Invalid(
                "parameterization", f"must be one of {PARAMETERIZATIONS}, got {self.parameterization!r}"
            )
        _unit_interval(self, "ema_decay")
        if self.sampler not in SAMPLERS:
            raise _Invalid("sampler", f"must be one of {SAMPLERS}, got {self.sampler!r}")
        _positive(self, "num_steps", "snr")
        if self.corrector_steps < 0:
            raise _Invalid("corrector_steps", f"must be >= 0, got {self.corrector_steps}")


@dataclass
class ConsistencyConfig:
    """Consistency model (paper Alg. 2 and 3; Song et al. 2023).

    unet: the network F of f(x, sigma) = c_skip x + c_out F(c_in x, sigma).
    ema_decay: decay of the weight average used for validation and sampling (paper: 0.999); the
        target network of the consistency loss has its own schedule, below.
    distance: "l2" (mean squared difference) or "l1" (mean absolute difference).
    rho: exponent of the Karras discretisation (7).
    initial_discretization, final_discretization: s0 and s1 of the consistency-training schedule
        N(k) = ceil(sqrt(k / K ((s1 + 1)^2 - s0^2) + s0^2) - 1) + 1 (Song et al., CIFAR-10: 2, 150).
    initial_target_ema: mu0 of the target decay mu(k) = exp(s0 log(mu0) / N(k)) (CIFAR-10: 0.9).
    distill_discretization: fixed N of consistency distillation (CIFAR-10: 18).
    distill_target_ema: fixed target decay of consistency distillation (CIFAR-10: 0.95).
    distill_solver: "euler" or "heun" step of the teacher's probability-flow ODE.
    num_steps: default number of sampling steps (paper: 1 or 15).
    """

    unet: UNetConfig
    ema_decay: float = 0.999
    distance: str = "l2"
    rho: float = 7.0
    initial_discretization: int = 2
    final_discretization: int = 150
    initial_target_ema: float = 0.9
    distill_discretization: int = 18
    distill_target_ema: float = 0.95
    distill_solver: str = "heun"
    num_steps: int = 1

    def check(self) -> None:
        _unit_interval(self, "ema_decay")
        if self.distance not in DISTANCES:
            raise _Invalid("distance", f"must be one of {DISTANCES}, got {self.distance!r}")
        _positive(self, "rho", "num_steps")
        if self.initial_discretization < 2:
            raise _Invalid("initial_discretization", f"must be >= 2, got {self.initial_discretization}")
        if self.final_discretization < self.initial_discretization:
            raise _Invalid(
                "final_discretization",
                f"must be >= initial_discretization={self.initial_discretization}, "
                f"got {self.final_discretization}",
            )
        if self.distill_discretization < 2:
            raise _Invalid("distill_discretization", f"must be >= 2, got {self.distill_discretization}")
        _unit_interval(self, "initial_target_ema")
        _unit_interval(self, "distill_target_ema")
        if self.distill_solver not in SOLVERS:
            raise _Invalid("distill_solver", f"must be one of {SOLVERS}, got {self.distill_solver!r}")


@dataclass
class ImageTrainingConfig:
    """Optimisation (paper: Adam, constant learning rate 1e-4, batch 64, 250 epochs).

    batch_size, learning_rate (constant), optimizer ("adam", "adamax", "adamw"), epochs,
    early_stopping_patience (epochs without a lower validation loss), valid_fraction (held out of the
    training split for the validation loss), grad_clip_norm (per-tensor clipping; null disables),
    seed (weight initialisation, data order, training noise).
    """

    batch_size: int = 64
    learning_rate: float = 1e-4
    optimizer: str = "adam"
    epochs: int = 250
    early_stopping_patience: int = 50
    valid_fraction: float = 0.2
    grad_clip_norm: float | None = None
    seed: int = 1234

    def check(self) -> None:
        _positive(self, "batch_size", "learning_rate", "epochs", "early_stopping_patience")
        if self.optimizer not in OPTIMIZERS:
            raise _Invalid("optimizer", f"must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _unit_interval(self, "valid_fraction", closed_low=False)
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise _Invalid("grad_clip_norm", f"must be > 0 or null, got {self.grad_clip_norm!r}")
        if self.seed < 0:
            raise _Invalid("seed", f"must be >= 0, got {self.seed}")


@dataclass
class ImageSamplingConfig:
    """pixel_threshold: generated pixels at or below it are set to 0 (images are sparse; a generated
    image carries noise of order sigma_min in every pixel); null: sigma_min."""

    pixel_threshold: float | None = None

    def check(self) -> None:
        if self.pixel_threshold is not None and self.pixel_threshold < 0:
            raise _Invalid("pixel_threshold", f"must be >= 0 or null, got {self.pixel_threshold!r}")


@dataclass
class ImagesConfig:
    """A jet-image diffusion experiment; ``score`` and/or ``consistency`` hold the model settings."""

    name: str
    description: str
    data: ImageDataConfig
    noise: NoiseConfig
    score: ScoreConfig | None
    consistency: ConsistencyConfig | None
    training: ImageTrainingConfig
    sampling: ImageSamplingConfig

    def check(self) -> None:
        if not self.name:
            raise _Invalid("name", "must not be empty")

    @property
    def model(self) -> str:
        """ "score" or "consistency" for a run's config (exactly one section); error if ambiguous."""
        present = [m for m in MODELS if getattr(self, m) is not None]
        if len(present) != 1:
            raise ValueError(f"config {self.name!r} has sections {present}; a run's config has exactly one")
        return present[0]

    def for_model(self, model: str, source: str = "<config>") -> ImagesConfig:
        """Deep copy that keeps only the ``model`` section (what a run directory stores)."""
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
        if getattr(self, model) is None:
            raise ConfigError(
                source, model, f"is null; --model {model} needs a config with a {model} section"
            )
        other = "consistency" if model == "score" else "score"
        return dataclasses.replace(copy.deepcopy(self), **{other: None})


_SECTIONS = {"score": ScoreConfig, "consistency": ConsistencyConfig}


def images_config_from_dict(data: dict[str, Any], source: str = "<dict>") -> ImagesConfig:
    """Validate a parsed config and return it; ``source`` names it in error messages."""
    if not isinstance(data, dict):
        raise ConfigError(source, "<top level>", f"expected a JSON object, got {json.dumps(data)}")
    # The nullable model sections are built on their own: through the generic ``X | None`` path an
    # error deep inside (say score.unet.dropout) would be reported as "score: expected ... or null".
    sections = {
        name: _build(cls, data[name], name, source)
        for name, cls in _SECTIONS.items()
        if data.get(name) is not None
    }
    cfg = _build(ImagesConfig, {k: (None if k in sections else v) for k, v in data.items()}, "", source)
    cfg = dataclasses.replace(cfg, **sections)
    if cfg.score is None and cfg.consistency is None:
        raise ConfigError(
            source, "score", "score and consistency are both null; give at least one model section"
        )
    return cfg


def load_images_config(path: str | os.PathLike) -> ImagesConfig:
    """Read and validate the JSON config at ``path`` (errors name the file and the dotted key)."""
    data, source = read_config_json(path)
    return images_config_from_dict(data, source)


def images_config_to_dict(cfg: ImagesConfig) -> dict[str, Any]:
    """Plain JSON-serialisable dict of ``cfg``."""
    return dataclasses.asdict(cfg)


def validate_images_config(cfg: ImagesConfig, source: str = "<config>") -> ImagesConfig:
    """Re-check a (possibly edited) config; returns a validated copy."""
    return images_config_from_dict(images_config_to_dict(cfg), source)


def save_images_config(cfg: ImagesConfig, path: str | os.PathLike) -> None:
    """Validate ``cfg`` and write it atomically as JSON (an invalid config is never written)."""
    write_json_atomic(path, images_config_to_dict(validate_images_config(cfg, str(path))))


def resolve_from_data(cfg: ImagesConfig, stats: dict[str, float]) -> ImagesConfig:
    """Copy of ``cfg`` with every null noise level and the null pixel threshold chosen from the data.

    ``stats`` comes from :func:`gsgm.data.images.image_statistics` on the training images; the rules
    are documented on :class:`NoiseConfig` and :class:`ImageSamplingConfig`. Explicit values are kept.
    """
    noise = dataclasses.replace(
        cfg.noise,
        sigma_min=cfg.noise.sigma_min if cfg.noise.sigma_min is not None else stats["nonzero_q05"],
        sigma_max=cfg.noise.sigma_max if cfg.noise.sigma_max is not None else stats["max_pairwise_distance"],
        sigma_data=cfg.noise.sigma_data if cfg.noise.sigma_data is not None else stats["pixel_std"],
    )
    threshold = cfg.sampling.pixel_threshold
    sampling = dataclasses.replace(
        cfg.sampling, pixel_threshold=noise.sigma_min if threshold is None else threshold
    )
    return validate_images_config(dataclasses.replace(cfg, noise=noise, sampling=sampling))
