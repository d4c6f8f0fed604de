"""One config system for every gsgm family: JSON files validated on load (pydantic, strict).

* :mod:`gsgm.config.base`: the rules (strict types, every key required, no unknown key, finite
  floats), :class:`ConfigError` naming the file and the dotted key, JSON reading.
* :mod:`gsgm.config.registry`: the ``"family"`` key of every file, :func:`load_any_config`, and
  :func:`register_config_family` for new families.
* :mod:`gsgm.config.training`: field types shared by the families' optimisation sections.
* :mod:`gsgm.config.fpcd`, :mod:`gsgm.config.jet_images`, :mod:`gsgm.config.dis`: the families' sections.

Everything public is importable from ``gsgm.config``. This package is the bottom layer: it imports
nothing from gsgm.data, gsgm.models, gsgm.diffusion or gsgm.training.
"""

from gsgm.config.base import ConfigError, Section, read_config_json, validate_section
from gsgm.config.calo import CALO_FAMILY, CaloConfig
from gsgm.config.dis import DisConfig, DisUNetConfig, load_dis_config, save_dis_config
from gsgm.config.fpcd import (
    DataConfig,
    EmbeddingConfig,
    FPCDConfig,
    JetNetConfig,
    ParticleNetConfig,
    SamplingConfig,
    TrainingConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
    validate_config,
)
from gsgm.config.jet_images import (
    MODELS,
    ConsistencyConfig,
    ImageDataConfig,
    ImageSamplingConfig,
    ImagesConfig,
    ImageTrainingConfig,
    NoiseConfig,
    ScoreConfig,
    UNetConfig,
    images_config_from_dict,
    images_config_to_dict,
    load_images_config,
    resolve_from_data,
    save_images_config,
    validate_images_config,
)
from gsgm.config.jetnet import NUM_PARTICLES, check_particles_and_classes
from gsgm.config.paths import DEFAULT_CONFIG, ENV_CONFIG, explicit_config, resolve_config_path
from gsgm.config.phase_space import PhaseSpaceConfig
from gsgm.config.registry import (
    config_class_for,
    config_families,
    config_from_any_dict,
    family_of,
    load_any_config,
    register_config_family,
    save_any_config,
)
from gsgm.config.training import OPTIMIZERS

__all__ = [
    "CALO_FAMILY",
    "CaloConfig",
    "DEFAULT_CONFIG",
    "ENV_CONFIG",
    "MODELS",
    "NUM_PARTICLES",
    "OPTIMIZERS",
    "ConfigError",
    "ConsistencyConfig",
    "DataConfig",
    "DisConfig",
    "DisUNetConfig",
    "EmbeddingConfig",
    "FPCDConfig",
    "ImageDataConfig",
    "ImageSamplingConfig",
    "ImageTrainingConfig",
    "ImagesConfig",
    "JetNetConfig",
    "NoiseConfig",
    "ParticleNetConfig",
    "PhaseSpaceConfig",
    "SamplingConfig",
    "ScoreConfig",
    "Section",
    "TrainingConfig",
    "UNetConfig",
    "check_particles_and_classes",
    "config_class_for",
    "config_families",
    "config_from_any_dict",
    "config_from_dict",
    "config_to_dict",
    "explicit_config",
    "family_of",
    "images_config_from_dict",
    "images_config_to_dict",
    "load_any_config",
    "load_config",
    "load_dis_config",
    "load_images_config",
    "read_config_json",
    "register_config_family",
    "resolve_config_path",
    "resolve_from_data",
    "save_any_config",
    "save_config",
    "save_dis_config",
    "save_images_config",
    "validate_config",
    "validate_images_config",
    "validate_section",
]
