#!/usr/bin/env python
"""Truth vs generated jets, per class: kinematics with ratio panels and average jet images.

Writes into --out, for every class C, as PNG and PDF:
    jets_C        jet pT, eta, mass, multiplicity (paper Fig. 3)
    particles_C   particle eta_rel, phi_rel, pt_rel of all real particles (paper Fig. 4)
    jet_image_C   average jet image in (eta_rel, phi_rel) weighted by pt_rel (paper Fig. 1)

Truth and generated particles are both recentred, as for scripts/evaluate.py; the truth shown is both
halves that evaluate.py uses (up to 2 x --jets-per-class jets of --truth-split).

Example:
    python plots/plot_jets.py --truth builtin --truth-split all --gen runs/quick/samples --label quick \\
        --out runs/quick/plots
"""

from __future__ import annotations

import argparse
import sys

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

from gsgm.utils.cli import run_cli  # noqa: E402


def parse_args() -> argparse.Namespace:
    from gsgm.evaluation.cli import add_sample_arguments

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_sample_arguments(parser, default_jets=50_000)
    parser.add_argument("--out", required=True, help="directory for the figures")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    import numpy as np

    from gsgm.evaluation.cli import gen_dirs_from_args
    from gsgm.evaluation.samples import load_comparison
    from gsgm.plotting import plot_jet_images, plot_jet_kinematics, plot_particle_kinematics, save_figure

    comparison = load_comparison(
        args.truth,
        gen_dirs_from_args(args),
        classes=args.classes,
        num_particles=args.particles,
        jets_per_class=args.jets_per_class,
        truth_split=args.truth_split,
        seed=args.seed,
    )
    written = []
    for jet_class, samples in comparison.classes.items():
        # Plots have no floor: show all truth jets loaded (halves A and B) for smaller error bars.
        truth_particles = np.concatenate([samples.truth.particles, samples.truth_floor.particles])
        truth_jets = np.concatenate([samples.truth.jets, samples.truth_floor.jets])
        gen_particles = {label: gen.particles for label, gen in samples.generated.items()}
        gen_jets = {label: gen.jets for label, gen in samples.generated.items()}
        figures = {
            f"jets_{jet_class}": plot_jet_kinematics(truth_jets, gen_jets, jet_class),
            f"particles_{jet_class}": plot_particle_kinematics(truth_particles, gen_particles, jet_class),
            f"jet_image_{jet_class}": plot_jet_images(truth_particles, gen_particles, jet_class),
        }
        for stem, figure in figures.items():
            written += save_figure(figure, args.out, stem)
    if not args.quiet:
        for note in comparison.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"wrote {len(written)} files to {args.out} ({', '.join(comparison.classes)})")
    return 0


if __name__ == "__main__":
    run_cli(main)
