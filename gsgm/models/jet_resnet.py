"""FPCD jet network: a fully connected ResNet predicting the velocity v of the jet features.

Architecture (paper section III; skip arrangement as in the released GSGM code)::

    e  = condition_embedding(t, [class_onehot])                                   [B, cond_dim]
    h0 = LeakyReLU(Dense_w([z, e]))                                               [B, w]
    h  = h0
    repeat num_blocks:  h = Dense_w(h) + Drop(LReLU(Dense_w(Drop(LReLU(Dense_w(h))))))
    v  = Dense_4(LeakyReLU(Dense_w(h0 + h)))          # output layer initialised to zero

Each block joins a linear skip of its input to the output of a two-layer network, and a long skip adds
the stream before the first block to the output of the last one.
"""

from __future__ import annotations

import keras

from gsgm.config import EmbeddingConfig, JetNetConfig
from gsgm.models.embedding import condition_embedding

__all__ = ["build_jet_net"]


def build_jet_net(
    cfg: JetNetConfig,
    num_classes: int = 5,
    *,
    num_jet_features: int = 4,
    embedding: EmbeddingConfig | None = None,
    seed: int = 0,
) -> keras.Model:
    """Build the jet velocity network.

    Inputs (dict):
        "z": [B, num_jet_features] float32, noisy standardised jet features (pT, eta, mass, multiplicity).
        "t": [B] or [B, 1] float32, diffusion time in [0, 1].
        "class_onehot": [B, num_classes] float32, jet class one-hot.

    Output: v_hat [B, num_jet_features], the predicted velocity (alpha_t eps - sigma_t x).

    Args:
        cfg: network sizes.
        num_classes: width of the class one-hot.
        num_jet_features: jet features per jet.
        embedding: time/condition embedding sizes; ``None`` uses the paper's (``EmbeddingConfig()``).
        seed: seed of the fixed random Fourier frequencies.
    """
    embedding = embedding or EmbeddingConfig()
    z = keras.Input((num_jet_features,), name="z")
    t = keras.Input((1,), name="t")
    onehot = keras.Input((num_classes,), name="class_onehot")

    def act(name: str) -> keras.layers.Layer:
        return keras.layers.LeakyReLU(negative_slope=cfg.leaky_slope, name=name)

    e = condition_embedding(t, [onehot], embedding, cfg.leaky_slope, seed, prefix="jet")
    x = keras.layers.Concatenate(name="jet_input_concat")([z, e])
    h0 = act("jet_input_act")(keras.layers.Dense(cfg.width, name="jet_input_dense")(x))

    h = h0
    for b in range(cfg.num_blocks):
        # Linear skip rather than identity, as in the released code; widths match, so this is the
        # only place where a block can rescale its input stream.
        skip = keras.layers.Dense(cfg.width, name=f"jet_block{b}_skip")(h)
        y = h
        for j in range(2):
            y = act(f"jet_block{b}_act{j}")(keras.layers.Dense(cfg.width, name=f"jet_block{b}_dense{j}")(y))
            if cfg.dropout > 0:
                y = keras.layers.Dropout(cfg.dropout, name=f"jet_block{b}_drop{j}")(y)
        h = keras.layers.Add(name=f"jet_block{b}_add")([skip, y])

    h = keras.layers.Add(name="jet_long_skip")([h0, h])
    h = act("jet_head_act")(keras.layers.Dense(cfg.width, name="jet_head_dense")(h))
    # Zero-initialised output: the untrained network predicts v = 0, so early training is not
    # dominated by large random velocities (as in the released code).
    v = keras.layers.Dense(num_jet_features, kernel_initializer="zeros", name="jet_output")(h)
    return keras.Model(inputs={"z": z, "t": t, "class_onehot": onehot}, outputs=v, name="fpcd_jet_net")
