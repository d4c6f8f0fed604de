"""``gsgm evaluate calo`` and ``gsgm plot calo``: generated calorimeter showers against GFlash truth."""

from __future__ import annotations

import argparse
import json
import sys

from gsgm.cli import Command
from gsgm.utils.cli import non_negative_int, positive_float, positive_int
from gsgm.utils.outputs import check_output_dir

EVALUATE_DESCRIPTION = """Compare generated showers with truth: the W1 table of CaloClouds II (seminar
Table 1)
over N_hits, E_vis/E_inc, E_cell, E_long, E_radial and the centres of gravity m1 x/y/z, mean and std
over --resamples bootstrap resamples, with a truth-vs-truth row as the floor, and a timing table (time
per shower of each sample as recorded by gsgm sample, beside the generator's own time per shower).

Truth: a shower file, or "gflash" (default): --showers GFlash showers generated now with --truth-seed
(energies uniform 10-90 GeV); the floor is a second such sample (--truth-seed + 1) or --reference FILE.
Writes OUT/calo_metrics.json and OUT/calo_metrics.md and prints the Markdown.

Example:
    gsgm evaluate calo --gen EDM=runs/calo/edm.h5 --gen DDPM=runs/calo/ddpm.h5 \\
        --gen CM=runs/calo/cm.h5 --showers 2000 --out runs/calo/evaluation
"""

PLOT_DESCRIPTION = """Figures of generated showers against truth, with ratio panels: cell energy, radial and
longitudinal profiles (seminar Fig. 7), E_vis/E_inc and N_hits (Fig. 8) for the full spectrum and for
showers within +-WINDOW GeV of 10, 50 and 90 GeV, and the centres of gravity. Truth as for evaluate calo.

Example:
    gsgm plot calo --gen EDM=runs/calo/edm.h5 --gen CM=runs/calo/cm.h5 --out runs/calo/plots
"""


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gen", action="append", required=True, metavar="LABEL=FILE",
                        help="a generated shower file (gsgm sample); repeat per model")  # fmt: skip
    parser.add_argument("--truth", default="gflash", help="truth shower file, or 'gflash' (default)")
    parser.add_argument(
        "--showers", type=positive_int, default=2000, help="GFlash truth showers (default 2000)"
    )
    parser.add_argument(
        "--truth-seed", type=non_negative_int, default=1001, help="seed of the GFlash truth (default 1001)"
    )
    parser.add_argument("--out", required=True, help="output directory")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--reference", help="second truth file for the floor (default: GFlash, seed + 1)")
    parser.add_argument("--resamples", type=positive_int, default=10, help="bootstrap resamples (default 10)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the resampling")


def add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "--window", type=positive_float, default=5.0, help="half width [GeV] around 10/50/90 GeV"
    )


def _parse_gen(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"--gen must be LABEL=FILE, got {item!r}")
        if label in out:
            raise ValueError(f"--gen label {label!r} given twice")
        out[label] = path
    return out


def _truth(spec: str, showers: int, seed: int):
    from gsgm.data.calo_format import read_point_cloud_file

    if spec != "gflash":
        return read_point_cloud_file(spec)
    if showers < 2:
        raise ValueError(f"--showers must be >= 2, got {showers}")
    from gsgm.data.calo_generation import generate_showers

    return generate_showers(showers, seed, progress=False)


def _generated(items: list[str]):
    import h5py

    from gsgm.generation.sample_sets import read_calo_samples

    samples, attrs = {}, {}
    for label, path in _parse_gen(items).items():
        samples[label] = read_calo_samples(path)  # checked against its manifest
        with h5py.File(path, "r") as handle:
            attrs[label] = {k: handle.attrs[k].item() if hasattr(handle.attrs[k], "item") else handle.attrs[k]
                            for k in ("seconds", "steps", "sampler") if k in handle.attrs}  # fmt: skip
        attrs[label]["num"] = len(samples[label])
    return samples, attrs


def run_evaluate(args: argparse.Namespace) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    from pathlib import Path

    from gsgm.data.calo_format import read_point_cloud_file
    from gsgm.data.calo_generation import time_generator
    from gsgm.evaluation.calo import (
        format_timing_markdown,
        format_w1_markdown,
        observables,
        timing_rows,
        w1_table,
    )
    from gsgm.utils.atomic import write_json_atomic, write_text_atomic

    generated, attrs = _generated(args.gen)
    truth = observables(_truth(args.truth, args.showers, args.truth_seed))
    if args.reference:
        reference = read_point_cloud_file(args.reference)
    else:
        reference = _truth("gflash", len(truth), args.truth_seed + 1)
    others = {"GFlash (truth vs truth)": observables(reference)}
    others.update({label: observables(sample) for label, sample in generated.items()})
    table = w1_table(truth, others, resamples=args.resamples, seed=args.seed)
    timed = {label: a for label, a in attrs.items() if "seconds" in a}
    timing = timing_rows(timed, time_generator(200))
    markdown = "## W1 (standardised observables)\n\n" + format_w1_markdown(table)
    markdown += "\n## Time per shower\n\n" + format_timing_markdown(timing)
    out = Path(args.out)
    summary = {"w1_x1e3": table, "timing": timing, "truth": args.truth, "truth_showers": len(truth),
               "resamples": args.resamples}  # fmt: skip
    write_json_atomic(out / "calo_metrics.json", summary)
    write_text_atomic(out / "calo_metrics.md", markdown)
    print(markdown)
    print(f"wrote {out / 'calo_metrics.json'} and {out / 'calo_metrics.md'}", file=sys.stderr)
    return 0


def run_plot(args: argparse.Namespace) -> int:
    check_output_dir(args.out, option="--out")  # before any work: no compute lost to a bad path
    from gsgm.evaluation.calo import observables, plot_arrays
    from gsgm.plotting.calo import plot_calo_panels
    from gsgm.plotting.style import save_figure

    generated, _ = _generated(args.gen)
    truth = observables(_truth(args.truth, args.showers, args.truth_seed))
    gens = {label: observables(s) for label, s in generated.items()}
    written = []
    views = [("full", "10-90 GeV", lambda o: o)]
    views += [
        (f"{e}gev", f"{e} GeV (+-{args.window:g})", lambda o, e=e: o.in_window(e, args.window))
        for e in (10, 50, 90)
    ]
    for stem, title, view in views:
        t = view(truth)
        g = {label: view(o) for label, o in gens.items()}
        if len(t) < 2 or any(len(o) < 2 for o in g.values()):
            print(f"note: fewer than 2 showers at {title}; no figure", file=sys.stderr)
            continue
        panels = [("cells", ("e_cell", "e_radial", "e_long")), ("showers", ("e_ratio", "n_hits"))]
        if stem == "full":
            panels.append(("cog", ("m1_x", "m1_y", "m1_z")))
        for name, keys in panels:
            figure = plot_calo_panels(plot_arrays(t), {k: plot_arrays(v) for k, v in g.items()}, keys, title)
            written += save_figure(figure, args.out, f"calo_{name}_{stem}", formats=("png",))
    print(json.dumps({"figures": [str(p) for p in written]}))
    return 0


SUBCOMMANDS = {
    "evaluate": Command("W1 table and timing of generated calorimeter showers", EVALUATE_DESCRIPTION,
                        add_evaluate_arguments, run_evaluate),
    "plot": Command("figures: generated vs truth calorimeter showers", PLOT_DESCRIPTION,
                    add_plot_arguments, run_plot),
}  # fmt: skip
