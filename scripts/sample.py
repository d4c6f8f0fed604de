#!/usr/bin/env python
"""Sample jets from a trained FPCD run and write them as JetNet-format files (same names as the data).

Example:
    python scripts/sample.py --run runs/quick --jets-per-class 1000 --steps 64 --out runs/quick/samples
"""

from __future__ import annotations

import argparse
import time

from gsgm.utils.cli import quiet_tensorflow, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="run directory written by scripts/train.py")
    parser.add_argument("--jets-per-class", type=int, required=True)
    parser.add_argument("--classes", help="comma-separated subset, e.g. g,t (default: the run's classes)")
    parser.add_argument("--steps", type=int, help="DDIM steps (default: the config's sampling.num_steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--buckets",
        type=int,
        default=8,
        help="multiplicity groups per batch; padded slots beyond each group's largest jet are skipped",
    )
    parser.add_argument("--out", required=True, help="directory for the generated files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.jets_per_class < 1:
        raise ValueError(f"--jets-per-class must be positive, got {args.jets_per_class}")
    quiet_tensorflow()
    from gsgm.data.jetnet_format import class_file_name, parse_classes, write_jetnet_file
    from gsgm.training.distill import resolve_run_for_steps
    from gsgm.training.sampling import generate_jets
    from gsgm.training.trainer import load_trained_model
    from gsgm.utils.provenance import package_versions

    run = resolve_run_for_steps(args.run, args.steps)
    model, preprocessor, cfg = load_trained_model(run)
    classes = parse_classes(args.classes) if args.classes else list(cfg.data.classes)
    steps = args.steps or cfg.sampling.num_steps
    if steps < 1:
        raise ValueError(f"--steps must be positive, got {steps}")
    started = time.perf_counter()
    generated = generate_jets(
        model,
        preprocessor,
        cfg,
        args.jets_per_class,
        classes,
        steps,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        num_buckets=args.buckets,
    )
    seconds = time.perf_counter() - started
    attributes = {
        "generator": "gsgm FPCD",
        "run": str(run),
        "steps": steps,
        "seed": args.seed,
        "versions": str(package_versions()),
    }
    for jet_class, (particle_features, jet_features) in generated.items():
        path = f"{args.out}/{class_file_name(jet_class, cfg.data.num_particles)}"
        write_jetnet_file(path, particle_features, jet_features, attributes)
    total = args.jets_per_class * len(classes)
    print(
        f"wrote {total} jets ({', '.join(classes)}) with {steps} steps to {args.out} "
        f"in {seconds:.1f} s ({1e3 * seconds / total:.2f} ms/jet)"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
