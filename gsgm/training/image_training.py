"""Train and reload the jet-image diffusion models (score-based VE SDE, consistency).

A run directory follows :mod:`gsgm.training.run_dir`; for images its files are

    RUN/config.json          the ImagesConfig with only the trained model's section, noise levels resolved
    RUN/preprocessing.json   image geometry and the training-image statistics the noise levels came from
    RUN/metadata.json        model, mode, teacher, seed, versions, data source and SHA-256, schedule length
    RUN/history.csv, best.weights.h5, checkpoints/   as for every gsgm run (gsgm.training.trainer.fit_epochs)

Sampling from a run and the sample-file format are in :mod:`gsgm.generation` (``generate_images``,
``write_images_file``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shlex
import sys
from pathlib import Path

import keras
import numpy as np

from gsgm.data.images import image_statistics, load_jet_images, make_image_dataset
from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.data.loading import resolve_data_dir
from gsgm.data.pipeline import train_valid_split
from gsgm.images_config import ImagesConfig, load_images_config, resolve_from_data, save_images_config
from gsgm.models.unet import build_unet
from gsgm.training.image_models import ConsistencyImageModel, ScoreImageModel
from gsgm.training.run_dir import RunDirectory
from gsgm.training.trainer import TrainingSetupError, fit_epochs
from gsgm.utils.atomic import write_json_atomic
from gsgm.utils.provenance import hash_arrays, now_iso, package_versions

__all__ = ["build_image_model", "load_image_run", "train_images"]

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
    teacher_score=None,
) -> ScoreImageModel | ConsistencyImageModel:
    """The training model of a run config (one model section, noise levels resolved)."""
    model = cfg.model
    noise = cfg.noise
    if None in (noise.sigma_min, noise.sigma_max, noise.sigma_data):
        raise ValueError(
            "the config's noise levels must be resolved first (gsgm.images_config.resolve_from_data)"
        )
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
        teacher_score=teacher_score,
        seed=seed,
    )


def _optimizer(cfg: ImagesConfig) -> keras.optimizers.Optimizer:
    """Constant learning rate (paper: Adam, 1e-4); optional per-tensor gradient clipping."""
    optimizers = {
        "adam": keras.optimizers.Adam,
        "adamax": keras.optimizers.Adamax,
        "adamw": keras.optimizers.AdamW,
    }
    return optimizers[cfg.training.optimizer](
        learning_rate=cfg.training.learning_rate, clipnorm=cfg.training.grad_clip_norm
    )


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
    return dataclasses.replace(cfg, noise=dataclasses.replace(teacher_cfg.noise))


def train_images(
    config: str | os.PathLike | ImagesConfig | None,
    model: str,
    data: str,
    out: str | os.PathLike,
    *,
    mode: str = "isolation",
    teacher: str | os.PathLike | None = None,
    epochs: int | None = None,
    resume: bool = False,
    seed: int | None = None,
    max_jets_per_class: int | None = None,
    verbose: int = 1,
) -> RunDirectory:
    """Train a jet-image model on the JetNet files in ``data`` (a directory or ``"builtin"``) into ``out``.

    Args:
        config: JSON config path or ImagesConfig (ignored when resuming: the run's config is used).
        model: "score" or "consistency" (the config section to use).
        data: JetNet-format directory or "builtin"; images are made from the jetnet training split.
        out: run directory; must not hold a run unless ``resume``.
        mode: consistency only: "isolation" (consistency training) or "distill" (from ``teacher``).
        teacher: score run directory to distil from (mode "distill").
        epochs: overrides training.epochs (also fixes K of the consistency-training schedule).
        resume: continue from the newest checkpoint.
        seed: overrides training.seed.
        max_jets_per_class: only the first jets of each class's training split (quick runs).
        verbose: Keras verbosity.
    """
    if model not in ("score", "consistency"):
        raise ValueError(f"--model must be 'score' or 'consistency', got {model!r}")
    if mode not in MODES:
        raise ValueError(f"--mode must be one of {MODES}, got {mode!r}")
    if model == "score" and (mode != "isolation" or teacher is not None):
        raise ValueError("--mode distill and --teacher apply to --model consistency only")
    if mode == "distill" and teacher is None and not resume:
        raise ValueError("--mode distill needs --teacher RUN (a trained score run)")
    run = RunDirectory(out)
    if resume:
        run.require()
        cfg = load_images_config(run.config_path)
        metadata = run.read_metadata()
        if cfg.model != model:
            raise TrainingSetupError(f"{run.path} holds a {cfg.model} run, not {model}")
        if epochs is not None and epochs != cfg.training.epochs:
            raise TrainingSetupError(
                f"--epochs {epochs} differs from the run's training.epochs={cfg.training.epochs}; "
                "a resumed run keeps its schedule"
            )
        data = metadata.get("data_source", data)
        max_jets_per_class = metadata.get("max_jets_per_class", max_jets_per_class)
        mode = metadata.get("mode") or mode
        teacher = metadata.get("teacher") or teacher
    else:
        if run.exists():
            raise TrainingSetupError(f"{run.path} already holds a run: pass --resume or choose another --out")
        if config is None:
            raise ValueError("--config is required unless --resume is given")
        cfg = config if isinstance(config, ImagesConfig) else load_images_config(config)
        cfg = cfg.for_model(model, str(config) if not isinstance(config, ImagesConfig) else "<config>")
        if epochs is not None:
            cfg.training.epochs = int(epochs)
        if seed is not None:
            cfg.training.seed = int(seed)
        metadata = {}
    seed = cfg.training.seed

    teacher_model = None
    if mode == "distill":
        teacher_model, teacher_cfg, teacher_weights = _load_teacher(teacher, cfg)
        teacher_hash = _file_sha256(teacher_weights)
        if resume and metadata.get("teacher_weights_sha256") not in (None, teacher_hash):
            raise TrainingSetupError(f"the teacher weights {teacher_weights} changed since this run started")
        if not resume:
            cfg = _adopt_teacher_noise(cfg, teacher_cfg)

    images, labels = load_jet_images(
        data,
        cfg.data.classes,
        cfg.data.num_particles,
        split="train",
        max_jets_per_class=max_jets_per_class,
        num_pixels=cfg.data.num_pixels,
        max_r=cfg.data.max_r,
    )
    data_hash = hash_arrays([images, labels])
    if resume and metadata.get("data_sha256") not in (None, data_hash):
        raise TrainingSetupError(
            f"the training images from {data} differ from those {run.path} was trained on"
        )
    train_idx, valid_idx = train_valid_split(len(images), cfg.training.valid_fraction, seed)
    batch_size = cfg.training.batch_size
    steps_per_epoch = int(np.ceil(len(train_idx) / batch_size))
    total_steps = int(metadata.get("total_steps", cfg.training.epochs * steps_per_epoch))
    if not resume:
        stats = image_statistics(images[train_idx], seed=seed)
        cfg = resolve_from_data(cfg, stats)
        run.path.mkdir(parents=True, exist_ok=True)
        save_images_config(cfg, run.config_path)
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
        run.write_metadata(
            {
                "created": now_iso(),
                "command": " ".join(shlex.quote(a) for a in sys.argv),
                "model": model,
                "mode": mode if model == "consistency" else None,
                "teacher": str(teacher) if teacher is not None else None,
                "teacher_weights_sha256": teacher_hash if mode == "distill" else None,
                "seed": seed,
                "versions": package_versions(),
                "data_source": str(data),
                "data_dir": str(resolve_data_dir(data)),
                "data_sha256": data_hash,
                "num_images": int(len(images)),
                "num_train": int(len(train_idx)),
                "num_valid": int(len(valid_idx)),
                "max_jets_per_class": max_jets_per_class,
                "classes": list(cfg.data.classes),
                "steps_per_epoch": steps_per_epoch,
                "total_steps": total_steps,
            }
        )

    training_model = build_image_model(
        cfg,
        mode=mode,
        total_steps=total_steps,
        teacher_score=teacher_model.score if teacher_model is not None else None,
    )
    training_model.compile(optimizer=_optimizer(cfg))
    train_images_, train_labels = images[train_idx], labels[train_idx]
    fit_epochs(
        run,
        training_model,
        lambda epoch: make_image_dataset(
            train_images_, train_labels, batch_size, shuffle=True, seed=seed * 100_003 + epoch
        ),
        make_image_dataset(images[valid_idx], labels[valid_idx], batch_size, shuffle=False),
        epochs=cfg.training.epochs,
        patience=cfg.training.early_stopping_patience,
        resume=resume,
        verbose=verbose,
    )
    return run


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
