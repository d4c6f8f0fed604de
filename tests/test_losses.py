"""Forward diffusion and the masked v-loss (FPCD eq. 1)."""

from __future__ import annotations

import numpy as np
import pytest

from gsgm.diffusion import cosine_alpha_sigma, diffuse, v_from_x_eps, v_loss, x_from_v


def _data(b=8, p=6, f=3, seed=0):
    rng = np.random.default_rng(seed)
    mask = (np.arange(p)[None, :] < rng.integers(1, p + 1, size=b)[:, None]).astype(np.float32)
    x = rng.normal(size=(b, p, f)).astype(np.float32) * mask[..., None]
    noise = rng.normal(size=(b, p, f)).astype(np.float32)
    t = rng.uniform(size=b).astype(np.float32)
    return x, noise, t, mask


def test_diffuse_matches_definition():
    x, noise, t, _ = _data()
    z, v = diffuse(x, t, noise)
    alpha, sigma = (a.numpy() for a in cosine_alpha_sigma(t))
    np.testing.assert_allclose(z.numpy(), alpha[:, None, None] * x + sigma[:, None, None] * noise, atol=1e-6)
    np.testing.assert_allclose(v.numpy(), v_from_x_eps(x, noise, alpha, sigma).numpy(), atol=1e-6)
    np.testing.assert_allclose(x_from_v(z, v, alpha, sigma).numpy(), x, atol=1e-5)


def test_diffuse_endpoints():
    x, noise, _, _ = _data()
    z, v = diffuse(x, np.zeros(len(x)), noise)
    np.testing.assert_array_equal(z.numpy(), x)
    np.testing.assert_array_equal(v.numpy(), noise)
    z, v = diffuse(x, np.ones(len(x)), noise)
    np.testing.assert_array_equal(z.numpy(), noise)
    np.testing.assert_array_equal(v.numpy(), -x)


@pytest.mark.parametrize("trailing_axis", [False, True])
def test_diffuse_mask_zeroes_padding(trailing_axis):
    x, noise, t, mask = _data()
    m = mask[..., None] if trailing_axis else mask
    z, v = diffuse(x, t, noise, mask=m)
    pad = mask == 0
    assert pad.any()
    assert np.all(z.numpy()[pad] == 0) and np.all(v.numpy()[pad] == 0)
    z_free, _ = diffuse(x, t, noise)
    np.testing.assert_array_equal(z.numpy()[~pad], z_free.numpy()[~pad])


def test_v_loss_unmasked():
    x, noise, _, _ = _data()
    assert v_loss(x, x).numpy() == 0.0
    loss = v_loss(x, noise)
    assert loss.shape == ()
    np.testing.assert_allclose(loss.numpy(), np.mean((x - noise) ** 2), rtol=1e-6)


def test_v_loss_masked_normalisation():
    x, noise, _, mask = _data()
    f = x.shape[-1]
    sq = (x - noise) ** 2 * mask[..., None]
    expected = sq.sum() / (mask.sum() * f)  # mean over real entries, not over the padded size
    loss = v_loss(x, noise, mask).numpy()
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert not np.isclose(loss, sq.sum() / sq.size)  # the padded-size mean would differ
    np.testing.assert_allclose(v_loss(x, noise, mask[..., None]).numpy(), expected, rtol=1e-6)
    assert v_loss(x, x, mask).numpy() == 0.0


def test_v_loss_ignores_padding():
    x, noise, _, mask = _data()
    pad = mask == 0
    garbage = noise.copy()
    garbage[pad] = np.inf  # not even inf on padding may leak in
    np.testing.assert_allclose(v_loss(x, garbage, mask).numpy(), v_loss(x, noise, mask).numpy(), rtol=1e-6)
    # no padding at all: identical to the unmasked mean
    ones = np.ones_like(mask)
    np.testing.assert_allclose(v_loss(x, noise, ones).numpy(), v_loss(x, noise).numpy(), rtol=1e-6)


def test_v_loss_all_padding_is_zero():
    x, noise, _, mask = _data()
    assert v_loss(x, noise, np.zeros_like(mask)).numpy() == 0.0
