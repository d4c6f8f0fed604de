#!/usr/bin/env python
"""N = 10 antenna (eq. 21): SARGE sampler speed, transformer sampling cost, and the quick-model W1 table.

    python benchmarks/bench_antenna.py speed [--json OUT]
    python benchmarks/bench_antenna.py table --work DIR [--truth-events N] [--json OUT]

``speed``: raw SARGE events/s (NumPy float64, N = 10, batches of 50,000) and the fraction kept by
the ratio cut for xi_max = 1e2, 1e3, 1e4, hence exact antenna events/s; RAMBO at N = 10 in the same
run for the ratio; the time per event per step of the quick config's transformer (untrained
weights: the cost does not depend on them) for a batch of 3,000 events.

``table``: ``gsgm make-phase-space --process antenna`` truth (seed 777), then configs/
phase_space_antenna_quick.json trained with model.method = qspace_diffusion, qspace_flow and
pspace_flow on ``--data generated``, 3,000 samples each, and ``gsgm evaluate phase-space`` against
the truth (halved: reference and floor), with uniform phase space (RAMBO) as one more sample.
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
METHODS = ("qspace_diffusion", "qspace_flow", "pspace_flow")
LABELS = {
    "qspace_diffusion": "q-space diffusion",
    "qspace_flow": "q-space flow",
    "pspace_flow": "p-space flow",
}


def speed() -> dict:
    import tensorflow as tf
    from sampling_timing import best_seconds as _best

    from gsgm.data.antenna import ratio_cut, sarge_events
    from gsgm.data.rambo import rambo
    from gsgm.families.phase_space import PHASE_SPACE

    out: dict = {}
    batch = 50_000
    out["rambo_N10_events_per_s"] = batch / _best(lambda: rambo(np.random.default_rng(0), batch, 10))
    for xi in (1e2, 1e3, 1e4):
        rng = np.random.default_rng(1)
        seconds = _best(lambda xi=xi, rng=rng: sarge_events(rng, batch, 10, xi))
        kept = np.mean([ratio_cut(sarge_events(rng, batch, 10, xi), xi).mean() for _ in range(4)])
        out[f"sarge_N10_xi{xi:g}_raw_events_per_s"] = batch / seconds
        out[f"sarge_N10_xi{xi:g}_kept_fraction"] = float(kept)
        out[f"antenna_N10_xi{xi:g}_exact_events_per_s"] = batch * kept / seconds
    cfg = PHASE_SPACE.load_config(HERE / "configs" / "phase_space_antenna_quick.json")
    model = PHASE_SPACE._model(cfg, {"prior": None})
    net = tf.function(lambda x, t: model.ema_net({"x": x, "t": t}, training=False))
    x = tf.random.normal((3000, 10, 3))
    t = tf.fill([3000], 0.5)
    net(x, t)
    out["transformer_us_per_event_per_call"] = 1e6 * _best(lambda: net(x, t).numpy()) / 3000
    return out


def _gsgm(*args: str) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(HERE)}
    subprocess.run([sys.executable, "-m", "gsgm.cli", *args], check=True, env=env, cwd=HERE)


def table(work: Path, truth_events: int) -> dict:
    from gsgm.data.phase_space_files import write_events
    from gsgm.data.rambo import rambo

    work.mkdir(parents=True, exist_ok=True)
    truth = work / "truth.hdf5"
    if not truth.is_file():
        _gsgm("make-phase-space", "--process", "antenna", "--xi-max", "1000", "--events", str(truth_events),
              "--seed", "777", "--out", str(truth))  # fmt: skip
    uniform = work / "uniform.hdf5"
    write_events(uniform, rambo(np.random.default_rng(5), 3000, 10), {"process": "antenna", "xi_max": 1000.0})
    base = json.loads((HERE / "configs" / "phase_space_antenna_quick.json").read_text())
    gen_args: list[str] = []
    train_seconds = {}
    for method in METHODS:
        cfg = json.loads(json.dumps(base))
        cfg["model"]["method"] = method
        cfg["name"] = f"antenna_quick_{method}"
        config = work / f"{method}.json"
        config.write_text(json.dumps(cfg, indent=2))
        run = work / f"run_{method}"
        start = time.perf_counter()
        _gsgm("train", "--config", str(config), "--data", "generated", "--out", str(run), "--verbose", "0")
        train_seconds[method] = time.perf_counter() - start
        samples = work / f"{method}.hdf5"
        _gsgm("sample", "--run", str(run), "--per-class", "3000", "--out", str(samples))
        gen_args += ["--gen", str(samples), "--label", LABELS[method]]
    gen_args += ["--gen", str(uniform), "--label", "uniform phase space"]
    _gsgm("evaluate", "phase-space", "--truth", str(truth), *gen_args, "--out", str(work / "eval"))
    report = json.loads((work / "eval" / "metrics.json").read_text())
    return {"train_seconds": train_seconds, "report": report}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=("speed", "table"))
    parser.add_argument("--work", type=Path, help="table: working directory")
    parser.add_argument("--truth-events", type=int, default=6000, help="table: truth events (default 6000)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.what == "table" and args.work is None:
        parser.error("table needs --work DIR")
    result = speed() if args.what == "speed" else table(args.work, args.truth_events)
    result["machine"] = f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}"
    result["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
