"""The JetNet HDF5 format: exact round trip, one test per validation rule, atomic writes, class parsing."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import make_synthetic_jets

from gsgm.data.jetnet_format import (
    JET_KEY,
    PARTICLE_KEY,
    JetNetFormatError,
    class_file_name,
    parse_classes,
    read_file_attributes,
    read_jetnet_file,
    validate_arrays,
    write_jetnet_file,
)


def write_raw(path: Path, **datasets: np.ndarray) -> Path:
    """Write arbitrary datasets with h5py directly, bypassing write_jetnet_file's validation."""
    with h5py.File(path, "w") as handle:
        for key, value in datasets.items():
            handle.create_dataset(key, data=value)
    return path


@pytest.fixture
def arrays() -> tuple[np.ndarray, np.ndarray]:
    sample = make_synthetic_jets(20, 30, seed=3)
    return sample.particles.copy(), sample.jets.copy()


def assert_names(err: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    message = str(err.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


# ---------------------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_is_exact(tmp_path, compress):
    sample = make_synthetic_jets(50, 30, seed=1)
    path = write_jetnet_file(
        tmp_path / "g.hdf5",
        sample.particles,
        sample.jets,
        attributes={"seed": 7, "tool": "test"},
        compress=compress,
    )
    pf, jf = read_jetnet_file(path, expected_particles=30)
    assert pf.dtype == np.float32 and jf.dtype == np.float32
    np.testing.assert_array_equal(pf, sample.particles)
    np.testing.assert_array_equal(jf, sample.jets)
    assert read_file_attributes(path) == {"seed": 7, "tool": "test"}


def test_round_trip_150_particles(tmp_path):
    sample = make_synthetic_jets(10, 150, seed=2)
    path = write_jetnet_file(tmp_path / class_file_name("t", 150), sample.particles, sample.jets)
    assert path.name == "t150.hdf5"
    pf, jf = read_jetnet_file(path, expected_particles=150)
    np.testing.assert_array_equal(pf, sample.particles)
    np.testing.assert_array_equal(jf, sample.jets)


def test_write_leaves_no_temporary_files(tmp_path, arrays):
    write_jetnet_file(tmp_path / "q.hdf5", *arrays)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.hdf5"]


# ------------------------------------------------------------------------------------- validation on read


def test_missing_particle_dataset(tmp_path, arrays):
    path = write_raw(tmp_path / "g.hdf5", jet_features=arrays[1])
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, PARTICLE_KEY, "missing dataset")


def test_missing_jet_dataset(tmp_path, arrays):
    path = write_raw(tmp_path / "g.hdf5", particle_features=arrays[0])
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, JET_KEY, "missing dataset")


def test_wrong_rank_particles(tmp_path, arrays):
    pf, jf = arrays
    path = write_raw(tmp_path / "g.hdf5", particle_features=pf.reshape(len(pf), -1), jet_features=jf)
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, PARTICLE_KEY, "[N, P, 4]", str([len(pf), pf.shape[1] * 4]))


def test_wrong_rank_jets(tmp_path, arrays):
    pf, jf = arrays
    path = write_raw(tmp_path / "g.hdf5", particle_features=pf, jet_features=jf[:, :, None])
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, JET_KEY, "[N, 4]")


def test_wrong_width_particles(tmp_path, arrays):
    pf, jf = arrays
    path = write_raw(tmp_path / "g.hdf5", particle_features=pf[..., :3], jet_features=jf)
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, PARTICLE_KEY, "[N, P, 4]", "3]")


def test_wrong_width_jets(tmp_path, arrays):
    pf, jf = arrays
    wide = np.concatenate([jf, jf[:, :1]], axis=1)
    path = write_raw(tmp_path / "g.hdf5", particle_features=pf, jet_features=wide)
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, JET_KEY, "[N, 4]", "5]")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_particles(tmp_path, arrays, bad):
    pf, jf = arrays
    pf[4, 0, 1] = bad
    path = write_raw(tmp_path / "g.hdf5", particle_features=pf, jet_features=jf)
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, PARTICLE_KEY, "NaN/inf", "(4, 0, 1)")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_jets(tmp_path, arrays, bad):
    pf, jf = arrays
    jf[2, 2] = bad
    path = write_raw(tmp_path / "g.hdf5", particle_features=pf, jet_features=jf)
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, JET_KEY, "NaN/inf", "(2, 2)")


