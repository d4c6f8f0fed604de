"""``gsgm sample``: sample from a trained run of any family into sample files."""

from __future__ import annotations

import argparse

from gsgm.cli.jet_sample_args import add_sampling_speed_arguments
from gsgm.utils.cli import class_list, non_negative_int, positive_float, positive_int

HELP = "sample from a trained run (any family) into sample files"
DESCRIPTION = """Sample from a trained run; the run's family decides the sampler and the file format.

FPCD runs write JetNet-format class files into the directory --out (same names as the data: t.hdf5,
t150.hdf5, ...) and append a timing record (time per jet, steps, particles, batch size, device) to
OUT/timing.json, which `gsgm plot timing` draws. With a distillation chain (`gsgm distill`), --steps N
samples from the stage distilled to N steps. Jet-image runs write one HDF5 file --out holding
``images`` [M, 25, 25], ``labels`` [M] and the provenance. A progress bar with ETA goes to stderr.

Nothing is overwritten without --overwrite: --out must be new or an empty directory (checked, with
the free space, before sampling starts). Samples are kept in chunks as they finish: after a kill,
the same command continues where it stopped and writes exactly what an uninterrupted run writes.
The output appears complete or not at all, with a manifest (run, steps, seed, classes, hashes) that
the evaluation checks.

Examples:
    gsgm sample --run runs/quick --per-class 1000 --steps 64 --out runs/quick/samples
    gsgm sample --run runs/quick --per-class 1000 --steps 8 --out runs/quick/samples-8     # distilled
    gsgm sample --run runs/img_score --per-class 300 --steps 15 --out runs/img_score/samples.h5
    gsgm sample --run runs/img_ct --per-class 300 --steps 1 --out runs/img_ct/samples.h5
    gsgm sample --run runs/dis_quick --per-class 500 --sampler ddim --steps 50 --out runs/dis_quick/ddim50.h5
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run directory written by gsgm train")
    parser.add_argument(
        "--per-class",
        "--jets-per-class",
        "--images-per-class",
        dest="per_class",
        type=positive_int,
        required=True,
        help="samples per class",
    )
    parser.add_argument(
        "--out", required=True, help="where to write the samples (FPCD: a directory; images: a file)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what --out holds (a directory as a whole), and discard an interrupted sampling "
        "into it that used other settings",
    )
    parser.add_argument(
        "--classes", type=class_list, help="comma-separated subset, e.g. g,t (default: the run's classes)"
    )
    parser.add_argument("--steps", type=positive_int, help="sampler steps (default: the run config's)")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="same seed -> same samples (default 0)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, help="samples per sampler call (default: FPCD 10000, images 500)"
    )
    fpcd = parser.add_argument_group("FPCD")
    fpcd.add_argument(
        "--buckets",
        dest="num_buckets",
        type=positive_int,
        help="multiplicity groups per batch (default 8); padded slots beyond each group's largest jet "
        "are skipped",
    )
    add_sampling_speed_arguments(fpcd)
    fpcd.add_argument(
        "--no-progress", dest="progress", action="store_false", default=None, help="no progress bar"
    )
    fpcd.add_argument(
        "--timing",
        dest="timing_path",
        help="timing file to append this run's record to (default OUT/timing.json; "
        "format: gsgm.generation.timing)",
    )
    fpcd.add_argument("--timing-label", help="label of the timing record (default: run, particles, device)")
    fpcd.add_argument(
        "--no-timing", dest="write_timing", action="store_false", default=None, help="no timing record"
    )
    images = parser.add_argument_group("jet images, calorimeter showers and DIS")
    images.add_argument(
        "--sampler",
        choices=("pc", "ode", "ddpm", "edm", "cm", "ancestral", "ddim", "dpm++2m"),
        help="image score runs: pc (default) or ode; calo runs: ddpm (100 steps), edm (25 Heun steps, "
        "default) or cm (the consistency-distilled stage, 1 step); DIS runs: ancestral (learned "
        "variance) or ddim; FPCD runs: ddim or dpm++2m (second order, same network evaluations; "
        "undistilled runs only) (default: the run config's)",
    )
    calo = parser.add_argument_group("calorimeter showers (--per-class = number of showers)")
    calo.add_argument(
        "--energy", type=positive_float, help="fixed incident energy [GeV] (default: uniform 10-90)"
    )


def run(args: argparse.Namespace) -> int:
    from gsgm.generation.registry import sample_run

    if args.per_class < 1:
        raise ValueError(f"--per-class must be positive, got {args.per_class}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be positive, got {args.steps}")
    options = {
        "classes": args.classes,
        "steps": args.steps,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "num_buckets": args.num_buckets,
        "precision": args.precision,
        "jit_compile": args.jit_compile,
        "progress": True if args.progress is None else args.progress,
        "timing_path": args.timing_path,
        "timing_label": args.timing_label,
        "write_timing": args.write_timing,
        "sampler": args.sampler,
        "energy": args.energy,
        # only when asked: a family plugin's sampler need not know the option
        "overwrite": True if args.overwrite else None,
    }
    result = sample_run(args.run, args.out, args.per_class, **options)
    print(result.summary())
    return 0
