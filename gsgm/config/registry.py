"""Config families by name, so that a config file can be loaded without knowing its family.

Every config file carries a top-level ``"family"`` key (``"fpcd"``, ``"jet_images"``, ...) next to
its sections; it is file metadata, not a setting, so a family's config object and
``config_to_dict`` do not hold it: :func:`save_any_config` writes it, the loaders check it and strip it.

**Files without the key.** Run directories written before the key existed hold a config.json
without it. Such a file is accepted: a family's own loader (``load_config``, ``load_images_config``)
takes it as its family, and :func:`load_any_config` infers the family from the sections (below).
Only FPCD and jet-image configs predate the key; families registered later always carry it, so they
are never inferred. New files always carry it: every writer goes through :func:`save_any_config`.

A new family registers its top-level config class with one call, ``register_config_family(name,
cls)``; nothing here changes.
"""

from __future__ import annotations

import json
import os
from typing import Any

from gsgm.config.base import ConfigError, Section, read_config_json, section_to_dict, validate_section
from gsgm.utils.atomic import write_json_atomic

__all__ = [
    "FAMILY_KEY",
    "config_class_for",
    "config_families",
    "config_from_any_dict",
    "config_to_file_dict",
    "family_of",
    "load_any_config",
    "register_config_family",
    "save_any_config",
]

FAMILY_KEY = "family"
_FAMILIES: dict[str, type[Section]] = {}
# Sections that tell the two families older than the family key apart (see the module docstring).
_LEGACY_SECTIONS: dict[str, tuple[str, ...]] = {
    "fpcd": ("embedding", "jet_net", "particle_net"),
    "jet_images": ("noise", "score", "consistency"),
}


def register_config_family(name: str, cls: type[Section]) -> None:
    """Make ``cls`` the top-level config class of family ``name`` (the file's ``"family"`` value).

    Registering the same class again is a no-op; a second class under a taken name is an error.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"a config family needs a non-empty name, got {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Section)):
        raise TypeError(f"config family {name!r}: {cls!r} is not a gsgm.config.base.Section")
    if FAMILY_KEY in cls.model_fields:
        raise ValueError(f"config family {name!r}: {cls.__name__} must not declare a {FAMILY_KEY!r} field")
    known = _FAMILIES.get(name)
    if known is not None and known is not cls:
        raise ValueError(f"config family {name!r} is already registered to {known.__name__}")
    _FAMILIES[name] = cls


def config_families() -> tuple[str, ...]:
    """Names of the registered families, in registration order."""
    return tuple(_FAMILIES)


def config_class_for(family: str) -> type[Section]:
    """The top-level config class of ``family``; ``KeyError`` naming the known families otherwise."""
    try:
        return _FAMILIES[family]
    except KeyError:
        raise KeyError(f"unknown config family {family!r}; known: {', '.join(_FAMILIES)}") from None


def family_of(cfg: Section) -> str:
    """The family name under which ``type(cfg)`` is registered."""
    for name, cls in _FAMILIES.items():
        if type(cfg) is cls:
            return name
    raise ValueError(f"{type(cfg).__name__} is not a registered config family's class")


def _infer_legacy_family(data: dict[str, Any], source: str) -> str:
    matches = [name for name, keys in _LEGACY_SECTIONS.items() if any(k in data for k in keys)]
    if len(matches) != 1:
        raise ConfigError(
            source, FAMILY_KEY, f"missing key (one of: {', '.join(_FAMILIES)}); the sections do not tell"
        )
    return matches[0]


def config_from_any_dict(data: Any, source: str = "<dict>", family: str | None = None) -> tuple[str, Section]:
    """Validate a parsed config file; returns ``(family, config)``.

    ``family`` None: the file's ``"family"`` key decides (inferred for files older than the key).
    ``family`` given: the file must be of that family, or carry no key (an older file of it).

    Raises:
        ConfigError: an unknown or mismatched family, or any problem in the sections.
    """
    if not isinstance(data, dict):
        raise ConfigError(source, "<top level>", f"expected a JSON object, got {json.dumps(data)}")
    declared = data.get(FAMILY_KEY)
    if declared is not None and (not isinstance(declared, str) or declared not in _FAMILIES):
        raise ConfigError(source, FAMILY_KEY, f"must be one of {', '.join(_FAMILIES)}, got {declared!r}")
    if family is not None and declared is not None and declared != family:
        raise ConfigError(source, FAMILY_KEY, f"is {declared!r}, but a {family!r} config is needed here")
    if declared is None:
        declared = family or _infer_legacy_family(data, source)
    body = {k: v for k, v in data.items() if k != FAMILY_KEY}
    return declared, validate_section(config_class_for(declared), body, source)


def load_any_config(path: str | os.PathLike) -> tuple[str, Section]:
    """Read and validate the config file at ``path`` whatever its family; ``(family, config)``."""
    data, source = read_config_json(path)
    return config_from_any_dict(data, source)


def config_to_file_dict(cfg: Section) -> dict[str, Any]:
    """What a config file holds: ``{"family": ..., **sections}``."""
    return {FAMILY_KEY: family_of(cfg), **section_to_dict(cfg)}


def save_any_config(cfg: Section, path: str | os.PathLike) -> None:
    """Re-validate ``cfg`` and write it (with its family key) to ``path`` atomically.

    Raises:
        ConfigError: ``cfg`` was edited into an invalid state (named after ``path``); nothing is written.
    """
    checked = validate_section(type(cfg), cfg, str(path))
    write_json_atomic(path, config_to_file_dict(checked))
