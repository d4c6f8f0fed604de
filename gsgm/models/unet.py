"""Class- and noise-level-conditional U-Net for jet images (paper Table I), a plain Keras model.

Architecture (DDPM / Score SDE style, no attention)::

    x [B, N, N, 1] --zero-pad to S x S--> conv3x3(C0)
      stage s = 0..L-1 (C_s = base * mult[s]): num_res_blocks x ResBlock(C_s)  [+ conv3x3 stride 2 if s < L-1]
      middle: ResBlock, ResBlock
      stage s = L-1..0: (num_res_blocks + 1) x ResBlock(C_s) on [h, skip]  [+ nearest x2 + conv3x3 if s > 0]
    GroupNorm -> act -> conv3x3(1) --crop--> [B, N, N, 1]

    ResBlock(h, emb): GN -> act -> conv3x3 -> + Dense(act(emb)) -> GN -> act -> dropout -> conv3x3,
                      plus h (1x1 conv when the channel count changes)

Conditioning: ``emb = MLP(time_embedding(log sigma)) + Embedding(label)``, both ``4 * base`` wide, added
inside every residual block. ``time_embedding`` is random Fourier features (score model) or the
transformer sinusoidal embedding (consistency model); see :class:`gsgm.config.UNetConfig`.

Odd image sizes: the resolution halves ``L - 1`` times, so the input is zero-padded to the next
multiple ``S`` of ``2**(L - 1)`` (25 -> 32 for the paper's four stages, 25 -> 26 for two) and the output
is cropped back to ``N x N``; the extra rows/columns go ``floor`` before and ``ceil`` after. Zero is the
physical value outside the window (no particles there), and only the N x N centre is ever output.

Inputs are a dict: ``x`` [B, N, N, 1] (already scaled by the caller's preconditioning),
``log_sigma`` [B] (log of the noise level) and ``label`` [B] int (index into JET_CLASSES). The model
is unaware of any diffusion formula: preconditioning lives in ``gsgm.diffusion``.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from gsgm.config import UNetConfig
from gsgm.models.embedding import GaussianFourierFeatures

__all__ = ["SinusoidalEmbedding", "build_unet", "padded_size"]

_ACTIVATIONS = {"swish": "silu", "gelu": "gelu"}


@keras.saving.register_keras_serializable(package="gsgm")
class SinusoidalEmbedding(keras.layers.Layer):
    """Transformer-style embedding of a scalar: s [B] -> [B, num_features] = [sin(w_k s), cos(w_k s)].

    ``s`` is first multiplied by ``scale``; frequencies ``w_k = max_period**(-k / half)``, k < half.
    """

    def __init__(self, num_features: int, scale: float = 1.0, max_period: float = 10_000.0, **kwargs):
        super().__init__(**kwargs)
        if num_features % 2:
            raise ValueError(f"num_features must be even, got {num_features}")
        self.num_features = int(num_features)
        self.scale = float(scale)
        self.max_period = float(max_period)

    def call(self, s):
        half = self.num_features // 2
        frequencies = ops.exp(-math.log(self.max_period) * ops.arange(half, dtype="float32") / half)
        s = ops.reshape(ops.cast(s, "float32"), (-1, 1)) * self.scale
        angle = s * frequencies[None, :]
        return ops.concatenate([ops.sin(angle), ops.cos(angle)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_features)

    def get_config(self):
        return {
            **super().get_config(),
            "num_features": self.num_features,
            "scale": self.scale,
            "max_period": self.max_period,
        }


def padded_size(num_pixels: int, num_stages: int) -> int:
    """Smallest multiple of ``2**(num_stages - 1)`` that is >= ``num_pixels`` (25 -> 32 for 4 stages)."""
    factor = 2 ** (num_stages - 1)
    return -(-int(num_pixels) // factor) * factor


def _res_block(h, emb, channels: int, cfg: UNetConfig, act: str, name: str):
    skip = h
    h = keras.layers.GroupNormalization(cfg.norm_groups, epsilon=1e-6, name=f"{name}_norm0")(h)
    h = keras.layers.Activation(act, name=f"{name}_act0")(h)
    h = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv0")(h)
    e = keras.layers.Activation(act, name=f"{name}_emb_act")(emb)
    e = keras.layers.Dense(channels, name=f"{name}_emb")(e)
    h = keras.layers.Add(name=f"{name}_add_emb")([h, keras.layers.Reshape((1, 1, channels))(e)])
    h = keras.layers.GroupNormalization(cfg.norm_groups, epsilon=1e-6, name=f"{name}_norm1")(h)
    h = keras.layers.Activation(act, name=f"{name}_act1")(h)
    if cfg.dropout > 0:
        h = keras.layers.Dropout(cfg.dropout, name=f"{name}_dropout")(h)
    h = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv1")(h)
    if skip.shape[-1] != channels:
        skip = keras.layers.Conv2D(channels, 1, name=f"{name}_skip")(skip)
    return keras.layers.Add(name=f"{name}_out")([skip, h])


def build_unet(
    cfg: UNetConfig,
    num_pixels: int = 25,
    num_classes: int = 5,  # the JetNet classes g, q, t, w, z (models know no data: callers pass it)
    seed: int = 0,
    name: str = "unet",
) -> keras.Model:
    """The U-Net of ``cfg`` for ``num_pixels x num_pixels`` single-channel images.

    Weight initialisation follows Keras' global seed (call ``keras.utils.set_random_seed`` first for
    reproducible weights); ``seed`` fixes the random Fourier frequencies.

    Returns:
        keras.Model: ``{"x": [B, N, N, 1], "log_sigma": [B], "label": [B] int32} -> [B, N, N, 1]``.
    """
    act = _ACTIVATIONS[cfg.activation]
    stages = len(cfg.channel_multipliers)
    size = padded_size(num_pixels, stages)
    before = (size - num_pixels) // 2
    after = size - num_pixels - before
    emb_dim = 4 * cfg.base_channels

    x_in = keras.Input((num_pixels, num_pixels, 1), name="x")
    log_sigma = keras.Input((), name="log_sigma")
    label = keras.Input((), dtype="int32", name="label")

    if cfg.time_embedding == "fourier":
        features = GaussianFourierFeatures(
            cfg.time_features // 2, cfg.time_embedding_scale, seed=seed, name="time_fourier"
        )(log_sigma)
    else:
        features = SinusoidalEmbedding(cfg.time_features, cfg.time_embedding_scale, name="time_sinusoidal")(
            log_sigma
        )
    emb = keras.layers.Dense(emb_dim, name="time_dense0")(features)
    emb = keras.layers.Activation(act, name="time_act")(emb)
    emb = keras.layers.Dense(emb_dim, name="time_dense1")(emb)
    class_emb = keras.layers.Embedding(num_classes, emb_dim, name="class_embedding")(label)
    emb = keras.layers.Add(name="condition")([emb, class_emb])

    h = keras.layers.ZeroPadding2D(((before, after), (before, after)), name="pad")(x_in)
    h = keras.layers.Conv2D(cfg.base_channels, 3, padding="same", name="conv_in")(h)
    skips = [h]
    for s, mult in enumerate(cfg.channel_multipliers):
        for b in range(cfg.num_res_blocks):
            h = _res_block(h, emb, cfg.base_channels * mult, cfg, act, f"down{s}_block{b}")
            skips.append(h)
        if s < stages - 1:
            h = keras.layers.Conv2D(h.shape[-1], 3, strides=2, padding="same", name=f"down{s}_downsample")(h)
            skips.append(h)
    h = _res_block(h, emb, h.shape[-1], cfg, act, "middle0")
    h = _res_block(h, emb, h.shape[-1], cfg, act, "middle1")
    for s in reversed(range(stages)):
        for b in range(cfg.num_res_blocks + 1):
            h = keras.layers.Concatenate(name=f"up{s}_concat{b}")([h, skips.pop()])
            h = _res_block(
                h, emb, cfg.base_channels * cfg.channel_multipliers[s], cfg, act, f"up{s}_block{b}"
            )
        if s > 0:
            h = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{s}_upsample")(h)
            h = keras.layers.Conv2D(h.shape[-1], 3, padding="same", name=f"up{s}_upsample_conv")(h)
    assert not skips, "every skip connection is used once"
    h = keras.layers.GroupNormalization(cfg.norm_groups, epsilon=1e-6, name="out_norm")(h)
    h = keras.layers.Activation(act, name="out_act")(h)
    h = keras.layers.Conv2D(1, 3, padding="same", name="conv_out")(h)
    out = keras.layers.Cropping2D(((before, after), (before, after)), name="crop")(h)
    return keras.Model({"x": x_in, "log_sigma": log_sigma, "label": label}, out, name=name)
