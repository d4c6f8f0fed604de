#!/usr/bin/env python
"""Sample jet images from a trained score or consistency run and write them to one HDF5 file.

The file holds ``images`` [M, 25, 25] (pt_rel, post-processed: pixels <= the run's pixel threshold
set to 0), ``labels`` [M] (index into g, q, t, w, z) and the provenance as attributes.

Examples:
    python scripts/sample_images.py --run runs/img_score --images-per-class 300 --steps 15 \\
        --out runs/img_score/samples.h5
    python scripts/sample_images.py --run runs/img_ct --images-per-class 300 --steps 1 \\
        --out runs/img_ct/samples.h5
"""

from __future__ import annotations

import argparse

from gsgm.utils.cli import quiet_tensorflow, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="run directory written by scripts/train_images.py")
    parser.add_argument("--images-per-class", type=int, required=True)
    parser.add_argument("--steps", type=int, help="sampling steps (default: the config's num_steps)")
    parser.add_argument(
        "--sampler", choices=("pc", "ode"), help="score runs: PC (default) or probability-flow ODE"
    )
    parser.add_argument("--classes", help="comma-separated subset, e.g. g,t (default: the run's classes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--out", required=True, help="HDF5 file to write")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.images_per_class < 1:
        raise ValueError(f"--images-per-class must be positive, got {args.images_per_class}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be positive, got {args.steps}")
    quiet_tensorflow()
    from gsgm.generation.runs import sample_images_to_file

    result = sample_images_to_file(
        args.run,
        args.out,
        args.images_per_class,
        classes=args.classes,
        steps=args.steps,
        sampler=args.sampler,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    print(
        f"wrote {result.num_images} images ({', '.join(result.classes)}; {result.model}, {result.sampler}, "
        f"{result.steps} steps) to {args.out} in {result.seconds:.1f} s "
        f"({1e3 * result.seconds / result.num_images:.2f} ms/image, including tracing)"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
