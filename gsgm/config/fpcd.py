"""FPCD experiment configuration (family ``"fpcd"``): JSON files validated on load.

A config file is a JSON object with the family key and exactly the sections of :class:`FPCDConfig`::

    {
      "family": "fpcd", "name": "...", "description": "...",
      "data":         {"num_particles": 30, "classes": ["g", "q", "t", "w", "z"], "recenter": true,
                       "jet_transform": "quantile"},
      "embedding":    {"fourier_features": 32, "fourier_scale": 16.0, "time_dims": [32, 64], "cond_dim": 64},
      "jet_net":      {"num_blocks": 5, "width": 512, "leaky_slope": 0.01, "dropout": 0.1},
      "particle_net": {"embed_dim": 64, "num_transformer_blocks": 8, "num_heads": 2, "ffn_dim": 128,
                       "output_hidden_dim": 64, "leaky_slope": 0.01, "dropout": 0.1},
      "training":     {"batch_size": 128, "learning_rate": 0.0001, "optimizer": "adamax", "epochs": 250,
                       "early_stopping_patience": 20, "valid_fraction": 0.2, "ema_decay": 0.999,
                       "grad_clip_norm": 1.0, "seed": 1233},
      "sampling":     {"num_steps": 512, "precision": "float32", "jit_compile": false}
    }

The rules (every key required, no other key, strict types, finite floats) are those of
:mod:`gsgm.config.base`; the family key is described in :mod:`gsgm.config.registry`.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal, cast

from pydantic import Field

from gsgm.config.base import (
    Fraction,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Section,
    invalid,
    read_config_json,
    section_to_dict,
    validate_section,
)
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
    "DataConfig",
    "EmbeddingConfig",
    "FPCDConfig",
    "JetNetConfig",
    "ParticleNetConfig",
    "SamplingConfig",
    "TrainingConfig",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
    "validate_config",
]

FAMILY = "fpcd"


class DataConfig(Section):
    """Which JetNet sample to train on.

    num_particles: particle slots per jet (30 or 150, the two JetNet variants).
    classes: jet classes to train on, a subset of ``JET_CLASSES``; the class one-hot is still
        ``len(JET_CLASSES)`` wide so that models trained on subsets stay interchangeable.
    recenter: shift each jet's particles so that the pT-weighted (eta_rel, phi_rel) centroid is at 0
        (the released code does this before standardising).
    jet_transform: how the jet network's target (pt, eta, mass, multiplicity) is normalised per class:
        "quantile" (default) maps each feature through its empirical CDF onto a standard normal, the
        multiplicity dequantised first; "standard" standardises them as the released code does, which
        leaves the saturated multiplicity a point mass that keeps the jet network from learning the
        non-Gaussian jet eta (BENCHMARKS.md, "The jet eta gap found").
    pt_feature: the particles' pt feature before standardising: "log1m", FPCD's log(1 - pt_rel), or
        "log", log(pt_rel), which makes the model's errors relative rather than absolute and with them
        the soft wide-angle particles' contribution to the jet mass (BENCHMARKS.md, "The pt feature").
    pt_sum: if true, the jet network also generates the summed pt_rel of each jet's stored particles
        (1 for a jet that fits its slots, the kept pT fraction for a truncated one) and the generated
        particles are rescaled to it; without it their summed pt_rel spreads several times wider than
        the truth's and dominates FPD (BENCHMARKS.md, "The summed pT_rel"). False is FPCD's four jet
        features.
    constituent_mass: if true, the jet network also generates the invariant mass of each jet's stored
        particles in units of the jet pT (what W1M compares) and the generated particles' angles are
        scaled about the jet axis to it: the particle network alone follows the mass it is conditioned
        on only loosely (BENCHMARKS.md, "The constituent mass"). False is FPCD's jet features.
    """

    # A run's config.json written before jet_transform, pt_feature, pt_sum or constituent_mass existed
    # still loads; its
    # preprocessing.json, not these defaults, says how that run's jets were normalised.
    OPTIONAL_KEYS: ClassVar[tuple[str, ...]] = ("jet_transform", "pt_feature", "pt_sum", "constituent_mass")

    num_particles: int = 30
    classes: list[str] = Field(default_factory=lambda: list(JET_CLASSES))
    recenter: bool = True
    jet_transform: Literal["quantile", "standard"] = "quantile"
    pt_feature: Literal["log1m", "log"] = "log1m"
    pt_sum: bool = False
    constituent_mass: bool = False

    def check(self) -> None:
        check_particles_and_classes(self)


class EmbeddingConfig(Section):
    """Time/condition embedding shared by both networks.

    fourier_features: number of random Gaussian frequencies; the feature vector is [sin, cos], so
        ``2 * fourier_features`` wide.
    fourier_scale: standard deviation of the frequencies (cycles per unit diffusion time t in [0, 1]).
    time_dims: widths of the fully connected layers applied to the Fourier features (paper: 32, 64).
    cond_dim: width of the layer that mixes the time embedding with the conditions (paper: 64).
    """

    fourier_features: PositiveInt = 32
    fourier_scale: PositiveFloat = 16.0
    time_dims: list[PositiveInt] = Field(default_factory=lambda: [32, 64])
    cond_dim: PositiveInt = 64

    def check(self) -> None:
        if not self.time_dims:
            raise invalid("time_dims", "must list at least one layer width")


class JetNetConfig(Section):
    """Fully connected ResNet for the jet features (pT, eta, mass, multiplicity).

    num_blocks: residual blocks, each a two-layer network plus a linear skip connection (paper: 5).
    width: width of every hidden layer (paper: 512).
    leaky_slope: negative slope of LeakyReLU (paper: 0.01).
    dropout: dropout rate after each hidden layer of a residual block (released code: 0.1).
    """

    num_blocks: PositiveInt = 5
    width: PositiveInt = 512
    leaky_slope: Fraction = 0.01
    dropout: Fraction = 0.1


class ParticleNetConfig(Section):
    """DeepSets + Transformer encoder for the particle features (eta_rel, phi_rel, ``data.pt_feature``).

    embed_dim: width of the per-particle latent space and of the transformer stream (paper: 64).
    num_transformer_blocks: pre-LayerNorm transformer encoder blocks (paper: 8).
    num_heads: attention heads; must divide ``embed_dim`` (key size = embed_dim // num_heads).
    ffn_dim: hidden width of each block's feed-forward network.
    output_hidden_dim: width of the fully connected layer before the output layer (paper: 64).
    leaky_slope: negative slope of LeakyReLU.
    dropout: dropout rate on the attention weights.
    """

    embed_dim: PositiveInt = 64
    num_transformer_blocks: NonNegativeInt = 8
    num_heads: PositiveInt = 2
    ffn_dim: PositiveInt = 128
    output_hidden_dim: PositiveInt = 64
    leaky_slope: Fraction = 0.01
    dropout: Fraction = 0.1

    def check(self) -> None:
        if self.embed_dim % self.num_heads:
            raise invalid("num_heads", f"must divide embed_dim={self.embed_dim}, got {self.num_heads}")


class TrainingConfig(Section):
    """Optimisation of both networks (they are trained together, loss = L_jet + L_particle).

    batch_size: jets per optimisation step.
    learning_rate: initial learning rate of the cosine schedule **per rank**: a run on N Horovod ranks
        starts at N x learning_rate (the released code's convention; the paper's 16e-4 on 16 GPUs is
        1e-4 here). The run's metadata.json records the effective value and the number of ranks.
    optimizer: "adam", "adamax" (released code) or "adamw".
    epochs: maximum number of epochs.
    early_stopping_patience: stop after this many epochs without a lower validation loss.
    valid_fraction: fraction of the training sample held out for the validation loss.
    ema_decay: decay of the exponential moving average of the weights used for sampling.
    grad_clip_norm: clip each gradient tensor to this L2 norm (released code: 1.0); null disables.
    seed: seeds weight initialisation (including the fixed Fourier frequencies) and data shuffling.
    """

    batch_size: BatchSize = 128
    learning_rate: LearningRate = 1e-4
    optimizer: Optimizer = "adamax"
    epochs: Epochs = 250
    early_stopping_patience: EarlyStoppingPatience = 20
    valid_fraction: ValidFraction = 0.2
    ema_decay: EmaDecay = 0.999
    grad_clip_norm: GradClipNorm = 1.0
    seed: Seed = 1233


#: Compute types of the sampling networks (the sampler's state stays float32).
SamplingPrecision = Literal["float32", "bfloat16", "float16"]

#: ODE solvers of ``gsgm.diffusion.ddim.ddim_sample`` (its ``SOLVERS``).
FPCDSampler = Literal["ddim", "dpm++2m"]


class SamplingConfig(Section):
    """How a trained run samples.

    num_steps: DDIM steps of the undistilled sampler (paper: 512).
    precision: compute type of the networks while sampling: "float32" (default), or "bfloat16" /
        "float16" mixed precision (16-bit matmuls and activations on float32 weights; the DDIM state,
        the time embedding's Fourier features and the output layers stay float32). The accuracy cost is
        measured in BENCHMARKS.md (bfloat16 keeps about 3 significant digits per layer).
    jit_compile: compile the whole DDIM loop with XLA, one compiled function per batch shape (each
        multiplicity bucket is one). Off by default: on the 2-core CPU it was slower.
    sampler: the ODE solver of the undistilled model, one network evaluation per step either way:
        "ddim" (FPCD's, the default) or "dpm++2m" (DPM-Solver++(2M), second order). DDIM narrows
        near-Gaussian targets by cos(pi / (2 N)) ** N (1.9 % at 64 steps), which the second-order
        solver removes (BENCHMARKS.md, "The DDIM narrowing"). Distilled stages always sample with
        "ddim": they learned their teacher's DDIM steps.
    All three are optional in a file (older runs have none; they mean float32 DDIM without XLA).
    """

    OPTIONAL_KEYS: ClassVar[tuple[str, ...]] = ("precision", "jit_compile", "sampler")

    num_steps: PositiveInt = 512
    precision: SamplingPrecision = "float32"
    jit_compile: bool = False
    sampler: FPCDSampler = "ddim"


class FPCDConfig(Section):
    """A complete FPCD experiment. ``name`` labels runs; ``description`` documents the file."""

    name: str
    description: str
    data: DataConfig
    embedding: EmbeddingConfig
    jet_net: JetNetConfig
    particle_net: ParticleNetConfig
    training: TrainingConfig
    sampling: SamplingConfig

    def check(self) -> None:
        if not self.name:
            raise invalid("name", "must not be empty")


register_config_family(FAMILY, FPCDConfig)


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> FPCDConfig:
    """Validate a parsed config and return it; ``source`` names it in error messages.

    ``data`` may carry ``"family": "fpcd"`` (a file) or no family key (an older file, or
    :func:`config_to_dict` output); another family is a :class:`ConfigError` on ``family``.
    """
    return cast(FPCDConfig, config_from_any_dict(data, source, family=FAMILY)[1])


def load_config(path: str | os.PathLike) -> FPCDConfig:
    """Read and validate the JSON config at ``path``.

    Raises:
        ConfigError: malformed JSON, an unknown or missing key, a wrong type or an invalid value;
            the message names the file and the dotted key.
    """
    data, source = read_config_json(path)
    return config_from_dict(data, source)


def config_to_dict(cfg: FPCDConfig) -> dict[str, Any]:
    """Plain JSON-serialisable dict of ``cfg``'s sections (the inverse of :func:`config_from_dict`)."""
    return section_to_dict(cfg)


def validate_config(cfg: FPCDConfig, source: str = "<config>") -> FPCDConfig:
    """Re-check a (possibly edited) config; returns a validated copy, raises :class:`ConfigError`."""
    return validate_section(FPCDConfig, cfg, source)


def save_config(cfg: FPCDConfig, path: str | os.PathLike) -> None:
    """Validate ``cfg`` and write it (with ``"family": "fpcd"``) to ``path`` atomically.

    Raises:
        ConfigError: ``cfg`` was edited into an invalid state; nothing is written.
    """
    save_any_config(cfg, path)
