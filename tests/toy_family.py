"""A toy model family, registered from outside gsgm: class-conditional diffusion on 2-d Gaussian mixtures.

It exists to show (and test) what a new family costs: this one module holds its config section, its
data, its network, its training and distillation models and its sampler, and registers them with one
call each (config family, model family, sampler). Nothing in gsgm is edited for it; the commands find
it through ``GSGM_FAMILIES=toy_family`` (with this directory on ``PYTHONPATH``).

Data: class c (0, 1, 2) is a 2-d Gaussian of width ``data.width`` around ``radius (cos 2 pi c / 3,
sin 2 pi c / 3)``; the sample is drawn from ``data.seed``. Model: an MLP predicting the velocity v on the
cosine VP schedule (as FPCD), sampled with DDIM, distillable to one step.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gsgm.config import Section, register_config_family, validate_section
from gsgm.config.base import PositiveFloat, PositiveInt
from gsgm.config.registry import config_from_any_dict, save_any_config
from gsgm.config.training import (
    BatchSize,
    EarlyStoppingPatience,
    EmaDecay,
    Epochs,
    GradClipNorm,
    LearningRate,
    Optimizer,
    Seed,
    ValidFraction,
)
from gsgm.diffusion import VDenoiser, VPCosineSchedule, diffuse, masked_mse, v_loss
from gsgm.diffusion.ddim import ddim_sample
from gsgm.diffusion.distillation import distillation_targets, student_step_times
from gsgm.families import register_family
from gsgm.generation.registry import register_sampler
from gsgm.training.base_model import DiffusionTrainingModel
from gsgm.training.family import Family, PreparedData
from gsgm.training.run_dir import RunDirectory
from gsgm.utils.atomic import atomic_path
from gsgm.utils.provenance import hash_arrays

NAME = "toy_mixture"
NUM_CLASSES = 3
DATA_SOURCE = "generated"


# ----------------------------------------------------------------------------------------- config
class ToyData(Section):
    samples_per_class: PositiveInt = 400
    radius: PositiveFloat = 2.0
    width: PositiveFloat = 0.25
    seed: Seed = 0


class ToyNet(Section):
    width: PositiveInt = 64
    depth: PositiveInt = 2


class ToyTraining(Section):
    batch_size: BatchSize = 64
    learning_rate: LearningRate = 3e-3
    optimizer: Optimizer = "adam"
    epochs: Epochs = 10
    early_stopping_patience: EarlyStoppingPatience = 10
    valid_fraction: ValidFraction = 0.2
    ema_decay: EmaDecay = 0.9
    grad_clip_norm: GradClipNorm = None
    seed: Seed = 1


class ToySampling(Section):
    num_steps: PositiveInt = 16


class ToyConfig(Section):
    name: str
    description: str
    data: ToyData
    net: ToyNet
    training: ToyTraining
    sampling: ToySampling


register_config_family(NAME, ToyConfig)


# ------------------------------------------------------------------------------------------- data
def class_means(radius: float) -> np.ndarray:
    """[3, 2] centres of the mixture components."""
    angles = 2.0 * np.pi * np.arange(NUM_CLASSES) / NUM_CLASSES
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def make_mixture(cfg: ToyData) -> tuple[np.ndarray, np.ndarray]:
    """(points [3 n, 2] float32, labels [3 n] int32), class by class, from ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    labels = np.repeat(np.arange(NUM_CLASSES), cfg.samples_per_class)
    points = class_means(cfg.radius)[labels] + cfg.width * rng.standard_normal((len(labels), 2))
    return points.astype(np.float32), labels.astype(np.int32)


# ----------------------------------------------------------------------------------------- models
def build_velocity_net(cfg: ToyNet, seed: int) -> keras.Model:
    """MLP (z [B, 2], t [B], class_onehot [B, 3]) -> v_hat [B, 2]."""
    keras.utils.set_random_seed(seed)
    z = keras.Input((2,), name="z")
    t = keras.Input((), name="t")
    onehot = keras.Input((NUM_CLASSES,), name="class_onehot")
    angle = keras.ops.expand_dims(t, -1) * np.pi / 2
    h = keras.layers.Concatenate()([z, keras.ops.sin(angle), keras.ops.cos(angle), onehot])
    for _ in range(cfg.depth):
        h = keras.layers.Dense(cfg.width, activation="swish")(h)
    return keras.Model({"z": z, "t": t, "class_onehot": onehot}, keras.layers.Dense(2)(h))


