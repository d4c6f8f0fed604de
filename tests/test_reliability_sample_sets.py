"""Sample sets: nothing foreign overwritten, written as one unit with a manifest, resumable, verified.

The sampling plumbing is tested here with a stand-in for the network (a deterministic function of the
chunk seed), so that it runs in seconds; tests/test_reliability_resume.py does the same with a real
tiny model and SIGKILL in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from conftest import make_synthetic_jets

import gsgm.generation.jets as jets_module
from gsgm.data.jetnet_format import write_jetnet_file
from gsgm.evaluation.samples import load_comparison
from gsgm.generation import runs
from gsgm.generation.image_files import read_images_file, write_images_file
from gsgm.generation.jet_files import read_jet_class_file
from gsgm.generation.sample_sets import (
    MANIFEST_NAME,
    ChunkStore,
    SampleSetError,
    chunk_seed,
    prepare_output,
    verify_sample_directory,
)
from gsgm.utils.atomic import writer_token

REPO = Path(__file__).resolve().parents[1]


class Interrupted(Exception):
    """Stands for a kill in the middle of sampling."""


@pytest.fixture
def fake_network(monkeypatch):
    """Replace run loading and the network by a deterministic function of the chunk seed."""
    cfg = SimpleNamespace(
        data=SimpleNamespace(classes=["g", "t", "z"], num_particles=30),
        sampling=SimpleNamespace(precision="float32", jit_compile=False, sampler="ddim"),
    )
    calls = {"n": 0, "fail_at": None}

    def load(run, steps=None):
        return Path(run), None, None, cfg, steps or 4

    def generate(model, preprocessor, cfg, count, classes, steps, seed=0, batch_size=0, **kwargs):
        calls["n"] += 1
        if calls["fail_at"] is not None and calls["n"] == calls["fail_at"]:
            raise Interrupted
        sample = make_synthetic_jets(count, 30, seed=seed + steps)
        return {classes[0]: (sample.particles, sample.jets)}

    monkeypatch.setattr(runs, "load_sampling_run", load)
    monkeypatch.setattr(jets_module, "generate_jets", generate)
    return calls


def _sample(out, **options):
    options = {"classes": "g,t", "seed": 5, "batch_size": 7, "write_timing": False, **options}
    return runs.sample_jets_to_directory("runs/tiny", out, 30, **options)


def _read(out, classes=("g", "t")):
    return {c: read_jet_class_file(out, c, 30) for c in classes}


def test_chunk_seeds_differ_by_seed_class_and_chunk():
    seeds = {chunk_seed(s, c, k) for s in range(3) for c in range(5) for k in range(20)}
    assert len(seeds) == 300 and all(0 <= s < 2**31 for s in seeds)


def test_an_interrupted_run_resumes_with_exactly_the_uninterrupted_result(tmp_path, fake_network):
    reference = tmp_path / "reference"
    _sample(reference)
    chunks = fake_network["n"]
    assert chunks == 2 * 5  # 30 jets per class in chunks of 7

    out = tmp_path / "samples"
    fake_network.update(n=0, fail_at=4)
    with pytest.raises(Interrupted):
        _sample(out)
    assert not out.exists()  # a set killed mid-way is not there at all, so it cannot be read as complete
    partial = tmp_path / ".samples.partial"
    assert len(list(partial.glob("*.npz"))) == 3

    fake_network.update(n=0, fail_at=None)
    result = _sample(out)
    assert fake_network["n"] == chunks - 3  # only what was missing
    assert result.sampled == 30 * 2 - 3 * 7 and "resumed" in result.summary()
    assert not partial.exists()
    for jet_class, (particles, jets) in _read(reference).items():
        resumed_particles, resumed_jets = _read(out)[jet_class]
        np.testing.assert_array_equal(resumed_particles, particles)
        np.testing.assert_array_equal(resumed_jets, jets)
    manifests = [json.loads((d / MANIFEST_NAME).read_text()) for d in (reference, out)]
    assert manifests[0]["content_sha256"] == manifests[1]["content_sha256"]
    assert manifests[0]["files"] == manifests[1]["files"]  # byte-identical files
    for key, value in {"steps": 4, "seed": 5, "classes": ["g", "t"], "per_class": 30}.items():
        assert manifests[1][key] == value


def test_resuming_with_other_settings_is_an_error_naming_them(tmp_path, fake_network):
    out = tmp_path / "samples"
    fake_network.update(fail_at=2)
    with pytest.raises(Interrupted):
        _sample(out)
    fake_network.update(n=0, fail_at=None)
    with pytest.raises(SampleSetError, match=r"other settings \(differing: seed, steps\)"):
        _sample(out, seed=6, steps=8)
    _sample(out, seed=6, steps=8, overwrite=True)  # discards the interrupted run
    assert json.loads((out / MANIFEST_NAME).read_text())["seed"] == 6


def test_a_directory_holding_real_data_is_never_overwritten(tmp_path, fake_network):
    out = tmp_path / "data"
    truth = make_synthetic_jets(40, 30, seed=1)
    write_jetnet_file(out / "g.hdf5", truth.particles, truth.jets)
    before = (out / "g.hdf5").read_bytes()
    with pytest.raises(SampleSetError, match=r"holds files this run did not make \(g.hdf5\).*--overwrite"):
        _sample(out)
    assert fake_network["n"] == 0  # refused before any sampling
    assert (out / "g.hdf5").read_bytes() == before
    _sample(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["g.hdf5", "manifest.json", "t.hdf5"]
    assert (out / "g.hdf5").read_bytes() != before


def test_an_existing_sample_set_needs_overwrite(tmp_path, fake_network):
    out = tmp_path / "samples"
    _sample(out)
    with pytest.raises(SampleSetError, match="holds a gsgm sample set"):
        _sample(out, seed=6)
    _sample(out, overwrite=True, classes="z")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "z.hdf5"]  # replaced as a whole


def test_rerunning_a_finished_command_has_nothing_to_do(tmp_path, fake_network):
    out = tmp_path / "samples"
    _sample(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    fake_network["n"] = 0
    result = _sample(out)
    assert fake_network["n"] == 0 and result.sampled == 0 and "nothing to do" in result.summary()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    other = make_synthetic_jets(30, 30, seed=8)
    write_jetnet_file(out / "g.hdf5", other.particles, other.jets)  # damaged since: not "done"
    with pytest.raises(SampleSetError, match="holds a gsgm sample set"):
        _sample(out)


def test_an_empty_class_list_is_an_error_not_all_classes(tmp_path, fake_network):
    with pytest.raises(ValueError, match="no jet classes given"):
        _sample(tmp_path / "s", classes="")


def test_stale_temporaries_are_cleaned_up_on_the_next_run(tmp_path, fake_network):
    stale = tmp_path / f".samples.{writer_token().split('~')[0]}~999999999.abc.tmpdir"  # a dead writer
    stale.mkdir()
    (stale / "g.hdf5").write_text("half")
    _sample(tmp_path / "samples")
    assert not stale.exists()


def test_mixed_sets_are_refused_by_the_readers(tmp_path, fake_network):
    out = tmp_path / "samples"
    _sample(out)
    other = make_synthetic_jets(30, 30, seed=99)
    write_jetnet_file(out / "t.hdf5", other.particles, other.jets)  # one class rewritten alone
    with pytest.raises(SampleSetError, match=r"t.hdf5 differs from the file the sample set recorded"):
        read_jet_class_file(out, "t", 30)
    read_jet_class_file(out, "g", 30)  # the untouched class still reads

    _sample(tmp_path / "second")
    write_jetnet_file(tmp_path / "second" / "w.hdf5", other.particles, other.jets)
    with pytest.raises(SampleSetError, match=r"holds files that are not part of its sample set \(w.hdf5\)"):
        read_jet_class_file(tmp_path / "second", "g", 30)
    with pytest.raises(SampleSetError, match="not part of the sample set"):
        read_jet_class_file(tmp_path / "second", "w", 30)


def test_gsgm_samples_without_a_manifest_are_refused_but_other_generators_accepted(tmp_path):
    jets = make_synthetic_jets(30, 30, seed=2)
    old_style = tmp_path / "old"
    write_jetnet_file(old_style / "g.hdf5", jets.particles, jets.jets, {"generator": "gsgm FPCD", "run": "r"})
    with pytest.raises(SampleSetError, match="sampled by gsgm but .* has no manifest.json"):
        read_jet_class_file(old_style, "g", 30)
    foreign = tmp_path / "mpgan"
    write_jetnet_file(foreign / "g.hdf5", jets.particles, jets.jets, {"generator": "MPGAN"})
    assert len(read_jet_class_file(foreign, "g", 30)[1]) == 30


def test_an_interrupted_set_is_reported_not_read(tmp_path):
    out = tmp_path / "samples"
    jets = make_synthetic_jets(30, 30, seed=2)
    write_jetnet_file(out / "g.hdf5", jets.particles, jets.jets)
    ChunkStore(out, {"seed": 1})  # the work directory of a run that never finished
    with pytest.raises(SampleSetError, match="interrupted and never finished"):
        verify_sample_directory(out, ["g.hdf5"])


def test_evaluation_refuses_a_mixed_generated_set_and_a_generated_truth(tmp_path, fake_network):
    out = tmp_path / "samples"
    _sample(out)
    with pytest.raises(SampleSetError, match="is a generated sample set"):
        load_comparison(out, [("fake", out)], jets_per_class=10, truth_split="all")
    other = make_synthetic_jets(30, 30, seed=7)
    write_jetnet_file(out / "g.hdf5", other.particles, other.jets)
    with pytest.raises(SampleSetError, match="g.hdf5 differs"):
        load_comparison("builtin", [("fake", out)], jets_per_class=10, truth_split="all")


def test_prepare_output_for_a_file(tmp_path):
    target = tmp_path / "samples.h5"
    prepare_output(target, directory=False)
    target.write_text("x")
    with pytest.raises(SampleSetError, match="exists; choose another name, or pass --overwrite"):
        prepare_output(target, directory=False)
    prepare_output(target, directory=False, overwrite=True)


def test_an_images_file_whose_arrays_changed_is_refused(tmp_path):
    path = tmp_path / "images.h5"
    images = np.random.default_rng(0).random((6, 25, 25)).astype(np.float32)
    write_images_file(path, images, np.arange(6) % 5, {"run": "r"}, manifest={"run": "r", "seed": 1})
    read_images, _, attributes = read_images_file(path)
    np.testing.assert_array_equal(read_images, images)
    assert json.loads(attributes["gsgm_manifest"])["seed"] == 1
    with h5py.File(path, "r+") as handle:
        handle["images"][0, 0, 0] = 5.0
    with pytest.raises(SampleSetError, match="content hash mismatch"):
        read_images_file(path)


def test_calo_and_phase_space_files_are_checked_against_their_manifests(tmp_path):
    from gsgm.data.calo_format import read_point_cloud_file, write_point_cloud_file
    from gsgm.data.phase_space_files import read_events, write_events
    from gsgm.generation.sample_sets import (
        MANIFEST_ATTRIBUTE,
        arrays_hash,
        calo_arrays,
        make_manifest,
        read_calo_samples,
        verify_sample_file,
    )

    showers = read_point_cloud_file(REPO / "gsgm" / "data" / "builtin" / "calo_showers.h5", max_showers=5)
    manifest = make_manifest({"kind": "calo showers", "seed": 1}, content=arrays_hash(calo_arrays(showers)))
    calo_file = tmp_path / "showers.h5"
    write_point_cloud_file(calo_file, showers, {MANIFEST_ATTRIBUTE: json.dumps(manifest)})
    assert len(read_calo_samples(calo_file)) == 5
    with h5py.File(calo_file, "r+") as handle:
        handle["incident_energies"][0] += 1.0
    with pytest.raises(SampleSetError, match="showers.h5: its samples differ"):
        read_calo_samples(calo_file)

    events = np.random.default_rng(0).random((4, 3, 4))
    events_file = tmp_path / "events.hdf5"
    content = arrays_hash([events])
    write_events(
        events_file, events, {"process": "muon_decay", MANIFEST_ATTRIBUTE: make_manifest({}, content=content)}
    )
    read, attrs = read_events(events_file)
    assert verify_sample_file(events_file, [read], attrs[MANIFEST_ATTRIBUTE])["content_sha256"] == content
    with pytest.raises(SampleSetError, match="content hash mismatch"):
        verify_sample_file(events_file, [read[:3]], attrs[MANIFEST_ATTRIBUTE])


def test_evaluate_phase_space_refuses_a_changed_generated_file(tmp_path):
    from gsgm.cli import build_parser
    from gsgm.data.phase_space_files import write_events
    from gsgm.generation.sample_sets import MANIFEST_ATTRIBUTE, arrays_hash, make_manifest

    events = np.random.default_rng(0).random((4, 3, 4))
    path = tmp_path / "gen.hdf5"
    manifest = make_manifest({}, content=arrays_hash([events + 1.0]))  # recorded for other events
    write_events(path, events, {"process": "muon_decay", MANIFEST_ATTRIBUTE: manifest})
    truth = REPO / "gsgm" / "data" / "builtin" / "phase_space" / "muon_decay.hdf5"
    args = build_parser().parse_args(
        [
            "evaluate",
            "phase-space",
            "--truth",
            str(truth),
            "--gen",
            str(path),
            "--out",
            str(tmp_path / "report"),
        ]
    )
    with pytest.raises(SampleSetError, match="gen.hdf5: its samples differ"):
        args.handler(args)
