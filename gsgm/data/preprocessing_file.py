"""The schema of preprocessing.json (a :class:`gsgm.data.preprocessing.JetPreprocessor` on disk).

The file is validated with the same strict rules as the configs (:mod:`gsgm.config.base`: no unknown
key, no type coercion, finite numbers), plus its shape rules: one row of statistics per class of
``JET_CLASSES`` (``null`` for a class absent from the fit data, in all four arrays at once), rows as
wide as the features, standard deviations > 0. Errors are :class:`PreprocessingFileError` naming the
file, the key and, for the arrays, the row and its class.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Literal

import numpy as np

from gsgm.config.base import ConfigError, NonNegativeInt, PositiveInt, Section, invalid, validate_section
from gsgm.data.jetnet_format import JET_CLASSES, JET_FEATURES

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "JET_TRANSFORMS",
    "NORM_PARTICLE_FEATURES",
    "PT_FEATURES",
    "CONSTITUENT_MASS_FEATURE",
    "PT_SUM_FEATURE",
    "PreprocessingFile",
    "PreprocessingFileError",
    "jet_feature_names",
    "parse_preprocessing_file",
]

FORMAT_NAME = "gsgm.JetPreprocessor"
FORMAT_VERSION = 1
# The particles' third feature before standardising, by its name in the config and the file: FPCD's
# log(1 - pt_rel), or log(pt_rel) (gsgm.data.preprocessing explains the choice).
PT_FEATURES: dict[str, str] = {"log1m": "log(1-pt_rel)", "log": "log(pt_rel)"}
# The standardised particle features with FPCD's pt feature (what files without "pt_feature" hold).
NORM_PARTICLE_FEATURES: tuple[str, ...] = ("eta_rel", "phi_rel", PT_FEATURES["log1m"])


def particle_feature_names(pt_feature: str) -> list[str]:
    """The three standardised particle features' names for ``pt_feature`` (a key of PT_FEATURES)."""
    return [*NORM_PARTICLE_FEATURES[:2], PT_FEATURES[pt_feature]]


# The optional fifth normalised jet feature (``pt_sum``): the summed pt_rel of the jet's stored particles,
# 1 for a jet that fits its slots, the kept pT fraction for a truncated one (gsgm.data.preprocessing).
PT_SUM_FEATURE = "pt_rel_sum"
# The optional last normalised jet feature (``constituent_mass``): the invariant mass of the jet's stored
# particles in units of the jet pT, the quantity JetNet's W1M compares (gsgm.data.preprocessing).
CONSTITUENT_MASS_FEATURE = "constituent_mass_rel"


def jet_feature_names(pt_sum: bool, constituent_mass: bool = False) -> list[str]:
    """The normalised jet features' names: JetNet's four, then ``PT_SUM_FEATURE`` if ``pt_sum``, then
    ``CONSTITUENT_MASS_FEATURE`` if ``constituent_mass``."""
    return [
        *JET_FEATURES,
        *([PT_SUM_FEATURE] if pt_sum else []),
        *([CONSTITUENT_MASS_FEATURE] if constituent_mass else []),
    ]


ARRAYS: tuple[str, ...] = ("jet_mean", "jet_std", "particle_mean", "particle_std")
# How the jet features are normalised: FPCD's per-class standardisation, or Gaussianised per class
# through stored quantiles (gsgm.data.preprocessing explains why that is the default).
JET_TRANSFORMS: tuple[str, ...] = ("quantile", "standard")
_NUM_CLASSES = len(JET_CLASSES)

Rows = list[list[float] | None]


class PreprocessingFileError(ValueError):
    """A preprocessing JSON file (or dict) is unreadable or malformed; the message names file and key."""


