"""Batched EFPs (gsgm.evaluation.efp) against energyflow's jet-by-jet EFPs, same jets, same run.

Times the 36 FPD/KPD EFPs (d <= 4) of N shipped jets (drawn with replacement) both ways, in
interleaved rounds, and prints the times, their ratio and the largest relative difference.
energyflow runs with ``efp_jobs`` processes (default: all CPUs), as jetnet calls it.

    PYTHONPATH=. python benchmarks/bench_efp.py [--jets 5000] [--particles 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime

import numpy as np

from gsgm.data.jetnet_format import JET_CLASSES, class_file_name, read_jetnet_file
from gsgm.data.loading import builtin_data_dir
from gsgm.evaluation.efp import FPD_KPD_EFPSET_ARGS, batched_efps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jets", type=int, default=5000)
    parser.add_argument("--particles", type=int, default=30, choices=(30, 150))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--efp-jobs", type=int, default=None)
    args = parser.parse_args()
    from jetnet.utils import efps

    pool = np.concatenate(
        [read_jetnet_file(builtin_data_dir() / class_file_name(c, args.particles))[0] for c in JET_CLASSES]
    )
    jets = pool[np.random.default_rng(0).integers(0, len(pool), args.jets)].astype(np.float64)
    batched_efps(jets[:10])  # torch start-up outside the timing
    times = {"energyflow": [], "batched": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        reference = efps(jets[..., :3], efpset_args=list(FPD_KPD_EFPSET_ARGS), efp_jobs=args.efp_jobs)
        times["energyflow"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ours = batched_efps(jets)
        times["batched"].append(time.perf_counter() - start)
    worst = float(np.max(np.abs(ours - reference) / np.maximum(np.abs(reference), 1e-300)))
    best = {key: min(values) for key, values in times.items()}
    print(
        f"{args.jets} jets x {args.particles} particles, 36 EFPs: energyflow {best['energyflow']:.2f} s, "
        f"batched {best['batched']:.2f} s, ratio {best['energyflow'] / best['batched']:.1f}x; "
        f"largest relative difference {worst:.1e}; best of {args.rounds} rounds; {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}; {datetime.now(UTC).isoformat(timespec='seconds')}"
    )


if __name__ == "__main__":
    main()
