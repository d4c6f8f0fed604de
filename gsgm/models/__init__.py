"""FPCD networks: the jet ResNet and the particle DeepSets-Transformer, plain Keras models.

Both predict the diffusion velocity v = alpha_t eps - sigma_t x; schedules, losses and samplers live in
``gsgm.diffusion`` and only call these models.
"""

from __future__ import annotations

from gsgm.models.embedding import GaussianFourierFeatures, condition_embedding
from gsgm.models.jet_resnet import build_jet_net
from gsgm.models.particle_transformer import build_particle_net

__all__ = [
    "GaussianFourierFeatures",
    "build_jet_net",
    "build_particle_net",
    "condition_embedding",
]
