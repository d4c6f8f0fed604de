"""Networks of the calorimeter family: the point network (the FPCD set network) and the shower-flow MLP.

Both take the EDM noise input ``c_noise = ln(sigma) / 4`` as their "time" (random Fourier features do
not need it in [0, 1]) and the preconditioned state ``c_in z``; they are plain Keras models, wrapped
into denoisers by :class:`gsgm.diffusion.denoisers.PreconditionedDenoiser` in the training model.
"""

from __future__ import annotations

import keras

from gsgm.config import CaloConfig
from gsgm.models.embedding import condition_embedding
from gsgm.models.particle_transformer import build_particle_net

__all__ = ["NUM_POINT_CONDITIONS", "build_calo_networks", "build_flow_net"]

#: standardised ln E_inc and ln N
NUM_POINT_CONDITIONS = 2


def build_flow_net(cfg: CaloConfig, num_features: int, seed: int) -> keras.Model:
    """MLP ({"z": [B, F], "t": [B, 1], "energy": [B, 1]}) -> [B, F] of the shower-flow model."""
    z = keras.Input((num_features,), name="z")
    t = keras.Input((1,), name="t")
    energy = keras.Input((1,), name="energy")
    e = condition_embedding(t, [energy], cfg.embedding, 0.01, seed, prefix="flow")
    h = keras.layers.Concatenate(name="flow_concat")([z, e])
    for i in range(cfg.flow_net.depth):
        h = keras.layers.Dense(cfg.flow_net.width, activation="swish", name=f"flow_dense{i}")(h)
    out = keras.layers.Dense(num_features, kernel_initializer="zeros", name="flow_output")(h)
    return keras.Model({"z": z, "t": t, "energy": energy}, out, name="calo_flow_net")


def build_calo_networks(cfg: CaloConfig, num_flow_features: int) -> tuple[keras.Model, keras.Model]:
    """(point_net, flow_net) with fixed initial weights from ``cfg.training.seed``.

    point_net: the FPCD particle network over any number of points with 4 features, its "jets"
    condition the :data:`NUM_POINT_CONDITIONS` shower conditions and a one-wide constant "class".
    """
    seed = cfg.training.seed
    keras.utils.set_random_seed(seed)
    point_net = build_particle_net(
        cfg.point_net, None, num_jet_features=NUM_POINT_CONDITIONS, num_classes=1,
        num_particle_features=4, embedding=cfg.embedding, seed=seed,
    )  # fmt: skip
    flow_net = build_flow_net(cfg, num_flow_features, seed + 1)
    return point_net, flow_net
