"""`make test` runs the suite on two pytest-xdist workers with ``--dist loadgroup``: the horovodrun tests
(two ranks each) share the xdist group "horovod", so only one of them runs at a time. pytest 9.2 made
xdist ignore groups without a word (pytest-xdist issue #1386); this test notices such a regression."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

GROUPED_TESTS = '''
import os, pathlib, pytest

@pytest.mark.xdist_group("together")
@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    out = pathlib.Path(os.environ["GROUP_OUT"])
    (out / f"grouped-{i}").write_text(os.environ.get("PYTEST_XDIST_WORKER", "none"))

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    pass
'''


def test_xdist_groups_keep_their_tests_on_one_worker(tmp_path):
    pytest.importorskip("xdist")
    (tmp_path / "test_grouped.py").write_text(GROUPED_TESTS)
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
         "test_grouped.py"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "GROUP_OUT": str(out)},
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    workers = {path.read_text() for path in out.glob("grouped-*")}
    assert len(list(out.glob("grouped-*"))) == 6
    assert len(workers) == 1 and workers != {"none"}, f"group split over workers {sorted(workers)}"
