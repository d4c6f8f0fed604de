"""``gsgm plot jets|images|training|timing``: the papers' figures from sample files and run directories."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gsgm.cli import Command
from gsgm.cli import evaluate_calo as _calo
from gsgm.cli import evaluate_dis as _dis
from gsgm.cli.phase_space import PLOT as PHASE_SPACE_PLOT
from gsgm.utils.cli import positive_int
from gsgm.utils.outputs import check_output_dir

HELP = "jets | images | training | timing | phase-space | calo: the papers' figures"

JETS = """Truth vs generated jets, per class: kinematics with ratio panels and average jet images.

Writes into --out, for every class C, as PNG and PDF:
    jets_C        jet pT, eta, mass, multiplicity (paper Fig. 3)
    particles_C   particle eta_rel, phi_rel, pt_rel of all real particles (paper Fig. 4)
    jet_image_C   average jet image in (eta_rel, phi_rel) weighted by pt_rel (paper Fig. 1)
Truth and generated particles are both recentred, as for `gsgm evaluate jets`; the truth shown is both
halves that the evaluation uses (up to 2 x --jets-per-class jets of --truth-split).

Example:
    gsgm plot jets --truth builtin --truth-split all --gen runs/quick/samples --label quick \\
        --out runs/quick/plots                                   (= python plots/plot_jets.py ...)
"""

IMAGES = """Jet images per class (truth and each model; jet-image paper Figs. 5-7), m/pT per class (Fig. 8).

Writes into --out: ``images_truth.png``, ``images_<name>.png`` for each ``--samples NAME=FILE`` and
``mass_over_pt.png``.

Example:
    gsgm plot images --data builtin --samples score=runs/img_score/samples.h5 \\
        --samples consistency=runs/img_ct/samples.h5 --out runs/img_plots   (= plots/plot_images.py)
"""

TRAINING = """Training curves of a run: losses per epoch (training and validation) and the learning rate.

Reads RUN/history.csv and writes OUT/training.png and OUT/training.pdf.

Example:
    gsgm plot training --run runs/quick --out runs/quick/plots        (= python plots/plot_training.py ...)
"""

TIMING = """Generation time per jet vs number of diffusion steps (FPCD paper Table V), from timing files.

A timing file is a JSON list of records (format: gsgm.generation.timing), e.g.
    [{"label": "quick, 30 particles, CPU", "steps": 64, "ms_per_jet": 3.0, "num_particles": 30,
      "batch_size": 10000, "device": "CPU (x86_64, 2 cores)", "date": "2026-11-24T10:00:00+00:00"}]
`gsgm sample` appends one per run to OUT/timing.json; benchmarks/bench_distillation.py speed --json FILE
writes the same. Several files are merged; records with the same label make one line (the fastest
record per step count is kept). Writes OUT/generation_time.png and OUT/generation_time.pdf.

Example:
    gsgm plot timing --results runs/quick/s64/timing.json runs/quick/s8/timing.json --out runs/quick/plots
"""


def _files_only() -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window


def add_jet_arguments(parser: argparse.ArgumentParser) -> None:
    from gsgm.cli.jet_sample_args import add_sample_arguments

    add_sample_arguments(parser, default_jets=50_000)
    parser.add_argument("--out", required=True, help="directory for the figures")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def run_jets(args: argparse.Namespace) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    _files_only()
    import numpy as np

    from gsgm.cli.jet_sample_args import load_comparison_from_args
    from gsgm.plotting import plot_jet_images, plot_jet_kinematics, plot_particle_kinematics, save_figure

    comparison = load_comparison_from_args(args)
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


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="builtin", help="directory of JetNet files, or 'builtin' (default)")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test", "all"))
    parser.add_argument(
        "--samples", action="append", default=[], metavar="NAME=FILE", help="repeat per model"
    )
    parser.add_argument(
        "--per-class", type=positive_int, default=2, help="images per class in the model figures"
    )
    parser.add_argument("--out", required=True, help="directory for the figures")


def run_images(args: argparse.Namespace) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    from gsgm.cli.evaluate import parse_named_files

    named = parse_named_files(args.samples)
    too_many = [name for name, files in named.items() if len(files) != 1]
    if too_many:
        raise ValueError(
            f"--samples must be NAME=FILE (one file per model) for plots, got several for {too_many}"
        )
    _files_only()
    from gsgm.data.images import load_jet_images
    from gsgm.data.jetnet_format import JET_CLASSES
    from gsgm.generation.image_files import read_images_file
    from gsgm.plotting.images import plot_class_images, plot_mass_histograms

    samples = {}
    num_particles, max_r = 30, 0.4
    for name, (path,) in named.items():
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


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run directory written by gsgm train")
    parser.add_argument("--out", required=True, help="directory for the figures")


def run_training(args: argparse.Namespace) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    _files_only()
    from gsgm.generation.runs import read_training_history
    from gsgm.plotting import plot_training_history, save_figure

    figure = plot_training_history(read_training_history(args.run), title=str(Path(args.run)))
    paths = save_figure(figure, args.out, "training")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, nargs="+", metavar="FILE", help="timing file(s) to merge")
    parser.add_argument("--out", required=True, help="directory for the figures")


def run_timing(args: argparse.Namespace) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    _files_only()
    from gsgm.plotting import load_timing_results, plot_generation_time, save_figure

    figure = plot_generation_time(load_timing_results(*args.results))
    paths = save_figure(figure, args.out, "generation_time")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


SUBCOMMANDS = {
    "jets": Command(
        "figures: truth vs generated jets (FPCD Figs. 1, 3, 4)", JETS, add_jet_arguments, run_jets
    ),
    "images": Command(
        "figures: jet images and m/pT (jet-image Figs. 5-8)", IMAGES, add_image_arguments, run_images
    ),
    "training": Command("figures: training curves of a run", TRAINING, add_training_arguments, run_training),
    "timing": Command(
        "figures: generation time vs steps (FPCD Table V)", TIMING, add_timing_arguments, run_timing
    ),
    "dis": _dis.PLOT_COMMAND,
    "phase-space": PHASE_SPACE_PLOT,
    "calo": _calo.SUBCOMMANDS["plot"],
}
