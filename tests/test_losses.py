"""Forward diffusion, the masked MSE behind the v- and eps-losses (FPCD eq. 1), on the VP cosine schedule."""

from __future__ import annotations

import numpy as np
import pytest

from gsgm.diffusion import (
    VEGeometricSchedule,
    VPCosineSchedule,
    diffuse,
    diffuse_with_v_target,
    eps_loss,
    masked_mse,
    v_from_x_eps,
    v_loss,
    v_target,
    x_from_v,
)

VP = VPCosineSchedule()
cosine_alpha_sigma = VP.alpha_sigma


def diffuse_vp(x, t, noise, mask=None):
    """``(z_t, v)`` on the VP cosine schedule."""
    return diffuse(x, t, noise, VP, mask=mask), v_target(x, noise, t, VP, mask=mask)


def _data(b=8, p=6, f=3, seed=0):
    rng = np.random.default_rng(seed)
    mask = (np.arange(p)[None, :] < rng.integers(1, p + 1, size=b)[:, None]).astype(np.float32)
    x = rng.normal(size=(b, p, f)).astype(np.float32) * mask[..., None]
    noise = rng.normal(size=(b, p, f)).astype(np.float32)
    t = rng.uniform(size=b).astype(np.float32)
    return x, noise, t, mask


def test_diffuse_matches_definition():
    x, noise, t, _ = _data()
    z, v = diffuse_vp(x, t, noise)
    alpha, sigma = (a.numpy() for a in cosine_alpha_sigma(t))
    np.testing.assert_allclose(z.numpy(), alpha[:, None, None] * x + sigma[:, None, None] * noise, atol=1e-6)
    np.testing.assert_allclose(v.numpy(), v_from_x_eps(x, noise, alpha, sigma).numpy(), atol=1e-6)
    np.testing.assert_allclose(x_from_v(z, v, alpha, sigma).numpy(), x, atol=1e-5)


@pytest.mark.parametrize("masked", [False, True])
def test_diffuse_with_v_target_is_diffuse_and_v_target_at_once(masked):
    x, noise, t, mask = _data(seed=4)
    mask = mask if masked else None
    z, v = diffuse_with_v_target(x, t, noise, VP, mask=mask)
    z_ref, v_ref = diffuse_vp(x, t, noise, mask=mask)
    np.testing.assert_array_equal(z.numpy(), z_ref.numpy())
    np.testing.assert_array_equal(v.numpy(), v_ref.numpy())


def test_diffuse_endpoints():
    x, noise, _, _ = _data()
    z, v = diffuse_vp(x, np.zeros(len(x)), noise)
    np.testing.assert_array_equal(z.numpy(), x)
    np.testing.assert_array_equal(v.numpy(), noise)
    z, v = diffuse_vp(x, np.ones(len(x)), noise)
    np.testing.assert_array_equal(z.numpy(), noise)
    np.testing.assert_array_equal(v.numpy(), -x)


@pytest.mark.parametrize("trailing_axis", [False, True])
def test_diffuse_mask_zeroes_padding(trailing_axis):
    x, noise, t, mask = _data()
    m = mask[..., None] if trailing_axis else mask
    z, v = diffuse_vp(x, t, noise, mask=m)
    pad = mask == 0
    assert pad.any()
    assert np.all(z.numpy()[pad] == 0) and np.all(v.numpy()[pad] == 0)
    z_free, _ = diffuse_vp(x, t, noise)
    np.testing.assert_array_equal(z.numpy()[~pad], z_free.numpy()[~pad])


def test_v_loss_unmasked():
    x, noise, _, _ = _data()
    assert masked_mse(x, x).numpy() == 0.0
    loss = masked_mse(x, noise)
    assert loss.shape == ()
    np.testing.assert_allclose(loss.numpy(), np.mean((x - noise) ** 2), rtol=1e-6)


def test_v_loss_masked_normalisation():
    x, noise, _, mask = _data()
    f = x.shape[-1]
    sq = (x - noise) ** 2 * mask[..., None]
    expected = sq.sum() / (mask.sum() * f)  # mean over real entries, not over the padded size
    loss = masked_mse(x, noise, mask).numpy()
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert not np.isclose(loss, sq.sum() / sq.size)  # the padded-size mean would differ
    np.testing.assert_allclose(masked_mse(x, noise, mask[..., None]).numpy(), expected, rtol=1e-6)
    assert masked_mse(x, x, mask).numpy() == 0.0


def test_v_loss_ignores_padding():
    x, noise, _, mask = _data()
    pad = mask == 0
    garbage = noise.copy()
    garbage[pad] = np.inf  # not even inf on padding may leak in
    np.testing.assert_allclose(
        masked_mse(x, garbage, mask).numpy(), masked_mse(x, noise, mask).numpy(), rtol=1e-6
    )
    # no padding at all: identical to the unmasked mean
    ones = np.ones_like(mask)
    np.testing.assert_allclose(masked_mse(x, noise, ones).numpy(), masked_mse(x, noise).numpy(), rtol=1e-6)


def test_v_loss_all_padding_is_zero():
    x, noise, _, mask = _data()
    assert masked_mse(x, noise, np.zeros_like(mask)).numpy() == 0.0


def test_v_loss_and_eps_loss_are_the_mse_of_their_targets():
    x, noise, t, mask = _data(seed=3)
    rng = np.random.default_rng(4)
    v_hat = rng.normal(size=x.shape).astype(np.float32)
    alpha, sigma = (a.numpy()[:, None, None] for a in cosine_alpha_sigma(t))
    masked_noise = noise * mask[..., None]
    v = alpha * masked_noise - sigma * x
    real = np.broadcast_to(mask[..., None], x.shape) > 0
    np.testing.assert_allclose(
        v_loss(v_hat, x, noise, t, VP, mask).numpy(), np.mean((v - v_hat)[real] ** 2), rtol=1e-5
    )
    np.testing.assert_allclose(
        eps_loss(v_hat, noise, mask).numpy(), np.mean((masked_noise - v_hat)[real] ** 2), rtol=1e-5
    )
    # the exact noise is a perfect eps prediction, also with garbage on padding
    garbage = np.where(real, masked_noise, 1e6).astype(np.float32)
    assert eps_loss(garbage, noise, mask).numpy() == 0.0


def test_diffuse_on_ve_schedule_adds_sigma_noise():
    x, noise, _, _ = _data()
    schedule = VEGeometricSchedule(0.01, 10.0)
    sigma = np.linspace(0.01, 10.0, len(x)).astype(np.float32)
    np.testing.assert_allclose(
        diffuse(x, sigma, noise, schedule).numpy(), x + sigma[:, None, None] * noise, rtol=1e-6
    )
