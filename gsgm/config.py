"""FPCD experiment configuration: JSON files validated on load.

A config file is a JSON object with exactly the keys of :class:`FPCDConfig`::

    {
      "name": "...", "description": "...",
      "data":         {"num_particles": 30, "classes": ["g", "q", "t", "w", "z"], "recenter": true},
      "embedding":    {"fourier_features": 32, "fourier_scale": 16.0, "time_dims": [32, 64], "cond_dim": 64},
      "jet_net":      {"num_blocks": 5, "width": 512, "leaky_slope": 0.01, "dropout": 0.1},
      "particle_net": {"embed_dim": 64, "num_transformer_blocks": 8, "num_heads": 2, "ffn_dim": 128,
                       "output_hidden_dim": 64, "leaky_slope": 0.01, "dropout": 0.1},
      "training":     {"batch_size": 128, "learning_rate": 0.0001, "optimizer": "adamax", "epochs": 250,
                       "early_stopping_patience": 20, "valid_fraction": 0.2, "ema_decay": 0.999,
                       "grad_clip_norm": 1.0, "seed": 1233},
      "sampling":     {"num_steps": 512}
    }

Every key is required and no other key is allowed, so a typo can never silently fall back to a default.
Errors are :class:`ConfigError` and name the file and the dotted key (``particle_net.num_heads``).

The dataclasses are mutable so that scripts and tests can override single fields
(``cfg.training.epochs = 3``); :func:`validate_config` re-checks such an edited config and
:func:`save_config` always does, so an invalid config is never written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.utils.atomic import write_json_atomic

__all__ = [
    "ConfigError",
    "DataConfig",
    "EmbeddingConfig",
    "JetNetConfig",
    "ParticleNetConfig",
    "TrainingConfig",
    "SamplingConfig",
    "FPCDConfig",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
    "validate_config",
]

OPTIMIZERS = ("adam", "adamax", "adamw")
#: Environment variable naming the config of a new run when none is given on the command line.
ENV_CONFIG = "GSGM_CONFIG"
#: The config of a new run when neither ``--config`` nor ``$GSGM_CONFIG`` is given: the paper's JetNet30.
DEFAULT_CONFIG = "configs/fpcd_jetnet30.json"
#: The checkout's root (``configs/`` lives there); relative config paths are also looked up in it.
_CHECKOUT = Path(__file__).resolve().parents[1]
NUM_PARTICLES = (30, 150)  # the two JetNet variants


class ConfigError(ValueError):
    """A config file (or dict) is invalid; ``key`` is the dotted key, ``source`` the file or ``<dict>``."""

    def __init__(self, source: str, key: str, message: str):
        self.source = source
        self.key = key
        super().__init__(f"{source}: {key}: {message}")


class _Invalid(Exception):
    """Raised by the per-section checks; turned into ConfigError with the full key and source."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(message)


def _positive(section: Any, *names: str) -> None:
    for name in names:
        if getattr(section, name) <= 0:
            raise _Invalid(name, f"must be > 0, got {getattr(section, name)!r}")


def _unit_interval(section: Any, name: str, *, closed_low: bool = True) -> None:
    """Require 0 <= value < 1 (or 0 < value < 1 when ``closed_low`` is False)."""
    value = getattr(section, name)
    ok = (0.0 <= value < 1.0) if closed_low else (0.0 < value < 1.0)
    if not ok:
        interval = "[0, 1)" if closed_low else "(0, 1)"
        raise _Invalid(name, f"must be in {interval}, got {value!r}")


def check_particles_and_classes(section: Any) -> None:
    """Validate ``section.num_particles`` (a JetNet particle count) and ``section.classes``."""
    if section.num_particles not in NUM_PARTICLES:
        raise _Invalid("num_particles", f"must be one of {NUM_PARTICLES}, got {section.num_particles!r}")
    if not section.classes:
        raise _Invalid("classes", "must not be empty")
    unknown = [c for c in section.classes if c not in JET_CLASSES]
    if unknown:
        raise _Invalid("classes", f"unknown class(es) {unknown}; valid: {list(JET_CLASSES)}")
    if len(set(section.classes)) != len(section.classes):
        raise _Invalid("classes", f"duplicate classes in {section.classes}")


