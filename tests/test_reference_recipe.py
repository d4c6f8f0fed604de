"""The fidelity reference recipe (``gsgm reference``): the resumable stage chain, its ETA, the
model / floor ratio table, the recipe's stages, and (slow) the whole recipe at tiny size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gsgm.cli.reference import RecipeSettings, _class_files_complete, reference_stages
from gsgm.evaluation.report import W1_KEYS, floor_ratios, format_ratio_table
from gsgm.utils.stages import Stage, StageFailed, estimate_remaining, format_duration, run_stages

REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    """Seconds that advance only when a fake command 'runs'."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_runner(clock: FakeClock, durations: dict[str, float], fail: str | None = None):
    calls: list[str] = []

    def runner(argv):
        name = argv[1]
        calls.append(name)
        clock.now += durations.get(name, 1.0)
        return 3 if name == fail else 0

    return runner, calls


def chain(done_b: bool = False) -> list[Stage]:
    return [
        Stage("a", ["gsgm", "a"], 10.0),
        Stage("b", ["gsgm", "b"], 20.0, done=(lambda: done_b) if done_b else None),
        Stage("c", ["gsgm", "c"], 30.0),
    ]


def test_stages_run_in_order_record_their_times_and_a_rerun_skips_them(tmp_path):
    clock = FakeClock()
    runner, calls = make_runner(clock, {"a": 5.0, "b": 7.0, "c": 11.0})
    lines: list[str] = []
    ledger = tmp_path / "stages.json"
    finished = run_stages(chain(), ledger, runner, log=lines.append, clock=clock)
    assert calls == ["a", "b", "c"]
    assert finished == {"a": 5.0, "b": 7.0, "c": 11.0}
    recorded = json.loads(ledger.read_text())
    assert {k: v["seconds"] for k, v in recorded["stages"].items()} == finished
    assert any("[2/3 b]" in line and "starting" in line for line in lines)
    # a rerun runs nothing and returns the recorded times
    runner2, calls2 = make_runner(clock, {})
    assert run_stages(chain(), ledger, runner2, log=lines.append, clock=clock) == finished
    assert calls2 == []


def test_a_failed_stage_keeps_what_finished_and_the_rerun_continues_there(tmp_path):
    clock = FakeClock()
    ledger = tmp_path / "stages.json"
    runner, calls = make_runner(clock, {}, fail="b")
    with pytest.raises(StageFailed, match="stage 'b' failed with exit status 3"):
        run_stages(chain(), ledger, runner, log=lambda _: None, clock=clock)
    assert calls == ["a", "b"]
    assert set(json.loads(ledger.read_text())["stages"]) == {"a"}
    runner, calls = make_runner(clock, {})
    run_stages(chain(), ledger, runner, log=lambda _: None, clock=clock)
    assert calls == ["b", "c"]


def test_until_stops_after_the_named_stage_and_done_checks_skip_complete_outputs(tmp_path):
    clock = FakeClock()
    runner, calls = make_runner(clock, {})
    finished = run_stages(
        chain(done_b=True), tmp_path / "l.json", runner, log=lambda _: None, until="b", clock=clock
    )
    assert calls == ["a"]  # b's outputs were complete, c is after --until
    assert finished == {"a": 1.0, "b": 0.0}
    with pytest.raises(ValueError, match="unknown stage 'x'"):
        run_stages(chain(), tmp_path / "l.json", runner, until="x")
    with pytest.raises(ValueError, match="unique"):
        run_stages([*chain(), Stage("a", ["gsgm", "a"], 1.0)], tmp_path / "m.json", runner)


def test_an_unreadable_ledger_is_a_one_line_error_naming_the_file(tmp_path):
    bad = tmp_path / "stages.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match=r"stages\.json: not a gsgm\.stages ledger"):
        run_stages(chain(), bad, make_runner(FakeClock(), {})[0])
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable stage ledger"):
        run_stages(chain(), bad, make_runner(FakeClock(), {})[0])


def test_eta_scales_the_remaining_nominal_times_by_the_measured_pace():
    stages = chain()
    assert estimate_remaining(stages, {}) == 60.0
    # a took 20 s against its nominal 10: this machine runs at half speed, so b + c take 2 x 50
    assert estimate_remaining(stages, {"a": 20.0}) == pytest.approx(100.0)
    assert estimate_remaining(stages, {"a": 20.0, "b": 10.0, "c": 1.0}) == 0.0
    assert format_duration(3725) == "1h02m05s"
    assert format_duration(65.4) == "1m05s"
    assert format_duration(7) == "7s"


def synthetic_report(floor: float, model: float, cov_floor: float, cov_model: float) -> dict:
    metrics = {key: {} for key in (*W1_KEYS, "cov", "fpnd")}
    entry = {key: {"mean": floor, "std": 0.0} for key in W1_KEYS}
    gen = {key: {"mean": model, "std": 0.0} for key in W1_KEYS}
    entry["cov"], gen["cov"] = {"mean": cov_floor, "std": 0.0}, {"mean": cov_model, "std": 0.0}
    entry["fpnd"] = {"mean": None, "std": None, "available": False, "reason": "x"}
    gen["fpnd"] = {"mean": 1.0, "std": None}
    return {
        "metrics": metrics,
        "models": [{"label": "FPCD", "dir": "s"}],
        "classes": {"t": {"jets_per_sample": 100, "floor": entry, "models": {"FPCD": gen}}},
    }


