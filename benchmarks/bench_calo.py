#!/usr/bin/env python
"""Calorimeter family: the timing table (seminar Table 2) and the W1 table (Table 1) on GFlash showers.

Time per shower of each sampler of a trained calo run (DDPM 100 steps, EDM 25 Heun steps, the
consistency-distilled 1 step; shower flow, point diffusion and projection, no hit calibration) at
``--batch`` showers per call, beside the GFlash generator's own time per shower on one core, all
measured in one process in alternating rounds (best of ``--rounds``), so that a shared CPU's load hits
every row alike. Needs a run distilled with ``gsgm distill`` for the "cm" row.

    python benchmarks/bench_calo.py --run runs/calo_quick --batch 1 --showers 4 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True)
    parser.add_argument(
        "--batch", type=int, default=1, help="showers per sampler call (Table 2: CPU 1, GPU 64)"
    )
    parser.add_argument("--showers", type=int, default=4, help="showers timed per sampler and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    from gsgm.data.calo_generation import time_generator
    from gsgm.families.calo import CALO
    from gsgm.generation.calo import generate_from_model
    from gsgm.training.distill import available_steps

    models = {"ddpm": CALO.load_run(args.run), "edm": CALO.load_run(args.run)}
    if 1 in available_steps(args.run):
        models["cm"] = CALO.load_run(available_steps(args.run)[1])
    steps = {
        "ddpm": models["ddpm"][1].sampling.ddpm_steps,
        "edm": models["edm"][1].sampling.num_steps,
        "cm": 1,
    }
    energies = np.random.default_rng(0).uniform(10, 90, args.showers)
    for name, (model, _) in models.items():  # trace the compiled functions once
        generate_from_model(model, energies[:1], sampler=name, steps=steps[name], batch_size=args.batch)
    best = {name: np.inf for name in models}
    best["gflash"] = np.inf
    for _ in range(args.rounds):
        best["gflash"] = min(best["gflash"], time_generator(200, seed=1))
        for name, (model, _) in models.items():
            started = time.perf_counter()
            generate_from_model(model, energies, sampler=name, steps=steps[name], batch_size=args.batch)
            best[name] = min(best[name], (time.perf_counter() - started) / args.showers)
    rows = [{"simulator": "GFlash generator", "steps": "", "ms": 1e3 * best["gflash"], "relative": 1.0}]
    for name in models:
        rows.append({"simulator": name, "steps": steps[name], "ms": 1e3 * best[name],
                     "relative": best["gflash"] / best[name]})  # fmt: skip
    machine = platform.processor() or "cpu"
    print(f"batch {args.batch}, {args.showers} showers x {args.rounds} rounds (best), {machine}")
    print("| Simulator | Steps | Time per shower [ms] | Relative to GFlash |\n| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['simulator']} | {row['steps']} | {row['ms']:.2f} | x{row['relative']:.3g} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"rows": rows, "batch": args.batch, "date": datetime.now(UTC).isoformat()}, handle, indent=2
            )


if __name__ == "__main__":
    main()
