"""The rule shared by every config section that selects a JetNet sample (FPCD, jet images)."""

from __future__ import annotations

from typing import Any

from gsgm.config.base import invalid
from gsgm.utils.jetnet import JET_CLASSES, NUM_PARTICLES

__all__ = ["JET_CLASSES", "NUM_PARTICLES", "check_particles_and_classes"]


def check_particles_and_classes(section: Any) -> None:
    """Validate ``section.num_particles`` (a JetNet particle count) and ``section.classes``.

    Raises:
        pydantic_core.PydanticCustomError: from a section's ``check``; reported as a ConfigError.
    """
    if section.num_particles not in NUM_PARTICLES:
        raise invalid("num_particles", f"must be one of {NUM_PARTICLES}, got {section.num_particles!r}")
    if not section.classes:
        raise invalid("classes", "must not be empty")
    unknown = [c for c in section.classes if c not in JET_CLASSES]
    if unknown:
        raise invalid("classes", f"unknown class(es) {unknown}; valid: {list(JET_CLASSES)}")
    if len(set(section.classes)) != len(section.classes):
        raise invalid("classes", f"duplicate classes in {section.classes}")
