"""Wall time of the full evaluation (scripts/evaluate.py's path) for N vs N jets per class.

The paper evaluates 50,000 generated vs 50,000 truth jets per class. The shipped sample has 2,000
jets per class, so the benchmark *resamples it with replacement*: truth files of 2N jets per class
(two disjoint halves of N: reference and floor) and one "generated" file of N jets per class, drawn
independently. Every metric's cost depends on the number of jets and particles, not on whether two
jets happen to be copies, so the timing is that of real 50k samples; the metric values are not
meaningful (the generated jets are truth jets). Generating 150,000 jets per class with
scripts/make_jets.py (about 100 jets/s per core) would take hours on 2 cores for the same timing.

Prints the time of reading/cutting the files, of each class and of each metric (summed over the
floor and the model), and the machine's load. With ``--json PATH`` the numbers are also written there.

``--previous-class C`` (default t) then evaluates class C again, floor + model, in the same run, with
the previous implementation: every particle-level metric through jetnet's own functions (EFPs jet by
jet through energyflow, ``efp_jobs`` = all CPUs), FPND with the same knn fallback. It prints both
times, their ratio and the largest relative difference of the metric values.

    PYTHONPATH=. python benchmarks/bench_evaluation.py [--jets-per-class 50000] [--classes g,q,t,w,z]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from gsgm.data.jetnet_format import class_file_name, parse_classes, read_jetnet_file, write_jetnet_file
from gsgm.data.loading import builtin_data_dir
from gsgm.evaluation.metrics import EvaluationConfig
from gsgm.evaluation.report import evaluate_comparison, format_markdown
from gsgm.evaluation.samples import load_comparison


def write_resampled(source: Path, target: Path, classes, num_particles: int, jets: int, seed: int) -> None:
    """``jets`` jets per class drawn with replacement from the files in ``source``, written to ``target``."""
    rng = np.random.default_rng(seed)
    for jet_class in classes:
        name = class_file_name(jet_class, num_particles)
        particles, features = read_jetnet_file(source / name)
        index = rng.integers(0, len(features), size=jets)
        write_jetnet_file(target / name, particles[index], features[index], compress=False)


def previous_pair(truth, gen, jet_class: str, config: EvaluationConfig) -> dict[str, float]:
    """The particle-level metrics of one comparison through jetnet's own functions (the previous path)."""
    from jetnet.evaluation import get_fpd_kpd_jet_features
    from jetnet.evaluation import w1efp as jetnet_w1efp

    from gsgm.evaluation import metrics as M
    from gsgm.evaluation.jetnet_compat import quiet_jetnet_warnings, seeded_jetnet

    common = {"num_eval_samples": len(truth), "num_batches": config.bootstrap, "seed": config.seed}
    values = {"w1m": M.w1m(truth.particles, gen.particles, **common).mean}
    values["w1p"] = M.w1p(truth.particles, gen.particles, **common).mean
    with seeded_jetnet(config.seed), quiet_jetnet_warnings():
        means, _ = jetnet_w1efp(
            truth.particles[..., :3],
            gen.particles[..., :3],
            num_eval_samples=len(truth),
            num_batches=config.bootstrap,
        )
        values["w1efp"] = float(np.mean(means))
        truth_features = get_fpd_kpd_jet_features(truth.particles[..., :3])
        gen_features = get_fpd_kpd_jet_features(gen.particles[..., :3])
    if M.fpnd(gen.particles[:2], jet_class).available:
        from jetnet.evaluation import fpnd as jetnet_fpnd

        from gsgm.evaluation.knn_fallback import provide_torch_cluster

        # jetnet's sparse ParticleNet pass (batch size 256, as gsgm called it before the dense one)
        with provide_torch_cluster(), quiet_jetnet_warnings():
            values["fpnd"] = float(
                jetnet_fpnd(
                    np.ascontiguousarray(gen.particles[..., :3]), jet_class, batch_size=256, use_tqdm=False
                )
            )
    cov, mmd = M.cov_mmd(
        truth.particles, gen.particles, config.cov_mmd_jets, config.cov_mmd_batches, config.seed
    )
    values["cov"], values["mmd"] = cov.mean, mmd.mean
    values["fpd"] = M.fpd(truth_features, gen_features, config.seed).mean
    values["kpd"] = M.kpd(truth_features, gen_features, config.seed).mean
    return values


