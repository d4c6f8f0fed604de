"""Jet images: score-based VE-SDE model and consistency model (training or distillation) on U-Nets.

Two registered families share this module: ``jet_image_score`` and ``jet_image_consistency``. Their
config files are :class:`gsgm.config.ImagesConfig` (one file may hold both model sections; a run's
config keeps only its own). A run directory holds, besides what every run has::

    RUN/config.json          the ImagesConfig with only the trained model's section, noise levels resolved
    RUN/preprocessing.json   image geometry and the training-image statistics the noise levels came from
    RUN/metadata.json        model, mode, teacher, data SHA-256, schedule length (total_steps)

Options: ``mode`` ("isolation": consistency training; "distill": consistency distillation from the
score run ``teacher``). Learning rate: constant (the paper: Adam 1e-4), per rank like every family.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gsgm.config import (
    ImagesConfig,
    images_config_from_dict,
    images_config_to_dict,
    load_images_config,
    resolve_from_data,
    save_images_config,
)
from gsgm.data.images import image_statistics, load_jet_images, make_image_dataset
from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.data.pipeline import train_valid_split
from gsgm.models.unet import build_unet
from gsgm.training.distributed import Distributed
from gsgm.training.driver import train_run
from gsgm.training.family import Family, PreparedData
from gsgm.training.image_models import ConsistencyImageModel, ScoreImageModel
from gsgm.training.loop import TrainingSetupError
from gsgm.training.run_dir import RunDirectory
from gsgm.utils.atomic import write_json_atomic
from gsgm.utils.provenance import hash_arrays

__all__ = [
    "JET_IMAGE_CONSISTENCY",
    "JET_IMAGE_SCORE",
    "JetImageFamily",
    "build_image_model",
    "load_image_run",
    "train_images",
]

MODES = ("isolation", "distill")


def _nets(cfg: ImagesConfig, model: str, count: int, seed: int) -> list[keras.Model]:
    """``count`` U-Nets of the same architecture; the first has the seeded initial weights."""
    keras.utils.set_random_seed(seed)
    unet_cfg = getattr(cfg, model).unet
    return [
        build_unet(unet_cfg, cfg.data.num_pixels, len(JET_CLASSES), seed=seed, name=f"{model}_{role}")
        for role in ("net", "ema", "target")[:count]
    ]


def build_image_model(
    cfg: ImagesConfig,
    *,
    mode: str = "isolation",
    total_steps: int = 1,
    teacher_denoiser=None,
) -> ScoreImageModel | ConsistencyImageModel:
    """The training model of a run config (one model section, noise levels resolved)."""
    model = cfg.model
    noise = cfg.noise
    if None in (noise.sigma_min, noise.sigma_max, noise.sigma_data):
        raise ValueError("the config's noise levels must be resolved first (gsgm.config.resolve_from_data)")
    seed = cfg.training.seed
    if model == "score":
        net, ema = _nets(cfg, model, 2, seed)
        return ScoreImageModel(
            net,
            ema,
            noise.sigma_min,
            noise.sigma_max,
            noise.sigma_data,
            cfg.score.ema_decay,
            seed,
            parameterization=cfg.score.parameterization,
        )
    net, ema, target = _nets(cfg, model, 3, seed)
    return ConsistencyImageModel(
        net,
        ema,
        target,
        noise.sigma_min,
        noise.sigma_max,
        noise.sigma_data,
        cfg.consistency,
        total_steps=total_steps,
        mode=mode,
        teacher_denoiser=teacher_denoiser,
        seed=seed,
    )


def load_image_run(
    run_dir: str | os.PathLike,
) -> tuple[ScoreImageModel | ConsistencyImageModel, ImagesConfig]:
    """Rebuild a run's model and load its inference weights (best epoch, else the latest checkpoint).

    A distilled consistency model is rebuilt without its teacher (sampling does not need it).
    """
    run = RunDirectory(run_dir).require()
    cfg = load_images_config(run.config_path)
    metadata = run.read_metadata()
    model = build_image_model(
        cfg, mode=metadata.get("mode") or "isolation", total_steps=int(metadata.get("total_steps", 1))
    )
    model.load_weights(run.inference_weights())
    return model, cfg


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_teacher(
    teacher: str | os.PathLike, cfg: ImagesConfig
) -> tuple[ScoreImageModel, ImagesConfig, Path]:
    """The teacher score model of a distillation, checked against the student's data geometry."""
    model, teacher_cfg = load_image_run(teacher)
    if teacher_cfg.model != "score":
        raise TrainingSetupError(
            f"--teacher {teacher} holds a {teacher_cfg.model} model; distillation needs a score run"
        )
    for key in ("num_pixels", "max_r"):
        if getattr(teacher_cfg.data, key) != getattr(cfg.data, key):
            raise TrainingSetupError(
                f"teacher {teacher} has data.{key}={getattr(teacher_cfg.data, key)}, "
                f"the student config {getattr(cfg.data, key)}"
            )
    return model, teacher_cfg, RunDirectory(teacher).inference_weights()