@dataclass
class DataConfig:
    """Which JetNet sample to train on.

    num_particles: particle slots per jet (30 or 150, the two JetNet variants).
    classes: jet classes to train on, a subset of ``JET_CLASSES``; the class one-hot is still
        ``len(JET_CLASSES)`` wide so that models trained on subsets stay interchangeable.
    recenter: shift each jet's particles so that the pT-weighted (eta_rel, phi_rel) centroid is at 0
        (the released code does this before standardising).
    """

    num_particles: int = 30
    classes: list[str] = field(default_factory=lambda: list(JET_CLASSES))
    recenter: bool = True

    def check(self) -> None:
        check_particles_and_classes(self)


@dataclass
class EmbeddingConfig:
    """Time/condition embedding shared by both networks.

    fourier_features: number of random Gaussian frequencies; the feature vector is [sin, cos], so
        ``2 * fourier_features`` wide.
    fourier_scale: standard deviation of the frequencies (cycles per unit diffusion time t in [0, 1]).
    time_dims: widths of the fully connected layers applied to the Fourier features (paper: 32, 64).
    cond_dim: width of the layer that mixes the time embedding with the conditions (paper: 64).
    """

    fourier_features: int = 32
    fourier_scale: float = 16.0
    time_dims: list[int] = field(default_factory=lambda: [32, 64])
    cond_dim: int = 64

    def check(self) -> None:
        _positive(self, "fourier_features", "fourier_scale", "cond_dim")
        if not self.time_dims:
            raise _Invalid("time_dims", "must list at least one layer width")
        if any(d <= 0 for d in self.time_dims):
            raise _Invalid("time_dims", f"widths must be > 0, got {self.time_dims}")


@dataclass
class JetNetConfig:
    """Fully connected ResNet for the jet features (pT, eta, mass, multiplicity).

    num_blocks: residual blocks, each a two-layer network plus a linear skip connection (paper: 5).
    width: width of every hidden layer (paper: 512).
    leaky_slope: negative slope of LeakyReLU (paper: 0.01).
    dropout: dropout rate after each hidden layer of a residual block (released code: 0.1).
    """

    num_blocks: int = 5
    width: int = 512
    leaky_slope: float = 0.01
    dropout: float = 0.1

    def check(self) -> None:
        _positive(self, "num_blocks", "width")
        _unit_interval(self, "leaky_slope")
        _unit_interval(self, "dropout")


@dataclass
class ParticleNetConfig:
    """DeepSets + Transformer encoder for the particle features (eta_rel, phi_rel, log(1 - pT_rel)).

    embed_dim: width of the per-particle latent space and of the transformer stream (paper: 64).
    num_transformer_blocks: pre-LayerNorm transformer encoder blocks (paper: 8).
    num_heads: attention heads; must divide ``embed_dim`` (key size = embed_dim // num_heads).
    ffn_dim: hidden width of each block's feed-forward network.
    output_hidden_dim: width of the fully connected layer before the output layer (paper: 64).
    leaky_slope: negative slope of LeakyReLU.
    dropout: dropout rate on the attention weights.
    """

    embed_dim: int = 64
    num_transformer_blocks: int = 8
    num_heads: int = 2
    ffn_dim: int = 128
    output_hidden_dim: int = 64
    leaky_slope: float = 0.01
    dropout: float = 0.1

    def check(self) -> None:
        _positive(self, "embed_dim", "num_heads", "ffn_dim", "output_hidden_dim")
        if self.num_transformer_blocks < 0:
            raise _Invalid("num_transformer_blocks", f"must be >= 0, got {self.num_transformer_blocks}")
        if self.embed_dim % self.num_heads:
            raise _Invalid("num_heads", f"must divide embed_dim={self.embed_dim}, got {self.num_heads}")
        _unit_interval(self, "leaky_slope")
        _unit_interval(self, "dropout")


