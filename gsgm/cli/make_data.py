"""``gsgm make-data``: generate JetNet-format jets with Pythia 8 + FastJet, one HDF5 file per class."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

NAME = "make-data"
HELP = "generate JetNet-format jets with Pythia 8 + FastJet"
DESCRIPTION = """Generate JetNet-format jets (g, q, t, w, z) with Pythia 8 + FastJet, one HDF5 file per class.

Example (the shipped sample, gsgm/data/builtin):
    gsgm make-data --classes g,q,t,w,z --jets-per-class 2000 --particles 30,150 \\
        --seed 20261124 --out gsgm/data/builtin          (= python scripts/make_jets.py ...)

``--particles 30,150`` generates the events once and writes both file sets (``g.hdf5`` with the leading 30
particles and ``g150.hdf5`` with the leading 150), so both describe the same jets. The arrays depend on
--seed and --chunk-size (and the physics settings), not on --workers. stdout carries one JSON summary;
progress and errors go to stderr.
"""
from gsgm.cli.make_dis_data import DESCRIPTION as _DIS_DESCRIPTION  # noqa: E402
from gsgm.utils.cli import class_list, non_negative_int, positive_float, positive_int  # noqa: E402

DESCRIPTION += "\n" + _DIS_DESCRIPTION


def parse_particle_counts(text: str) -> list[int]:
    """``"30"``, ``"150"`` or ``"30,150"`` -> sorted list of JetNet particle counts."""
    from gsgm.data.jetnet_format import PARTICLE_COUNTS

    try:
        counts = sorted({int(item) for item in text.split(",") if item.strip()})
    except ValueError:
        raise ValueError(f"--particles must be 30, 150 or 30,150, got {text!r}") from None
    if not counts or any(c not in PARTICLE_COUNTS for c in counts):
        raise ValueError(f"--particles must be 30, 150 or 30,150 (JetNet's file sets), got {text!r}")
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gsgm.data.generation import GenerationSettings

    defaults = GenerationSettings()
    parser.add_argument("--kind", choices=("jets", "dis"), default="jets", help="jets (default) or dis")
    parser.add_argument(
        "--classes",
        type=class_list,
        default="g,q,t,w,z",
        help="comma-separated jet classes (default: all five)",
    )
    parser.add_argument("--jets-per-class", type=positive_int, help="jets per class (--kind jets)")
    parser.add_argument(
        "--particles", default="30", help="30, 150 or 30,150 (both from the same jets); default 30"
    )
    parser.add_argument("--seed", type=non_negative_int, required=True, help="base seed (>= 0)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--workers", type=positive_int, default=None, help="processes (default: number of cores)"
    )
    parser.add_argument(
        "--chunk-size", type=positive_int, default=defaults.chunk_size, help="jets per seeded chunk"
    )
    parser.add_argument("--pt-hat-min", type=positive_float, default=defaults.pt_hat_min, help="GeV")
    parser.add_argument("--pt-hat-max", type=positive_float, default=defaults.pt_hat_max, help="GeV")
    parser.add_argument("--jet-pt-min", type=positive_float, default=defaults.jet_pt_min, help="GeV")
    parser.add_argument("--jet-pt-max", type=positive_float, default=defaults.jet_pt_max, help="GeV")
    parser.add_argument(
        "--no-containment",
        action="store_true",
        help="do not require the t/W/Z decay quarks to lie within dR < 0.8 of the jet axis",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    from gsgm.cli.make_dis_data import add_dis_arguments

    add_dis_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from gsgm.data.generation import GenerationSettings, generate_jets, write_class_files
    from gsgm.data.jetnet_format import parse_classes

    if args.kind == "dis":
        from gsgm.cli.make_dis_data import run_dis

        return run_dis(args)
    if args.jets_per_class is None:
        raise ValueError("--jets-per-class is required for --kind jets")
    classes = parse_classes(args.classes)
    counts = parse_particle_counts(args.particles)
    if args.jets_per_class < 1:
        raise ValueError(f"--jets-per-class must be >= 1, got {args.jets_per_class}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} exists and is not a directory")
    settings = GenerationSettings(
        pt_hat_min=args.pt_hat_min,
        pt_hat_max=args.pt_hat_max,
        jet_pt_min=args.jet_pt_min,
        jet_pt_max=args.jet_pt_max,
        require_containment=not args.no_containment,
        chunk_size=args.chunk_size,
    )
    command = " ".join(["python scripts/make_jets.py", shlex.join(sys.argv[1:])])
    start = time.perf_counter()
    generated = generate_jets(
        classes,
        args.jets_per_class,
        max_particles=max(counts),
        seed=args.seed,
        workers=args.workers,
        settings=settings,
        progress=not args.no_progress,
    )
    seconds = time.perf_counter() - start
    files = write_class_files(args.out, generated, counts, args.seed, settings, command)
    summary = {
        "files": [str(f) for f in files],
        "jets_per_class": args.jets_per_class,
        "seconds": round(seconds, 2),
        "selection_efficiency": {c: round(len(j) / j.events, 4) for c, j in generated.items()},
        "mean_num_constituents": {
            c: round(float(j.num_constituents.mean()), 2) for c, j in generated.items()
        },
    }
    print(json.dumps(summary))
    return 0
