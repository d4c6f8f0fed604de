"""Output safety: locations checked before work, atomic writes, stale temporaries, a full disk."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from conftest import make_synthetic_jets

from gsgm.generation.jet_files import write_jet_sample_set
from gsgm.utils import atomic, outputs
from gsgm.utils.atomic import atomic_directory, atomic_path, remove_stale_temporaries
from gsgm.utils.outputs import OutputLocationError, check_output_dir, check_output_file

REPO = Path(__file__).resolve().parents[1]


def test_an_existing_file_is_not_an_output_directory(tmp_path):
    existing = tmp_path / "results"
    existing.write_text("not a directory")
    with pytest.raises(OutputLocationError, match=r"--out .*results: exists and is not a directory"):
        check_output_dir(existing)
    with pytest.raises(OutputLocationError, match="is not a directory"):
        check_output_dir(existing / "below" / "deeper")


def test_a_directory_is_not_an_output_file(tmp_path):
    with pytest.raises(OutputLocationError, match="is a directory, expected a file name"):
        check_output_file(tmp_path)


def test_an_unwritable_location_is_found_before_the_work(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", refuse)
    with pytest.raises(OutputLocationError, match=r"cannot write into .* \(Read-only file system\)"):
        check_output_dir(tmp_path / "new" / "dir")
    with pytest.raises(OutputLocationError, match="cannot write into"):
        check_output_file(tmp_path / "samples.h5")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputLocationError, match="cannot write into"):
            check_output_dir(locked / "samples")
    finally:
        locked.chmod(0o755)


def test_not_enough_free_space_is_found_before_the_work(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(
        OutputLocationError, match=r"not enough free space .* needs about .* MiB, 976.6 KiB are free"
    ):
        check_output_dir(tmp_path / "samples", estimated_bytes=50 * 2**20)
    check_output_dir(tmp_path / "samples")  # nothing estimated: nothing to refuse
    assert not (tmp_path / "samples").exists()  # checking creates nothing


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_stale_temporaries_of_a_killed_writer_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    host = atomic.writer_token().split("~")[0]
    dead = f"{host}~{int(dead.stdout)}"  # a process of this host that has exited
    stale_file = tmp_path / f".t.hdf5.{dead}.abc123.tmp"
    stale_dir = tmp_path / f".samples.{dead}.xyz.tmpdir"
    live_file = tmp_path / f".g.hdf5.{atomic.writer_token()}.abc.tmp"
    other_host = tmp_path / f".z.hdf5.othernode~{int(dead.split('~')[1])}.abc.tmp"  # shared file system
    stale_file.write_text("partial")
    stale_dir.mkdir()
    (stale_dir / "t.hdf5").write_text("partial")
    live_file.write_text("being written")
    other_host.write_text("written on another node")
    stale_weights = tmp_path / f".{dead}.partial.best.weights.h5"  # Keras needs its suffix
    stale_weights.write_text("half")
    (tmp_path / "t.hdf5").write_text("a real file")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([stale_file, stale_dir, stale_weights])
    assert live_file.exists() and other_host.exists() and (tmp_path / "t.hdf5").exists()


def test_checking_an_output_location_removes_stale_temporaries(tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    stale = report / f".metrics.json.{atomic.writer_token().split('~')[0]}~999999999.k2j3.tmp"
    stale.write_text("{")
    check_output_dir(report)
    assert not stale.exists()


def test_atomic_directory_replaces_as_a_whole_or_not_at_all(tmp_path):
    target = tmp_path / "samples"
    target.mkdir()
    (target / "old.hdf5").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target) as staging:
        (staging / "t.hdf5").write_text("new")
        raise RuntimeError("killed half-way")
    assert sorted(p.name for p in target.iterdir()) == ["old.hdf5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples"]
    with atomic_directory(target) as staging:
        (staging / "t.hdf5").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["t.hdf5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples"]


def _generated(n: int = 20):
    jets = make_synthetic_jets(n, 30, seed=3)
    return {"g": (jets.particles, jets.jets), "t": (jets.particles[::-1].copy(), jets.jets[::-1].copy())}


def test_a_full_disk_while_writing_a_sample_set_leaves_no_partial_file(tmp_path, monkeypatch):
    out = tmp_path / "samples"
    calls = {"n": 0}
    real = atomic.os.replace

    def disk_fills_up(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # the second class file: the first is already written into the staging dir
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", disk_fills_up)
    with pytest.raises(OSError, match="No space left"):
        write_jet_sample_set(out, _generated(), 30, {"generator": "gsgm FPCD"}, {"run": "r"})
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _can_mount_tmpfs(path: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)], capture_output=True
    )
    return result.returncode == 0


def test_a_real_full_disk_gives_one_line_and_exit_2(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _can_mount_tmpfs(disk):
        pytest.skip("needs root and mount to make a small tmpfs")
    try:
        program = (
            "import numpy as np\n"
            "from gsgm.utils.cli import run_cli\n"
            "from gsgm.data.jetnet_format import write_jetnet_file\n"
            "from conftest import make_synthetic_jets\n"
            "jets = make_synthetic_jets(4000, 30, seed=1)\n"
            f"target = '{disk}/g.hdf5'\n"
            "run_cli(lambda: write_jetnet_file(target, jets.particles, jets.jets, compress=False))\n"
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"}
        result = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 2, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: no space left on the device"), result.stderr
        assert not (disk / "g.hdf5").exists() and list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_sample_arrays_are_written_exactly(tmp_path):
    generated = _generated()
    files = write_jet_sample_set(tmp_path / "s", generated, 30, {"generator": "gsgm FPCD"}, {"run": "r"})
    from gsgm.data.jetnet_format import read_jetnet_file

    for path, (particles, jets) in zip(sorted(files), [generated["g"], generated["t"]], strict=True):
        read_particles, read_jets = read_jetnet_file(path)
        np.testing.assert_array_equal(read_particles, particles)
        np.testing.assert_array_equal(read_jets, jets)


OUTPUT_COMMANDS = [  # every command that writes: the --out check comes before any work
    ["evaluate", "jets", "--truth", "builtin", "--gen", "g"],
    ["evaluate", "images", "--samples", "s=x.h5"],
    ["evaluate", "dis"],
    ["evaluate", "calo", "--gen", "m=x.h5"],
    ["evaluate", "phase-space", "--truth", "t.hdf5"],
    ["plot", "jets", "--truth", "builtin", "--gen", "g"],
    ["plot", "images"],
    ["plot", "training", "--run", "r"],
    ["plot", "timing", "--results", "t.json"],
    ["plot", "dis"],
    ["plot", "calo", "--gen", "m=x.h5"],
    ["plot", "phase-space", "--truth", "t.hdf5"],
    ["make-showers", "--showers", "5", "--seed", "1"],
    ["make-phase-space", "--process", "muon_decay", "--events", "5", "--seed", "1"],
]


@pytest.mark.parametrize("argv", OUTPUT_COMMANDS, ids=[" ".join(a[:2]) for a in OUTPUT_COMMANDS])
def test_every_writing_command_checks_its_output_before_the_work(tmp_path, argv):
    from gsgm.cli import build_parser

    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    out = blocker / "out" if argv[0] in ("evaluate", "plot") else blocker / "out.h5"
    args = build_parser().parse_args([*argv, "--out", str(out)])
    with pytest.raises(OutputLocationError, match=rf"--out {out}: {blocker} exists and is not a directory"):
        args.handler(args)


def test_tune_checks_its_directory_before_the_search(tmp_path):
    from gsgm.cli import build_parser

    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    args = build_parser().parse_args(["tune", "--config", "configs/quick.json", "--tuner-dir", str(blocker)])
    with pytest.raises(OutputLocationError, match=r"--tuner-dir .*: exists and is not a directory"):
        args.handler(args)