class PreprocessingFile(Section):
    """preprocessing.json as written by ``JetPreprocessor.to_dict`` (feature names and counts optional)."""

    OPTIONAL_KEYS: ClassVar[tuple[str, ...]] = (
        "jet_features",
        "particle_features",
        "fit_counts",
        "max_delta_r",
        "jet_transform",
        "jet_quantiles",
        "pt_feature",
        "pt_sum",
        "constituent_mass",
    )

    format: Literal["gsgm.JetPreprocessor"]
    version: Literal[1]
    num_particles: PositiveInt
    recenter: bool
    classes: list[str]
    jet_features: list[str] | None = None
    particle_features: list[str] | None = None
    jet_mean: Rows
    jet_std: Rows
    particle_mean: Rows
    particle_std: Rows
    fit_counts: list[NonNegativeInt] | None = None
    # Per class, the largest distance sqrt(eta_rel^2 + phi_rel^2) of a real fit particle from the jet
    # axis; files written before it existed have none, and their generated jets are not confined.
    max_delta_r: list[float | None] | None = None
    # Files written before the quantile transform have neither key and standardised the jets.
    jet_transform: Literal["quantile", "standard"] | None = None
    # Per class null or one list per jet feature (pt, eta, mass, dequantised num_particles and, with
    # pt_sum, pt_rel_sum, with constituent_mass, constituent_mass_rel) of >= 2 non-decreasing quantiles
    # of its fit jets; required (with fit_counts) when jet_transform is "quantile".
    jet_quantiles: list[list[list[float]] | None] | None = None
    # Files written before the choice existed have none and used FPCD's log(1 - pt_rel).
    pt_feature: Literal["log1m", "log"] | None = None
    # Files written before the choice existed have none and hold the four JetNet jet features.
    pt_sum: bool | None = None
    # Files written before the choice existed have none and no constituent-mass feature.
    constituent_mass: bool | None = None

    def _jet_names(self) -> list[str]:
        return jet_feature_names(bool(self.pt_sum), bool(self.constituent_mass))

    def _width(self, key: str) -> int:
        return len(self._jet_names()) if key.startswith("jet_") else len(NORM_PARTICLE_FEATURES)

    def check(self) -> None:
        if self.classes != list(JET_CLASSES):
            raise invalid(
                "classes",
                f"must be {list(JET_CLASSES)} (class order of the statistics), got {self.classes!r}",
            )
        particle_names = particle_feature_names(self.pt_feature or "log1m")
        jet_names = self._jet_names()
        for key, names in (("jet_features", jet_names), ("particle_features", particle_names)):
            value = getattr(self, key)
            if value is not None and value != list(names):
                raise invalid(key, f"must be {list(names)}, got {value!r}")
        for key in ARRAYS:
            rows, width = getattr(self, key), self._width(key)
            if len(rows) != _NUM_CLASSES:
                raise invalid(
                    key,
                    f"must be a list of {_NUM_CLASSES} rows (one per class {JET_CLASSES}) or null, "
                    f"got {len(rows)} rows",
                )
            for i, row in enumerate(rows):
                if row is not None and len(row) != width:
                    raise invalid(
                        key, f"row {i} ({JET_CLASSES[i]}) must be {width} finite numbers or null, got {row!r}"
                    )
                if row is not None and key.endswith("_std") and min(row) <= 0:
                    raise invalid(key, f"row {i} ({JET_CLASSES[i]}) must be positive, got {row!r}")
        for i in range(_NUM_CLASSES):
            present = [k for k in ARRAYS if getattr(self, k)[i] is not None]
            if present and len(present) != len(ARRAYS):
                absent = [k for k in ARRAYS if k not in present]
                raise invalid(
                    absent[0],
                    f"row {i} ({JET_CLASSES[i]}) is null while {', '.join(present)} "
                    "have statistics for that class",
                )
        if all(row is None for row in self.jet_mean):
            raise invalid("jet_mean", "has no statistics for any class")
        if self.fit_counts is not None and len(self.fit_counts) != _NUM_CLASSES:
            raise invalid("fit_counts", f"must be a list of {_NUM_CLASSES} integers, got {self.fit_counts!r}")
        if self.max_delta_r is not None:
            if len(self.max_delta_r) != _NUM_CLASSES:
                raise invalid(
                    "max_delta_r",
                    f"must be a list of {_NUM_CLASSES} numbers or nulls, got {self.max_delta_r!r}",
                )
            for i, radius in enumerate(self.max_delta_r):
                if radius is not None and not (math.isfinite(radius) and radius > 0):
                    raise invalid(
                        "max_delta_r",
                        f"entry {i} ({JET_CLASSES[i]}) must be a positive number or null, got {radius!r}",
                    )

        self._check_quantiles()

    def _check_quantiles(self) -> None:
        if self.jet_transform != "quantile":
            if self.jet_quantiles is not None:
                raise invalid(
                    "jet_quantiles", f"is only used with jet_transform 'quantile', not {self.jet_transform!r}"
                )
            return
        if self.jet_quantiles is None:
            raise invalid("jet_quantiles", "is required when jet_transform is 'quantile'")
        if self.fit_counts is None:
            raise invalid(
                "fit_counts", "is required when jet_transform is 'quantile' (it fixes the CDF levels)"
            )
        if len(self.jet_quantiles) != _NUM_CLASSES:
            raise invalid(
                "jet_quantiles",
                f"must be a list of {_NUM_CLASSES} entries (one per class {JET_CLASSES}) or null",
            )
        for i, rows in enumerate(self.jet_quantiles):
            if (rows is None) != (self.jet_mean[i] is None):
                state = "null" if rows is None else "present"
                raise invalid("jet_quantiles", f"row {i} ({JET_CLASSES[i]}) is {state} but jet_mean's is not")
            if rows is None:
                continue
            jet_names = self._jet_names()
            if len(rows) != len(jet_names):
                raise invalid(
                    "jet_quantiles",
                    f"row {i} ({JET_CLASSES[i]}) must hold {len(jet_names)} lists, got {len(rows)}",
                )
            for feature, values in zip(jet_names, rows, strict=True):
                if len(values) < 2 or any(b < a for a, b in zip(values[:-1], values[1:], strict=True)):
                    raise invalid(
                        "jet_quantiles",
                        f"row {i} ({JET_CLASSES[i]}), {feature}: must be >= 2 non-decreasing numbers",
                    )

    def array(self, key: str) -> np.ndarray:
        """Statistics ``key`` as a float64 [5, F] array, NaN rows for classes without statistics."""
        out = np.full((_NUM_CLASSES, self._width(key)), np.nan)
        for i, row in enumerate(getattr(self, key)):
            if row is not None:
                out[i] = row
        return out


