"""DIS events: the Pythia generator (seeds, sum rule, Q^2 cut, species), the file format, images and the
bijective z rescaling (paper eqs. 10-17) on real events."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from gsgm.data.dis_format import SPECIES, DisFormatError, read_dis_file, write_dis_file
from gsgm.data.dis_generation import DisSettings, generate_dis_chunk, generate_dis_events
from gsgm.data.dis_images import EMPTY, ZRescaling, events_to_images, image_sparsity, images_to_events
from gsgm.data.dis_observables import dis_kinematics, leading_electron, multiplicities

BUILTIN = "gsgm/data/builtin/dis_ep105.hdf5"


@pytest.fixture(scope="module")
def chunk():
    return generate_dis_chunk((11, 0, 1500, DisSettings()))


@pytest.fixture(scope="module")
def shipped():
    from pathlib import Path

    return read_dis_file(Path(__file__).resolve().parents[1] / BUILTIN)


def test_same_seed_same_events_for_any_worker_count():
    settings = DisSettings(chunk_size=300)
    one = generate_dis_events(900, 5, workers=1, settings=settings, progress=False)
    two = generate_dis_events(900, 5, workers=2, settings=settings, progress=False)
    np.testing.assert_array_equal(one.particles, two.particles)
    np.testing.assert_array_equal(one.event_features, two.event_features)
    other = generate_dis_events(300, 6, workers=1, settings=settings, progress=False)
    assert not np.array_equal(other.particles[:, :5], one.particles[:300, :5])
    # more events only append: the first chunk is the same
    np.testing.assert_array_equal(
        one.select(slice(0, 300)).event_features,
        generate_dis_events(300, 5, workers=1, settings=settings, progress=False).event_features,
    )


def test_sum_rule_energy_conservation_and_the_bound_on_kept_z(chunk, shipped):
    # All final-state particles: sum of 2 E / sqrt(s) is exactly 2 in the CM frame (paper eq. 11).
    np.testing.assert_allclose(chunk.sum_all_energy_fractions, 2.0, rtol=1e-7)
    for events in (chunk.events, shipped):
        total = events.z().sum(axis=1)
        assert total.max() < 2.0 and total.min() > 0
        # only three species are kept: the sum peaks near 1 (paper Fig. 7), well below the bound
        assert 0.8 < np.median(total) < 1.3


def test_q2_cut_and_kinematics_from_the_leading_electron(shipped):
    q2_gen = shipped.event_features[:, 0]
    assert q2_gen.min() > 25.0
    kin = dis_kinematics(shipped)
    # the scattered electron gives back the generator's Q^2 (no QED radiation off the lepton)
    close = np.abs(kin["Q2"] / q2_gen - 1) < 1e-2
    assert close.mean() > 0.98
    assert np.nanquantile(kin["Q2"], 0.01) > 25.0 * 0.99
    assert np.all((kin["y"][close] > 0) & (kin["y"][close] <= 1)) and np.all(kin["x"][close] <= 1.0)
    # Q^2 > 25 GeV^2 keeps electrons above eta ~ -3.04 (paper Fig. 5: the drop near eta = -3)
    _, _, _, eta_e = leading_electron(shipped)
    assert -3.4 < np.nanmin(eta_e) < -2.8 and np.nanquantile(eta_e, 0.01) > -3.1


def test_species_eta_range_and_rotation(shipped):
    pid = shipped.particles[..., 3]
    assert set(np.unique(pid)) == {0.0, *map(float, SPECIES)}
    real = pid != 0
    assert np.abs(shipped.particles[..., 1][real]).max() < 10.0
    counts = multiplicities(shipped)
    assert np.all(counts[11] >= 1)  # every event has its scattered electron
    # paper Fig. 6: ~1 electron, ~4 pi+ (long tail), most events without K+
    assert counts[11].mean() < 1.2 and 3.5 < counts[211].mean() < 5.5 and np.mean(counts[321] == 0) > 0.5
    has, z_e, _, _ = leading_electron(shipped)
    first_e = np.argmax((pid == 11) * shipped.z(), axis=1)
    assert np.all(shipped.particles[np.arange(len(pid)), first_e, 2] == np.float32(-np.pi))
    # the recoiling hadrons are opposite to the electron: pi+ phi peaks around 0
    phi_pi = shipped.particles[..., 2][pid == 211]
    assert np.mean(np.abs(phi_pi) < np.pi / 2) > 0.6


def test_reader_gives_one_line_errors(tmp_path, shipped):
    small = shipped.select(slice(0, 20))
    good = write_dis_file(tmp_path / "good.h5", small)
    again = read_dis_file(good)
    np.testing.assert_array_equal(again.particles, small.particles)
    assert again.sqrt_s == 105.0 and again.eta_max == 10.0

    def broken(name, edit):
        path = tmp_path / name
        with h5py.File(path, "w") as handle:
            particles, features = small.particles.copy(), small.event_features.copy()
            attrs = {"sqrt_s": 105.0, "eta_max": 10.0}
            edit(particles, features, attrs)
            handle["particles"], handle["event_features"] = particles, features
            for k, v in attrs.items():
                if v is not None:
                    handle.attrs[k] = v
        return path

    cases = {
        "pid.h5": (lambda p, f, a: p.__setitem__((3, 0, 3), 13.0), r"pid .* found 13 at \(3, 0\)"),
        "count.h5": (lambda p, f, a: f.__setitem__((2, 2), 99.0), "num_particles does not match"),
        "eta.h5": (lambda p, f, a: p.__setitem__((1, 0, 1), 12.0), r"\|eta\|"),
        "attr.h5": (lambda p, f, a: a.__setitem__("sqrt_s", None), "'sqrt_s' must be a positive number"),
        "pad.h5": (lambda p, f, a: p.__setitem__((0, -1, 0), 1.0), "padding row"),
    }
    for name, (edit, message) in cases.items():
        with pytest.raises(DisFormatError, match=message) as info:
            read_dis_file(broken(name, edit))
        assert name in str(info.value) and "\n" not in str(info.value)
    with h5py.File(tmp_path / "missing.h5", "w") as handle:
        handle["particles"] = small.particles
    with pytest.raises(DisFormatError, match="missing dataset 'event_features'"):
        read_dis_file(tmp_path / "missing.h5")


@pytest.mark.parametrize("num_pixels", [16, 32, 64])
def test_images_hold_the_summed_z_and_pixelation_only_moves_particles(shipped, num_pixels):
    events = shipped.select(slice(0, 2000))
    images = events_to_images(events, num_pixels)
    assert images.shape == (2000, num_pixels, num_pixels, 3)
    np.testing.assert_allclose(images.sum(axis=(1, 2, 3)), events.z().sum(axis=1), rtol=1e-5)
    for k, species in enumerate(SPECIES):
        per_channel = np.where(events.particles[..., 3] == species, events.z(), 0).sum(axis=1)
        np.testing.assert_allclose(images[..., k].sum(axis=(1, 2)), per_channel, rtol=1e-5, atol=1e-7)
    back = images_to_events(images, events.eta_max, events.sqrt_s)
    np.testing.assert_allclose(back.z().sum(axis=1), events.z().sum(axis=1), rtol=1e-5)
    pixel = 2 * events.eta_max / num_pixels
    _, _, _, eta_true = leading_electron(events)
    _, _, _, eta_pix = leading_electron(back)
    merged = np.abs(eta_pix - eta_true) > pixel  # another electron in the same pixel can lead
    assert np.mean(merged) < 0.02
    if num_pixels == 64:
        assert image_sparsity(images) > 0.999  # paper: 99.95 % empty


def test_rescaling_is_a_bijection_on_real_events_with_the_empty_pixel_gap(shipped):
    r = ZRescaling()
    images = events_to_images(shipped.select(slice(0, 1500)), 64)
    z_prime = r.forward(images)
    filled = images > 0
    assert np.all(z_prime[~filled] == EMPTY)
    assert z_prime[filled].min() > r.z_prime_min  # the gap (-1, z'_min] stays empty
    assert z_prime[filled].max() <= 1.0
    back = r.inverse(z_prime)
    assert np.all(back[~filled] == 0)
    # float32 z' carries ~7 digits; in float64 the inverse is exact to the bisection's precision
    np.testing.assert_allclose(back[filled], images[filled], rtol=2e-6)
    z = images[filled].astype(np.float64)
    exact = r.inverse(r.z_prime_min + (r.blend(z) - r.blend(0.0)) * r._scale()[1])
    np.testing.assert_allclose(exact, z, rtol=1e-10)
    # endpoints of the linear map, monotonicity, and the lower cut of the inverse
    assert r.forward(1.0) == pytest.approx(r.z_prime_max, abs=1e-6)
    grid = np.unique(np.concatenate([np.geomspace(1e-9, 1e-2, 4000), np.linspace(1e-2, 2.0, 4000)]))
    assert np.all(np.diff(r.blend(grid)) > 0)
    assert np.all(r.inverse(np.array([-1.0, -0.9, r.z_prime_min])) == 0)
    # E and L meet the line y = z with slope 1 at z2 and z1 (eq. 17): f ~ z in the middle
    assert r.blend(0.45) == pytest.approx(0.45, abs=0.02)
    with pytest.raises(ValueError, match="z1 < z2"):
        ZRescaling(z1=0.9, z2=0.5)


def test_make_dis_script_writes_the_generators_events_and_rejects_bad_arguments(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}

    def run(*args):
        command = [sys.executable, str(repo / "scripts" / "make_dis.py"), *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)

    out = tmp_path / "dis.h5"
    result = run("--events", "60", "--seed", "3", "--out", str(out), "--workers", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["events"] == 60
    written = read_dis_file(out)
    expected = generate_dis_events(60, 3, workers=1, progress=False)
    np.testing.assert_array_equal(written.particles, expected.particles)
    assert "--events 60" in written.attributes["command"] and written.attributes["seed"] == 3
    bad = run("--events", "0", "--seed", "1", "--out", str(tmp_path / "x.h5"))
    # refused by the argument parser (gsgm.utils.cli.positive_int), before any work
    assert bad.returncode == 2 and "argument --events: must be a positive integer, got 0" in bad.stderr
    assert not (tmp_path / "x.h5").exists()
