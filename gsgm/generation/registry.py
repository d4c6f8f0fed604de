"""Which sampling function serves which family: ``gsgm sample`` dispatches on the run's family.

A family registers its sampler here, next to :func:`gsgm.families.register_family`::

    from gsgm.generation.registry import register_sampler
    register_sampler("my_family", sample_my_family)   # (run, out, per_class, **options) -> result

The result is any object with a ``summary()`` line or a printable form; options the sampler does not
take are an error naming them, not silently dropped.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

__all__ = ["register_sampler", "sample_run", "sampler_for"]

_SAMPLERS: dict[str, Callable[..., Any]] = {}


def register_sampler(family: str, sampler: Callable[..., Any]) -> Callable[..., Any]:
    """Use ``sampler(run, out, per_class, **options)`` for runs of ``family``; returns it."""
    _SAMPLERS[family] = sampler
    return sampler


def _register_builtin() -> None:
    if "fpcd" in _SAMPLERS:
        return
    from gsgm.generation.calo import sample_showers_to_file
    from gsgm.generation.dis import sample_dis
    from gsgm.generation.phase_space import sample_phase_space
    from gsgm.generation.runs import sample_images_to_file, sample_jets_to_directory

    register_sampler("dis", sample_dis)
    register_sampler("fpcd", sample_jets_to_directory)
    register_sampler("jet_image_score", sample_images_to_file)
    register_sampler("jet_image_consistency", sample_images_to_file)
    register_sampler("phase_space", sample_phase_space)
    register_sampler("calo", sample_showers_to_file)


def sampler_for(family: str) -> Callable[..., Any]:
    """The sampler registered for ``family`` (family plugins are loaded first)."""
    from gsgm.families import family_names

    family_names()  # imports the $GSGM_FAMILIES plugins, which register their samplers
    _register_builtin()
    if family not in _SAMPLERS:
        raise KeyError(
            f"no sampler is registered for the {family} family (registered: {', '.join(sorted(_SAMPLERS))})"
        )
    return _SAMPLERS[family]


def sample_run(run: str | os.PathLike, out: str | os.PathLike, per_class: int, **options: Any) -> Any:
    """Sample ``per_class`` samples of each class from run directory ``run`` into ``out``.

    ``options`` given as None are left to the family's defaults; ``progress`` goes only to samplers
    that draw a bar; any other option the family's sampler does not take is a ValueError naming it.
    """
    from gsgm.families import family_of_run

    family = family_of_run(run)
    sampler = sampler_for(family.name)
    options = {k: v for k, v in options.items() if v is not None}
    accepted = inspect.signature(sampler).parameters
    if "progress" not in accepted:
        # a display preference, not a sampling option: a sampler without a bar simply shows none
        options.pop("progress", None)
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise ValueError(f"{flags}: not an option for sampling {family.name} runs ({run})")
    return sampler(run, out, per_class, **options)
