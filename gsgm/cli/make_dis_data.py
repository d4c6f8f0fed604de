"""``gsgm make-data --kind dis``: neutral-current e- p DIS events with Pythia 8 into one HDF5 file."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from gsgm.utils.cli import positive_float, positive_int
from gsgm.utils.outputs import check_output_file

DESCRIPTION = """DIS (--kind dis): NC e- p events at sqrt(s) = 105 GeV, Q^2 > 25 GeV^2, pi+ / e- / K+ with
|eta| < 10, rotated so the leading electron sits at phi = -pi; one HDF5 file --out (gsgm.data.dis_format).

Example (the shipped sample, gsgm/data/builtin/dis_ep105.hdf5):
    gsgm make-data --kind dis --events 10000 --seed 20261201 --out gsgm/data/builtin/dis_ep105.hdf5
"""


def add_dis_arguments(parser: argparse.ArgumentParser) -> None:
    """The DIS options of ``gsgm make-data`` (``--seed``, ``--out``, ``--workers`` are shared)."""
    from gsgm.data.dis_generation import DisSettings

    defaults = DisSettings()
    group = parser.add_argument_group("DIS (--kind dis)")
    group.add_argument("--events", type=positive_int, help="number of events")
    group.add_argument("--sqrt-s", type=positive_float, default=defaults.sqrt_s, help="GeV (default 105)")
    group.add_argument("--q2-min", type=positive_float, default=defaults.q2_min, help="GeV^2 (default 25)")
    group.add_argument(
        "--eta-max", type=positive_float, default=defaults.eta_max, help="|eta| cut (default 10)"
    )
    group.add_argument(
        "--electron-energy",
        type=positive_float,
        help="collider frame with this electron beam energy [GeV] (default: centre-of-mass frame)",
    )
    group.add_argument(
        "--events-per-chunk", type=positive_int, default=defaults.chunk_size, help="events per seeded chunk"
    )


def run_dis(args: argparse.Namespace) -> int:
    check_output_file(args.out, option="--out")  # before any work: no compute lost to a bad path
    from gsgm.data.dis_format import SPECIES, write_dis_file
    from gsgm.data.dis_generation import DisSettings, dis_provenance, generate_dis_events

    if args.events is None or args.events < 1:
        raise ValueError(f"--kind dis needs --events N >= 1, got {args.events}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; --kind dis writes one file (e.g. {out}/dis.hdf5)")
    settings = DisSettings(
        sqrt_s=args.sqrt_s,
        q2_min=args.q2_min,
        eta_max=args.eta_max,
        electron_energy=args.electron_energy,
        chunk_size=args.events_per_chunk,
    )
    command = " ".join(["gsgm make-data", shlex.join(sys.argv[1:])])
    start = time.perf_counter()
    events = generate_dis_events(
        args.events, args.seed, workers=args.workers, settings=settings, progress=not args.no_progress
    )
    seconds = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    write_dis_file(out, events, dis_provenance(args.seed, settings, command, events))
    pid = events.particles[..., 3]
    summary = {
        "file": str(out),
        "events": len(events),
        "seconds": round(seconds, 2),
        "mean_multiplicity": {str(s): round(float((pid == s).sum(axis=1).mean()), 3) for s in SPECIES},
        "max_sum_z": round(float(events.z().sum(axis=1).max()), 4),
    }
    print(json.dumps(summary))
    return 0