def _file_error(err: ConfigError, data: dict[str, Any], source: str) -> PreprocessingFileError:
    """Re-word a ConfigError in this file's terms: "key 'jet_mean' row 0 (g), column 2: ..."."""
    match = re.match(r"([^.\[]*)(.*)", err.key)
    name, rest = (match.group(1), match.group(2)) if match else (err.key, "")
    if name == "<top level>":
        return PreprocessingFileError(f"preprocessing file {source}: {err.problem}")
    problem = err.problem
    if problem == "missing key":
        problem = f"is missing (found keys: {', '.join(sorted(data)) or 'none'})"
    elif problem.startswith("unknown key"):
        problem = "is not a key of this format" + problem[len("unknown key") :]
    index = [int(i) for i in re.findall(r"\[(\d+)\]", rest)]
    if name in ARRAYS and index and index[0] < _NUM_CLASSES:
        column = f", column {index[1]}" if len(index) > 1 else ""
        problem = f"row {index[0]} ({JET_CLASSES[index[0]]}){column}: {problem}"
    return PreprocessingFileError(f"preprocessing file {source}: key '{name}' {problem}")


def parse_preprocessing_file(data: Any, source: str = "<dict>") -> PreprocessingFile:
    """Validate the parsed JSON of a preprocessing file.

    Raises:
        PreprocessingFileError: naming ``source``, the key and (for the statistics) row and class.
    """
    try:
        return validate_section(PreprocessingFile, data, source)
    except ConfigError as err:
        raise _file_error(err, data if isinstance(data, dict) else {}, source) from None
