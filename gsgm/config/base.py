"""The machinery every gsgm config shares: strict sections, error translation, JSON files.

A config section is a pydantic model derived from :class:`Section`. Validation is strict in the way a
hand-edited JSON file needs:

* no other key is allowed (a typo is an error, never a silently ignored setting);
* no type coercion: ``"512"``, ``true`` and ``2.5`` are not integers, ``1`` is not a boolean; an
  integer *is* accepted for a float field and stored as a float (JSON writes ``16`` for ``16.0``);
* NaN and +-inf are rejected for every float;
* when validating a file (or a dict that stands for one), every key is required, even where the
  Python class has a default for programmatic use (``EmbeddingConfig()``): a key deleted from a file
  must not fall back to a default nobody chose. The exception is a class's ``OPTIONAL_KEYS``.

Sections stay mutable (``cfg.training.epochs = 3``); an edited config is re-validated by
:func:`validate_section`, always before :func:`gsgm.config.registry.save_any_config` writes it, so an
invalid config is never written. Every problem surfaces as :class:`ConfigError`, naming the file and
the dotted key (``embedding.time_dims[1]``, ``score.unet.dropout``) with a short message.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "ConfigError",
    "Fraction",
    "NonNegativeInt",
    "OpenFraction",
    "PositiveFloat",
    "PositiveFloatOrNull",
    "PositiveInt",
    "Section",
    "invalid",
    "read_config_json",
    "rule",
    "section_to_dict",
    "validate_section",
]

S = TypeVar("S", bound="Section")

#: Validation context that marks a file (or a dict standing for one): every key is then required.
FILE_CONTEXT: dict[str, bool] = {"require_all_keys": True}
# pydantic error type of the problems raised by ``invalid``; its context carries the field's name.
_INVALID = "gsgm_invalid"


class ConfigError(ValueError):
    """A config file (or dict) is invalid.

    ``source`` is the file (or ``<dict>``), ``key`` the dotted key, ``problem`` the message alone.
    """

    def __init__(self, source: str, key: str, message: str):
        self.source = source
        self.key = key
        self.problem = message
        super().__init__(f"{source}: {key}: {message}")


def invalid(key: str, message: str) -> PydanticCustomError:
    """The error to raise from a section's :meth:`Section.check` for field ``key`` (a name or ``a.b``).

    pydantic reports a model validator's error at the section, so the field travels in the error's
    context and :func:`validate_section` appends it to the dotted key.
    """
    return PydanticCustomError(_INVALID, "{message}", {"key": key, "message": message})


class Section(BaseModel):
    """Base of every config section: strict types, no unknown keys, every key required in a file.

    Subclasses declare fields (with defaults for programmatic use) and put rules that involve more
    than one field in :meth:`check`, raising :func:`invalid`.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    #: Keys a file may leave out (the field's default is then used); none for config sections.
    OPTIONAL_KEYS: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _known_and_complete(cls, data: Any, info: ValidationInfo) -> Any:
        # Unknown keys are reported before missing ones: for a typo ("widht") the unknown key is the
        # helpful message, the missing "width" only its consequence.
        if not isinstance(data, dict):
            return data  # pydantic reports the wrong type
        names = list(cls.model_fields)
        for key in data:
            if key not in cls.model_fields:
                raise invalid(str(key), f"unknown key (allowed here: {', '.join(names)})")
        if info.context and info.context.get("require_all_keys"):
            for name in names:
                if name not in data and name not in cls.OPTIONAL_KEYS:
                    raise invalid(name, "missing key")
        return data

    @model_validator(mode="after")
    def _checked(self) -> Section:
        self.check()
        return self

    def check(self) -> None:
        """Rules involving several fields; raise :func:`invalid` naming the field at fault."""


# ---------------------------------------------------------------------------------- shared field rules
# Annotated types carry the single-field rules, so that every family states "a positive width" or "a
# decay in [0, 1)" the same way and gets the same message.


def rule(ok: Callable[[Any], bool], text: str) -> AfterValidator:
    """A single-field rule for ``Annotated[type, rule(...)]``: ``ok(value)`` or "<text>, got <value>"."""

    def check(value: Any) -> Any:
        if not ok(value):
            raise PydanticCustomError(_INVALID, "{message}", {"message": f"{text}, got {value!r}"})
        return value

    return AfterValidator(check)