class ToyModel(DiffusionTrainingModel):
    """v-prediction on the cosine VP schedule; ``denoiser`` (EMA network) for sampling."""

    def __init__(self, net: keras.Model, ema_decay: float, seed: int, **kwargs):
        super().__init__(ema_decay=ema_decay, seed=seed, metric_names=("loss",), num_seeds=2, **kwargs)
        self.schedule = VPCosineSchedule()
        self.net = net
        self.ema_net = keras.models.clone_model(net)
        self.add_ema("net", "ema_net")
        self.denoiser = VDenoiser(self._ema_velocity, self.schedule)

    def _ema_velocity(self, z, t, *, class_onehot):
        return self.ema_net({"z": z, "t": t, "class_onehot": class_onehot}, training=False)

    def compute_losses(self, batch, seeds, *, training: bool, step) -> dict[str, tf.Tensor]:
        x, onehot = batch["points"], batch["class_onehot"]
        t = tf.random.stateless_uniform(tf.shape(x)[:1], seed=seeds[0])
        noise = tf.random.stateless_normal(tf.shape(x), seed=seeds[1])
        z = diffuse(x, t, noise, self.schedule)
        net = self.net if training else self.ema_net
        v_hat = net({"z": z, "t": t, "class_onehot": onehot}, training=training)
        return {"loss": v_loss(v_hat, x, noise, t, self.schedule)}


class ToyDistillationModel(ToyModel):
    """Progressive-distillation student: one of its steps matches two of its teacher's."""

    def __init__(self, net: keras.Model, teacher: ToyModel, num_steps: int, ema_decay: float, seed: int):
        super().__init__(net, ema_decay, seed)
        self.num_steps = int(num_steps)
        self._teacher = [teacher]  # a list: Keras must not track (and save) the teacher's weights

    def compute_losses(self, batch, seeds, *, training: bool, step) -> dict[str, tf.Tensor]:
        x, onehot = batch["points"], batch["class_onehot"]
        index = tf.random.stateless_uniform(
            tf.shape(x)[:1], seed=seeds[0], maxval=self.num_steps, dtype=tf.int32
        )
        t, t_mid, s = student_step_times(index, self.num_steps, self.schedule)
        z = diffuse(x, t, tf.random.stateless_normal(tf.shape(x), seed=seeds[1]), self.schedule)
        v_target, _ = distillation_targets(
            self._teacher[0].denoiser, z, t, t_mid, s, self.schedule, cond={"class_onehot": onehot}
        )
        net = self.net if training else self.ema_net
        return {
            "loss": masked_mse(v_target, net({"z": z, "t": t, "class_onehot": onehot}, training=training))
        }


