#!/usr/bin/env python
"""Phase-space family: RAMBO speed, sampling cost per event per step, and the muon-decay W1 table.

    python benchmarks/bench_phase_space.py speed [--json OUT]
    python benchmarks/bench_phase_space.py table --work DIR [--epochs E] [--events N] [--json OUT]

``speed``: RAMBO events/s (NumPy float64, N = 3 and 10; the TF map q -> p), and the time per event
per step of each sampler with the quick config's MLP (128 x 3; weights untrained: the cost does not
depend on them), for a batch of 10,000 events. Flows use Heun (2 network calls per step).

``table``: trains configs/phase_space_muon_quick.json with each model.method (q-space diffusion, q-space
flow matching, p-space diffusion, p-space flow matching) on ``--data generated``, samples 10,000 events
from each and evaluates them with ``gsgm evaluate phase-space`` against 40,000 truth events (the floor
is a second truth sample of the same size as the model samples). The W1 rows land in DIR/eval.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]
METHODS = ("qspace_diffusion", "qspace_flow", "pspace_diffusion", "pspace_flow")
LABELS = {"qspace_diffusion": "q-space diffusion", "qspace_flow": "q-space flow",
          "pspace_diffusion": "p-space diffusion", "pspace_flow": "p-space flow"}  # fmt: skip


def speed() -> dict:
    import tensorflow as tf
    from sampling_timing import best_seconds as _best

    from gsgm.data.rambo import rambo, rambo_map_tf, sample_q
    from gsgm.families.phase_space import PHASE_SPACE

    out: dict = {}
    for n in (3, 10):
        t = _best(lambda n=n: rambo(np.random.default_rng(0), 200_000, n))
        out[f"rambo_numpy_N{n}_events_per_s"] = 200_000 / t
    q3 = tf.constant(sample_q(np.random.default_rng(0), 200_000, 3)[..., 1:], tf.float32)
    rambo_map_tf(q3)
    out["rambo_tf_map_N3_events_per_s"] = 200_000 / _best(lambda: rambo_map_tf(q3).numpy())
    cfg = PHASE_SPACE.load_config(HERE / "configs" / "phase_space_muon_quick.json")
    for method in METHODS:
        cfg.model.method = method
        cfg.diffusion.num_steps = 50  # the cost per step does not depend on the schedule's length
        pre = {"representation": "q", "scale": 1.0, "prior": None}
        if method.endswith("flow"):
            from gsgm.diffusion.flow_matching import GaussianPrior

            pre["prior"] = GaussianPrior(np.zeros(9), np.eye(9)).to_dict()
        model = PHASE_SPACE._model(cfg, pre)
        model.generate(1000, 3, steps=50, seed=0)  # trace
        t = _best(lambda model=model: model.generate(10_000, 3, steps=50, seed=0), repeats=2)
        out[f"{method}_us_per_event_per_step"] = 1e6 * t / 10_000 / 50
    return out


def _gsgm(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(HERE), "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-m", "gsgm.cli", *args], check=True, env=env, cwd=HERE)


def table(work: Path, epochs: int | None, events: int | None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    truth = work / "truth.hdf5"
    _gsgm(
        "make-phase-space",
        "--process",
        "muon_decay",
        "--events",
        "40000",
        "--seed",
        "777",
        "--out",
        str(truth),
    )
    base = json.loads((HERE / "configs" / "phase_space_muon_quick.json").read_text())
    gen, seconds = [], {}
    for method in METHODS:
        cfg = {**base, "model": {**base["model"], "method": method}}
        if events:
            cfg["data"] = {**cfg["data"], "num_events": events}
        path = work / f"{method}.json"
        path.write_text(json.dumps(cfg, indent=2))
        start = time.perf_counter()
        run = work / f"run_{method}"
        _gsgm("train", "--config", str(path), "--data", "generated", "--out", str(run), "--verbose", "0",
              *(["--epochs", str(epochs)] if epochs else []))  # fmt: skip
        seconds[method] = time.perf_counter() - start
        _gsgm(
            "sample",
            "--run",
            str(run),
            "--per-class",
            "10000",
            "--seed",
            "3",
            "--out",
            str(work / f"{method}.hdf5"),
        )
        gen += ["--gen", str(work / f"{method}.hdf5"), "--label", LABELS[method]]
    _gsgm("evaluate", "phase-space", "--truth", str(truth), *gen, "--out", str(work / "eval"))
    report = json.loads((work / "eval" / "metrics.json").read_text())
    return {"train_seconds": seconds, "report": report}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=("speed", "table"))
    parser.add_argument("--work", type=Path, help="table: working directory")
    parser.add_argument("--epochs", type=int, help="table: override training.epochs")
    parser.add_argument("--events", type=int, help="table: override data.num_events")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.what == "table" and args.work is None:
        parser.error("table needs --work DIR")
    result = speed() if args.what == "speed" else table(args.work, args.epochs, args.events)
    result["machine"] = f"{platform.node()} ({os.cpu_count()} cores)"
    result["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = json.dumps(result, indent=2)
    print(text if args.what == "speed" else json.dumps(result["train_seconds"], indent=2))
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
