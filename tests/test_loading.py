"""Loading JetNet files: jetnet-identical splits, labels, missing-data help, no network, --download path."""

from __future__ import annotations

import importlib
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_synthetic_jets

from gsgm.data.jetnet_format import (
    JET_CLASSES,
    JetNetFormatError,
    class_file_name,
    read_file_attributes,
    read_jetnet_file,
    write_jetnet_file,
)
from gsgm.data.loading import (
    ZENODO_RECORDS,
    MissingDataError,
    builtin_data_dir,
    detect_num_particles,
    download_with_jetnet,
    jetnet_split_indices,
    load_class,
    load_jets,
    resolve_data_dir,
)

ROOT = Path(__file__).resolve().parents[1]
JETNET_JET_FEATURES = ["pt", "eta", "mass", "num_particles"]
SIZES = [1, 2, 3, 7, 10, 20, 99, 100, 101, 2000, 12345, 170679, 177252]


def write_class(directory: Path, jet_class: str, n: int, num_particles: int = 30, seed: int = 0) -> Path:
    sample = make_synthetic_jets(n, num_particles, seed=seed)
    return write_jetnet_file(
        directory / class_file_name(jet_class, num_particles), sample.particles, sample.jets
    )


@pytest.fixture(scope="module")
def jetnet_module():
    """jetnet's JetNet dataset module (imports torch: a few seconds, once per module)."""
    return importlib.import_module("jetnet.datasets.jetnet")


def serve_locally(monkeypatch, jetnet_module, remote: Path | None = None, copy: bool = True) -> list[dict]:
    """Replace jetnet's Zenodo check/download with a local one; return the list of calls made.

    With ``remote`` and ``copy=True`` the file is copied from ``remote`` into ``data_dir`` (what the real
    function does after downloading); with ``copy=False`` jetnet reads it from ``remote`` (a cache
    elsewhere). Without ``remote`` the file must already be in ``data_dir``.
    """
    calls: list[dict] = []

    def fake_check(data_dir, dataset_name, record_id, key, download):
        calls.append({"data_dir": data_dir, "key": key, "record_id": record_id, "download": download})
        if remote is None:
            return Path(data_dir) / key
        if not copy:
            return remote / key
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(remote / key, Path(data_dir) / key)
        return Path(data_dir) / key

    monkeypatch.setattr(jetnet_module, "checkDownloadZenodoDataset", fake_check)
    return calls


# ----------------------------------------------------------------------------------------------- splits


@pytest.mark.parametrize("n", SIZES)
def test_split_indices_match_jetnet_getSplitting(n):
    from jetnet.datasets.utils import getSplitting

    permutation = np.random.default_rng(42).permutation(n)
    for split in ("train", "valid", "test", "all"):
        lcut, rcut = getSplitting(n, split, ["train", "valid", "test", "all"], [0.7, 0.15, 0.15])
        np.testing.assert_array_equal(jetnet_split_indices(n, split), permutation[lcut:rcut])


def test_split_indices_match_jetnet_with_other_fractions_and_seed():
    from jetnet.datasets.utils import getSplitting

    fractions = [0.6, 0.25, 0.1]
    for n in (17, 1000, 4321):
        permutation = np.random.default_rng(7).permutation(n)
        for split in ("train", "valid", "test"):
            lcut, rcut = getSplitting(n, split, ["train", "valid", "test", "all"], fractions)
            ours = jetnet_split_indices(n, split, split_fraction=fractions, seed=7)
            np.testing.assert_array_equal(ours, permutation[lcut:rcut])


@pytest.mark.parametrize("num_particles", [30, 150])
@pytest.mark.parametrize("split", ["train", "valid", "test", "all"])
def test_load_class_equals_jetnet_getData(tmp_path, monkeypatch, jetnet_module, split, num_particles):
    """Same file, same jets in the same order as jetnet's own loader (its Zenodo check bypassed)."""
    write_class(tmp_path, "t", 203, num_particles, seed=5)
    calls = serve_locally(monkeypatch, jetnet_module)
    theirs_pf, theirs_jf = jetnet_module.JetNet.getData(
        jet_type="t",
        data_dir=str(tmp_path),
        jet_features=JETNET_JET_FEATURES,
        num_particles=num_particles,
        split=split,
    )
    ours_pf, ours_jf = load_class(tmp_path, "t", num_particles, split=split)
    assert calls[0]["key"] == class_file_name("t", num_particles)  # jetnet's file names are ours
    assert calls[0]["record_id"] == ZENODO_RECORDS[num_particles]
    np.testing.assert_array_equal(ours_pf, theirs_pf.astype(np.float32))
    np.testing.assert_array_equal(ours_jf, theirs_jf.astype(np.float32))