@dataclass
class TrainingConfig:
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

    batch_size: int = 128
    learning_rate: float = 1e-4
    optimizer: str = "adamax"
    epochs: int = 250
    early_stopping_patience: int = 20
    valid_fraction: float = 0.2
    ema_decay: float = 0.999
    grad_clip_norm: float | None = 1.0
    seed: int = 1233

    def check(self) -> None:
        _positive(self, "batch_size", "learning_rate", "epochs", "early_stopping_patience")
        if self.optimizer not in OPTIMIZERS:
            raise _Invalid("optimizer", f"must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _unit_interval(self, "valid_fraction", closed_low=False)
        _unit_interval(self, "ema_decay")
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise _Invalid("grad_clip_norm", f"must be > 0 or null, got {self.grad_clip_norm!r}")
        if self.seed < 0:
            raise _Invalid("seed", f"must be >= 0, got {self.seed}")


@dataclass
class SamplingConfig:
    """num_steps: DDIM steps of the undistilled sampler (paper: 512)."""

    num_steps: int = 512

    def check(self) -> None:
        _positive(self, "num_steps")


@dataclass
class FPCDConfig:
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
            raise _Invalid("name", "must not be empty")


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    names = {int: "integer", float: "number", str: "string", bool: "boolean"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` (parsed JSON) against the annotation ``tp`` and return the field value."""
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, source)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(value, option, key, source)
            except ConfigError:
                continue
        raise ConfigError(source, key, f"expected {_type_name(tp)}, got {json.dumps(value)}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(source, key, f"expected {_type_name(tp)}, got {json.dumps(value)}")
        (item_tp,) = typing.get_args(tp)
        return [_convert(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
    # bool is a subclass of int in Python; JSON true must not pass as a width.
    if tp is type(None):
        ok = value is None
    elif tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - only reachable if a new field type is added without support here
        raise TypeError(f"unsupported config field type {tp!r}")
    if not ok:
        raise ConfigError(source, key, f"expected {_type_name(tp)}, got {json.dumps(value)}")
    return value


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    """Build dataclass ``cls`` from the JSON object ``data``; every field required, no extras."""
    where = prefix or "<top level>"
    if not isinstance(data, dict):
        raise ConfigError(source, where, f"expected a JSON object, got {json.dumps(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    dotted = (lambda k: f"{prefix}.{k}") if prefix else (lambda k: k)
    for key in data:
        if key not in hints:
            raise ConfigError(source, dotted(key), f"unknown key (allowed in {where}: {', '.join(names)})")
    for name in names:
        if name not in data:
            raise ConfigError(source, dotted(name), "missing key")
    values = {name: _convert(data[name], hints[name], dotted(name), source) for name in names}
    obj = cls(**values)
    try:
        obj.check()
    except _Invalid as err:
        raise ConfigError(source, dotted(err.key), err.message) from None
    return obj


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> FPCDConfig:
    """Validate a parsed config and return it; ``source`` names it in error messages."""
    return _build(FPCDConfig, data, "", source)


def explicit_config(cli_value: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The config a user asked for: the command-line value, else ``$GSGM_CONFIG``, else None."""
    environ = os.environ if environ is None else environ
    return cli_value or environ.get(ENV_CONFIG) or None


def resolve_config_path(spec: str | os.PathLike | None) -> Path:
    """Path of config ``spec`` (None: :data:`DEFAULT_CONFIG`).

    A relative path is taken relative to the working directory and, if no such file exists there,
    relative to the gsgm checkout, so ``configs/quick.json`` works from any directory.
    """
    path = Path(DEFAULT_CONFIG if spec is None else spec).expanduser()
    if not path.is_absolute() and not path.exists() and (_CHECKOUT / path).is_file():
        return _CHECKOUT / path
    return path


def load_config(path: str | os.PathLike) -> FPCDConfig:
    """Read and validate the JSON config at ``path``.

    Raises:
        ConfigError: malformed JSON, an unknown or missing key, a wrong type or an invalid value;
            the message names the file and the dotted key.
    """
    data, source = read_config_json(path)
    return config_from_dict(data, source)


def read_config_json(path: str | os.PathLike) -> tuple[Any, str]:
    """The parsed JSON of a config file and its name for messages; malformed JSON is a ConfigError."""
    source = str(path)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")), source
    except json.JSONDecodeError as err:
        raise ConfigError(source, "<json>", f"not valid JSON: {err}") from None


def config_to_dict(cfg: FPCDConfig) -> dict[str, Any]:
    """Plain JSON-serialisable dict of ``cfg`` (the inverse of :func:`config_from_dict`)."""
    return dataclasses.asdict(cfg)


def validate_config(cfg: FPCDConfig, source: str = "<config>") -> FPCDConfig:
    """Re-check a (possibly edited) config; returns a validated copy, raises :class:`ConfigError`."""
    return config_from_dict(config_to_dict(cfg), source)


def save_config(cfg: FPCDConfig, path: str | os.PathLike) -> None:
    """Validate ``cfg`` and write it as JSON to ``path`` atomically (a crash never leaves a partial file).

    Raises:
        ConfigError: ``cfg`` was edited into an invalid state; nothing is written.
    """
    write_json_atomic(path, config_to_dict(validate_config(cfg, str(path))))
