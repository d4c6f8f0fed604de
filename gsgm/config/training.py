"""Field types of the optimisation sections, shared by every family.

Families keep their own training section (FPCD's has ``ema_decay`` there, the jet images' keep it per
model, and defaults differ), but a batch size, a learning rate or a validation fraction obeys the same
rule and gets the same message everywhere: each section declares its fields with these types.
"""

from __future__ import annotations

import typing
from typing import Literal

from gsgm.config.base import (
    Fraction,
    NonNegativeInt,
    OpenFraction,
    PositiveFloat,
    PositiveFloatOrNull,
    PositiveInt,
)

__all__ = [
    "OPTIMIZERS",
    "BatchSize",
    "EarlyStoppingPatience",
    "EmaDecay",
    "Epochs",
    "GradClipNorm",
    "LearningRate",
    "Optimizer",
    "Seed",
    "ValidFraction",
]

#: Keras optimisers a config may name.
Optimizer = Literal["adam", "adamax", "adamw"]
OPTIMIZERS: tuple[str, ...] = typing.get_args(Optimizer)

BatchSize = PositiveInt
LearningRate = PositiveFloat
Epochs = PositiveInt
EarlyStoppingPatience = PositiveInt
#: Share of the training sample held out for the validation loss, in (0, 1).
ValidFraction = OpenFraction
#: Decay of an exponential moving average of the weights, in [0, 1).
EmaDecay = Fraction
#: Per-tensor gradient clipping norm, > 0; null disables clipping.
GradClipNorm = PositiveFloatOrNull
Seed = NonNegativeInt
