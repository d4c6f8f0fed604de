"""The jet-image U-Net: shapes for odd sizes, conditioning, padding, paper size."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gsgm.config import UNetConfig
from gsgm.models.unet import SinusoidalEmbedding, build_unet, padded_size


def tiny(**overrides) -> UNetConfig:
    values = dict(
        base_channels=8,
        channel_multipliers=[1, 2],
        num_res_blocks=1,
        norm_groups=4,
        dropout=0.0,
        activation="swish",
        time_embedding="fourier",
        time_features=8,
        time_embedding_scale=16.0,
    )
    values.update(overrides)
    return UNetConfig(**values)


def inputs(batch: int = 3, size: int = 25, label=None, log_sigma=None, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(size=(batch, size, size, 1)).astype(np.float32),
        "log_sigma": np.full(batch, -2.0, np.float32)
        if log_sigma is None
        else np.asarray(log_sigma, np.float32),
        "label": np.arange(batch, dtype=np.int32) % 5 if label is None else np.asarray(label, np.int32),
    }


@pytest.mark.parametrize(("size", "stages", "padded"), [(25, 4, 32), (25, 2, 26), (25, 1, 25), (32, 4, 32)])
def test_padded_size(size, stages, padded):
    assert padded_size(size, stages) == padded


@pytest.mark.parametrize(
    ("multipliers", "size", "embedding"),
    [
        ([1, 2], 25, "fourier"),
        ([1, 2, 2], 25, "sinusoidal"),
        ([1], 25, "fourier"),
        ([1, 2], 16, "sinusoidal"),
    ],
)
def test_output_shape_equals_input_shape(multipliers, size, embedding):
    keras.utils.set_random_seed(0)
    net = build_unet(tiny(channel_multipliers=multipliers, time_embedding=embedding), num_pixels=size)
    out = net(inputs(size=size))
    assert tuple(out.shape) == (3, size, size, 1)
    assert np.isfinite(np.asarray(out)).all()


@pytest.mark.parametrize("embedding", ["fourier", "sinusoidal"])
def test_conditioning_changes_the_output(embedding):
    keras.utils.set_random_seed(1)
    net = build_unet(tiny(time_embedding=embedding, activation="gelu"))
    base = np.asarray(net(inputs(label=[0, 0, 0], log_sigma=[-2.0] * 3)))
    other_class = np.asarray(net(inputs(label=[3, 3, 3], log_sigma=[-2.0] * 3)))
    other_sigma = np.asarray(net(inputs(label=[0, 0, 0], log_sigma=[0.0] * 3)))
    again = np.asarray(net(inputs(label=[0, 0, 0], log_sigma=[-2.0] * 3)))
    np.testing.assert_array_equal(base, again)  # deterministic in inference mode
    assert np.abs(other_class - base).max() > 1e-4
    assert np.abs(other_sigma - base).max() > 1e-4
    # Per example: changing one label changes that example only.
    mixed = np.asarray(net(inputs(label=[0, 3, 0], log_sigma=[-2.0] * 3)))
    np.testing.assert_allclose(mixed[[0, 2]], base[[0, 2]], rtol=1e-5, atol=1e-6)
    assert np.abs(mixed[1] - base[1]).max() > 1e-4


def test_corner_pixels_reach_the_output_through_the_padding():
    keras.utils.set_random_seed(2)
    net = build_unet(tiny(channel_multipliers=[1, 2, 2]))  # 25 -> 28
    x = inputs(batch=1)
    base = np.asarray(net(x))
    for i, j in [(0, 0), (24, 24), (0, 24), (12, 12)]:
        poked = {**x, "x": x["x"].copy()}
        poked["x"][0, i, j, 0] += 1.0
        assert np.abs(np.asarray(net(poked)) - base).max() > 0, (i, j)


def test_sinusoidal_embedding():
    layer = SinusoidalEmbedding(6, scale=2.0, max_period=100.0)
    out = np.asarray(layer(np.array([0.0, 1.5], np.float32)))
    frequencies = 100.0 ** (-np.arange(3) / 3)
    np.testing.assert_allclose(
        out[1], np.concatenate([np.sin(3.0 * frequencies), np.cos(3.0 * frequencies)]), rtol=1e-5
    )
    np.testing.assert_allclose(out[0], [0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="even"):
        SinusoidalEmbedding(5)


def test_paper_size_unet():
    keras.utils.set_random_seed(3)
    net = build_unet(UNetConfig())  # Table I: 128 channels, [1, 2, 2, 2], 2 blocks, GroupNorm(32)
    assert 30e6 < net.count_params() < 40e6  # 34.2 M: a DDPM-CIFAR-sized U-Net without attention
    assert net.get_layer("pad").output.shape[1:3] == (32, 32)
    assert net.get_layer("down3_block1_out").output.shape[1:] == (4, 4, 256)
    assert tuple(net(inputs(batch=1)).shape) == (1, 25, 25, 1)
