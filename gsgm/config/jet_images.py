"""Jet-image diffusion configuration (family ``"jet_images"``: VE-SDE score and consistency models).

Same rules as every gsgm config (:mod:`gsgm.config.base`); a file looks like::

    {
      "family": "jet_images", "name": "...", "description": "...",
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

import os
import typing
from typing import Annotated, Any, ClassVar, Literal, cast

from pydantic import Field

from gsgm.config.base import (
    ConfigError,
    Fraction,
    NonNegativeInt,
    PositiveFloat,
    PositiveFloatOrNull,
    PositiveInt,
    Section,
    invalid,
    read_config_json,
    rule,
    section_to_dict,
    validate_section,
)
from gsgm.config.fpcd import SamplingPrecision
from gsgm.config.jetnet import JET_CLASSES, check_particles_and_classes
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
    "MODELS",
    "ConsistencyConfig",
    "ImageDataConfig",
    "ImageSamplingConfig",
    "ImageTrainingConfig",
    "ImagesConfig",
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

FAMILY = "jet_images"
MODELS = ("score", "consistency")
Activation = Literal["swish", "gelu"]
TimeEmbedding = Literal["fourier", "sinusoidal"]
Sampler = Literal["pc", "ode"]
Parameterization = Literal["noise", "denoiser"]
Distance = Literal["l2", "l1"]
Solver = Literal["euler", "heun"]
ACTIVATIONS, TIME_EMBEDDINGS, SAMPLERS = (typing.get_args(t) for t in (Activation, TimeEmbedding, Sampler))
PARAMETERIZATIONS, DISTANCES, SOLVERS = (typing.get_args(t) for t in (Parameterization, Distance, Solver))
NonNegativeFloatOrNull = Annotated[float | None, rule(lambda v: v is None or v >= 0, "must be >= 0 or null")]
# A Karras discretisation needs at least the two end points.
Discretization = Annotated[int, rule(lambda v: v >= 2, "must be >= 2")]


class ImageDataConfig(Section):
    """Which jets and which image geometry.

    num_particles: JetNet variant the images are made from (30 or 150 particle slots).
    classes: jet classes to train on (the class label is an index into JET_CLASSES, 5 wide).
    num_pixels: image size N (paper: 25).
    max_r: the image covers eta_rel, phi_rel in [-max_r, max_r] (paper: 0.4).
    """

    num_particles: int = 30
    classes: list[str] = Field(default_factory=lambda: list(JET_CLASSES))
    num_pixels: PositiveInt = 25
    max_r: PositiveFloat = 0.4

    def check(self) -> None:
        check_particles_and_classes(self)


class NoiseConfig(Section):
    """Noise range shared by both models (the consistency model's [eps, T] is [sigma_min, sigma_max]).

    sigma_min: smallest noise level (pt_rel units); null: the 5 % quantile of the non-zero training
        pixel intensities, so that all but the softest 5 % of the particles stand out of the last noise
        level (1.4e-3 on the shipped sample).
    sigma_max: largest noise level; null: the largest Euclidean distance between two training images
        (Song & Ermon 2020; about 1.3 on the shipped sample).
    sigma_data: data scale of the preconditioning (network input c_in, consistency c_skip/c_out);
        null: the standard deviation of all training pixels (0.024 on the shipped sample).
    """

    sigma_min: PositiveFloatOrNull = None
    sigma_max: PositiveFloatOrNull = None
    sigma_data: PositiveFloatOrNull = None

    def check(self) -> None:
        if self.sigma_min is not None and self.sigma_max is not None and self.sigma_min >= self.sigma_max:
            raise invalid("sigma_max", f"must be > sigma_min={self.sigma_min}, got {self.sigma_max}")


class UNetConfig(Section):
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

    base_channels: PositiveInt = 128
    channel_multipliers: list[PositiveInt] = Field(default_factory=lambda: [1, 2, 2, 2])
    num_res_blocks: PositiveInt = 2
    norm_groups: PositiveInt = 32
    dropout: Fraction = 0.1
    activation: Activation = "swish"
    time_embedding: TimeEmbedding = "fourier"
    time_features: PositiveInt = 128
    time_embedding_scale: PositiveFloat = 16.0

    def check(self) -> None:
        if not self.channel_multipliers:
            raise invalid("channel_multipliers", "must list at least one stage")
        for m in self.channel_multipliers:
            if (self.base_channels * m) % self.norm_groups:
                raise invalid(
                    "norm_groups",
                    f"must divide every stage's channels (base_channels * multiplier), "
                    f"{self.base_channels * m} is not divisible by {self.norm_groups}",
                )
        if self.base_channels % self.norm_groups:
            raise invalid("norm_groups", f"must divide base_channels={self.base_channels}")
        if self.time_features % 2:
            raise invalid("time_features", f"must be even (sin and cos halves), got {self.time_features}")


class ScoreConfig(Section):
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
    parameterization: Parameterization = "noise"
    ema_decay: EmaDecay = 0.9999
    sampler: Sampler = "pc"
    num_steps: PositiveInt = 15
    snr: PositiveFloat = 0.16
    corrector_steps: NonNegativeInt = 1


class ConsistencyConfig(Section):
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
    ema_decay: EmaDecay = 0.999
    distance: Distance = "l2"
    rho: PositiveFloat = 7.0
    initial_discretization: Discretization = 2
    final_discretization: Discretization = 150
    initial_target_ema: Fraction = 0.9
    distill_discretization: Discretization = 18
    distill_target_ema: Fraction = 0.95
    distill_solver: Solver = "heun"
    num_steps: PositiveInt = 1

    def check(self) -> None:
        if self.final_discretization < self.initial_discretization:
            raise invalid(
                "final_discretization",
                f"must be >= initial_discretization={self.initial_discretization}, "
                f"got {self.final_discretization}",
            )


class ImageTrainingConfig(Section):
    """Optimisation (paper: Adam, constant learning rate 1e-4, batch 64, 250 epochs).

    batch_size, learning_rate (constant), optimizer ("adam", "adamax", "adamw"), epochs,
    early_stopping_patience (epochs without a lower validation loss), valid_fraction (held out of the
    training split for the validation loss), grad_clip_norm (per-tensor clipping; null disables),
    seed (weight initialisation, data order, training noise).
    """

    batch_size: BatchSize = 64
    learning_rate: LearningRate = 1e-4
    optimizer: Optimizer = "adam"
    epochs: Epochs = 250
    early_stopping_patience: EarlyStoppingPatience = 50
    valid_fraction: ValidFraction = 0.2
    grad_clip_norm: GradClipNorm = None
    seed: Seed = 1234


class ImageSamplingConfig(Section):
    """How a trained run samples.

    pixel_threshold: generated pixels at or below it are set to 0 (images are sparse; a generated
        image carries noise of order sigma_min in every pixel); null: sigma_min.
    precision: compute type of the U-Net while sampling: "float32" (default), or "bfloat16" /
        "float16" mixed precision (16-bit convolutions and activations on float32 weights; the time
        features, the output convolution and the sampler's state stay float32; accuracy cost in
        BENCHMARKS.md).
    jit_compile: compile each network call with XLA (one compiled function per batch shape).
    precision and jit_compile are optional in a file (older runs have neither: float32 without XLA).
    """

    OPTIONAL_KEYS: ClassVar[tuple[str, ...]] = ("precision", "jit_compile")

    pixel_threshold: NonNegativeFloatOrNull = None
    precision: SamplingPrecision = "float32"
    jit_compile: bool = False


class ImagesConfig(Section):
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
            raise invalid("name", "must not be empty")
        if self.score is None and self.consistency is None:
            raise invalid("score", "score and consistency are both null; give at least one model section")

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
        return self.model_copy(deep=True, update={other: None})


register_config_family(FAMILY, ImagesConfig)


def images_config_from_dict(data: dict[str, Any], source: str = "<dict>") -> ImagesConfig:
    """Validate a parsed config and return it; ``source`` names it in error messages."""
    return cast(ImagesConfig, config_from_any_dict(data, source, family=FAMILY)[1])


def load_images_config(path: str | os.PathLike) -> ImagesConfig:
    """Read and validate the JSON config at ``path`` (errors name the file and the dotted key)."""
    data, source = read_config_json(path)
    return images_config_from_dict(data, source)


def images_config_to_dict(cfg: ImagesConfig) -> dict[str, Any]:
    """Plain JSON-serialisable dict of ``cfg``'s sections."""
    return section_to_dict(cfg)


def validate_images_config(cfg: ImagesConfig, source: str = "<config>") -> ImagesConfig:
    """Re-check a (possibly edited) config; returns a validated copy."""
    return validate_section(ImagesConfig, cfg, source)


def save_images_config(cfg: ImagesConfig, path: str | os.PathLike) -> None:
    """Validate ``cfg`` and write it atomically as JSON (an invalid config is never written)."""
    save_any_config(cfg, path)


def resolve_from_data(cfg: ImagesConfig, stats: dict[str, float]) -> ImagesConfig:
    """Copy of ``cfg`` with every null noise level and the null pixel threshold chosen from the data.

    ``stats`` comes from :func:`gsgm.data.images.image_statistics` on the training images; the rules
    are documented on :class:`NoiseConfig` and :class:`ImageSamplingConfig`. Explicit values are kept.
    """
    chosen = {"sigma_min": "nonzero_q05", "sigma_max": "max_pairwise_distance", "sigma_data": "pixel_std"}
    given = section_to_dict(cfg.noise)
    noise = {k: float(stats[s]) if given[k] is None else given[k] for k, s in chosen.items()}
    threshold = cfg.sampling.pixel_threshold
    data = section_to_dict(cfg)
    data["noise"] = noise
    data["sampling"] = {"pixel_threshold": noise["sigma_min"] if threshold is None else threshold}
    return validate_section(ImagesConfig, data, "<config>")
