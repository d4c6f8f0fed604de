"""Shower-file readers: the gsgm point-cloud layout and the CaloChallenge layout, with one-line errors."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from gsgm.data.calo_format import (
    CaloFormatError,
    CaloSample,
    pad_points,
    read_calochallenge,
    read_point_cloud_file,
    write_point_cloud_file,
)
from gsgm.data.gflash import CaloGeometry


def _sample() -> CaloSample:
    clouds = [
        np.array([[2.5, -2.5, 0, 1.0], [7.5, 2.5, 3, 0.5]], np.float32),
        np.array([[-2.5, -7.5, 29, 4.0]], np.float32),
    ]
    points, counts = pad_points(clouds)
    return CaloSample(np.array([10.0, 90.0], np.float32), points, counts, CaloGeometry().to_dict())


def test_point_cloud_files_round_trip(tmp_path):
    path = write_point_cloud_file(tmp_path / "s.h5", _sample(), {"seed": 3})
    back = read_point_cloud_file(path)
    np.testing.assert_array_equal(back.points, _sample().points)
    assert back.num_points.tolist() == [2, 1] and back.num_layers == 30
    assert read_point_cloud_file(path, max_showers=1).energies.tolist() == [10.0]


def _write(path, **datasets):
    with h5py.File(path, "w") as handle:
        for key, value in datasets.items():
            if key == "geometry":
                handle.attrs["geometry"] = value
            else:
                handle.create_dataset(key, data=value)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"points": np.zeros((2, 2, 3), np.float32)}, r"'points' must have shape \[N, P, 4\]"),
        ({"incident_energies": np.array([10.0, -1.0], np.float32)}, "must be finite and > 0"),
        ({"num_points": np.array([3, 1], np.int32)}, r"'num_points' must lie in \[0, 2\]"),
        ({"num_points": np.array([1, 1], np.int32)}, "past num_points must be zero padding"),
        ({"geometry": "not json"}, "'geometry' is not a calorimeter description"),
    ],
)
def test_bad_point_cloud_files_are_one_line_errors(tmp_path, change, message):
    sample = _sample()
    fields = {"incident_energies": sample.energies, "points": sample.points, "num_points": sample.num_points,
              "geometry": '{"absorber_mm": [2.1, 2.1, 2.1, 2.1]}'}  # fmt: skip
    if "geometry" not in change and "points" not in change:
        fields["geometry"] = '{"absorber_mm": ' + str([2.1] * 30) + "}"
    fields.update(change)
    path = _write(tmp_path / "bad.h5", **fields)
    with pytest.raises(CaloFormatError, match=message) as err:
        read_point_cloud_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_layers_and_energies_are_checked(tmp_path):
    sample = _sample()
    geometry = '{"absorber_mm": [2.1, 2.1, 2.1, 2.1]}'  # 4 layers: layer 29 is out of range
    path = _write(tmp_path / "l.h5", incident_energies=sample.energies, points=sample.points,
                  num_points=sample.num_points, geometry=geometry)  # fmt: skip
    with pytest.raises(CaloFormatError, match=r"integers in \[0, 3\]"):
        read_point_cloud_file(path)
    points = sample.points.copy()
    points[0, 1, 3] = -1.0
    path = _write(tmp_path / "e.h5", incident_energies=sample.energies, points=points,
                  num_points=sample.num_points, geometry=json.dumps(CaloGeometry().to_dict()))  # fmt: skip
    with pytest.raises(CaloFormatError, match="must be > 0 MeV"):
        read_point_cloud_file(path)
    missing = _write(tmp_path / "m.h5", incident_energies=sample.energies)
    with pytest.raises(CaloFormatError, match="missing dataset 'points'"):
        read_point_cloud_file(missing)
    (tmp_path / "t.h5").write_text("not hdf5")
    with pytest.raises(CaloFormatError, match="not an HDF5 file"):
        read_point_cloud_file(tmp_path / "t.h5")
    with pytest.raises(CaloFormatError, match="no such file"):
        read_point_cloud_file(tmp_path / "absent.h5")


def test_calochallenge_voxels_become_points(tmp_path):
    showers = np.zeros((2, 3 * 4 * 5), np.float32)
    cube = showers[0].reshape(3, 4, 5)
    cube[1, 2, 3] = 7.0
    cube[2, 0, 4] = 1.5
    showers[1, -1] = 2.0
    path = _write(tmp_path / "cc.h5", incident_energies=np.array([[1000.0], [64000.0]]), showers=showers)
    sample = read_calochallenge(path, (3, 4, 5))
    assert sample.energies.tolist() == [1.0, 64.0]  # MeV -> GeV
    assert sample.num_points.tolist() == [2, 1]
    np.testing.assert_array_equal(sample.points[0, :2], [[2, 3, 1, 7.0], [0, 4, 2, 1.5]])
    np.testing.assert_array_equal(sample.points[1, 0], [3, 4, 2, 2.0])
    with pytest.raises(CaloFormatError, match=r"has 60 voxels, voxel shape \(45, 16, 9\) needs 6480"):
        read_calochallenge(path, (45, 16, 9))
    bad = _write(tmp_path / "neg.h5", incident_energies=np.ones((2, 1)), showers=-showers)
    with pytest.raises(CaloFormatError, match="finite energies >= 0"):
        read_calochallenge(bad, (3, 4, 5))
    with pytest.raises(CaloFormatError, match="missing dataset 'showers'"):
        read_calochallenge(_write(tmp_path / "x.h5", incident_energies=np.ones((2, 1))), (3, 4, 5))
