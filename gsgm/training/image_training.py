"""Train, reload and sample the jet-image diffusion models (score-based VE SDE, consistency).

A run directory follows :mod:`gsgm.training.run_dir`; for images its files are

    RUN/config.json          the ImagesConfig with only the trained model's section, noise levels resolved
    RUN/preprocessing.json   image geometry and the training-image statistics the noise levels came from
    RUN/metadata.json        model, mode, teacher, seed, versions, data source and SHA-256, schedule length
    RUN/history.csv, best.weights.h5, checkpoints/   as for every gsgm run (gsgm.training.trainer.fit_epochs)

Generated images are post-processed identically for both models: negative pixels and pixels at or below
``sampling.pixel_threshold`` (default sigma_min) are set to 0. A generated image has noise of order
sigma_min in every pixel; without the threshold each such pixel would become a particle (Alg. 4 keeps
every pixel > 0) and inflate the reconstructed jet mass.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import tensorflow as tf

from gsgm.config import ImagesConfig, load_images_config, resolve_from_data, save_images_config
from gsgm.data.images import image_statistics, load_jet_images, make_image_dataset
from gsgm.data.jetnet_format import JET_CLASSES, parse_classes
from gsgm.data.loading import resolve_data_dir
from gsgm.data.pipeline import train_valid_split
from gsgm.diffusion.consistency import consistency_sampling_sigmas, sample_consistency
from gsgm.diffusion.ve_sde import sample_pc, sample_probability_flow, ve_sigmas
from gsgm.models.unet import build_unet
from gsgm.training.image_models import ConsistencyImageModel, ScoreImageModel
from gsgm.training.run_dir import RunDirectory, hash_arrays, now_iso, package_versions
from gsgm.training.trainer import TrainingSetupError, fit_epochs
from gsgm.utils.atomic import atomic_path, write_json_atomic

__all__ = [
    "IMAGES_FILE_KIND",
    "build_image_model",
    "generate_images",
    "load_image_run",
    "postprocess_images",
    "read_images_file",
    "train_images",
    "write_images_file",
]

IMAGES_FILE_KIND = "gsgm jet images"
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
            "the config's noise levels must be resolved first (gsgm.config.resolve_from_data)"
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
    return cfg.model_copy(update={"noise": teacher_cfg.noise.model_copy()})


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


def postprocess_images(images: np.ndarray, threshold: float) -> np.ndarray:
    """Generated images as physical jet images: ``[M, N, N]`` float32, pixels ``<= threshold`` set to 0."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    return np.where(images > threshold, images, 0.0).astype(np.float32)


def generate_images(
    model: ScoreImageModel | ConsistencyImageModel,
    cfg: ImagesConfig,
    images_per_class: int,
    classes: list[str] | None = None,
    num_steps: int | None = None,
    seed: int = 0,
    batch_size: int = 500,
    sampler: str | None = None,
    raw: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``images_per_class`` jet images of each class with the run's EMA network.

    Args:
        model, cfg: from :func:`load_image_run`.
        classes: subset of the run's classes (default: all of them).
        num_steps: sampler steps (default: the config's ``num_steps``). Score model: noise levels of
            the PC sampler (``num_steps * (corrector_steps + 1)`` network calls) or the ODE sampler;
            consistency model: network calls of multistep sampling.
        seed: seed of the initial noise and of the samplers (same seed -> same images).
        batch_size: images per network call.
        sampler: score model only: "pc" or "ode" (default: the config's).
        raw: return the sampler output without post-processing (:func:`postprocess_images`).

    Returns:
        (images ``[M, N, N]`` float32, labels ``[M]`` int32), classes in the order given.
    """
    classes = list(cfg.data.classes) if classes is None else parse_classes(classes)
    unknown = [c for c in classes if c not in cfg.data.classes]
    if unknown:
        raise ValueError(f"the run was trained on classes {list(cfg.data.classes)}, not on {unknown}")
    if images_per_class < 1:
        raise ValueError(f"images_per_class must be >= 1, got {images_per_class}")
    kind = cfg.model
    section = getattr(cfg, kind)
    steps = int(num_steps or section.num_steps)
    noise = cfg.noise
    n = cfg.data.num_pixels
    if kind == "score":
        sampler = sampler or section.sampler
        if sampler not in ("pc", "ode"):
            raise ValueError(f"sampler must be 'pc' or 'ode', got {sampler!r}")
        sigmas = ve_sigmas(steps, noise.sigma_min, noise.sigma_max).numpy()
    else:
        if sampler not in (None, "consistency"):
            raise ValueError("--sampler applies to score runs only")
        sigmas = consistency_sampling_sigmas(steps, noise.sigma_min, noise.sigma_max, section.rho)
    outputs, labels_out = [], []
    for class_number, jet_class in enumerate(classes):
        label = JET_CLASSES.index(jet_class)
        for start in range(0, images_per_class, batch_size):
            count = min(batch_size, images_per_class - start)
            labels = tf.fill([count], tf.constant(label, tf.int32))
            batch_seed = seed * 1_000_003 + class_number * 10_007 + start
            x = tf.random.stateless_normal([count, n, n, 1], [batch_seed, 1]) * float(sigmas[0])
            extra = {"label": labels}
            if kind == "consistency":
                x = sample_consistency(
                    model.consistency_fn, x, sigmas, noise.sigma_min, seed=batch_seed, extra_args=extra
                )
            elif sampler == "pc":
                x = sample_pc(
                    model.score,
                    x,
                    sigmas,
                    snr=section.snr,
                    corrector_steps=section.corrector_steps,
                    seed=batch_seed,
                    extra_args=extra,
                )
            else:
                x = sample_probability_flow(model.score, x, sigmas, extra_args=extra)
            outputs.append(np.asarray(x, np.float32)[..., 0])
            labels_out.append(np.full(count, label, np.int32))
    images = np.concatenate(outputs)
    if not raw:
        images = postprocess_images(images, cfg.sampling.pixel_threshold)
    return images, np.concatenate(labels_out)


def write_images_file(
    path: str | os.PathLike, images: np.ndarray, labels: np.ndarray, attributes: dict | None = None
) -> Path:
    """Write jet images atomically as HDF5: datasets ``images`` [M, N, N], ``labels`` [M] + attributes."""
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels, np.int32)
    if images.ndim != 3 or labels.shape != (images.shape[0],):
        raise ValueError(f"need images [M, N, N] and labels [M], got {images.shape} and {labels.shape}")
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("images", data=images, compression="gzip", shuffle=True)
        handle.create_dataset("labels", data=labels)
        handle.attrs["kind"] = IMAGES_FILE_KIND
        handle.attrs["classes"] = json.dumps(list(JET_CLASSES))
        for key, value in (attributes or {}).items():
            handle.attrs[key] = value if isinstance(value, int | float | str) else json.dumps(value)
    return path


def read_images_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a file written by :func:`write_images_file`: (images [M, N, N], labels [M], attributes)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"images file not found: {path}")
    with h5py.File(path, "r") as handle:
        if handle.attrs.get("kind") != IMAGES_FILE_KIND or "images" not in handle or "labels" not in handle:
            raise ValueError(f"{path} is not a gsgm jet-images file (write it with scripts/sample_images.py)")
        attributes = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
        return (
            np.asarray(handle["images"][...], np.float32),
            np.asarray(handle["labels"][...], np.int32),
            attributes,
        )
