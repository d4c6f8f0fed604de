"""Physics checks on the shipped Pythia sample (gsgm/data/builtin, 2,000 jets per class).

The sample is fixed (seed 20261124), so these numbers are deterministic; the windows below are what the
physics allows, not fits to this sample. See gsgm/data/builtin/README.md for the generation settings.
"""

from __future__ import annotations

import numpy as np
import pytest

from gsgm.data.jetnet_format import JET_CLASSES, JetSample, read_file_attributes

R = 0.8  # anti-kt radius


def _cls(sample: JetSample, jet_class: str) -> JetSample:
    return sample.select(sample.labels == JET_CLASSES.index(jet_class))


def _mass_mode(sample: JetSample, jet_class: str, bin_width: float = 3.0) -> float:
    """Centre of the most populated jet-mass bin [GeV] over 0-300 GeV."""
    mass = _cls(sample, jet_class).jets[:, 2]
    counts, edges = np.histogram(mass, bins=np.arange(0.0, 300.0 + bin_width, bin_width))
    return float(edges[np.argmax(counts)] + bin_width / 2)


def _untruncated(sample: JetSample) -> JetSample:
    """Jets whose constituents all fit into the P slots (num_particles < P)."""
    return sample.select(sample.jets[:, 3] < sample.num_particles)


def test_sample_size_and_provenance(real_jets30, real_jets150, builtin_dir):
    for sample in (real_jets30, real_jets150):
        assert np.bincount(sample.labels, minlength=len(JET_CLASSES)).tolist() == [2000] * len(JET_CLASSES)
    attrs = read_file_attributes(builtin_dir / "t150.hdf5")
    assert attrs["seed"] == 20261124 and attrs["num_particles"] == 150 and attrs["jet_class"] == "t"


def test_30_and_150_files_hold_the_same_jets(real_jets30, real_jets150):
    np.testing.assert_array_equal(real_jets30.labels, real_jets150.labels)
    np.testing.assert_array_equal(real_jets30.jets[:, :3], real_jets150.jets[:, :3])
    np.testing.assert_array_equal(real_jets30.particles, real_jets150.particles[:, :30])


# Resonance peaks. The jet mass includes underlying event / MPI particles that fall into the R = 0.8
# cone (pushing the peak up by a few GeV) and loses some final-state radiation out of the cone (pulling
# it down), so the windows are the pole mass -3 GeV to +15 GeV (t) / +10 GeV (W, Z).
@pytest.mark.parametrize(
    ("jet_class", "low", "high"), [("t", 170.0, 188.0), ("w", 77.5, 90.5), ("z", 88.0, 101.0)]
)
def test_resonance_mass_peaks(real_jets150, jet_class, low, high):
    assert low <= _mass_mode(real_jets150, jet_class) <= high


def test_z_w_mass_difference(real_jets150):
    # the UE shift is nearly the same for W and Z, so the peak difference stays close to 91.2 - 80.4
    difference = _mass_mode(real_jets150, "z") - _mass_mode(real_jets150, "w")
    assert 5.0 <= difference <= 17.0


def test_gluon_jets_have_more_constituents_than_quark_jets(real_jets150):
    # colour factors C_A / C_F = 9/4 at leading log; with hadronisation the ratio of means is ~1.5-1.7
    n_g = _cls(real_jets150, "g").jets[:, 3].mean()
    n_q = _cls(real_jets150, "q").jets[:, 3].mean()
    assert n_g > 1.3 * n_q
    # three-pronged top jets carry more particles than two-pronged W jets
    assert _cls(real_jets150, "t").jets[:, 3].mean() > 1.3 * _cls(real_jets150, "w").jets[:, 3].mean()


def test_particles_rebuild_the_jet_momentum(real_jets150):
    # For untruncated jets the constituents are the whole jet: the vector sum of the particles' transverse
    # momenta is (pt_jet, 0) in the jet frame and their pz adds up to the jet's pz.
    full = _untruncated(real_jets150)
    pf, jf = full.particles.astype(np.float64), full.jets.astype(np.float64)
    assert len(full) > 0.95 * len(real_jets150)
    pt, eta, phi, mask = pf[..., 2], pf[..., 0], pf[..., 1], pf[..., 3]
    np.testing.assert_allclose((pt * np.cos(phi)).sum(1), 1.0, atol=1e-4)
    np.testing.assert_allclose((pt * np.sin(phi)).sum(1), 0.0, atol=1e-4)
    np.testing.assert_allclose((pt * np.sinh(eta + jf[:, 1:2]) * mask).sum(1), np.sinh(jf[:, 1]), atol=1e-4)


def test_sum_of_pt_rel(real_jets30, real_jets150):
    # pt_jet is the magnitude of the vector sum, so the scalar sum of the constituents' pt_rel is >= 1
    # (triangle inequality) and only slightly above 1 for a collimated jet; it is < 1 only by truncation.
    full = _untruncated(real_jets150)
    total = full.particles[..., 2].sum(1)
    assert total.min() >= 1.0 - 1e-5
    assert total.max() <= 1.15
    assert 1.0 <= np.median(total) <= 1.02
    sum150 = real_jets150.particles[..., 2].sum(1)
    sum30 = real_jets30.particles[..., 2].sum(1)
    assert np.all(sum30 <= sum150 + 1e-5)
    assert np.median(sum150) > 0.99
    assert 0.85 <= np.median(sum30) <= 1.0


def test_particles_lie_inside_the_jet(real_jets30, real_jets150):
    # Anti-kt merges a particle within R of the pseudojet it joins; when that pseudojet later merges with
    # another hard prong the axis moves, so a few soft particles end up slightly beyond R of the final axis
    # (all of them within R of their own C/A subjet for t/W/Z). They are rare and carry almost no pt.
    for sample, max_fraction in ((real_jets150, 5e-3), (real_jets30, 5e-4)):
        real = sample.particles[..., 3] > 0
        eta, phi, pt = (sample.particles[..., k][real] for k in range(3))
        assert np.abs(eta).max() < 1.2 and np.abs(phi).max() < 1.2
        outside = np.hypot(eta, phi) > R
        assert outside.mean() < max_fraction
        assert pt[outside].sum() < 5e-4 * pt.sum()


def test_jet_kinematics_inside_the_selection(real_jets30):
    jets = real_jets30.jets
    assert np.all((jets[:, 0] >= 800.0) & (jets[:, 0] <= 1600.0))
    assert np.all(np.abs(jets[:, 1]) < 2.5)
    # the hard process has pTHat in [990, 1010] GeV: jets peak close to 1 TeV
    assert 990.0 <= np.median(jets[:, 0]) <= 1040.0


def test_particles_sorted_and_padded(real_jets150):
    pf = real_jets150.particles
    assert np.all(np.diff(pf[..., 2], axis=1) <= 0)
    assert np.all(np.diff(pf[..., 3], axis=1) <= 0)
    assert np.all(pf[pf[..., 3] == 0] == 0)
