"""``gsgm make-showers``: photon showers in the ILD-like calorimeter, as a point-cloud HDF5 file."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from gsgm.utils.cli import non_negative_int, positive_float, positive_int
from gsgm.utils.outputs import check_output_file

NAME = "make-showers"
HELP = "simulate calorimeter photon showers (GFlash stand-in, or Geant4 where installed)"
DESCRIPTION = """Simulate photon showers in an ILD-like W/Si calorimeter (30 layers, 5 x 5 mm cells) and write
them as a point-cloud HDF5 file (gsgm/data/calo_format.py documents the layout).

--engine gflash (default) is the GFlash parametrisation (Grindhammer & Peters, hep-ex/0001020): a
parametrised stand-in for Geant4, fast, on all cores. Numbers on it do not compare with the CaloClouds
papers' tables. --engine geant4 needs geant4-pybind and the Geant4 data sets (G4EMLOW, G4ENSDFSTATE,
...) and says so in one line when they are missing.

The file depends on --seed and --chunk-size (and the energies), not on --workers.

Examples (the shipped sample, gsgm/data/builtin/calo_showers.h5):
    gsgm make-showers --showers 500 --seed 20261201 --out gsgm/data/builtin/calo_showers.h5
    gsgm make-showers --showers 2000 --energy 50 --seed 7 --out data/showers_50gev.h5
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--showers", type=positive_int, required=True, help="number of showers")
    parser.add_argument("--seed", type=non_negative_int, required=True, help="base seed (>= 0)")
    parser.add_argument("--out", type=Path, required=True, help="output HDF5 file")
    parser.add_argument("--energy-min", type=positive_float, default=10.0, help="GeV (default 10)")
    parser.add_argument("--energy-max", type=positive_float, default=90.0, help="GeV (default 90)")
    parser.add_argument(
        "--energy", type=positive_float, help="fixed incident energy [GeV] (overrides the range)"
    )
    parser.add_argument("--engine", choices=("gflash", "geant4"), default="gflash")
    parser.add_argument("--workers", type=positive_int, help="processes (default: all cores)")
    parser.add_argument("--chunk-size", type=positive_int, default=100, help="showers per seeded chunk")
    parser.add_argument("--sampling-term", type=positive_float, default=0.166, help="c_s [sqrt(GeV)], gflash")
    parser.add_argument("--physics-list", default="FTFP_BERT", help="Geant4 reference physics list")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    check_output_file(args.out, option="--out")  # before any work: no compute lost to a bad path
    low, high = (args.energy, args.energy) if args.energy is not None else (args.energy_min, args.energy_max)
    command = " ".join(["gsgm make-showers", shlex.join(sys.argv[1:])])
    if args.out.is_dir():
        raise ValueError(f"--out {args.out} is a directory; give a file name")
    start = time.perf_counter()
    if args.engine == "geant4":
        from gsgm.data.geant4_showers import Geant4Settings, simulate_geant4_showers

        settings = Geant4Settings(args.showers, args.seed, low, high, physics_list=args.physics_list)
        sample, attributes = simulate_geant4_showers(settings, command, progress=not args.no_progress)
    else:
        from gsgm.data.calo_generation import generate_showers, shower_provenance
        from gsgm.data.gflash import GFlashSettings

        settings = GFlashSettings(sampling_term=args.sampling_term)
        sample = generate_showers(
            args.showers, args.seed, low, high, chunk_size=args.chunk_size, workers=args.workers,
            settings=settings, progress=not args.no_progress,
        )  # fmt: skip
        attributes = shower_provenance(args.seed, low, high, args.chunk_size, settings, command)
    from gsgm.data.calo_format import write_point_cloud_file

    path = write_point_cloud_file(args.out, sample, attributes)
    print(json.dumps({
        "file": str(path), "showers": len(sample), "engine": args.engine,
        "seconds": round(time.perf_counter() - start, 2),
        "mean_num_points": round(float(sample.num_points.mean()), 1),
    }))  # fmt: skip
    return 0
