#!/usr/bin/env python
"""FPCD speed: training step time and DDIM sampling time per jet, 30 and 150 particles.

Sampling cost is linear in the number of steps (one jet-net and one particle-net call per step), so
the per-step cost is measured from runs with few steps and the totals for 64 and 512 steps are
extrapolated from it (stated in the output). Multiplicities for the particle stage are drawn from the
shipped Pythia sample, so the padding fraction is realistic; with 150 slots, cropping padded slots
(``--buckets``) is compared with computing every slot, in the same run.

    python benchmarks/bench_fpcd.py --config configs/fpcd_released.json --batch 1000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import UTC, datetime

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from sampling_timing import best_seconds, realistic_inputs, sampling_seconds  # noqa: E402

from gsgm.config import load_config  # noqa: E402
from gsgm.data.jetnet_format import JET_CLASSES  # noqa: E402
from gsgm.data.loading import load_jets, resolve_data_dir  # noqa: E402
from gsgm.data.pipeline import make_dataset  # noqa: E402
from gsgm.data.preprocessing import JetPreprocessor  # noqa: E402
from gsgm.families.fpcd import build_model
from gsgm.training.optim import make_optimizer  # noqa: E402


def train_step_ms_per_jet(cfg, num_particles: int, repeats: int) -> float:
    sample = load_jets(resolve_data_dir("builtin"), list(JET_CLASSES), num_particles)
    arrays = JetPreprocessor.fit(sample).transform(sample)
    batch_size = cfg.training.batch_size
    batch = next(iter(make_dataset(*arrays, sample.labels, batch_size=batch_size, shuffle=True, seed=0)))
    model = build_model(cfg, num_particles, seed=0)
    model.compile(optimizer=make_optimizer(cfg.training, steps_per_epoch=1000))
    step = tf.function(model.train_step)
    step(batch)  # trace

    def ten_steps():
        for _ in range(10):
            step(batch)
        model.metrics[0].result().numpy()  # the "loss" tracker

    return 1e3 * best_seconds(ten_steps, repeats) / (10 * batch_size)


def sampling_ms_per_jet(cfg, num_particles: int, batch: int, steps: int, buckets: int, repeats: int) -> float:
    mask, onehot = realistic_inputs(num_particles, batch)
    model = build_model(cfg, num_particles, seed=0)
    sampling_seconds(model, mask, onehot, steps, 1, buckets)  # trace every bucket shape once
    return 1e3 * sampling_seconds(model, mask, onehot, steps, repeats, buckets) / batch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="configs/fpcd_released.json")
    parser.add_argument("--particles", default="30,150")
    parser.add_argument("--batch", type=int, default=1000, help="jets per sampling batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--buckets", type=int, default=8)
    parser.add_argument("--json", help="write results here as JSON")
    args = parser.parse_args()
    results = {
        "config": args.config,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "tensorflow": tf.__version__,
        "batch": args.batch,
        "rows": [],
    }
    for num_particles in (int(p) for p in args.particles.split(",")):
        cfg = load_config(args.config)
        cfg.data.num_particles = num_particles
        row = {"particles": num_particles}
        row["train_ms_per_jet_step"] = train_step_ms_per_jet(cfg, num_particles, args.repeats)
        one = sampling_ms_per_jet(cfg, num_particles, args.batch, 1, 1, args.repeats)
        four = sampling_ms_per_jet(cfg, num_particles, args.batch, 4, 1, args.repeats)
        per_step = (four - one) / 3
        row["sample_ms_per_jet_step_full_padding"] = per_step
        if args.buckets > 1:
            one_b = sampling_ms_per_jet(cfg, num_particles, args.batch, 1, args.buckets, args.repeats)
            four_b = sampling_ms_per_jet(cfg, num_particles, args.batch, 4, args.buckets, args.repeats)
            row["sample_ms_per_jet_step_cropped"] = (four_b - one_b) / 3
            per_step = min(per_step, row["sample_ms_per_jet_step_cropped"])
        row["sample_ms_per_jet"] = {
            "1": one,
            "8 (extrapolated)": one + 7 * per_step,
            "64 (extrapolated)": one + 63 * per_step,
            "512 (extrapolated)": one + 511 * per_step,
        }
        results["rows"].append(row)
        print(json.dumps(row, indent=1), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