def compare_with_previous(comparison, report, jet_class: str, config: EvaluationConfig) -> dict:
    """Time class ``jet_class`` (floor + model) with the previous implementation; compare the values."""
    from gsgm.evaluation.report import evaluate_comparison as evaluate

    if jet_class not in comparison.classes:
        raise SystemExit(f"error: --previous-class {jet_class} is not among the evaluated classes")
    samples = comparison.classes[jet_class]
    one_class = type(comparison)(**{**vars(comparison), "classes": {jet_class: samples}})
    start = time.perf_counter()
    current = evaluate(one_class, config)  # memory-only feature cache: the whole cost of a first evaluation
    current_seconds = time.perf_counter() - start
    start = time.perf_counter()
    floor = previous_pair(samples.truth, samples.truth_floor, jet_class, config)
    model = previous_pair(samples.truth, samples.generated["resampled"], jet_class, config)
    previous_seconds = time.perf_counter() - start
    worst = 0.0
    for label, values in (("floor", floor), ("model", model)):
        entry = current["classes"][jet_class]["floor" if label == "floor" else "models"]
        entry = entry if label == "floor" else entry["resampled"]
        for key, value in values.items():
            ours = entry[key]["mean"]
            if value is None or ours is None:
                continue
            worst = max(worst, abs(ours - value) / max(abs(value), 1e-300))
    print(
        f"class {jet_class}, floor + model: previous implementation {previous_seconds:.1f} s, "
        f"this one {current_seconds:.1f} s (no disk cache): {previous_seconds / current_seconds:.1f}x; "
        f"largest relative difference of a metric value {worst:.2g}"
    )
    return {
        "class": jet_class,
        "previous_seconds": previous_seconds,
        "current_seconds": current_seconds,
        "ratio": previous_seconds / current_seconds,
        "largest_relative_difference": worst,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jets-per-class", type=int, default=50_000)
    parser.add_argument("--classes", default="g,q,t,w,z")
    parser.add_argument("--particles", type=int, default=30, choices=(30, 150))
    parser.add_argument("--bootstrap", type=int, default=5)
    parser.add_argument("--json", help="also write the timings here")
    parser.add_argument(
        "--previous-class",
        default="t",
        help="class evaluated again with the previous implementation ('' = none)",
    )
    args = parser.parse_args()
    classes = parse_classes(args.classes)
    n = args.jets_per_class

    with tempfile.TemporaryDirectory(prefix="bench_evaluation_") as tmp:
        truth_dir, gen_dir = Path(tmp) / "truth", Path(tmp) / "gen"
        start = time.perf_counter()
        write_resampled(builtin_data_dir(), truth_dir, classes, args.particles, 2 * n, seed=1)
        write_resampled(builtin_data_dir(), gen_dir, classes, args.particles, n, seed=2)
        setup = time.perf_counter() - start
        print(
            f"wrote resampled truth (2 x {n}) and generated ({n}) jets per class in {setup:.1f} s", flush=True
        )

        config = EvaluationConfig(jets_per_class=n, bootstrap=args.bootstrap)
        load_start = time.perf_counter()
        comparison = load_comparison(
            truth_dir, [("resampled", gen_dir)], classes, args.particles, n, truth_split="all"
        )
        load = time.perf_counter() - load_start
        print(f"read, split and recentred in {load:.1f} s", flush=True)
        report = evaluate_comparison(comparison, config, log=lambda line: print(line, flush=True))
        total = load + report["seconds"]
        previous = None
        if args.previous_class:
            previous = compare_with_previous(comparison, report, args.previous_class, config)

    print()
    print(f"total evaluation (read + floor + 1 model, {len(classes)} classes): {total:.0f} s")
    print("seconds per metric (all classes, floor + model):")
    for key, seconds in sorted(report["timing_s"].items(), key=lambda item: -item[1]):
        print(f"  {key:18s} {seconds:8.1f}")
    machine = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(f"machine: {machine}")
    if args.json:
        payload = {
            "jets_per_class": n,
            "classes": classes,
            "num_particles": args.particles,
            "bootstrap": args.bootstrap,
            "read_seconds": load,
            "evaluate_seconds": report["seconds"],
            "total_seconds": total,
            "per_class_seconds": {c: e["seconds"] for c, e in report["classes"].items()},
            "per_metric_seconds": report["timing_s"],
            "machine": machine,
            "previous_implementation": previous,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    if n <= 2_000:  # small runs: show the table too (values are meaningless: truth vs resampled truth)
        print(format_markdown(report))


if __name__ == "__main__":
    main()
