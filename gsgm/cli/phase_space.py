"""``gsgm evaluate phase-space``, ``gsgm plot phase-space`` and ``gsgm make-phase-space``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

from gsgm.cli import Command
from gsgm.utils.cli import finite_float, non_negative_int, positive_int
from gsgm.utils.outputs import check_output_dir, check_output_file

__all__ = ["EVALUATE", "HELP", "PLOT", "DESCRIPTION", "add_arguments", "run"]

# --- gsgm make-phase-space ----------------------------------------------------------------------------
HELP = "generate phase-space events (muon decay, e+e- -> q qbar g, N = 10 antenna) into an event file"
DESCRIPTION = """Generate phase-space events into one HDF5 event file (``events`` [n, N, 4]).

muon_decay: eq. 15 by rejection on RAMBO events; qqg: eq. 17 with the cut s_ij > --y-min for all
pairs; antenna: eq. 21 for N = 10 with the cut max s_ij <= --xi-max min s_ij, exact (SARGE and
rejection, about 300 events/s); q qbar g and antenna particles randomly permuted. Same seed, same
events. Prints one JSON summary on stdout.

Examples (the shipped sample, gsgm/data/builtin/phase_space):
    gsgm make-phase-space --process muon_decay --events 2000 --seed 20261201 \\
        --out gsgm/data/builtin/phase_space/muon_decay.hdf5
    gsgm make-phase-space --process qqg --y-min 0.01 --events 2000 --seed 20261202 \\
        --out gsgm/data/builtin/phase_space/qqg.hdf5
    gsgm make-phase-space --process antenna --xi-max 1000 --events 1000 --seed 20261203 \\
        --out gsgm/data/builtin/phase_space/antenna.hdf5
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--process", required=True, choices=("muon_decay", "qqg", "antenna"))
    parser.add_argument("--events", type=positive_int, required=True, help="number of events")
    parser.add_argument("--seed", type=non_negative_int, required=True, help="seed (>= 0)")
    parser.add_argument(
        "--y-min", type=finite_float, default=0.01, help="qqg: cut on every s_ij (default 0.01)"
    )
    parser.add_argument(
        "--xi-max",
        type=finite_float,
        default=1000.0,
        help="antenna: cut max s_ij <= XI min s_ij (default 1000)",
    )
    parser.add_argument("--out", required=True, help="event file to write (HDF5)")


def run(args: argparse.Namespace) -> int:
    check_output_file(args.out, option="--out")  # before any work: no compute lost to a bad path
    from gsgm.data.phase_space_files import write_events
    from gsgm.data.phase_space_processes import generate_events

    if args.events < 1:
        raise ValueError(f"--events must be >= 1, got {args.events}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    start = time.perf_counter()
    events = generate_events(args.process, args.events, args.seed, args.y_min, args.xi_max)
    seconds = time.perf_counter() - start
    attrs = {
        "process": args.process,
        "seed": args.seed,
        "y_min": args.y_min if args.process == "qqg" else 0.0,
        **({"xi_max": args.xi_max} if args.process == "antenna" else {}),
        # under `gsgm`, argv[1] is the subcommand itself
        "command": " ".join(
            [
                "gsgm" if sys.argv[1:2] == ["make-phase-space"] else "gsgm make-phase-space",
                shlex.join(sys.argv[1:]),
            ]
        ),  # fmt: skip
        "date": time.strftime("%Y-%m-%d"),
    }
    path = write_events(args.out, events, attrs)
    print(json.dumps({"file": str(path), "events": args.events, "seconds": round(seconds, 3)}))
    return 0


# --- gsgm evaluate / plot phase-space -----------------------------------------------------------------
EVALUATE_DESCRIPTION = """Compare generated phase-space events with truth (phase-space paper, section III).

Writes OUT/metrics.json and OUT/metrics.md: W1 of the Dalitz log-density, energies, Rosenblatt
variables (eq. 16), y (eq. 18) and angles for every --gen file and for a disjoint truth sample (the
floor), and the conservation-violation table. The truth file is halved: one half is the reference.
For antenna (N = 10) truth files: W1 of the pooled energies, hardest and softest energy, log10 y,
log10 s_ij, log10 max s / min s and the angles, and the fraction outside the truth's cut (section IV).

Example:
    gsgm evaluate phase-space --truth runs/muon_truth.hdf5 --gen runs/ps_muon/samples.hdf5 \\
        --label q-diffusion --out runs/ps_muon/evaluation
"""

PLOT_DESCRIPTION = """Figures of phase-space samples: Dalitz plots (truth, models, uniform), energy marginals
with analytic curves, angles, Dalitz log-density, Rosenblatt variables, y against eqs. 19-20, and the
conservation violation (PNG and PDF in OUT). Antenna (N = 10) files: energies, y against eq. 24,
pair invariants and the cut variable, angles, conservation.

Example:
    gsgm plot phase-space --truth runs/muon_truth.hdf5 --gen runs/ps_muon/samples.hdf5 \\
        --label q-diffusion --out runs/ps_muon/plots
"""


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--truth", required=True, help="truth event file, or builtin:PROCESS")
    parser.add_argument("--gen", action="append", default=[], help="generated event file (repeatable)")
    parser.add_argument("--label", action="append", default=[], help="label of each --gen file")
    parser.add_argument("--max-events", type=positive_int, help="cap on the events per sample")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the truth split (default 0)"
    )
    parser.add_argument("--out", required=True, help="output directory")