def test_zenodo_records_match_jetnet(jetnet_module):
    assert ZENODO_RECORDS == {int(k): v for k, v in jetnet_module.JetNet._ZENODO_RECORD_IDS.items()}
    assert ZENODO_RECORDS == {30: 6975118, 150: 6975117}


@pytest.mark.parametrize("n", SIZES)
def test_splits_are_disjoint_and_cover_everything(n):
    parts = [jetnet_split_indices(n, s) for s in ("train", "valid", "test")]
    joined = np.concatenate(parts)
    assert len(joined) == n
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))
    np.testing.assert_array_equal(np.sort(jetnet_split_indices(n, "all")), np.arange(n))
    if n >= 100:
        assert abs(len(parts[0]) - 0.7 * n) <= 1 and abs(len(parts[1]) - 0.15 * n) <= 1


def test_split_is_deterministic_and_seeded():
    np.testing.assert_array_equal(jetnet_split_indices(500, "test"), jetnet_split_indices(500, "test"))
    assert not np.array_equal(jetnet_split_indices(500, "test"), jetnet_split_indices(500, "test", seed=1))


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"split": "validation"}, "unknown split 'validation'"),
        ({"split": "train", "split_fraction": (0.8, 0.2, 0.2)}, "sum <= 1"),
        ({"split": "train", "split_fraction": (0.5, 0.5)}, "3 non-negative"),
        ({"split": "test", "split_fraction": (-0.1, 0.6, 0.5)}, "3 non-negative"),
    ],
)
def test_split_errors(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        jetnet_split_indices(100, **kwargs)


# ---------------------------------------------------------------------------------------------- loading


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """g (120 jets), t (80) and z (50) with 30 particles; t also with 150."""
    for seed, (jet_class, n) in enumerate((("g", 120), ("t", 80), ("z", 50))):
        write_class(tmp_path, jet_class, n, 30, seed=seed)
    write_class(tmp_path, "t", 40, 150, seed=9)
    return tmp_path


def test_load_jets_labels_shapes_and_content(data_dir):
    sample = load_jets(data_dir, "t,g", 30, split="train")
    n_t, n_g = len(jetnet_split_indices(80, "train")), len(jetnet_split_indices(120, "train"))
    assert sample.particles.shape == (n_t + n_g, 30, 4)
    assert sample.jets.shape == (n_t + n_g, 4)
    assert sample.labels.dtype == np.int32
    # classes in the order given, labels index JET_CLASSES (t = 2, g = 0) whatever the order
    np.testing.assert_array_equal(sample.labels[:n_t], JET_CLASSES.index("t"))
    np.testing.assert_array_equal(sample.labels[n_t:], JET_CLASSES.index("g"))
    pf, jf = read_jetnet_file(data_dir / "t.hdf5")
    index = jetnet_split_indices(80, "train")
    np.testing.assert_array_equal(sample.particles[:n_t], pf[index])
    np.testing.assert_array_equal(sample.jets[:n_t], jf[index])


def test_load_jets_split_of_a_class_does_not_depend_on_other_classes(data_dir):
    alone = load_jets(data_dir, ["z"], 30, split="test")
    together = load_jets(data_dir, ["g", "t", "z"], 30, split="test")
    np.testing.assert_array_equal(together.jets[together.labels == JET_CLASSES.index("z")], alone.jets)


def test_load_jets_all_150_and_max_jets(data_dir):
    sample = load_jets(data_dir, ["t"], 150)
    assert sample.particles.shape == (40, 150, 4) and len(sample) == 40
    limited = load_jets(data_dir, ["g", "z"], 30, split="all", max_jets_per_class=30)
    assert len(limited) == 60
    assert (limited.labels == 0).sum() == 30 and (limited.labels == 4).sum() == 30
    # fewer jets than the limit: all of them
    assert len(load_jets(data_dir, ["z"], 30, split="valid", max_jets_per_class=1000)) == len(
        jetnet_split_indices(50, "valid")
    )
    with pytest.raises(ValueError, match="max_jets_per_class"):
        load_jets(data_dir, ["g"], 30, max_jets_per_class=0)


def test_max_jets_keeps_train_and_test_disjoint(data_dir):
    train = load_jets(data_dir, ["g"], 30, split="train", max_jets_per_class=20)
    test = load_jets(data_dir, ["g"], 30, split="test", max_jets_per_class=20)
    train_rows = {row.tobytes() for row in train.jets}
    assert not any(row.tobytes() in train_rows for row in test.jets)


def test_load_class_checks_particle_count(data_dir):
    # A 30-particle file stored under the 150 name is refused, naming the file.
    shutil.copyfile(data_dir / "g.hdf5", data_dir / "g150.hdf5")
    with pytest.raises(JetNetFormatError, match=r"g150\.hdf5.*expected 150"):
        load_class(data_dir, "g", 150)


def test_resolve_data_dir():
    assert resolve_data_dir("builtin") == builtin_data_dir()
    assert builtin_data_dir().parts[-3:] == ("gsgm", "data", "builtin")
    assert resolve_data_dir("some/where") == Path("some/where")


def test_detect_num_particles(data_dir, tmp_path_factory):
    assert detect_num_particles(data_dir) == 30  # both present: 30 preferred
    assert detect_num_particles(data_dir, ["t"]) == 30
    only150 = tmp_path_factory.mktemp("only150")
    write_class(only150, "q", 5, 150)
    assert detect_num_particles(only150) == 150
    assert detect_num_particles(only150, ["q"]) == 150
    (data_dir / "t.hdf5").unlink()
    assert detect_num_particles(data_dir, ["t"]) == 150  # t only complete for 150
    assert detect_num_particles(tmp_path_factory.mktemp("empty")) == 30


# ------------------------------------------------------------------------------------ missing-data help


def test_missing_data_error_lists_files_and_how_to_get_them(data_dir):
    with pytest.raises(MissingDataError) as err:
        load_jets(data_dir, "g,q,t,w", 30)
    assert isinstance(err.value, FileNotFoundError)
    message = str(err.value)
    assert err.value.missing == [data_dir / "q.hdf5", data_dir / "w.hdf5"]
    assert str(data_dir / "q.hdf5") in message and str(data_dir / "w.hdf5") in message
    assert str(data_dir / "g.hdf5") + "\n" not in message  # present files are not listed as missing
    assert "g.hdf5, q.hdf5, t.hdf5, w.hdf5" in message  # the exact names to use
    assert "6975118" in message and "6975117" in message and "zenodo.org/record/6975118" in message
    assert "--download" in message
    assert f"python scripts/make_jets.py --classes g,q,t,w --particles 30 --out {data_dir}" in message
    assert "--data builtin" in message and str(builtin_data_dir()) in message


def test_missing_data_error_150_and_missing_directory(tmp_path):
    absent = tmp_path / "no_such_dir"
    with pytest.raises(MissingDataError) as err:
        load_class(absent, "z", 150)
    message = str(err.value)
    assert f"does not exist: {absent}" in message
    assert "z150.hdf5" in message and "zenodo.org/record/6975117" in message
    assert "--particles 150" in message


def test_missing_files_reported_before_any_file_is_read(data_dir):
    (data_dir / "g.hdf5").write_text("not hdf5")  # would fail validation if it were read first
    with pytest.raises(MissingDataError, match="q.hdf5"):
        load_jets(data_dir, ["g", "q"], 30)


# ------------------------------------------------------------------------------------------ no network


def test_reading_local_files_never_touches_the_network(data_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access while reading local files")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    sample = load_jets(data_dir, ["g", "t", "z"], 30, split="valid")
    assert len(sample) > 0
    load_class(data_dir, "t", 150, split="test")


def test_import_and_load_do_not_import_jetnet_or_torch(data_dir):
    code = (
        "import sys\n"
        "from gsgm.data.loading import load_jets\n"
        f"load_jets({str(data_dir)!r}, 'g', 30)\n"
        "heavy = [m for m in ('jetnet', 'torch', 'tensorflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------- download


@pytest.fixture
def remote(tmp_path) -> Path:
    """A stand-in for Zenodo: valid g and w files (30 particles) and g150."""
    directory = tmp_path / "zenodo"
    directory.mkdir()
    write_class(directory, "g", 60, 30, seed=21)
    write_class(directory, "w", 45, 30, seed=22)
    write_class(directory, "g", 30, 150, seed=23)
    return directory


def test_download_stores_jetnet_files_under_our_names(tmp_path, remote, monkeypatch, jetnet_module):
    target = tmp_path / "data"
    calls = serve_locally(monkeypatch, jetnet_module, remote, copy=True)
    assert download_with_jetnet(target, "g,w", 30) == target
    assert [c["key"] for c in calls] == ["g.hdf5", "w.hdf5"]
    assert all(c["download"] and c["record_id"] == 6975118 and Path(c["data_dir"]) == target for c in calls)
    for name in ("g.hdf5", "w.hdf5"):
        assert (target / name).read_bytes() == (remote / name).read_bytes()
    np.testing.assert_array_equal(
        load_jets(target, "g,w", 30).jets[:3], load_jets(remote, "g,w", 30).jets[:3]
    )


def test_download_skips_valid_files_and_refetches_invalid_ones(tmp_path, remote, monkeypatch, jetnet_module):
    target = tmp_path / "data"
    target.mkdir()
    shutil.copyfile(remote / "g.hdf5", target / "g.hdf5")
    (target / "w.hdf5").write_bytes(b"half a download")
    calls = serve_locally(monkeypatch, jetnet_module, remote, copy=True)
    download_with_jetnet(target, ["g", "w"], 30)
    assert [c["key"] for c in calls] == ["w.hdf5"]
    read_jetnet_file(target / "w.hdf5", expected_particles=30)


def test_download_converts_arrays_when_jetnet_stores_elsewhere(tmp_path, remote, monkeypatch, jetnet_module):
    """jetnet reading from another place: we write its arrays, in the original (unshuffled) order."""
    target = tmp_path / "data"
    serve_locally(monkeypatch, jetnet_module, remote, copy=False)
    download_with_jetnet(target, ["g"], 150)
    pf, jf = read_jetnet_file(target / "g150.hdf5", expected_particles=150)
    original_pf, original_jf = read_jetnet_file(remote / "g150.hdf5")
    np.testing.assert_array_equal(pf, original_pf)
    np.testing.assert_array_equal(jf, original_jf)
    assert "6975117" in read_file_attributes(target / "g150.hdf5")["source"]


def test_download_with_fake_getData(tmp_path, monkeypatch):
    from jetnet.datasets import JetNet

    fake = make_synthetic_jets(25, 30, seed=4)
    calls = []

    def fake_get_data(**kwargs):
        calls.append(kwargs)
        return fake.particles, fake.jets

    monkeypatch.setattr(JetNet, "getData", staticmethod(fake_get_data))
    download_with_jetnet(tmp_path, ["q", "z"], 30)
    assert [c["jet_type"] for c in calls] == ["q", "z"]
    for kwargs in calls:
        assert kwargs["download"] is True and kwargs["split"] == "all" and kwargs["num_particles"] == 30
        assert Path(kwargs["data_dir"]) == tmp_path
        assert kwargs["jet_features"] == JETNET_JET_FEATURES
    for name in ("q.hdf5", "z.hdf5"):
        pf, jf = read_jetnet_file(tmp_path / name, expected_particles=30)
        assert len(jf) == 25
        # written in un-shuffled order: the file is the inverse permutation of what getData returned
        np.testing.assert_array_equal(jf[jetnet_split_indices(25, "all")], fake.jets)
    assert len(load_jets(tmp_path, "q,z", 30)) == 50


def test_download_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_particles"):
        download_with_jetnet(tmp_path, ["g"], 60)
    with pytest.raises(ValueError, match="unknown jet class"):
        download_with_jetnet(tmp_path, ["x"], 30)
