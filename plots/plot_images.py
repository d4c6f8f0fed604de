#!/usr/bin/env python
"""Plot jet images per class (truth and each model; paper Figs. 5-7) and m/pT per class (Fig. 8).

Writes into --out: ``images_truth.png``, ``images_<name>.png`` for each ``--samples NAME=FILE`` and
``mass_over_pt.png``.

Example:
    python plots/plot_images.py --data builtin --samples score=runs/img_score/samples.h5 \\
        --samples consistency=runs/img_ct/samples.h5 --out runs/img_plots
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gsgm.utils.cli import quiet_tensorflow, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="builtin", help="directory of JetNet files, or 'builtin' (default)")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test", "all"))
    parser.add_argument(
        "--samples", action="append", default=[], metavar="NAME=FILE", help="repeat per model"
    )
    parser.add_argument("--per-class", type=int, default=2, help="images per class in the model figures")
    parser.add_argument("--out", required=True, help="directory for the figures")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    samples_files = {}
    for item in args.samples:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--samples must be NAME=FILE, got {item!r}")
        samples_files[name] = path
    quiet_tensorflow()
    from gsgm.data.images import load_jet_images
    from gsgm.data.jetnet_format import JET_CLASSES
    from gsgm.generation.image_files import read_images_file
    from gsgm.plotting.images import plot_class_images, plot_mass_histograms

    samples = {}
    num_particles, max_r = 30, 0.4
    for name, path in samples_files.items():
        images, labels, attributes = read_images_file(path)
        samples[name] = (images, labels)
        num_particles = int(attributes.get("num_particles", num_particles))
        max_r = float(attributes.get("max_r", max_r))
    present = sorted({int(c) for _, labels in samples.values() for c in set(labels.tolist())}) or range(5)
    classes = [JET_CLASSES[i] for i in present]
    truth = load_jet_images(args.data, classes, num_particles, args.split, max_r=max_r)
    out = Path(args.out)
    written = [out / "images_truth.png"]
    plot_class_images(*truth, written[-1], per_class=1, title="truth", max_r=max_r)
    for name, (images, labels) in samples.items():
        written.append(out / f"images_{name}.png")
        plot_class_images(images, labels, written[-1], per_class=args.per_class, title=name, max_r=max_r)
    written.append(out / "mass_over_pt.png")
    plot_mass_histograms(truth, samples, written[-1], max_r=max_r)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    run_cli(main)
