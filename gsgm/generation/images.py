"""Sample jet images from a trained score or consistency run (the generation half of the jet-image family).

Generated images are post-processed identically for both models: negative pixels and pixels at or below
``sampling.pixel_threshold`` (default sigma_min) are set to 0. A generated image has noise of order
sigma_min in every pixel; without the threshold each such pixel would become a particle (Alg. 4 keeps
every pixel > 0) and inflate the reconstructed jet mass.
"""

from __future__ import annotations

import sys
import weakref

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from gsgm.config import ImagesConfig
from gsgm.data.jetnet_format import JET_CLASSES, parse_classes
from gsgm.diffusion.consistency import sample_consistency
from gsgm.diffusion.samplers import sample_pc, sample_probability_flow
from gsgm.models.precision import mixed_precision_copy
from gsgm.models.unet import unet_keeps_float32
from gsgm.training.image_models import CompiledDenoiser, ConsistencyImageModel, ScoreImageModel

__all__ = ["generate_images", "image_sampling_denoiser", "postprocess_images"]

# model -> {(precision, jit_compile): CompiledDenoiser}: one per model and setting, so that each
# network call is traced (and XLA-compiled) once per batch shape.
_DENOISERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def image_sampling_denoiser(
    model: ScoreImageModel | ConsistencyImageModel, precision: str = "float32", jit_compile: bool = False
) -> CompiledDenoiser:
    """The compiled EMA denoiser of ``model`` computing in ``precision``, optionally XLA-compiled.

    "float32" without XLA is ``model.denoiser`` itself. Otherwise the model's adapter over its EMA
    U-Net (float32) or over a mixed-precision copy of it (:func:`unet_keeps_float32` layers stay
    float32), made once per model and setting; a copy holds the weights of the moment it was made.
    Inputs and outputs are those of ``model.denoiser``: ``z [B, N, N, 1]``, ``sigma [B]``, ``label [B]``.
    """
    if precision == "float32" and not jit_compile:
        return model.denoiser
    per_model = _DENOISERS.setdefault(model, {})
    key = (precision, bool(jit_compile))
    if key not in per_model:
        net = model.ema_net
        if precision != "float32":
            net = mixed_precision_copy(net, precision, unet_keeps_float32)
        per_model[key] = CompiledDenoiser(model.sampling_adapter(net), jit_compile=jit_compile)
    return per_model[key]


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
    progress: bool = False,
    precision: str | None = None,
    jit_compile: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``images_per_class`` jet images of each class with the run's EMA network.

    Args:
        model, cfg: from :func:`gsgm.families.jet_images.load_image_run`.
        classes: subset of the run's classes (default: all of them).
        num_steps: sampler steps (default: the config's ``num_steps``). Score model: noise levels of
            the PC sampler (``num_steps * (corrector_steps + 1)`` network calls) or the ODE sampler;
            consistency model: network calls of multistep sampling.
        seed: seed of the initial noise and of the samplers (same seed -> same images).
        batch_size: images per network call.
        sampler: score model only: "pc" or "ode" (default: the config's).
        raw: return the sampler output without post-processing (:func:`postprocess_images`).
        progress: one bar on stderr counting images over all classes and batches, with an ETA.
        precision, jit_compile: compute type and XLA of the network calls (default: the config's
            ``sampling.precision`` / ``sampling.jit_compile``; :func:`image_sampling_denoiser`).

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
    n = cfg.data.num_pixels
    if kind == "score":
        sampler = sampler or section.sampler
        if sampler not in ("pc", "ode"):
            raise ValueError(f"sampler must be 'pc' or 'ode', got {sampler!r}")
    elif sampler not in (None, "consistency"):
        raise ValueError("--sampler applies to score runs only")
    denoiser = image_sampling_denoiser(
        model,
        cfg.sampling.precision if precision is None else precision,
        cfg.sampling.jit_compile if jit_compile is None else jit_compile,
    )
    sigma_max = float(model.schedule.sampling_times(steps)[0])
    outputs, labels_out = [], []
    bar = tqdm(
        total=images_per_class * len(classes),
        unit="image",
        desc="sampling",
        file=sys.stderr,
        disable=not progress,
    )
    for class_number, jet_class in enumerate(classes):
        label = JET_CLASSES.index(jet_class)
        for start in range(0, images_per_class, batch_size):
            count = min(batch_size, images_per_class - start)
            labels = tf.fill([count], tf.constant(label, tf.int32))
            batch_seed = seed * 1_000_003 + class_number * 10_007 + start
            x = tf.random.stateless_normal([count, n, n, 1], [batch_seed, 1]) * sigma_max
            extra = {"label": labels}
            if kind == "consistency":
                x = sample_consistency(denoiser, x, model.schedule, steps, seed=batch_seed, cond=extra)
            elif sampler == "pc":
                x = sample_pc(
                    denoiser,
                    x,
                    model.schedule,
                    steps,
                    snr=section.snr,
                    corrector_steps=section.corrector_steps,
                    seed=batch_seed,
                    cond=extra,
                )
            else:
                x = sample_probability_flow(denoiser, x, model.schedule, steps, cond=extra)
            outputs.append(np.asarray(x, np.float32)[..., 0])
            labels_out.append(np.full(count, label, np.int32))
            bar.update(count)
    bar.close()
    images = np.concatenate(outputs)
    if not raw:
        images = postprocess_images(images, cfg.sampling.pixel_threshold)
    return images, np.concatenate(labels_out)
