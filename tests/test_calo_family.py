"""The calorimeter family's diffusion pieces: sampler step counts, the VE-as-VP adapter, hit-count
calibration, projection to cells, and consistency distillation on a toy (1 step vs the 25-step teacher)."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from gsgm.config.calo import CaloDiffusionConfig
from gsgm.diffusion.consistency import sample_consistency
from gsgm.diffusion.edm import VEAsVPDenoiser, edm_loss
from gsgm.diffusion.samplers import sample_probability_flow
from gsgm.diffusion.schedules import DiscreteCosineSchedule, KarrasSchedule
from gsgm.generation.calo import HitCalibration, project_to_cells, sample_points
from gsgm.training.calo_model import CaloConsistencyModel

DIFFUSION = CaloDiffusionConfig()
S = 0.5  # width of the toy data around its conditional mean


def gaussian_denoiser(z, sigma, *, cond, mask=None):
    """Exact E[x | x + sigma n] for x ~ N(cond, S^2) per element (VE, alpha = 1)."""
    sigma = tf.reshape(tf.cast(sigma, z.dtype), [-1] + [1] * (len(z.shape) - 1))
    mu = tf.reshape(cond[:, :1], [-1] + [1] * (len(z.shape) - 1))
    out = (S**2 * z + sigma**2 * mu) / (S**2 + sigma**2)
    return out if mask is None else out * tf.cast(mask, z.dtype)[..., None]


def test_the_three_samplers_make_their_step_counts_of_network_calls():
    calls = tf.Variable(0, dtype=tf.int64)

    def counting(z, sigma, *, cond, mask):
        calls.assign_add(1)
        return gaussian_denoiser(z, sigma, cond=cond, mask=mask)

    model = SimpleNamespace(diffusion=DIFFUSION, point_denoiser=counting)
    cond = np.array([[0.5, 0.0], [-0.5, 0.0]], np.float32)
    counts = np.array([5, 3])
    # Heun on the 26-point Karras grid ending at sigma_min > 0: two calls per step; DDPM one per step.
    for sampler, steps, expected in (("edm", 25, 50), ("ddpm", 100, 100), ("cm", 1, 1)):
        calls.assign(0)
        out = sample_points(model, cond, counts, sampler, steps, seed=1)
        assert int(calls.numpy()) == expected, sampler
        assert out.shape == (2, 5, 4) and (out[1, 3:] == 0).all()
    # The exact denoiser's ODE ends near the data mean plus S times the (scaled) noise.
    out = sample_points(model, cond, counts, "edm", 25, seed=1)
    assert abs(out[0, :5].mean() - 0.5) < 3 * S / np.sqrt(20) + 0.05


def test_a_ve_denoiser_under_a_vp_schedule_is_the_vp_posterior_mean():
    vp = DiscreteCosineSchedule(1000)
    adapter = VEAsVPDenoiser(gaussian_denoiser, vp, sigma_max=80.0)
    z = tf.random.stateless_normal([3, 4, 2], seed=[1, 2])
    cond = tf.constant([[0.3], [-1.0], [2.0]])
    for step in (50.0, 500.0, 900.0):
        t = tf.fill([3], step)
        alpha, sigma = (float(v[0]) for v in vp.alpha_sigma(t))
        # the Gaussian posterior mean of x ~ N(mu, S^2) given z = alpha x + sigma n
        mu = tf.reshape(cond, [3, 1, 1])
        exact = mu + alpha * S**2 * (z - alpha * mu) / (alpha**2 * S**2 + sigma**2)
        np.testing.assert_allclose(adapter(z, t, cond=cond), exact, rtol=1e-4, atol=1e-5)


def test_edm_loss_vanishes_for_the_exact_denoiser_of_a_point_mass():
    x = tf.ones([4, 3, 2]) * tf.reshape(tf.constant([0.0, 1.0, -2.0, 3.0]), [4, 1, 1])
    cond = tf.reshape(tf.constant([0.0, 1.0, -2.0, 3.0]), [4, 1])

    def point_mass(z, sigma, *, cond):
        return tf.ones_like(z) * tf.reshape(cond, [-1, 1, 1])

    noise = tf.random.stateless_normal(x.shape, seed=[0, 1])
    assert float(edm_loss(point_mass, x, tf.fill([4], 2.0), noise, 1.0, cond={"cond": cond})) == 0.0
    wrong = edm_loss(lambda z, s, cond: z, x, tf.fill([4], 2.0), noise, 1.0, cond={"cond": cond})
    # identity: error 2 n, weight (4 + 1) / 4: mean 5 E[n^2] = 5
    assert float(wrong) == pytest.approx(5.0, rel=0.3)


def test_hit_calibration_inverts_its_fit():
    n = np.arange(1, 200)
    hits = 0.9 * n - 0.001 * n**2
    calibration = HitCalibration.fit(n, hits)
    assert calibration.a == pytest.approx(0.9) and calibration.b == pytest.approx(-0.001)
    np.testing.assert_allclose(calibration.points_for(np.round(hits)), n, atol=2)
    assert HitCalibration().points_for(np.array([0, 7])).tolist() == [0, 7]


def test_projection_merges_points_per_cell_and_matches_the_layer_energies():
    pre = SimpleNamespace(num_layers=3, cells_per_side=4, cell_mm=5.0)
    # depth sorts the points into layers 0, 0, 1 by the counts (2, 1, 0); the first two share a cell.
    points = np.array([[1.0, 1.0, 0.2, 1.0], [2.0, 3.0, 0.1, 3.0], [-6.0, 7.0, 0.9, 5.0]])
    cells = project_to_cells(points, np.array([2, 1, 0]), np.array([8.0, 2.0, 0.0]), pre, threshold_mev=0.1)
    np.testing.assert_allclose(cells, [[2.5, 2.5, 0, 8.0], [-7.5, 7.5, 1, 2.0]])


def toy_net() -> keras.Model:
    """Functional per-point MLP F(z_in [B, P, 2], ln sigma [B, 1], mu [B, 1])."""
    z = keras.Input((None, 2))
    log_sigma = keras.Input((1,))
    mu = keras.Input((1,))
    extra = keras.layers.Concatenate()([log_sigma / 4.0, mu])
    h = keras.layers.Concatenate()([z, keras.ops.ones_like(z) * extra[:, None, :]])
    for _ in range(2):
        h = keras.layers.Dense(64, activation="swish")(h)
    return keras.Model([z, log_sigma, mu], keras.layers.Dense(2)(h))


def toy_call(net, training=False):
    return lambda z_in, log_sigma, *, cond: net(
        [z_in, tf.reshape(log_sigma, [-1, 1]), cond], training=training
    )


def test_consistency_distillation_matches_the_25_step_teacher_in_one_step():
    keras.utils.set_random_seed(0)
    net = toy_net()
    model = CaloConsistencyModel(net, gaussian_denoiser, DIFFUSION, num_points=18, target_ema=0.9,
                                 solver="heun", seed=3, network_call=toy_call)  # fmt: skip
    rng = np.random.default_rng(0)
    mu = rng.uniform(-1, 1, size=(2048, 1)).astype(np.float32)
    x = (mu[:, :, None] + S * rng.standard_normal((2048, 4, 2))).astype(np.float32)
    data = (
        tf.data.Dataset.from_tensor_slices({"points": x, "cond": mu}).shuffle(2048, seed=1).batch(64).repeat()
    )
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, 1200)))
    model.fit(data, steps_per_epoch=200, epochs=6, verbose=0)

    schedule = KarrasSchedule(DIFFUSION.sigma_min, DIFFUSION.sigma_max, DIFFUSION.rho)
    cond = tf.constant(np.linspace(-1, 1, 256, dtype=np.float32)[:, None])
    x_t = DIFFUSION.sigma_max * tf.random.stateless_normal([256, 4, 2], seed=[5, 6])
    teacher = sample_probability_flow(gaussian_denoiser, x_t, schedule, 25, cond={"cond": cond})
    student = sample_consistency(model.point_denoiser, x_t, schedule, 1, cond={"cond": cond})
    one_denoise = gaussian_denoiser(x_t, tf.fill([256], DIFFUSION.sigma_max), cond=cond)
    error = float(tf.reduce_mean(tf.abs(student - teacher)))
    baseline = float(tf.reduce_mean(tf.abs(one_denoise - teacher)))  # ~ S E|n| = 0.4: the teacher in one step
    assert baseline > 0.3
    assert error < 0.25 * baseline, (error, baseline)


def test_preprocessing_inverts_and_the_flow_counts_add_up():
    from gsgm.data.calo_generation import generate_showers
    from gsgm.data.calo_preprocessing import CaloPreprocessor, flow_features, largest_remainder, layer_sums

    sample = generate_showers(12, seed=2, chunk_size=12, workers=1, progress=False)
    pre = CaloPreprocessor.fit(sample)
    back = pre.inverse_points(pre.transform_points(sample))
    mask = sample.mask > 0
    np.testing.assert_allclose(back[mask][:, :2], sample.points[mask][:, :2], atol=1e-3)
    np.testing.assert_allclose(back[mask][:, 2], sample.points[mask][:, 2] + 0.5, atol=1e-4)
    np.testing.assert_allclose(back[mask][:, 3], sample.points[mask][:, 3], rtol=1e-4)
    # The shower-flow features of a real sample decode to its own hit counts and layer energies.
    n, hits, energy = pre.inverse_flow(pre.transform_flow(sample), sample.energies)
    true_hits, true_energy = layer_sums(sample)
    np.testing.assert_array_equal(n, sample.num_points)
    np.testing.assert_array_equal(hits, true_hits)
    np.testing.assert_allclose(energy, true_energy, rtol=1e-3, atol=1e-3)
    assert flow_features(sample).shape == (12, 62)
    counts = largest_remainder(np.array([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]), np.array([7, 10]))
    assert counts.sum(axis=1).tolist() == [7, 10] and counts[0].tolist() == [
        3,
        2,
        2,
    ]  # remainders .5, .75, .75
