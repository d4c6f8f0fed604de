#!/usr/bin/env python
"""Throughput of the Pythia 8 + FastJet jet generator, per class, on one core.

    PYTHONPATH=. python benchmarks/bench_generator.py [--jets 200] [--classes g,q,t,w,z] [--seed 1]

For each class one chunk of --jets jets is generated in this process (one worker), exactly as
``generate_jets`` does it: Pythia initialisation, event generation, clustering and selection. A second
pass over the same number of events times the parts separately (Pythia ``nextBatch`` vs. the
vectorised clustering/selection in ``select_jets``). The table goes to stderr, one JSON document to stdout.
The machine may be shared: the load average before and after is recorded with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

try:
    import gsgm  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gsgm.data.generation import (
    ChunkTask,
    GenerationSettings,
    chunk_seed,
    generate_chunk,
    make_pythia,
    select_jets,
    silence_fastjet_banner,
    software_versions,
)
from gsgm.data.jetnet_format import parse_classes


def bench_class(jet_class: str, n_jets: int, seed: int, settings: GenerationSettings) -> dict:
    start = time.perf_counter()
    result = generate_chunk(ChunkTask(jet_class, 0, n_jets, seed, 150, settings))
    wall = time.perf_counter() - start

    # breakdown on a fresh instance (same seed, so the same events)
    t0 = time.perf_counter()
    pythia = make_pythia(jet_class, chunk_seed(seed, jet_class, 0), settings)
    t1 = time.perf_counter()
    events = pythia.nextBatch(result.events)
    t2 = time.perf_counter()
    selected = select_jets(events, jet_class, settings, 150)
    t3 = time.perf_counter()
    del pythia
    return {
        "class": jet_class,
        "jets": len(result),
        "events": result.events,
        "efficiency": round(len(result) / result.events, 4),
        "seconds": round(wall, 3),
        "jets_per_s_per_core": round(len(result) / wall, 1),
        "init_s": round(t1 - t0, 3),
        "pythia_ms_per_event": round(1e3 * (t2 - t1) / result.events, 3),
        "select_ms_per_event": round(1e3 * (t3 - t2) / result.events, 3),
        "breakdown_jets": len(selected.jets),
        "mean_constituents": round(float(result.num_constituents.mean()), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=200, help="jets per class")
    parser.add_argument("--classes", default="g,q,t,w,z")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    classes = parse_classes(args.classes)
    settings = GenerationSettings(chunk_size=args.jets)
    silence_fastjet_banner()  # also imports awkward/fastjet, so their import time is not measured
    load_before = os.getloadavg()
    rows = [bench_class(c, args.jets, args.seed, settings) for c in classes]
    load_after = os.getloadavg()

    header = (
        f"{'class':>5} {'jets/s/core':>11} {'eff':>6} {'init s':>7} {'pythia ms/ev':>12} {'select ms/ev':>12}"
    )
    print(header, file=sys.stderr)
    for r in rows:
        print(
            f"{r['class']:>5} {r['jets_per_s_per_core']:>11.1f} {r['efficiency']:>6.3f} {r['init_s']:>7.3f} "
            f"{r['pythia_ms_per_event']:>12.2f} {r['select_ms_per_event']:>12.2f}",
            file=sys.stderr,
        )
    summary = {
        "benchmark": "bench_generator",
        "jets_per_class": args.jets,
        "workers": 1,
        "results": rows,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
        },
        "versions": software_versions(),
        "settings": settings.to_dict(),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
