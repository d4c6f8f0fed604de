"""The model families of gsgm, registered by name.

A family is a :class:`gsgm.training.family.Family` subclass (config section, data pipeline, networks,
training model, sampler). Registering it is the only step that makes it known to the generic driver,
distillation, tuning and the ``gsgm`` command::

    from gsgm.families import register_family
    register_family(MyFamily())

Families outside gsgm register themselves when their module is imported: name the modules in
``$GSGM_FAMILIES`` (comma-separated, e.g. ``GSGM_FAMILIES=mypackage.toy``) or declare an entry point in
the group ``gsgm.families``; every command imports them before it looks a family up.

Run directories record their family in ``metadata.json``; :func:`family_of_run` reads it back (runs
written before families existed are recognised by their config sections).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gsgm.config import MODELS, load_any_config
from gsgm.training.family import Family

__all__ = [
    "UnknownFamilyError",
    "family_for_config",
    "family_names",
    "family_of_run",
    "get_family",
    "load_plugins",
    "register_family",
]

_REGISTRY: dict[str, Family] = {}


class UnknownFamilyError(KeyError):
    """No family of that name is registered; the message lists the registered ones."""

    def __str__(self) -> str:
        return str(self.args[0])


def register_family(family: Family, *, replace: bool = False) -> Family:
    """Make ``family`` known under ``family.name``; returns it (usable as a one-line registration)."""
    if not family.name:
        raise ValueError(f"{type(family).__name__}.name is empty")
    if family.name in _REGISTRY and not replace and _REGISTRY[family.name] is not family:
        raise ValueError(
            f"a family named {family.name!r} is already registered ({type(_REGISTRY[family.name]).__name__})"
        )
    _REGISTRY[family.name] = family
    return family


def get_family(name: str) -> Family:
    """The registered family ``name``; UnknownFamilyError lists the registered names."""
    _register_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownFamilyError(
            f"unknown family {name!r}; registered: {', '.join(family_names())}"
        ) from None


def family_names() -> list[str]:
    """Names of the registered families, sorted."""
    _register_builtin()
    return sorted(_REGISTRY)


def family_of_run(run_dir: str | os.PathLike) -> Family:
    """The family of a run directory, from its metadata.json (older runs: from their config.json)."""
    run = Path(run_dir)
    metadata_path, config_path = run / "metadata.json", run / "config.json"
    if metadata_path.is_file():
        name = json.loads(metadata_path.read_text()).get("family")
        if name:
            return get_family(name)
    if not config_path.is_file():
        raise FileNotFoundError(f"run directory not found or incomplete (no config.json): {run}")
    return family_for_config(config_path)


def family_for_config(path: str | os.PathLike, model: str | None = None) -> Family:
    """The family a config file is for: the config system's family (its ``family`` key, inferred for
    older files by :func:`gsgm.config.load_any_config`), and for jet images the model section.

    Jet-image config files may hold both a score and a consistency section: ``model`` ("score" or
    "consistency") chooses; a file with one section needs none.
    """
    _register_builtin()  # plugins register their config families on import
    config_family, cfg = load_any_config(path)
    if config_family != "jet_images":
        if model is not None:
            raise ValueError(
                f"{path} is a {config_family} config: --model score|consistency applies to jet-image configs"
            )
        return get_family(config_family)
    present = [m for m in MODELS if getattr(cfg, m) is not None]
    if model is None:
        if len(present) != 1:
            raise ValueError(
                f"{path} holds the jet-image models {present}: choose one with --model score|consistency"
            )
        model = present[0]
    return get_family(f"jet_image_{model}")


#: Environment variable listing extra family modules to import (comma-separated module names).
ENV_FAMILIES = "GSGM_FAMILIES"
#: Entry-point group of installed packages that add families.
ENTRY_POINT_GROUP = "gsgm.families"
_LOADED: set[str] = set()


def _register_builtin() -> None:
    """Register the families shipped with gsgm and the plugins (imported lazily: they pull in TensorFlow)."""
    if "fpcd" not in _REGISTRY:
        from gsgm.families import calo, dis, fpcd, jet_images, phase_space

        register_family(dis.DIS)
        register_family(fpcd.FPCD)
        register_family(calo.CALO)
        register_family(jet_images.JET_IMAGE_SCORE)
        register_family(jet_images.JET_IMAGE_CONSISTENCY)
        register_family(phase_space.PHASE_SPACE)
    load_plugins()


def load_plugins(environ: dict[str, str] | None = None) -> list[str]:
    """Import the family modules named in ``$GSGM_FAMILIES`` and the ``gsgm.families`` entry points.

    Returns the modules imported by this call. A module that cannot be imported is an error naming
    it (a misspelt plugin must not silently leave its family unknown).
    """
    import importlib
    from importlib.metadata import entry_points

    environ = os.environ if environ is None else environ
    names = [n.strip() for n in environ.get(ENV_FAMILIES, "").split(",") if n.strip()]
    names += [ep.value.split(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)]
    imported = []
    for name in names:
        if name in _LOADED:
            continue
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ImportError(
                f"cannot import the gsgm family module {name!r} (from ${ENV_FAMILIES} or the "
                f"{ENTRY_POINT_GROUP} entry points): {err}"
            ) from err
        _LOADED.add(name)
        imported.append(name)
    return imported