def test_mask_not_binary(tmp_path, arrays):
    pf, jf = arrays
    pf[1, 0, 3] = 0.5
    path = write_raw(tmp_path / "g.hdf5", particle_features=pf, jet_features=jf)
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, PARTICLE_KEY, "mask", "0 or 1", "0.5")


def test_num_particles_does_not_match_mask(tmp_path, arrays):
    pf, jf = arrays
    assert pf[5, :, 3].sum() < pf.shape[1]  # a jet with empty slots: its count must match exactly
    jf[5, 3] += 1
    path = write_raw(tmp_path / "g.hdf5", particle_features=pf, jet_features=jf)
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, JET_KEY, "num_particles does not match the mask", "jet 5")


def test_empty_datasets(tmp_path):
    path = write_raw(
        tmp_path / "g.hdf5",
        particle_features=np.zeros((0, 30, 4), np.float32),
        jet_features=np.zeros((0, 4), np.float32),
    )
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, PARTICLE_KEY, "empty", "0 jets")


def test_empty_hdf5_file_without_datasets(tmp_path):
    path = write_raw(tmp_path / "g.hdf5")
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, PARTICLE_KEY, "missing dataset", "nothing")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "g.hdf5"
    path.write_bytes(b"")
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, "not a readable HDF5 file")


def test_jet_count_mismatch(tmp_path, arrays):
    pf, jf = arrays
    path = write_raw(tmp_path / "g.hdf5", particle_features=pf, jet_features=jf[:-3])
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, PARTICLE_KEY, JET_KEY, f"{len(pf)} jets", f"has {len(pf) - 3}")


def test_wrong_particle_count(tmp_path, arrays):
    path = write_jetnet_file(tmp_path / "g150.hdf5", *arrays)
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path, expected_particles=150)
    assert_names(err, path, PARTICLE_KEY, "30 particles per jet", "expected 150")


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "g.hdf5"
    path.write_text("particle_features,jet_features\n1,2\n")
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, "not a readable HDF5 file")


def test_truncated_file(tmp_path, arrays):
    path = write_jetnet_file(tmp_path / "g.hdf5", *arrays, compress=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # an interrupted download
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, "HDF5")


def test_corrupted_compressed_data(tmp_path):
    sample = make_synthetic_jets(200, 30, seed=4)
    path = write_jetnet_file(tmp_path / "g.hdf5", sample.particles, sample.jets, compress=True)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside the gzip chunks, past the HDF5 header
    data[middle : middle + 200] = bytes(b ^ 0xFF for b in data[middle : middle + 200])
    path.write_bytes(bytes(data))
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, "cannot read the datasets")


def test_dataset_is_a_group(tmp_path, arrays):
    path = tmp_path / "g.hdf5"
    with h5py.File(path, "w") as handle:
        handle.create_group(PARTICLE_KEY)
        handle.create_dataset(JET_KEY, data=arrays[1])
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, PARTICLE_KEY, "numeric dataset", "group")


def test_dataset_of_strings(tmp_path, arrays):
    path = write_raw(tmp_path / "g.hdf5", particle_features=arrays[0], jet_features=np.array([b"pt", b"eta"]))
    with pytest.raises(JetNetFormatError) as err:
        read_jetnet_file(path)
    assert_names(err, path, JET_KEY, "numeric dataset", "dtype")


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "g.hdf5"
    with pytest.raises(FileNotFoundError) as err:
        read_jetnet_file(path)
    assert not isinstance(err.value, JetNetFormatError)
    assert_names(err, path, "not found")


