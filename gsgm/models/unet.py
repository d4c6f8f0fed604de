"""Conditional U-Net for image diffusion (jet images: paper Table I; DIS events), a plain Keras model.

Architecture (DDPM / Score SDE / improved-DDPM style)::

    x [B, N, N, C_in] --pad to S x S (zeros only)--> conv3x3(C0)
      stage s = 0..L-1 (C_s = base * mult[s]): num_res_blocks x (ResBlock(C_s) [+ Attention if res in A])
                                               [+ conv3x3 stride 2 if s < L-1]
      middle: ResBlock, [Attention if A is not empty,] ResBlock
      stage s = L-1..0: (num_res_blocks + 1) x (ResBlock(C_s) on [h, skip] [+ Attention])
                                               [+ nearest x2 + conv3x3 if s > 0]
    GroupNorm -> act -> conv3x3(C_out) --crop--> [B, N, N, C_out]

    ResBlock(h, emb): GN -> act -> conv3x3 -> + Dense(act(emb)) -> GN -> act -> dropout -> conv3x3,
                      plus h (1x1 conv when the channel count changes)
    Attention(h):     h + Dense(MultiHeadAttention(GN(h)) over the res x res positions)

Conditioning: ``emb = MLP(time_embedding(t)) [+ Embedding(label)]``, both ``4 * base`` wide, added
inside every residual block. ``time_embedding`` is random Fourier features (score model) or the
transformer sinusoidal embedding (consistency model, DDPM step index); see :class:`gsgm.config.UNetConfig`.

Options of :func:`build_unet` (the jet-image defaults reproduce the paper's jet U-Net exactly):

* ``in_channels``/``out_channels`` (1/1 for jets; 3/6 for DIS: eps and the variance weight per channel);
* ``padding``: "same" (zeros around the image) or "circular_phi": periodic along axis 2 (the azimuth
  phi) and zeros along axis 1 (eta), for every 3x3 convolution (strided ones too), so that features
  on both sides of the phi = +-pi edge are neighbours (the DIS U-Net of the ep-scattering paper);
* ``attention_resolutions``: resolutions (in pixels) after whose residual blocks multi-head
  self-attention is applied, with ``attention_heads`` heads (jets: none; improved DDPM: 16 and 8);
* ``num_classes=None``: no label input (unconditional), ``time_name``: the name of the time input.

Odd image sizes ("same" only): the resolution halves ``L - 1`` times, so the input is zero-padded to
the next multiple ``S`` of ``2**(L - 1)`` (25 -> 32 for the paper's four stages, 25 -> 26 for two) and
the output is cropped back to ``N x N``; the extra rows/columns go ``floor`` before and ``ceil`` after.
Zero is the physical value outside the window (no particles there). A periodic axis cannot be padded
that way, so "circular_phi" needs N divisible by ``2**(L - 1)``.

The model is unaware of any diffusion formula: preconditioning lives in ``gsgm.diffusion``.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from gsgm.config import UNetConfig
from gsgm.models.embedding import GaussianFourierFeatures

__all__ = [
    "PADDINGS",
    "PeriodicPadding",
    "SinusoidalEmbedding",
    "build_unet",
    "padded_size",
    "unet_keeps_float32",
]

#: The padding modes of :func:`build_unet`.
PADDINGS = ("same", "circular_phi")

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


@keras.saving.register_keras_serializable(package="gsgm")
class PeriodicPadding(keras.layers.Layer):
    """Pads ``[B, H, W, C]`` by ``width`` on each side: periodically along W (phi), zeros along H (eta)."""

    def __init__(self, width: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.width = int(width)

    def call(self, x):
        w = self.width
        x = ops.concatenate([x[:, :, -w:], x, x[:, :, :w]], axis=2)
        return ops.pad(x, [[0, 0], [w, w], [0, 0], [0, 0]])

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        grow = lambda n: None if n is None else n + 2 * self.width  # noqa: E731
        return (b, grow(h), grow(w), c)

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def _conv3x3(h, channels: int, padding: str, name: str, strides: int = 1):
    """3x3 convolution with "same" zero padding, or periodic-in-phi padding then a "valid" convolution."""
    if padding == "same":
        return keras.layers.Conv2D(channels, 3, strides=strides, padding="same", name=name)(h)
    h = PeriodicPadding(1, name=f"{name}_pad")(h)
    return keras.layers.Conv2D(channels, 3, strides=strides, padding="valid", name=name)(h)


def _attention_block(h, heads: int, groups: int, name: str):
    """``h + proj(MHA(GN(h)))`` over the H x W positions (static spatial shape)."""
    _, height, width, channels = h.shape
    if channels % heads:
        raise ValueError(f"attention_heads={heads} must divide the {channels} channels at {name}")
    a = keras.layers.GroupNormalization(groups, epsilon=1e-6, name=f"{name}_norm")(h)
    a = keras.layers.Reshape((height * width, channels), name=f"{name}_tokens")(a)
    a = keras.layers.MultiHeadAttention(heads, channels // heads, name=f"{name}_mha")(a, a)
    a = keras.layers.Reshape((height, width, channels), name=f"{name}_image")(a)
    return keras.layers.Add(name=f"{name}_out")([h, a])


def padded_size(num_pixels: int, num_stages: int) -> int:
    """Smallest multiple of ``2**(num_stages - 1)`` that is >= ``num_pixels`` (25 -> 32 for 4 stages)."""
    factor = 2 ** (num_stages - 1)
    return -(-int(num_pixels) // factor) * factor


def _res_block(h, emb, channels: int, cfg: UNetConfig, act: str, name: str, padding: str = "same"):
    skip = h
    h = keras.layers.GroupNormalization(cfg.norm_groups, epsilon=1e-6, name=f"{name}_norm0")(h)
    h = keras.layers.Activation(act, name=f"{name}_act0")(h)
    h = _conv3x3(h, channels, padding, f"{name}_conv0")
    e = keras.layers.Activation(act, name=f"{name}_emb_act")(emb)
    e = keras.layers.Dense(channels, name=f"{name}_emb")(e)
    h = keras.layers.Add(name=f"{name}_add_emb")([h, keras.layers.Reshape((1, 1, channels))(e)])
    h = keras.layers.GroupNormalization(cfg.norm_groups, epsilon=1e-6, name=f"{name}_norm1")(h)
    h = keras.layers.Activation(act, name=f"{name}_act1")(h)
    if cfg.dropout > 0:
        h = keras.layers.Dropout(cfg.dropout, name=f"{name}_dropout")(h)
    h = _conv3x3(h, channels, padding, f"{name}_conv1")
    if skip.shape[-1] != channels:
        skip = keras.layers.Conv2D(channels, 1, name=f"{name}_skip")(skip)
    return keras.layers.Add(name=f"{name}_out")([skip, h])


def build_unet(
    cfg: UNetConfig,
    num_pixels: int = 25,
    num_classes: int | None = 5,  # the JetNet classes g, q, t, w, z (models know no data: callers pass it)
    seed: int = 0,
    name: str = "unet",
    *,
    in_channels: int = 1,
    out_channels: int | None = None,
    padding: str = "same",
    attention_resolutions: tuple[int, ...] | list[int] = (),
    attention_heads: int = 4,
    time_name: str = "log_sigma",
) -> keras.Model:
    """The U-Net of ``cfg`` for ``num_pixels x num_pixels`` images (options: module docstring).

    Weight initialisation follows Keras' global seed (call ``keras.utils.set_random_seed`` first for
    reproducible weights); ``seed`` fixes the random Fourier frequencies.

    Returns:
        keras.Model: ``{"x": [B, N, N, C_in], time_name: [B], "label": [B] int32} -> [B, N, N, C_out]``
        (no ``label`` input when ``num_classes`` is None; ``C_out`` defaults to ``C_in``).
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    act = _ACTIVATIONS[cfg.activation]
    stages = len(cfg.channel_multipliers)
    size = padded_size(num_pixels, stages)
    if padding == "circular_phi" and size != num_pixels:
        raise ValueError(
            f"padding 'circular_phi' needs num_pixels divisible by 2**(stages - 1) = {2 ** (stages - 1)}, "
            f"got {num_pixels}"
        )
    before = (size - num_pixels) // 2
    after = size - num_pixels - before
    emb_dim = 4 * cfg.base_channels
    out_channels = in_channels if out_channels is None else int(out_channels)
    attention = {int(r) for r in attention_resolutions}

    x_in = keras.Input((num_pixels, num_pixels, in_channels), name="x")
    time_in = keras.Input((), name=time_name)
    inputs = {"x": x_in, time_name: time_in}

    if cfg.time_embedding == "fourier":
        features = GaussianFourierFeatures(
            cfg.time_features // 2, cfg.time_embedding_scale, seed=seed, name="time_fourier"
        )(time_in)
    else:
        features = SinusoidalEmbedding(cfg.time_features, cfg.time_embedding_scale, name="time_sinusoidal")(
            time_in
        )
    emb = keras.layers.Dense(emb_dim, name="time_dense0")(features)
    emb = keras.layers.Activation(act, name="time_act")(emb)
    emb = keras.layers.Dense(emb_dim, name="time_dense1")(emb)
    if num_classes is not None:
        label = keras.Input((), dtype="int32", name="label")
        inputs["label"] = label
        class_emb = keras.layers.Embedding(num_classes, emb_dim, name="class_embedding")(label)
        emb = keras.layers.Add(name="condition")([emb, class_emb])

    def maybe_attend(h, block_name):
        if h.shape[1] in attention:
            return _attention_block(h, attention_heads, cfg.norm_groups, f"{block_name}_attn")
        return h

    h = x_in
    if size != num_pixels:
        h = keras.layers.ZeroPadding2D(((before, after), (before, after)), name="pad")(h)
    h = _conv3x3(h, cfg.base_channels, padding, "conv_in")
    skips = [h]
    for s, mult in enumerate(cfg.channel_multipliers):
        for b in range(cfg.num_res_blocks):
            h = _res_block(h, emb, cfg.base_channels * mult, cfg, act, f"down{s}_block{b}", padding)
            h = maybe_attend(h, f"down{s}_block{b}")
            skips.append(h)
        if s < stages - 1:
            h = _conv3x3(h, h.shape[-1], padding, f"down{s}_downsample", strides=2)
            skips.append(h)
    h = _res_block(h, emb, h.shape[-1], cfg, act, "middle0", padding)
    if attention:
        h = _attention_block(h, attention_heads, cfg.norm_groups, "middle_attn")
    h = _res_block(h, emb, h.shape[-1], cfg, act, "middle1", padding)
    for s in reversed(range(stages)):
        for b in range(cfg.num_res_blocks + 1):
            h = keras.layers.Concatenate(name=f"up{s}_concat{b}")([h, skips.pop()])
            channels = cfg.base_channels * cfg.channel_multipliers[s]
            h = _res_block(h, emb, channels, cfg, act, f"up{s}_block{b}", padding)
            h = maybe_attend(h, f"up{s}_block{b}")
        if s > 0:
            h = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{s}_upsample")(h)
            h = _conv3x3(h, h.shape[-1], padding, f"up{s}_upsample_conv")
    assert not skips, "every skip connection is used once"
    h = keras.layers.GroupNormalization(cfg.norm_groups, epsilon=1e-6, name="out_norm")(h)
    h = keras.layers.Activation(act, name="out_act")(h)
    h = _conv3x3(h, out_channels, padding, "conv_out")
    if size != num_pixels:
        h = keras.layers.Cropping2D(((before, after), (before, after)), name="crop")(h)
    return keras.Model(inputs, h, name=name)


#: U-Net layers after the last 16-bit layer: the output convolution and what reshapes its result.
_OUTPUT_LAYERS = ("conv_out", "conv_out_pad", "crop")


def unet_keeps_float32(layer: keras.layers.Layer) -> bool:
    """The layers of a :func:`build_unet` network that stay float32 in a mixed-precision copy.

    The time features (16-bit angles of ~1e3 rad would be off by whole periods) and the output layers
    (so the network returns float32 to the sampler's float32 update); for
    :func:`gsgm.models.precision.mixed_precision_copy`.
    """
    return isinstance(layer, (GaussianFourierFeatures, SinusoidalEmbedding)) or layer.name in _OUTPUT_LAYERS
