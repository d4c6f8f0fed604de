"""FPCD networks: the jet ResNet and the particle DeepSets-Transformer, plain Keras models.

Both predict the diffusion velocity v = alpha_t eps - sigma_t x; schedules, losses and samplers live in
``gsgm.diffusion`` and only call these models.
"""

from __future__ import annotations

import keras

from gsgm.config import FPCDConfig
from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.models.embedding import GaussianFourierFeatures, condition_embedding
from gsgm.models.jet_resnet import build_jet_net
from gsgm.models.particle_transformer import build_particle_net

__all__ = [
    "GaussianFourierFeatures",
    "build_fpcd_networks",
    "build_jet_net",
    "build_particle_net",
    "condition_embedding",
]


def build_fpcd_networks(
    cfg: FPCDConfig, num_particles: int | None = None, *, any_particle_count: bool = False
) -> tuple[keras.Model, keras.Model]:
    """(jet_net, particle_net) for ``cfg``, with its embedding sizes and seeds.

    ``num_particles`` overrides ``cfg.data.num_particles`` as the particle net's slot count;
    ``any_particle_count=True`` builds it for any slot count instead (its weights do not depend on
    P), which lets the sampler crop trailing padded slots.

    The class one-hot is always ``len(JET_CLASSES)`` wide (even when ``cfg.data.classes`` is a subset),
    so one trained model can be conditioned on any class index of the shared label convention.
    The two networks get different Fourier-frequency seeds (derived from ``cfg.training.seed``).
    """
    num_classes = len(JET_CLASSES)
    jet_net = build_jet_net(cfg.jet_net, num_classes, embedding=cfg.embedding, seed=cfg.training.seed)
    particle_net = build_particle_net(
        cfg.particle_net,
        None if any_particle_count else (cfg.data.num_particles if num_particles is None else num_particles),
        num_classes=num_classes,
        embedding=cfg.embedding,
        seed=cfg.training.seed + 1,
    )
    return jet_net, particle_net