def _adopt_teacher_noise(cfg: ImagesConfig, teacher_cfg: ImagesConfig) -> ImagesConfig:
    """The student uses the teacher's noise range ([eps, T] = [sigma_min, sigma_max]) and sigma_data."""
    for key in ("sigma_min", "sigma_max", "sigma_data"):
        mine, theirs = getattr(cfg.noise, key), getattr(teacher_cfg.noise, key)
        if mine is not None and not np.isclose(mine, theirs):
            raise TrainingSetupError(
                f"noise.{key}={mine} in the config differs from the teacher's {theirs}; set it to null "
                "(the student adopts the teacher's noise range)"
            )
    return cfg.model_copy(update={"noise": teacher_cfg.noise.model_copy()})


class JetImageFamily(Family):
    """Jet images with the ``model`` section of an :class:`ImagesConfig` ("score" or "consistency")."""

    learning_rate_schedule = "constant"
    option_names = ("mode", "teacher")

    def __init__(self, model: str):
        if model not in ("score", "consistency"):
            raise ValueError(f"model must be 'score' or 'consistency', got {model!r}")
        self.model = model

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"jet_image_{self.model}"

    def load_config(self, path: str | os.PathLike) -> ImagesConfig:
        return load_images_config(path)

    def save_config(self, cfg: ImagesConfig, path: str | os.PathLike) -> None:
        save_images_config(cfg, path)

    def config_to_dict(self, cfg: ImagesConfig) -> dict[str, Any]:
        return images_config_to_dict(cfg)

    def config_from_dict(self, data: dict[str, Any], source: str = "<dict>") -> ImagesConfig:
        return images_config_from_dict(data, source)

    def default_search_space(self) -> dict[str, Any]:
        unet = f"{self.model}.unet"
        return {
            f"{unet}.base_channels": [32, 64, 128],
            f"{unet}.num_res_blocks": [1, 2, 3],
            "training.learning_rate": {"min": 3e-5, "max": 1e-3, "sampling": "log"},
        }

    def run_config(self, cfg: ImagesConfig, options: Mapping[str, Any], source: str) -> ImagesConfig:
        return cfg.for_model(self.model, source)

    def resumed_options(self, metadata: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
        # Runs written before families existed recorded mode and teacher at the top level.
        recorded = metadata.get("options") or {k: metadata.get(k) for k in ("mode", "teacher")}
        return {**dict(options), **{k: v for k, v in recorded.items() if v is not None}}

    def check_options(self, cfg: ImagesConfig, options: Mapping[str, Any]) -> dict[str, Any]:
        mode = options.get("mode") or "isolation"
        teacher = options.get("teacher")
        if cfg.model != self.model:
            raise TrainingSetupError(f"the run holds a {cfg.model} model, not {self.model}")
        if mode not in MODES:
            raise ValueError(f"--mode must be one of {MODES}, got {mode!r}")
        if self.model == "score" and (mode != "isolation" or teacher is not None):
            raise ValueError("--mode distill and --teacher apply to --model consistency only")
        if mode == "distill" and teacher is None:
            raise ValueError("--mode distill needs --teacher RUN (a trained score run)")
        return {"mode": mode, "teacher": None if teacher is None else str(teacher)}

    def prepare_data(
        self,
        cfg: ImagesConfig,
        data: str,
        *,
        max_per_class: int | None,
        options: Mapping[str, Any],
        resume_run: RunDirectory | None,
    ) -> PreparedData:
        context: dict[str, Any] = {"teacher_denoiser": None}
        metadata: dict[str, Any] = {
            "model": self.model,
            "mode": options["mode"] if self.model == "consistency" else None,
            "teacher": options["teacher"],
        }
        if options["mode"] == "distill":
            teacher_model, teacher_cfg, teacher_weights = _load_teacher(options["teacher"], cfg)
            teacher_hash = _file_sha256(teacher_weights)
            if resume_run is not None:
                recorded = resume_run.read_metadata().get("teacher_weights_sha256")
                if recorded not in (None, teacher_hash):
                    raise TrainingSetupError(
                        f"the teacher weights {teacher_weights} changed since this run started"
                    )
            else:
                cfg = _adopt_teacher_noise(cfg, teacher_cfg)
            context["teacher_denoiser"] = teacher_model.denoiser
            metadata["teacher_weights_sha256"] = teacher_hash
        images, labels = load_jet_images(
            data,
            cfg.data.classes,
            cfg.data.num_particles,
            split="train",
            max_jets_per_class=max_per_class,
            num_pixels=cfg.data.num_pixels,
            max_r=cfg.data.max_r,
        )
        train_idx, valid_idx = train_valid_split(len(images), cfg.training.valid_fraction, cfg.training.seed)
        stats = None
        if resume_run is None:
            stats = image_statistics(images[train_idx], seed=cfg.training.seed)
            cfg = resolve_from_data(cfg, stats)

        def write_files(run: RunDirectory) -> None:
            write_json_atomic(
                run.preprocessing_path,
                {
                    "kind": "jet_images",
                    "num_pixels": cfg.data.num_pixels,
                    "max_r": cfg.data.max_r,
                    "intensity": "pt_rel (no transformation)",
                    "train_image_statistics": stats,
                },
            )

        metadata.update(
            num_images=int(len(images)),
            num_train=int(len(train_idx)),
            num_valid=int(len(valid_idx)),
            classes=list(cfg.data.classes),
        )
        return PreparedData(
            config=cfg,
            train_arrays=(images[train_idx], labels[train_idx]),
            valid_arrays=(images[valid_idx], labels[valid_idx]),
            train_index=train_idx,
            sha256=hash_arrays([images, labels]),
            write_files=write_files,
            metadata=metadata,
            context=context,
        )

    def make_dataset(
        self,
        arrays: tuple[np.ndarray, ...],
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        num_ranks: int = 1,
        index: np.ndarray | None = None,
    ) -> tf.data.Dataset:
        images, labels = arrays
        return make_image_dataset(
            images,
            labels,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            rank=rank,
            num_ranks=num_ranks,
            index=index,
        )

    def build_training_model(
        self, cfg: ImagesConfig, prepared: PreparedData, *, options: Mapping[str, Any], steps_per_epoch: int
    ) -> ScoreImageModel | ConsistencyImageModel:
        # The consistency-training schedule N(k) runs over all planned steps K = epochs x steps/epoch,
        # which depends only on the data and the ranks, so a resumed run recomputes the same K.
        return build_image_model(
            cfg,
            mode=options["mode"],
            total_steps=int(cfg.training.epochs) * int(steps_per_epoch),
            teacher_denoiser=prepared.context["teacher_denoiser"],
        )

    def load_run(self, run_dir: str | os.PathLike) -> tuple[keras.Model, ImagesConfig]:
        return load_image_run(run_dir)


#: The registered instances (``gsgm.families.get_family("jet_image_score")``, ...).
JET_IMAGE_SCORE = JetImageFamily("score")
JET_IMAGE_CONSISTENCY = JetImageFamily("consistency")


def train_images(
    config: str | os.PathLike | ImagesConfig | None,
    model: str,
    data: str,
    out: str | os.PathLike,
    *,
    mode: str = "isolation",
    teacher: str | os.PathLike | None = None,
    epochs: int | None = None,
    resume: bool | str = False,
    seed: int | None = None,
    max_jets_per_class: int | None = None,
    verbose: int = 1,
    distributed: Distributed | None = None,
    debug_dump: str | os.PathLike | None = None,
) -> RunDirectory:
    """Train a jet-image model (``model`` "score" or "consistency") into ``out``; see
    :func:`gsgm.training.driver.train_run` for ``resume``, ``distributed`` and the rest."""
    if model not in ("score", "consistency"):
        raise ValueError(f"--model must be 'score' or 'consistency', got {model!r}")
    family = JET_IMAGE_SCORE if model == "score" else JET_IMAGE_CONSISTENCY
    return train_run(
        family,
        config,
        data,
        out,
        epochs=epochs,
        resume=resume,
        seed=seed,
        max_per_class=max_jets_per_class,
        options={"mode": mode, "teacher": teacher},
        verbose=verbose,
        distributed=distributed,
        debug_dump=debug_dump,
    )
