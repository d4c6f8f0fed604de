"""Pythia 8 + FastJet jet generation: reproducibility, JetNet validity, selection and the CLI.

Unit tests generate a few jets each (one Pythia initialisation is ~0.3 s, one event ~5-10 ms).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gsgm.data.generation import (
    GenerationSettings,
    chunk_seed,
    chunk_tasks,
    generate_jets,
    pythia_settings,
)
from gsgm.data.jetnet_format import read_file_attributes, read_jetnet_file, validate_arrays  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "make_jets.py"
# three chunks of two jets per class: exercises chunking and the worker pool with very few events
SMALL = GenerationSettings(chunk_size=2)
CLASSES = ["w", "q"]
N_JETS = 6


def _generate(seed: int, workers: int, n_jets: int = N_JETS, classes=CLASSES, settings=SMALL):
    return generate_jets(
        classes, n_jets, max_particles=150, seed=seed, workers=workers, settings=settings, progress=False
    )


@pytest.fixture(scope="module")
def reference():
    return _generate(seed=7, workers=1)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for jet_class in a:
        np.testing.assert_array_equal(a[jet_class].particles, b[jet_class].particles)
        np.testing.assert_array_equal(a[jet_class].jets, b[jet_class].jets)
        assert a[jet_class].events == b[jet_class].events


def test_same_seed_gives_identical_arrays(reference):
    _assert_same(reference, _generate(seed=7, workers=1))


def test_worker_count_does_not_change_the_arrays(reference):
    _assert_same(reference, _generate(seed=7, workers=2))


def test_different_seed_gives_different_jets(reference):
    other = _generate(seed=8, workers=1)
    for jet_class in CLASSES:
        assert not np.array_equal(reference[jet_class].jets, other[jet_class].jets)


def test_more_jets_only_append(reference):
    # chunks are seeded independently, so the first chunks do not depend on how many follow
    fewer = _generate(seed=7, workers=1, n_jets=3)
    for jet_class in CLASSES:
        np.testing.assert_array_equal(fewer[jet_class].jets, reference[jet_class].jets[:3])


def test_output_is_valid_jetnet(reference):
    settings = SMALL
    for jet_class, generated in reference.items():
        assert len(generated) == N_JETS
        for count in (30, 150):
            pf, jf = generated.truncated(count)
            validate_arrays(pf, jf, f"{jet_class}{count}", expected_particles=count)
            mask = pf[..., 3]
            # real particles first, then padding, and sorted by decreasing pt_rel
            assert np.all(np.diff(mask, axis=1) <= 0)
            assert np.all(np.diff(pf[..., 2], axis=1) <= 0)
            assert np.all(pf[mask == 0] == 0)
            assert np.all(np.abs(pf[..., 1]) <= np.pi)
        jf = generated.jets
        assert np.all((jf[:, 0] >= settings.jet_pt_min) & (jf[:, 0] <= settings.jet_pt_max))
        assert np.all(np.abs(jf[:, 1]) < settings.jet_abs_eta_max)
        assert np.all(jf[:, 2] > 0)
        np.testing.assert_array_equal(jf[:, 3], np.minimum(generated.num_constituents, 150))


def test_particles_add_up_to_the_jet(reference):
    # For jets with all constituents stored, the particle features must rebuild the jet 3-momentum:
    # sum pt_rel (cos phi_rel, sin phi_rel) = (1, 0) and sum pt_rel sinh(eta_rel + eta_jet) = sinh(eta_jet).
    # This fixes the sign convention (particle - jet) and that eta is the pseudorapidity.
    for generated in reference.values():
        full = generated.num_constituents <= 150
        pf, jf = generated.particles[full].astype(np.float64), generated.jets[full].astype(np.float64)
        pt, eta, phi = pf[..., 2], pf[..., 0], pf[..., 1]
        np.testing.assert_allclose((pt * np.cos(phi)).sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose((pt * np.sin(phi)).sum(1), 0.0, atol=1e-5)
        pz = (pt * np.sinh(eta + jf[:, 1:2]) * pf[..., 3]).sum(1)
        np.testing.assert_allclose(pz, np.sinh(jf[:, 1]), atol=1e-5)


def test_chunk_seeds_are_distinct_and_in_pythia_range():
    seeds = {chunk_seed(s, c, k) for s in (0, 1, 2) for c in "gqtwz" for k in range(20)}
    assert len(seeds) == 3 * 5 * 20
    assert all(1 <= s <= 900_000_000 for s in seeds)
    with pytest.raises(ValueError, match="seed"):
        chunk_seed(-1, "g", 0)
    with pytest.raises(ValueError, match="unknown jet class"):
        chunk_seed(0, "x", 0)


def test_chunks_have_fixed_size():
    tasks = chunk_tasks(["g", "t"], 5, 30, 0, GenerationSettings(chunk_size=2))
    assert [(t.jet_class, t.chunk_index, t.num_jets) for t in tasks] == [
        ("g", 0, 2),
        ("g", 1, 2),
        ("g", 2, 1),
        ("t", 0, 2),
        ("t", 1, 2),
        ("t", 2, 1),
    ]


def test_settings_reject_nonsense():
    with pytest.raises(ValueError, match="pt_hat"):
        GenerationSettings(pt_hat_min=1000, pt_hat_max=900)
    with pytest.raises(ValueError, match="chunk_size"):
        GenerationSettings(chunk_size=0)
    with pytest.raises(ValueError, match="jets_per_class"):
        generate_jets(["g"], 0, progress=False)


def test_pythia_settings_follow_the_physics_choices():
    lines = pythia_settings("z", 5, GenerationSettings())
    for expected in (
        "WeakZ0:gmZmode = 2",
        "23:onMode = off",
        "Random:setSeed = on",
        "Random:seed = 5",
        "Print:quiet = on",
        "PhaseSpace:pTHatMin = 990.0",
    ):
        assert expected in lines
    assert any(line.startswith("23:mMax") for line in lines)
    assert "HardQCD:qq2qq = on" in pythia_settings("q", 5, GenerationSettings())


def test_containment_is_on_by_default_and_can_be_switched_off():
    assert GenerationSettings().require_containment
    loose = dataclasses.replace(SMALL, require_containment=False)
    generated = _generate(seed=3, workers=1, n_jets=2, classes=["t"], settings=loose)
    assert len(generated["t"]) == 2


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_cli_writes_both_file_sets(tmp_path):
    out = tmp_path / "jets"
    result = _run_cli(
        "--classes",
        "z",
        "--jets-per-class",
        "3",
        "--particles",
        "30,150",
        "--seed",
        "5",
        "--out",
        str(out),
        "--workers",
        "1",
        "--chunk-size",
        "2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    # stdout is exactly one JSON document: no Pythia or FastJet banner leaked into it
    summary = json.loads(result.stdout)
    assert sorted(Path(f).name for f in summary["files"]) == ["z.hdf5", "z150.hdf5"]
    p30, j30 = read_jetnet_file(out / "z.hdf5", expected_particles=30)
    p150, j150 = read_jetnet_file(out / "z150.hdf5", expected_particles=150)
    assert len(j30) == len(j150) == 3
    np.testing.assert_array_equal(p30, p150[:, :30])
    np.testing.assert_array_equal(j30[:, :3], j150[:, :3])
    attrs = read_file_attributes(out / "z150.hdf5")
    assert attrs["seed"] == 5 and attrs["num_particles"] == 150 and attrs["jet_class"] == "z"
    assert "--jets-per-class 3" in attrs["command"]
    for key in ("version_pythia8mc", "version_fastjet", "version_gsgm", "settings", "date"):
        assert key in attrs
    assert json.loads(attrs["settings"])["require_containment"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--classes", "x"], "unknown jet class 'x'"),
        (["--particles", "40"], "--particles must be 30, 150 or 30,150"),
        # checked by the argument parser (gsgm.utils.cli types), before any work
        (["--jets-per-class", "0"], "argument --jets-per-class: must be a positive integer, got 0"),
        (["--workers", "0"], "argument --workers: must be a positive integer, got 0"),
        (["--seed", "-3"], "argument --seed: must be >= 0, got -3"),
        (["--pt-hat-min", "2000"], "pt_hat_min < pt_hat_max"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, args, message):
    base = {"--classes": "z", "--jets-per-class": "2", "--seed": "1", "--out": str(tmp_path / "o")}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    result = _run_cli(*[x for kv in base.items() for x in kv], cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "o").exists()


def test_batch_boundaries_do_not_change_the_events():
    # generate_chunk adapts its nextBatch sizes; the random stream must not care where batches split
    from gsgm.data.generation import make_pythia, select_jets

    settings = GenerationSettings()
    one = make_pythia("z", 123, settings)
    whole = select_jets(one.nextBatch(8), "z", settings, 30)
    two = make_pythia("z", 123, settings)
    first = select_jets(two.nextBatch(3), "z", settings, 30)
    second = select_jets(two.nextBatch(5), "z", settings, 30)
    np.testing.assert_array_equal(whole.jets, np.concatenate([first.jets, second.jets]))
    np.testing.assert_array_equal(whole.particles, np.concatenate([first.particles, second.particles]))
