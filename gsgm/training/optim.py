"""Optimizers of every family: the configured algorithm, a learning-rate schedule, per-tensor clipping.

``training.learning_rate`` is the rate **per rank**: a run on N Horovod ranks starts at N times it, as
the released FPCD code does (the paper's 16e-4 on 16 GPUs is ``learning_rate: 1e-4``).
"""

from __future__ import annotations

from typing import Any

import keras

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamax": keras.optimizers.Adamax,
    "adamw": keras.optimizers.AdamW,
}
SCHEDULES = ("cosine", "constant")


def effective_learning_rate(training: Any, num_replicas: int) -> float:
    """Initial learning rate on ``num_replicas`` ranks: ``training.learning_rate`` x ranks."""
    return float(training.learning_rate) * int(num_replicas)


def make_optimizer(
    training: Any, steps_per_epoch: int, num_replicas: int = 1, schedule: str = "cosine"
) -> keras.optimizers.Optimizer:
    """The optimizer of a training section (``optimizer``, ``learning_rate``, ``epochs``, ``grad_clip_norm``).

    Args:
        training: the config's training section.
        steps_per_epoch: optimizer steps per epoch (of one rank); with ``epochs`` it sets the length
            of the cosine decay.
        num_replicas: ranks; the initial rate is :func:`effective_learning_rate`.
        schedule: "cosine" (FPCD: cosine decay to 0 over all planned steps) or "constant" (the
            jet-image papers).

    ``clipnorm`` clips each gradient tensor separately (the released code's per-tensor clip_by_norm).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    initial = effective_learning_rate(training, num_replicas)
    if schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=initial, decay_steps=max(1, int(training.epochs) * int(steps_per_epoch))
        )
    else:
        learning_rate = initial
    return OPTIMIZERS[training.optimizer](learning_rate=learning_rate, clipnorm=training.grad_clip_norm)