# ----------------------------------------------------------------------------------------- family
class ToyFamily(Family):
    name = NAME
    learning_rate_schedule = "cosine"

    def load_config(self, path: str | os.PathLike) -> ToyConfig:
        return config_from_any_dict(json.loads(Path(path).read_text()), str(path), family=NAME)[1]

    def save_config(self, cfg: ToyConfig, path: str | os.PathLike) -> None:
        save_any_config(cfg, path)

    def config_to_dict(self, cfg: ToyConfig) -> dict[str, Any]:
        return cfg.model_dump()

    def config_from_dict(self, data: dict[str, Any], source: str = "<dict>") -> ToyConfig:
        return validate_section(ToyConfig, data, source)

    def default_search_space(self) -> dict[str, Any]:
        return {
            "net.width": [16, 32],
            "training.learning_rate": {"min": 1e-3, "max": 1e-2, "sampling": "log"},
        }

    def prepare_data(self, cfg, data, *, max_per_class, options, resume_run) -> PreparedData:
        if data != DATA_SOURCE:
            raise ValueError(f"the {NAME} family makes its own data: pass --data {DATA_SOURCE}, not {data!r}")
        points, labels = make_mixture(cfg.data)
        rng = np.random.default_rng(cfg.training.seed)
        order = rng.permutation(len(points))
        n_valid = max(1, int(round(len(points) * cfg.training.valid_fraction)))
        valid_idx, train_idx = np.sort(order[:n_valid]), np.sort(order[n_valid:])
        return PreparedData(
            config=cfg,
            train_arrays=(points[train_idx], labels[train_idx]),
            valid_arrays=(points[valid_idx], labels[valid_idx]),
            train_index=train_idx,
            sha256=hash_arrays([points, labels]),
            metadata={"num_train": int(len(train_idx)), "num_valid": int(len(valid_idx))},
        )

    def make_dataset(self, arrays, *, batch_size, shuffle, seed, rank=0, num_ranks=1, index=None):
        points, labels = arrays
        shard = np.arange(rank, len(points), num_ranks)
        tensors = {
            "points": tf.constant(points[shard]),
            "class_onehot": tf.constant(np.eye(NUM_CLASSES, dtype=np.float32)[labels[shard]]),
        }
        if index is not None:
            tensors["index"] = tf.constant(np.asarray(index, np.int64)[shard])
        order = np.random.default_rng(seed).permutation(len(shard)) if shuffle else np.arange(len(shard))
        ds = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        return ds.map(lambda i: {k: tf.gather(v, i) for k, v in tensors.items()})

    def build_training_model(self, cfg, prepared, *, options, steps_per_epoch) -> ToyModel:
        return ToyModel(
            build_velocity_net(cfg.net, cfg.training.seed), cfg.training.ema_decay, cfg.training.seed
        )

    def load_run(self, run_dir: str | os.PathLike) -> tuple[ToyModel, ToyConfig]:
        run = RunDirectory(run_dir).require()
        cfg = self.load_config(run.config_path)
        model = self.build_training_model(cfg, None, options={}, steps_per_epoch=1)
        model.load_weights(run.inference_weights())
        return model, cfg

    def build_distillation_model(
        self, cfg, teacher: ToyModel, num_steps: int, seed: int
    ) -> ToyDistillationModel:
        net = build_velocity_net(cfg.net, seed)
        net.set_weights(teacher.ema_net.get_weights())
        return ToyDistillationModel(net, teacher, num_steps, cfg.training.ema_decay, seed)


TOY = register_family(ToyFamily())


# ---------------------------------------------------------------------------------------- sampler
@dataclass
class ToySamples:
    path: Path
    num: int
    steps: int
    seconds: float

    def summary(self) -> str:
        return f"wrote {self.num} points with {self.steps} steps to {self.path} in {self.seconds:.1f} s"


def sample_toy(run, out, per_class: int, *, steps: int | None = None, seed: int = 0) -> ToySamples:
    """``per_class`` points of every class from run ``run`` (its distillation stage for ``steps``)."""
    from gsgm.training.distill import resolve_run_for_steps

    chosen = resolve_run_for_steps(run, steps)
    model, cfg = TOY.load_run(chosen)
    steps = int(steps or cfg.sampling.num_steps)
    labels = np.repeat(np.arange(NUM_CLASSES), per_class)
    started = time.perf_counter()
    noise = tf.random.stateless_normal([len(labels), 2], seed=[seed, 7])
    cond = {"class_onehot": tf.constant(np.eye(NUM_CLASSES, dtype=np.float32)[labels])}
    points = np.asarray(ddim_sample(model.denoiser, noise, model.schedule, steps, cond=cond))
    seconds = time.perf_counter() - started
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, points=points, labels=labels)
    return ToySamples(Path(out), len(labels), steps, seconds)


register_sampler(NAME, sample_toy)


def summary(points: np.ndarray, labels: np.ndarray) -> Mapping[int, np.ndarray]:
    """Mean point per class (what the tests compare with :func:`class_means`)."""
    return {c: points[labels == c].mean(axis=0) for c in range(NUM_CLASSES)}