def _load(args: argparse.Namespace):
    from gsgm.data.phase_space_files import read_events, resolve_events_path
    from gsgm.generation.sample_sets import MANIFEST_ATTRIBUTE, verify_sample_file

    spec = args.truth
    path = resolve_events_path("builtin", spec.split(":", 1)[1]) if spec.startswith("builtin:") else spec
    truth, attrs = read_events(path)
    if args.label and len(args.label) != len(args.gen):
        raise ValueError(f"give one --label per --gen file ({len(args.gen)} files, {len(args.label)} labels)")
    labels = args.label or [f"model {i + 1}" for i in range(len(args.gen))]
    if len(set(labels)) != len(labels):
        raise ValueError(f"--label values must differ, got {labels}")
    process = attrs.get("process")
    if process not in ("muon_decay", "qqg", "antenna"):
        raise ValueError(f"{path}: attribute 'process' must be muon_decay, qqg or antenna, got {process!r}")
    y_min = float(attrs.get("y_min", 0.0))
    if process == "antenna" and "xi_max" not in attrs:
        raise ValueError(f"{path}: antenna events need the attribute 'xi_max' (their cut)")
    args.xi_max = float(attrs.get("xi_max", 0.0))
    models = {}
    for label, file in zip(labels, args.gen, strict=True):
        events, gen_attrs = read_events(file)
        verify_sample_file(file, [events], gen_attrs.get(MANIFEST_ATTRIBUTE))  # a changed file is refused
        if gen_attrs.get("process", process) != process:
            raise ValueError(f"{file} holds {gen_attrs['process']} events, the truth {process}")
        if events.shape[1] != truth.shape[1]:
            raise ValueError(f"{file}: {events.shape[1]} particles per event, the truth has {truth.shape[1]}")
        models[label] = events
    return truth, models, process, y_min


def run_evaluate(args: argparse.Namespace) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    from gsgm.evaluation.phase_space import evaluate_phase_space, format_markdown, write_report

    truth, models, process, y_min = _load(args)
    report = evaluate_phase_space(
        truth, models, process, y_min=y_min, xi_max=args.xi_max, max_events=args.max_events, seed=args.seed
    )
    json_path, md_path = write_report(report, args.out)
    print(format_markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    import matplotlib

    matplotlib.use("Agg")  # files only
    import numpy as np

    from gsgm.data.rambo import rambo
    from gsgm.plotting.phase_space import plot_phase_space
    from gsgm.plotting.style import save_figure

    truth, models, process, y_min = _load(args)
    cap = args.max_events or len(truth)
    models = {k: v[:cap] for k, v in models.items()}
    uniform = rambo(np.random.default_rng(args.seed), min(cap, len(truth)), truth.shape[1])
    if process == "antenna":
        from gsgm.plotting.phase_space_antenna import plot_antenna

        figures = plot_antenna(truth[:cap], models, xi_max=args.xi_max, uniform=uniform)
        paths = [p for name, fig in figures.items() for p in save_figure(fig, args.out, name)]
        print(f"wrote {len(paths)} files to {args.out}: {', '.join(figures)}")
        return 0
    if process == "qqg":  # uniform phase space with the same cut, for the reference curves
        from gsgm.data.phase_space_analytic import min_invariant

        uniform = uniform[min_invariant(uniform) > y_min]
    figures = plot_phase_space(truth[:cap], models, process, y_min=y_min, uniform=uniform)
    paths = [p for name, fig in figures.items() for p in save_figure(fig, args.out, name)]
    print(f"wrote {len(paths)} files to {args.out}: {', '.join(figures)}")
    return 0


EVALUATE = Command(
    "metrics of generated phase-space events vs truth (W1 table, conservation)",
    EVALUATE_DESCRIPTION,
    add_common_arguments,
    run_evaluate,
)
PLOT = Command(
    "figures: Dalitz plots, energies, angles, y vs eq. 19 (phase-space paper)",
    PLOT_DESCRIPTION,
    add_common_arguments,
    run_plot,
)
