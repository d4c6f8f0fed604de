"""Jet images: binning, Alg. 4 reconstruction, round trips, m/pT, statistics and the tf.data pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from gsgm.data.images import (
    image_statistics,
    images_to_jet_list,
    images_to_particles,
    jets_to_images,
    load_jet_images,
    make_image_dataset,
    mass_over_pt,
    pixel_centres,
    pixel_edges,
)


def one_jet(*particles: tuple[float, float, float], slots: int = 4) -> np.ndarray:
    """[1, slots, 4] particle features from (eta, phi, pt) triples."""
    features = np.zeros((1, slots, 4), np.float32)
    for i, (eta, phi, pt) in enumerate(particles):
        features[0, i] = (eta, phi, pt, 1.0)
    return features


def test_pixel_edges_and_centres_match_the_paper():
    edges = pixel_edges()
    assert edges.shape == (26,) and edges[0] == -0.4 and edges[-1] == 0.4
    np.testing.assert_allclose(np.diff(edges), 0.032, rtol=1e-12)
    centres = pixel_centres()
    # Alg. 4 lines 7, 16: -maxR + (index + 0.5) * 2 maxR / N
    np.testing.assert_allclose(centres, -0.4 + (np.arange(25) + 0.5) * 0.8 / 25, rtol=0, atol=1e-15)
    np.testing.assert_allclose(centres, 0.5 * (edges[1:] + edges[:-1]), atol=1e-15)


EDGES32 = pixel_edges().astype(np.float32)


@pytest.mark.parametrize(
    ("coordinate", "expected"),
    [
        (EDGES32[0], 0),  # the left edge of the first bin is inside (float32 -0.4 included)
        (np.nextafter(EDGES32[0], np.float32(-1)), None),  # just below: outside the window
        (EDGES32[1], 1),  # an inner edge belongs to the bin on its right
        (np.nextafter(EDGES32[1], np.float32(-1)), 0),
        (0.0, 12),  # the centre pixel spans [-0.016, 0.016)
        (EDGES32[13], 13),
        (np.nextafter(EDGES32[25], np.float32(-1)), 24),
        (EDGES32[25], 24),  # the last bin is closed (float32 0.4 included)
        (np.nextafter(EDGES32[25], np.float32(1)), None),
    ],
)
def test_binning_edges(coordinate, expected):
    for axis in (0, 1):
        point = [0.0, 0.0]
        point[axis] = coordinate
        image = jets_to_images(one_jet((point[0], point[1], 0.5)))[0]
        occupied = np.argwhere(image > 0)
        if expected is None:
            assert occupied.size == 0
        else:
            assert occupied.tolist() == [[expected, 12] if axis == 0 else [12, expected]]


def test_particles_outside_the_window_and_padding_are_dropped():
    jets = one_jet((0.41, 0.0, 0.2), (0.0, -0.5, 0.3), (0.1, 0.1, 0.4), slots=5)
    jets[0, 4] = (0.0, 0.0, 0.7, 0.0)  # a masked slot with non-zero features
    image = jets_to_images(jets)[0]
    assert np.count_nonzero(image) == 1
    assert image.sum() == pytest.approx(0.4)


def test_pixel_is_the_sum_of_pt_rel_of_its_particles():
    image = jets_to_images(one_jet((0.001, 0.002, 0.25), (0.010, -0.010, 0.125), (0.2, 0.2, 0.5)))[0]
    assert image[12, 12] == pytest.approx(0.375)
    assert image.sum() == pytest.approx(0.875)


def test_round_trip_conserves_pt_and_pixel_positions(real_jets30):
    sample = real_jets30.select(np.arange(0, len(real_jets30), 97))  # ~100 jets of every class
    images = jets_to_images(sample)
    eta, phi, pt, mask = np.moveaxis(sample.particles, -1, 0)
    inside = (mask > 0) & (np.abs(eta) <= 0.4) & (np.abs(phi) <= 0.4)
    # Total pt_rel of the particles inside the window is conserved by the binning.
    np.testing.assert_allclose(images.sum(axis=(1, 2)), (pt * inside).sum(axis=1), rtol=1e-5, atol=1e-6)
    particles = images_to_particles(images)
    # ... and by the reconstruction, which puts one particle per non-zero pixel.
    np.testing.assert_allclose(particles[..., 2].sum(axis=1), images.sum(axis=(1, 2)), rtol=1e-6)
    assert (particles[..., 3].sum(axis=1) == (images > 0).sum(axis=(1, 2))).all()
    # Reconstructed particles sit at pixel centres: re-binning gives back the very same image.
    np.testing.assert_array_equal(jets_to_images(particles), images)
    # Every original particle is within half a pixel of an occupied pixel centre.
    for jet, image in zip(sample.particles[:20], images[:20], strict=True):
        rows, cols = np.nonzero(image)
        centres = pixel_centres()
        for e, p, _, m in jet:
            if m > 0 and abs(e) <= 0.4 and abs(p) <= 0.4:
                distance = np.maximum(np.abs(centres[rows] - e), np.abs(centres[cols] - p)).min()
                assert distance <= 0.016 + 1e-6


def test_reconstruction_sorts_by_pt_pads_and_respects_threshold():
    images = np.zeros((3, 25, 25), np.float32)
    images[0, 3, 4], images[0, 20, 1], images[0, 12, 12] = 0.1, 0.6, 0.3
    images[1, 0, 0] = -0.2  # negative pixels are empty
    images[2, 5, 5], images[2, 6, 6] = 0.001, 0.5
    particles = images_to_particles(images, threshold=0.002)
    assert particles.shape == (3, 3, 4)
    np.testing.assert_allclose(particles[0, :, 2], [0.6, 0.3, 0.1])
    np.testing.assert_allclose(particles[0, 0, :2], [pixel_centres()[20], pixel_centres()[1]], rtol=1e-6)
    assert particles[1].sum() == 0
    assert particles[2, :, 3].tolist() == [1, 0, 0]
    assert images_to_particles(images[0]).shape == (3, 4)  # a single image
    assert images_to_particles(images, max_particles=1)[0, 0, 2] == pytest.approx(0.6)


def test_algorithm_4_list_form():
    images = np.zeros((2, 25, 25), np.float32)
    images[0, 0, 24], images[0, 24, 0] = 0.2, 0.7
    jets = images_to_jet_list(images)
    assert len(jets) == 2 and jets[1].shape == (0, 3)
    # Row-major order as in Alg. 4, columns (eta, phi, pt).
    np.testing.assert_allclose(jets[0], [[-0.384, 0.384, 0.2], [0.384, -0.384, 0.7]], rtol=1e-6)
    assert images_to_jet_list(images[0]).shape == (2, 3)


def test_mass_over_pt_of_two_massless_particles():
    # m^2 = 2 pt1 pt2 (cosh(d_eta) - cos(d_phi)), pT from the vector sum.
    pt1, pt2, d_eta, d_phi = 0.6, 0.3, 0.2, 0.1
    particles = one_jet((0.0, 0.0, pt1), (d_eta, d_phi, pt2), slots=3)
    mass = np.sqrt(2 * pt1 * pt2 * (np.cosh(d_eta) - np.cos(d_phi)))
    jet_pt = np.hypot(pt1 + pt2 * np.cos(d_phi), pt2 * np.sin(d_phi))
    assert mass_over_pt(particles)[0] == pytest.approx(mass / jet_pt, rel=1e-6)
    # Invariant under the overall scale and under shifts in eta and phi.
    shifted = particles.copy()
    shifted[..., 0] += 0.3 * shifted[..., 3]
    shifted[..., 1] -= 0.2 * shifted[..., 3]
    shifted[..., 2] *= 3.0
    assert mass_over_pt(shifted)[0] == pytest.approx(mass / jet_pt, rel=1e-5)
    assert np.isnan(mass_over_pt(np.zeros((1, 3, 4))))[0]


def test_image_mass_equals_the_particle_mass_up_to_pixelisation(real_jets30):
    sample = real_jets30.select(np.arange(0, len(real_jets30), 10))
    in_window = sample.particles.copy()
    in_window[..., 3] *= (np.abs(in_window[..., 0]) <= 0.4) & (np.abs(in_window[..., 1]) <= 0.4)
    rebuilt = mass_over_pt(images_to_particles(jets_to_images(sample)))
    exact = mass_over_pt(in_window)
    # Pixel centres move each particle by at most half a pixel (0.016): m/pT changes by ~2 % (median).
    assert np.corrcoef(rebuilt, exact)[0, 1] > 0.99
    assert np.median(np.abs(rebuilt / exact - 1)) < 0.04


def test_image_statistics():
    rng = np.random.default_rng(0)
    images = np.zeros((50, 5, 5), np.float32)
    images[:, 2, 2] = rng.uniform(0.5, 1.0, 50)
    images[0, 0, 0] = 0.01
    stats = image_statistics(images)
    assert stats["pixel_std"] == pytest.approx(images.std(), rel=1e-5)
    flat = images.reshape(50, -1).astype(np.float64)
    exact = max(np.linalg.norm(a - b) for a in flat for b in flat)
    assert stats["max_pairwise_distance"] == pytest.approx(exact, rel=1e-6)
    assert stats["nonzero_q01"] <= stats["nonzero_q05"] <= stats["nonzero_median"]


def test_load_jet_images_and_dataset(builtin_dir):
    images, labels = load_jet_images(builtin_dir, "t,w", split="test", max_jets_per_class=10)
    assert images.shape == (20, 25, 25) and labels.tolist() == [2] * 10 + [3] * 10
    a = [b["labels"].numpy().tolist() for b in make_image_dataset(images, labels, 8, seed=1)]
    b = [b["labels"].numpy().tolist() for b in make_image_dataset(images, labels, 8, seed=1)]
    c = [b["labels"].numpy().tolist() for b in make_image_dataset(images, labels, 8, seed=2)]
    assert a == b and a != c and [len(x) for x in a] == [8, 8, 4]
    batch = next(iter(make_image_dataset(images, labels, 20, shuffle=False)))
    np.testing.assert_array_equal(batch["images"].numpy()[..., 0], images)
    with pytest.raises(ValueError, match="labels must be in"):
        make_image_dataset(images, labels + 5, 8)