PositiveInt = Annotated[int, rule(lambda v: v > 0, "must be > 0")]
NonNegativeInt = Annotated[int, rule(lambda v: v >= 0, "must be >= 0")]
PositiveFloat = Annotated[float, rule(lambda v: v > 0, "must be > 0")]
PositiveFloatOrNull = Annotated[float | None, rule(lambda v: v is None or v > 0, "must be > 0 or null")]
#: A rate or decay in [0, 1) (dropout, LeakyReLU slope, EMA decay).
Fraction = Annotated[float, rule(lambda v: 0.0 <= v < 1.0, "must be in [0, 1)")]
#: A share of a sample in (0, 1) (validation fraction).
OpenFraction = Annotated[float, rule(lambda v: 0.0 < v < 1.0, "must be in (0, 1)")]


# ---------------------------------------------------------------------------------- errors and files


def _show(value: Any) -> str:
    """``value`` as it would appear in the JSON file (NaN for a float NaN)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a JSON object",
    "dict_type": "a JSON object",
    "model_attributes_type": "a JSON object",
}


def _message(error: Any) -> str:
    """A short human message for one pydantic error (the words the tests and users look for)."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == _INVALID:
        return ctx["message"]
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_show(value)}"
    if kind == "finite_number":
        return f"must be a finite number, got {_show(value)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {_show(value)}"
    if kind == "missing":
        return "missing key"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "too_short":
        return f"must not be empty, got {_show(value)}"
    return error["msg"]


def _dotted(loc: tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else str(part)
    return key


def config_error(err: ValidationError, source: str) -> ConfigError:
    """The first problem in ``err`` as a :class:`ConfigError` with its dotted key."""
    first = err.errors(include_url=False)[0]
    loc = tuple(first["loc"])
    extra = (first.get("ctx") or {}).get("key") if first["type"] == _INVALID else None
    if extra:
        loc += tuple(extra.split("."))
    return ConfigError(source, _dotted(loc) or "<top level>", _message(first))


def _first_non_finite(value: Any, key: str = "") -> tuple[str, float] | None:
    """(dotted key, value) of the first NaN or infinity anywhere in parsed JSON ``value``, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return key or "<top level>", value
    if isinstance(value, dict):
        items = ((f"{key}.{k}" if key else str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{key}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for child_key, child in items:
        found = _first_non_finite(child, child_key)
        if found is not None:
            return found
    return None


def validate_section(cls: type[S], data: Any, source: str = "<dict>", *, require_all_keys: bool = True) -> S:
    """Validate ``data`` (parsed JSON, or a section instance to re-check) as ``cls``.

    ``require_all_keys`` is the file rule (see the module docstring); ``source`` names the file in
    messages. An instance is checked through its dict, so that edits made after loading are seen.

    Raises:
        ConfigError: naming ``source`` and the dotted key of the first problem.
    """
    if isinstance(data, BaseModel):
        data = data.model_dump(warnings=False)  # an edit may have broken a type: report it below
    if not isinstance(data, dict):
        raise ConfigError(source, "<top level>", f"expected a JSON object, got {_show(data)}")
    non_finite = _first_non_finite(data)
    if non_finite is not None:
        # also inside free-form values (lists, dicts, Any) that pydantic's float rule does not reach
        key, value = non_finite
        raise ConfigError(source, key, f"must be a finite number, got {_show(value)}")
    try:
        return cls.model_validate(data, context=FILE_CONTEXT if require_all_keys else None)
    except ValidationError as err:
        raise config_error(err, source) from None


def section_to_dict(section: Section) -> dict[str, Any]:
    """Plain JSON-serialisable dict of ``section`` (nested sections as dicts, lists copied)."""
    return section.model_dump(warnings=False)


def read_config_json(path: str | os.PathLike) -> tuple[Any, str]:
    """The parsed JSON of a config file and its name for messages; malformed JSON is a ConfigError."""
    source = str(path)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")), source
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(source, "<json>", f"not valid JSON: {err}") from None
