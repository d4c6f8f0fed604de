"""Generate JetNet-format jets from a trained FPCD run (EMA networks, DDIM, inverse preprocessing).

Sampling precision (``sampling.precision`` of the config): "float32" samples with the run's EMA
networks themselves; "bfloat16" / "float16" with copies of them built under Keras' mixed policy
(16-bit matmuls and activations, float32 weights), see :func:`sampling_denoisers`.
"""

from __future__ import annotations

import sys
import weakref

import keras
import numpy as np

from gsgm.config import FPCDConfig
from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.data.preprocessing import JetPreprocessor
from gsgm.diffusion import VDenoiser
from gsgm.diffusion.point_cloud import sample_point_clouds
from gsgm.models.embedding import GaussianFourierFeatures
from gsgm.models.precision import mixed_precision_copy as precision_copy
from gsgm.training.fpcd_model import FPCDModel

#: Layers kept in float32 under a mixed policy: the Fourier features (a 16-bit angle 2 pi f t of
#: ~100 rad would be off by ~1 rad) and the velocity outputs (cheap, and the DDIM update uses them).
_FLOAT32_LAYERS = ("jet_output", "part_output", "v_hat")
# model -> {precision: (jet denoiser, particle denoiser)}: one stable pair per model, so that the
# compiled DDIM loops (cached per denoiser object) are traced once.
_DENOISERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _keeps_float32(layer) -> bool:
    return isinstance(layer, GaussianFourierFeatures) or layer.name in _FLOAT32_LAYERS


def mixed_precision_copy(network: keras.Model, precision: str) -> keras.Model:
    """A copy of an FPCD network computing in ``precision`` ("bfloat16" or "float16") with its weights.

    Every layer gets Keras' mixed policy (float32 variables, 16-bit compute), except the Fourier time
    features and the output layers (:data:`_FLOAT32_LAYERS`), which stay float32
    (:func:`gsgm.models.precision.mixed_precision_copy`).
    """
    return precision_copy(network, precision, _keeps_float32)


def sampling_denoisers(model: FPCDModel, precision: str = "float32"):
    """(jet denoiser, particle denoiser) of ``model``'s EMA networks computing in ``precision``.

    "float32" returns ``model.jet_denoiser, model.particle_denoiser``; a 16-bit precision returns
    v-denoisers over :func:`mixed_precision_copy` of the EMA networks, made once per model and
    precision (the copies hold the weights of the moment they were made).
    """
    if precision == "float32":
        return model.jet_denoiser, model.particle_denoiser
    per_model = _DENOISERS.setdefault(model, {})
    if precision not in per_model:
        per_model[precision] = network_denoisers(
            mixed_precision_copy(model.ema_jet_net, precision),
            mixed_precision_copy(model.ema_particle_net, precision),
            model.schedule,
        )
    return per_model[precision]


def network_denoisers(jet_net: keras.Model, particle_net: keras.Model, schedule):
    """(jet denoiser, particle denoiser): v-denoisers over any pair of FPCD velocity networks.

    For sampling from networks other than the model's own EMA pair: 16-bit copies
    (:func:`sampling_denoisers`) or the raw, not averaged weights (``model.jet_net``,
    ``model.particle_net``). The call signatures are those of ``sample_point_clouds``.
    """

    def jet_velocity(z, t, *, class_onehot):
        return jet_net({"z": z, "t": t, "class_onehot": class_onehot}, training=False)

    def particle_velocity(z, t, *, jets, class_onehot, mask):
        inputs = {"z": z, "t": t, "jets": jets, "class_onehot": class_onehot, "mask": mask}
        return particle_net(inputs, training=False)

    return VDenoiser(jet_velocity, schedule), VDenoiser(particle_velocity, schedule)


def generate_jets(
    model: FPCDModel,
    preprocessor: JetPreprocessor,
    cfg: FPCDConfig,
    jets_per_class: int,
    classes: list[str],
    num_steps: int,
    seed: int = 0,
    batch_size: int = 10_000,
    progress: bool = False,
    num_buckets: int = 8,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Sample ``jets_per_class`` jets of each class with the run's EMA networks.

    ``num_buckets`` groups each batch by sampled multiplicity and skips the padded slots beyond each
    group's largest jet (see ``sample_point_clouds``); 1 computes every slot. The networks compute in
    ``cfg.sampling.precision`` and the DDIM loops are XLA-compiled if ``cfg.sampling.jit_compile``;
    ``cfg.sampling.sampler`` is the ODE solver ("ddim" or "dpm++2m").

    ``progress`` shows one bar on stderr counting jets over all classes and batches, with an ETA; it
    advances once per batch (a smaller ``batch_size`` gives a finer ETA). The samples do not depend on
    it.

    Returns:
        {class: (particle_features [N, P, 4], jet_features [N, 4])} in JetNet layout (valid files).
    """
    unknown = [c for c in classes if c not in cfg.data.classes]
    if unknown:
        raise ValueError(f"the run was trained on classes {list(cfg.data.classes)}, not on {unknown}")
    from tqdm import tqdm  # CLI-only dependency, imported lazily

    num_particles = cfg.data.num_particles
    jet_denoiser, particle_denoiser = sampling_denoisers(model, cfg.sampling.precision)
    results: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    total = jets_per_class * len(classes)
    bar = tqdm(total=total, unit="jet", desc="sampling", file=sys.stderr, disable=not progress)
    for class_number, jet_class in enumerate(classes):
        label = JET_CLASSES.index(jet_class)
        particle_parts, jet_parts = [], []
        bar.set_postfix_str(f"class {jet_class}")
        for start in range(0, jets_per_class, batch_size):
            count = min(batch_size, jets_per_class - start)
            labels = np.full(count, label, dtype=np.int32)
            onehot = np.eye(len(JET_CLASSES), dtype=np.float32)[labels]
            jets_norm, particles_norm, _ = sample_point_clouds(
                jet_denoiser,
                particle_denoiser,
                lambda jets, labels=labels: preprocessor.multiplicity_mask(jets, labels),
                onehot,
                num_particles=num_particles,
                num_particle_features=3,
                num_jet_features=preprocessor.num_jet_features,
                num_steps=num_steps,
                seed=seed * 1_000_003 + class_number * 10_007 + start,
                # No per-step bars: they run the DDIM loop step by step from Python (slower, same
                # numbers); the bar above counts jets instead.
                progress=False,
                schedule=model.schedule,
                num_buckets=min(num_buckets, count),
                jit_compile=cfg.sampling.jit_compile,
                solver=cfg.sampling.sampler,
            )
            particle_features, jet_features = preprocessor.inverse(particles_norm, jets_norm, labels)
            particle_parts.append(particle_features)
            jet_parts.append(jet_features)
            bar.update(count)
        results[jet_class] = (np.concatenate(particle_parts), np.concatenate(jet_parts))
    bar.close()
    return results