# ----------------------------------------------------------------------------------- validation on write


def test_write_refuses_invalid_arrays_and_writes_nothing(tmp_path, arrays):
    pf, jf = arrays
    pf[0, 0, 3] = 2.0
    path = tmp_path / "w.hdf5"
    with pytest.raises(JetNetFormatError) as err:
        write_jetnet_file(path, pf, jf)
    assert_names(err, path, "mask")
    assert list(tmp_path.iterdir()) == []


def test_validate_arrays_accepts_valid_and_checks_expected_particles(arrays):
    validate_arrays(*arrays, source="mem", expected_particles=30)
    with pytest.raises(JetNetFormatError, match="mem: .*expected 150"):
        validate_arrays(*arrays, source="mem", expected_particles=150)


# --------------------------------------------------------------------------------------- atomic writing


def fail_on_second_dataset(monkeypatch):
    """Make h5py raise while the second dataset is being written (an interrupted write)."""
    original = h5py.Group.create_dataset
    calls = []

    def flaky(self, name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise RuntimeError("simulated crash mid-write")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", flaky)
    return calls


def test_interrupted_write_leaves_no_file(tmp_path, arrays, monkeypatch):
    calls = fail_on_second_dataset(monkeypatch)
    with pytest.raises(RuntimeError, match="mid-write"):
        write_jetnet_file(tmp_path / "t.hdf5", *arrays)
    assert calls == [PARTICLE_KEY, JET_KEY]  # the crash really happened in the middle
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file


def test_interrupted_write_keeps_old_file(tmp_path, arrays, monkeypatch):
    old = make_synthetic_jets(7, 30, seed=11)
    path = write_jetnet_file(tmp_path / "t.hdf5", old.particles, old.jets)
    fail_on_second_dataset(monkeypatch)
    with pytest.raises(RuntimeError, match="mid-write"):
        write_jetnet_file(path, *arrays)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.hdf5"]
    pf, jf = read_jetnet_file(path)
    np.testing.assert_array_equal(pf, old.particles)
    np.testing.assert_array_equal(jf, old.jets)


# ------------------------------------------------------------------------------------------ class names


def test_class_file_names():
    assert class_file_name("g", 30) == "g.hdf5"
    assert class_file_name("z", 150) == "z150.hdf5"
    with pytest.raises(ValueError, match="num_particles"):
        class_file_name("g", 50)
    with pytest.raises(ValueError, match="unknown jet class 'x'"):
        class_file_name("x", 30)


def test_parse_classes_valid():
    assert parse_classes("g,q") == ["g", "q"]
    assert parse_classes(" T , w ,") == ["t", "w"]
    assert parse_classes(["z", "g"]) == ["z", "g"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("g,x", "unknown jet class 'x'"),
        ("", "no jet classes"),
        (" , ", "no jet classes"),
        ([], "no jet classes"),
        ("g,q,g", "given twice"),
        ("gluon", "valid classes are g, q, t, w, z"),
    ],
)
def test_parse_classes_errors(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_classes(text)


def test_multiplicity_before_truncation_is_clipped_for_full_jets_only(tmp_path, arrays):
    pf, jf = arrays
    slots = pf.shape[1]
    pf[2, :, 3] = 1.0  # a jet with every slot filled...
    pf[2, :, 2] = np.linspace(0.1, 0.01, slots)
    jf[2, 3] = slots + 17  # ...that records its multiplicity before truncation
    path = write_raw(tmp_path / "g.hdf5", particle_features=pf, jet_features=jf)
    _, read_jets = read_jetnet_file(path)
    assert read_jets[2, 3] == slots
    partial = int(np.argmax(pf[:, :, 3].sum(axis=1) < slots))
    jf[partial, 3] = slots + 17  # the same excess on a jet with empty slots is an error
    path = write_raw(tmp_path / "q.hdf5", particle_features=pf, jet_features=jf)
    with pytest.raises(JetNetFormatError, match="num_particles does not match the mask"):
        read_jetnet_file(path)