def test_ratio_table_reports_model_over_floor_marks_misses_and_names_the_worst():
    report = synthetic_report(floor=0.002, model=0.005, cov_floor=0.5, cov_model=0.25)
    ratios = floor_ratios(report)["FPCD"]["t"]
    assert ratios["w1m"] == pytest.approx(2.5)
    assert ratios["cov"] == pytest.approx(2.0)  # higher is better: floor / model
    assert ratios["fpnd"] is None  # no floor
    lines = format_ratio_table(report, {"FPCD": 3.0})
    text = "\n".join(lines)
    assert "5 / 2 (2.50x)" in text  # W1M in units of 1e-3
    assert "**" not in text
    assert "7 of 7 W1 values within 3x of the floor" in text
    missed = "\n".join(format_ratio_table(report, {"FPCD": 2.0}))
    assert missed.count("**") == 2 * len(W1_KEYS)
    assert "0 of 7 W1 values within 2x" in missed
    assert "n/a" in missed  # FPND without a floor


def test_recipe_stages_at_30_particles_distil_and_sample_both_and_150_only_the_teacher(tmp_path):
    stages30 = reference_stages(RecipeSettings(out=tmp_path))
    names = [s.name for s in stages30]
    assert names == [f"data-{c}" for c in "gqtwz"] + [
        "train", "distill", "sample", "sample-1", "evaluate", "plot", "plot-training",
    ]  # fmt: skip
    by_name = {s.name: list(s.argv) for s in stages30}
    assert by_name["data-t"][:5] == ["gsgm", "make-data", "--classes", "t", "--jets-per-class"]
    assert "20261202" in by_name["data-t"] and "30,150" in by_name["data-t"]
    # the held-out split is 30 % of 20,000 jets, halved for the floor: 3,000 jets per class
    assert by_name["sample"][by_name["sample"].index("--per-class") + 1] == "3000"
    assert by_name["sample-1"][-2:] == ["--steps", "1"]
    assert str(tmp_path / "config-30.json") in by_name["train"]
    assert by_name["evaluate"].count("--gen") == 2
    assert by_name["distill"][by_name["distill"].index("--epochs-per-stage") + 1] == "3"
    per_stage = {
        s.name: list(s.argv) for s in reference_stages(RecipeSettings(out=tmp_path, distill_epochs=[1, 2, 3]))
    }
    assert per_stage["distill"][per_stage["distill"].index("--epochs-per-stage") + 1] == "1,2,3"
    stages150 = reference_stages(RecipeSettings(out=tmp_path, particles=150, data=str(tmp_path)))
    names150 = [s.name for s in stages150]
    assert names150 == ["train", "sample", "evaluate", "plot", "plot-training"]
    assert str(tmp_path / "config-150.json") in dict((s.name, s.argv) for s in stages150)["train"]
    for config in ("configs/fpcd_reference.json", "configs/fpcd_reference150.json"):
        assert (REPO / config).exists()


def test_data_stage_is_complete_only_with_both_files_of_the_requested_size(tmp_path):
    from gsgm.data.jetnet_format import write_jetnet_file

    def write(count: int, jets: int) -> None:
        particles = np.zeros((jets, count, 4), np.float32)
        particles[:, 0] = [0.0, 0.0, 1.0, 1.0]
        features = np.tile(np.array([[500.0, 0.0, 50.0, 1.0]], np.float32), (jets, 1))
        write_jetnet_file(tmp_path / ("t.hdf5" if count == 30 else "t150.hdf5"), particles, features, {})

    assert not _class_files_complete(str(tmp_path), "t", 4)
    write(30, 4)
    assert not _class_files_complete(str(tmp_path), "t", 4)
    write(150, 4)
    assert _class_files_complete(str(tmp_path), "t", 4)
    with pytest.raises(ValueError, match=r"t\.hdf5 holds 4 jets, not --jets-per-class 5"):
        _class_files_complete(str(tmp_path), "t", 5)


@pytest.mark.slow
def test_the_whole_recipe_runs_at_tiny_size_and_a_rerun_skips_every_stage(tmp_path):
    out = tmp_path / "ref"
    command = [
        sys.executable, "-m", "gsgm.cli", "reference", "--out", str(out), "--classes", "t",
        "--jets-per-class", "120", "--config", "configs/quick.json", "--epochs", "1",
        "--distill-epochs", "1", "--steps", "4", "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    first = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    ledger = json.loads((out / "stages-30.json").read_text())
    assert set(ledger["stages"]) == {
        "data-t", "train", "distill", "sample", "sample-1", "evaluate", "plot", "plot-training",
    }  # fmt: skip
    summary = (out / "reference-30.md").read_text()
    assert "FPCD 4 steps: model / floor" in summary and "FPCD 1 step (distilled)" in summary
    assert "W1 values within 1.5x of the floor" in summary
    metrics = json.loads((out / "evaluation-30" / "metrics.json").read_text())
    assert metrics["classes"]["t"]["jets_per_sample"] == 18  # 30 % of 120, halved
    assert (out / "run-30" / "distill" / "steps-001").is_dir()
    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("done earlier") == 8
