#!/usr/bin/env python
"""What progressive distillation buys: sampling time per jet vs steps, and fidelity vs steps.

``speed``: time per generated jet (jet stage + particle stage, DDIM) at 512 / 64 / 8 / 1 steps with the
released network sizes, untrained (the time does not depend on the weights), 30 and 150 particles. The
multiplicities of the particle stage are drawn from the shipped Pythia sample, so padding is realistic,
and the sampler groups jets by multiplicity as ``generate_jets`` does. Step counts up to
``--max-measured`` are timed; larger ones are extrapolated linearly from the per-step cost between the
two largest measured counts (sampling is one jet-net and one particle-net call per step) and are marked
as such. The speed-up 512 -> 1 is the ratio within the same run.

``fidelity``: a trained run and its distillation chain (``scripts/distill.py``) sampled at several step
counts; each count uses the run that ``scripts/sample.py --steps`` would pick (the undistilled run for
its own steps, the stage otherwise). For contrast the undistilled run is also sampled with the few
steps the students use. Compared with the truth (the data's test split): per class, mean and standard
deviation of the jet mass (jet network output) and 1-Wasserstein distances of the jet mass [GeV] and
of the relative jet mass computed from the particles (the quantity of W1^PM), next to the
truth-vs-truth floor (validation split vs test split, same sizes).

``speed --json FILE`` appends one timing record per particle count and step count to FILE in the
format of ``gsgm.generation.timing`` (``measured: false`` for extrapolated counts), the format
``scripts/sample.py`` writes and ``plots/plot_timing.py`` draws. ``fidelity --json`` writes its own
summary (fidelity is not a timing).

    python benchmarks/bench_distillation.py speed --batch 1000 --json speed.json
    python benchmarks/bench_distillation.py fidelity --run runs/quick --steps 64,8,1 --jets-per-class 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sampling_timing import realistic_inputs, sampling_seconds  # noqa: E402

from gsgm.config import load_config  # noqa: E402
from gsgm.data.jetnet_format import JET_CLASSES  # noqa: E402
from gsgm.data.loading import load_jets, resolve_data_dir  # noqa: E402
from gsgm.families.fpcd import build_model  # noqa: E402


def machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "devices": [d.device_type for d in tf.config.list_physical_devices()],
        "load_average": load,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "tensorflow": tf.__version__,
    }


# speed ------------------------------------------------------------------------------------------------


def speed(args) -> dict:
    steps = sorted({int(s) for s in args.steps.split(",")})
    measured = [s for s in steps if s <= args.max_measured]
    if len(measured) < 2 or 1 not in measured:
        raise SystemExit(
            "--steps must include 1 and another count <= --max-measured (to get a per-step cost)"
        )
    results = {
        "benchmark": "distillation speed",
        "config": args.config,
        "batch": args.batch,
        "buckets": args.buckets,
        **machine(),
    }
    results["rows"] = []
    for num_particles in (int(p) for p in args.particles.split(",")):
        cfg = load_config(args.config)
        cfg.data.num_particles = num_particles
        model = build_model(cfg, num_particles, seed=0)
        mask, onehot = realistic_inputs(num_particles, args.batch)
        # Trace: the first calls compile the sampler loop for each bucket shape (and relax the grid length).
        for warm in (1, 2):
            sampling_seconds(model, mask, onehot, warm, 1, args.buckets)
        # Rounds interleave the step counts and the minimum per count is kept: on a shared machine the
        # load drifts, and timing one count after the other would put the drift into the ratios.
        seconds = {s: float("inf") for s in measured}
        for _ in range(args.repeats):
            for s in measured:
                seconds[s] = min(seconds[s], sampling_seconds(model, mask, onehot, s, 1, args.buckets))
        top, below = measured[-1], measured[-2]
        per_step = (seconds[top] - seconds[below]) / (top - below)
        row = {"particles": num_particles, "per_step_ms_per_jet": 1e3 * per_step / args.batch, "steps": {}}
        for s in steps:
            value = seconds[s] if s in seconds else seconds[top] + (s - top) * per_step
            row["steps"][str(s)] = {
                "ms_per_jet": 1e3 * value / args.batch,
                "us_per_jet": 1e6 * value / args.batch,
                "measured": s in seconds,
            }
        first, last = str(steps[-1]), str(steps[0])
        row[f"speedup_{first}_to_{last}"] = (
            row["steps"][first]["ms_per_jet"] / row["steps"][last]["ms_per_jet"]
        )
        results["rows"].append(row)
        print(json.dumps(row, indent=1), flush=True)
    return results


def speed_timing_records(results: dict) -> list[dict]:
    """The speed results as timing records (gsgm.generation.timing), one per particle count and steps."""
    from gsgm.generation.timing import describe_device, timing_record

    device = describe_device()
    records = []
    for row in results["rows"]:
        label = f"FPCD {row['particles']} particles, untrained {Path(results['config']).stem}, {device}"
        for steps, point in row["steps"].items():
            records.append(
                timing_record(
                    label,
                    int(steps),
                    point["ms_per_jet"] * results["batch"] / 1e3,
                    results["batch"],
                    row["particles"],
                    results["batch"],
                    device=device,
                    date=results["date"],
                    measured=point["measured"],
                    source="benchmarks/bench_distillation.py speed",
                    config=results["config"],
                    buckets=results["buckets"],
                )
            )
    return records


# fidelity ---------------------------------------------------------------------------------------------


def relative_mass(particles: np.ndarray) -> np.ndarray:
    """Invariant mass of the (massless) constituents over the jet pT, [N]; particles [N, P, 4] JetNet
    layout (eta_rel, phi_rel, pt_rel, mask). This is the relative jet mass behind W1^PM."""
    eta, phi, pt = particles[..., 0], particles[..., 1], particles[..., 2] * (particles[..., 3] > 0)
    px, py = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)
    pz, energy = (pt * np.sinh(eta)).sum(1), (pt * np.cosh(eta)).sum(1)
    return np.sqrt(np.maximum(energy**2 - px**2 - py**2 - pz**2, 0.0))


def compare(generated: tuple[np.ndarray, np.ndarray], truth: tuple[np.ndarray, np.ndarray]) -> dict:
    from scipy.stats import wasserstein_distance

    (gen_particles, gen_jets), (true_particles, true_jets) = generated, truth
    return {
        "mass_mean": float(gen_jets[:, 2].mean()),
        "mass_std": float(gen_jets[:, 2].std()),
        "w1_mass_gev": float(wasserstein_distance(gen_jets[:, 2], true_jets[:, 2])),
        "w1_rel_mass_x1e3": 1e3
        * float(wasserstein_distance(relative_mass(gen_particles), relative_mass(true_particles))),
    }


def fidelity(args) -> dict:
    from gsgm.families.fpcd import load_trained_model
    from gsgm.generation.jets import generate_jets
    from gsgm.training.distill import resolve_run_for_steps

    run = Path(args.run)
    cfg = load_config(run / "config.json")
    classes = list(cfg.data.classes)
    num_particles = cfg.data.num_particles
    metadata = json.loads((run / "metadata.json").read_text())
    data_dir = resolve_data_dir(metadata.get("data_source", "builtin"))

    def split(name):
        sample = load_jets(data_dir, classes, num_particles, split=name)
        return {
            c: (
                sample.particles[sample.labels == JET_CLASSES.index(c)],
                sample.jets[sample.labels == JET_CLASSES.index(c)],
            )
            for c in classes
        }

    test, valid = split("test"), split("valid")
    results = {"benchmark": "distillation fidelity", "run": str(run), "jets_per_class": args.jets_per_class}
    results.update(machine())
    results["truth"] = {
        c: {
            "count": len(test[c][1]),
            "mass_mean": float(test[c][1][:, 2].mean()),
            "mass_std": float(test[c][1][:, 2].std()),
        }
        for c in classes
    }
    results["floor"] = {}
    for c in classes:
        n = min(len(valid[c][1]), len(test[c][1]))
        results["floor"][c] = compare((valid[c][0][:n], valid[c][1][:n]), (test[c][0][:n], test[c][1][:n]))

    steps = [int(s) for s in args.steps.split(",")]
    start = max(steps)
    variants = [(s, resolve_run_for_steps(run, s)) for s in steps]
    variants += [(s, run) for s in steps if s != start and args.undistilled]  # plain DDIM with few steps
    results["rows"] = []
    for num_steps, source in variants:
        model, preprocessor, run_cfg = load_trained_model(source)
        started = time.perf_counter()
        generated = generate_jets(
            model, preprocessor, run_cfg, args.jets_per_class, classes, num_steps, seed=args.seed
        )
        seconds = time.perf_counter() - started
        label = "undistilled" if source == run else "distilled"
        if num_steps == start and source == run:
            label = "base"
        row = {"steps": num_steps, "model": label, "source": str(source), "seconds": seconds, "classes": {}}
        for c in classes:
            row["classes"][c] = compare(generated[c], test[c])
        if args.out:
            from gsgm.data.jetnet_format import class_file_name, write_jetnet_file

            for c, (particles, jets) in generated.items():
                write_jetnet_file(
                    Path(args.out) / f"{label}-{num_steps}" / class_file_name(c, num_particles),
                    particles,
                    jets,
                )
        results["rows"].append(row)
        print(json.dumps(row, indent=1), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("speed", help="sampling time per jet vs steps (untrained released sizes)")
    p.add_argument("--config", default="configs/fpcd_released.json")
    p.add_argument("--particles", default="30,150")
    p.add_argument("--batch", type=int, default=1000, help="jets per sampling batch")
    p.add_argument("--steps", default="1,8,64,512")
    p.add_argument("--max-measured", type=int, default=64, help="larger step counts are extrapolated")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--buckets", type=int, default=8, help="multiplicity groups, as generate_jets")
    p.add_argument("--json", help="append timing records (gsgm.generation.timing format) here")
    f = commands.add_parser("fidelity", help="jet mass vs truth for a run and its distillation stages")
    f.add_argument("--run", required=True)
    f.add_argument("--steps", default="64,8,1", help="the first (largest) is the undistilled reference")
    f.add_argument("--jets-per-class", type=int, default=1000)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument(
        "--no-undistilled", dest="undistilled", action="store_false", help="skip plain few-step DDIM"
    )
    f.add_argument("--out", help="also write the generated jets here (JetNet files, one folder per variant)")
    f.add_argument("--json", help="write results here")
    args = parser.parse_args()
    if args.command == "speed":
        results = speed(args)
        if args.json:
            from gsgm.generation.timing import append_timing_records

            append_timing_records(args.json, speed_timing_records(results))
        return
    results = fidelity(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
