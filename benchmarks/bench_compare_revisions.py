#!/usr/bin/env python
"""Same benchmark, two revisions of gsgm, one run: does a change cost speed?

Runs ``benchmarks/bench_fpcd.py`` (training step and DDIM sampling time per jet, 30 and 150 particles,
the config's sizes) from this checkout and from a git worktree of another revision, in alternating
rounds (so that load drift on a shared machine hits both), each in its own process with its own
``PYTHONPATH``, and prints the best time of each quantity per revision and their ratio. Both revisions
run their own ``configs/<config>`` (the sizes must agree: the parameter counts are printed).

    git worktree add /tmp/gsgm-before 4c94f56        # the revision before the change
    python benchmarks/bench_compare_revisions.py --before /tmp/gsgm-before --rounds 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
PARAMS = (
    "import sys, keras; sys.path.insert(0, 'benchmarks');"
    "from gsgm.config import load_config;"
    "cfg = load_config('configs/{config}');"
    "{build}"
    "print(sum(int(w.shape.num_elements()) for w in model.jet_net.trainable_weights),"
    " sum(int(w.shape.num_elements()) for w in model.particle_net.trainable_weights))"
)
BUILDERS = (  # where build_model lives before and after the redesign
    "from gsgm.families.fpcd import build_model; model = build_model(cfg, 30, 0);",
    "from gsgm.training.trainer import build_model; model = build_model(cfg, 30, 0);",
)


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "3"}


def parameter_counts(tree: Path, config: str) -> list[int]:
    """(jet net, particle net) trainable parameters of ``config`` in ``tree``."""
    for build in BUILDERS:
        code = PARAMS.format(config=config, build=build)
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tree, env=_env(tree), capture_output=True, text=True
        )
        if done.returncode == 0:
            return [int(n) for n in done.stdout.split()[-2:]]
    raise RuntimeError(f"cannot build the model of {config} in {tree}: {done.stderr[-2000:]}")


def run_once(tree: Path, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable, "benchmarks/bench_fpcd.py", "--config", f"configs/{args.config}",
            "--particles", args.particles, "--batch", str(args.batch), "--repeats", str(args.repeats),
            "--json", str(out),
        ]  # fmt: skip
        done = subprocess.run(command, cwd=tree, env=_env(tree), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"bench_fpcd.py failed in {tree}:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def flatten(result: dict) -> dict[str, float]:
    values = {}
    for row in result["rows"]:
        p = row["particles"]
        values[f"train ms/jet/step, P={p}"] = row["train_ms_per_jet_step"]
        values[f"sample ms/jet/step (all slots), P={p}"] = row["sample_ms_per_jet_step_full_padding"]
        if "sample_ms_per_jet_step_cropped" in row:
            values[f"sample ms/jet/step (cropped), P={p}"] = row["sample_ms_per_jet_step_cropped"]
        values[f"sample ms/jet 1 step, P={p}"] = row["sample_ms_per_jet"]["1"]
    return values


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--before", required=True, help="checkout (git worktree) of the revision to compare with"
    )
    parser.add_argument("--config", default="fpcd_released.json", help="config file name in both configs/")
    parser.add_argument("--particles", default="30,150")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds (best of the rounds is kept)"
    )
    parser.add_argument("--json", help="write the table here as JSON")
    args = parser.parse_args()
    trees = {"before": Path(args.before).resolve(), "after": HERE}
    counts = {name: parameter_counts(tree, args.config) for name, tree in trees.items()}
    print(f"parameters (jet net, particle net): {counts}", flush=True)
    if counts["before"] != counts["after"]:
        raise SystemExit(
            "the two revisions build networks of different sizes: not a like-for-like comparison"
        )
    best: dict[str, dict[str, float]] = {name: {} for name in trees}
    for round_index in range(args.rounds):
        order = list(trees) if round_index % 2 == 0 else list(trees)[::-1]
        for name in order:
            for key, value in flatten(run_once(trees[name], args)).items():
                best[name][key] = min(value, best[name].get(key, float("inf")))
            print(f"round {round_index + 1}: {name} done", flush=True)
    table = {
        key: {
            "before": best["before"][key],
            "after": best["after"][key],
            "after/before": best["after"][key] / best["before"][key],
        }
        for key in best["after"]
        if key in best["before"]
    }
    for key, row in table.items():
        print(
            f"{key:45s} before {row['before']:.4f}  after {row['after']:.4f}  ratio {row['after/before']:.3f}"
        )
    if args.json:
        payload = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": args.config,
            "batch": args.batch,
            "rounds": args.rounds,
            "parameters": counts,
            "table": table,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
