#!/usr/bin/env python
"""FPCD paper Table V: generation time per jet (jet + particle stage) for 512, 8 and 1 DDIM steps.

Rows: every (size, particle count, precision) with size "paper" (``configs/fpcd_jetnet30.json`` /
``fpcd_jetnet150.json``) and "released" (``configs/fpcd_released.json``), 30 and 150 particles. Networks
are freshly initialised (time does not depend on the weights); multiplicities are drawn from the shipped
Pythia sample and grouped into multiplicity buckets as ``gsgm sample`` does. Each row is traced once
(warm-up, excluded), then timed ``--repeats`` times; the best is kept. The device TensorFlow sees is
named in every record. Table V used batch 10,000 on one A100 (the default here); on a CPU use a small
``--batch`` and ``--max-measured-steps``: step counts above it are extrapolated from the per-step cost
measured between 1 and that many steps (the cost is linear in the steps) and marked ``"measured":
false``. Output: a timing file (``gsgm.generation.timing``) that ``gsgm plot timing`` draws.

    python benchmarks/bench_table5.py --json table5.json                                    # a GPU
    python benchmarks/bench_table5.py --batch 200 --max-measured-steps 8 --json table5.json # a CPU
    gsgm plot timing --results table5.json --out plots/
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sampling_timing import realistic_inputs, sampling_seconds  # noqa: E402

from gsgm.config import load_config  # noqa: E402
from gsgm.families.fpcd import build_model  # noqa: E402
from gsgm.generation.timing import describe_device, timing_record  # noqa: E402
from gsgm.utils.atomic import write_json_atomic  # noqa: E402

CONFIGS = {
    "paper": {30: "configs/fpcd_jetnet30.json", 150: "configs/fpcd_jetnet150.json"},
    "released": {30: "configs/fpcd_released.json", 150: "configs/fpcd_released.json"},
}
#: The paper's Table V (one A100, batch 10,000), ms per jet, for the printed comparison.
PAPER_MS = {
    (30, 512): 5.0, (30, 8): 0.085, (30, 1): 0.011, (150, 512): 31.0, (150, 8): 0.522, (150, 1): 0.066
}  # fmt: skip


def parse_list(text: str, kind=str) -> list:
    return [kind(item) for item in text.split(",") if item]


def table_rows(args: argparse.Namespace, device: str) -> list[dict]:
    """The timing records of every requested row (see the module docstring)."""
    records = []
    for size in args.sizes:
        for num_particles in args.particles:
            cfg = load_config(HERE.parent / CONFIGS[size][num_particles])
            cfg.data.num_particles = num_particles
            model = build_model(cfg, num_particles, seed=0)
            mask, onehot = realistic_inputs(num_particles, args.batch, seed=args.seed)
            for variant in args.variants:
                precision, _, xla = variant.partition("+")
                timed = (model, mask, onehot)
                options = {"buckets": args.buckets, "precision": precision, "jit_compile": xla == "xla"}
                measured: dict[int, float] = {}
                for steps in sorted(args.steps):
                    if args.max_measured_steps is None or steps <= args.max_measured_steps:
                        # Warm-up call: traces (and compiles) this step count's loops.
                        sampling_seconds(*timed, steps, 1, **options)
                        measured[steps] = sampling_seconds(*timed, steps, args.repeats, **options)
                low, high = min(measured), max(measured)
                # The slope between the fewest and most measured steps; where noise makes it
                # non-positive (tiny CI batches), the mean cost per step of the longest measurement.
                slope = (measured[high] - measured[low]) / (high - low) if high > low else 0.0
                per_step = slope if slope > 0 else measured[high] / high
                for steps in sorted(args.steps, reverse=True):
                    total = measured.get(steps, measured[low] + (steps - low) * per_step)
                    label = f"FPCD {size} size, {num_particles} particles, {variant}"
                    records.append(
                        timing_record(
                            label,
                            steps,
                            total,
                            args.batch,
                            num_particles,
                            args.batch,
                            device=device,
                            source="benchmarks/bench_table5.py",
                            measured=steps in measured,
                            includes_tracing=False,
                            size=size,
                            variant=variant,
                            config=CONFIGS[size][num_particles],
                            jet_parameters=model.jet_net.count_params(),
                            particle_parameters=model.particle_net.count_params(),
                        )
                    )
                    print_row(records[-1])
    return records


def print_row(record: dict) -> None:
    paper = PAPER_MS.get((record["num_particles"], record["steps"]))
    versus = f"  paper (A100) {paper:g} ms" if paper is not None else ""
    flag = "" if record["measured"] else " (extrapolated)"
    timing = f"{record['steps']:4d} steps {record['ms_per_jet']:10.4f} ms/jet"
    print(f"{record['label']:52s} {timing}{flag}{versus}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="paper,released", help="paper and/or released")
    parser.add_argument("--particles", default="30,150")
    parser.add_argument("--steps", default="512,8,1")
    parser.add_argument("--variants", default="float32", help="e.g. float32,bfloat16,float32+xla")
    parser.add_argument("--batch", type=int, default=10_000, help="jets per sampler call (Table V: 10,000)")
    parser.add_argument("--max-measured-steps", type=int, help="extrapolate step counts above this")
    parser.add_argument("--buckets", type=int, default=8, help="multiplicity buckets (gsgm sample's default)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn multiplicities")
    parser.add_argument("--json", required=True, help="timing file to write (gsgm plot timing draws it)")
    args = parser.parse_args()
    args.sizes = parse_list(args.sizes)
    unknown = sorted(set(args.sizes) - set(CONFIGS))
    if unknown:
        parser.error(f"--sizes: unknown {unknown} (known: {', '.join(CONFIGS)})")
    args.particles = parse_list(args.particles, int)
    if sorted(set(args.particles) - {30, 150}):
        parser.error(f"--particles: 30 and/or 150, got {args.particles}")
    args.steps = parse_list(args.steps, int)
    args.variants = parse_list(args.variants)
    if args.max_measured_steps is not None and args.max_measured_steps < min(args.steps):
        parser.error(f"--max-measured-steps {args.max_measured_steps} is below every step count")
    device = describe_device()
    print(f"device: {device}; batch {args.batch}", flush=True)
    write_json_atomic(args.json, table_rows(args, device))


if __name__ == "__main__":
    main()
