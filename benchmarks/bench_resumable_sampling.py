"""Cost of resumable sampling: one in-memory ``generate_jets`` call vs ``sample_jets_to_directory``.

The resumable path samples the same number of jets in chunks of ``--batch-size`` (one sampler call
each, as before), keeps every chunk as an ``.npz`` file, then writes the class files, hashes them and
writes the manifest. The difference is the price of "a kill loses at most one chunk".

    PYTHONPATH=. python benchmarks/bench_resumable_sampling.py [--jets-per-class 1000] [--batch-size 250]

A quick-config run is trained for one epoch on a few jets (the weights do not matter for timing).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jets-per-class", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from gsgm.config import load_config
    from gsgm.families.fpcd import train
    from gsgm.generation.jets import generate_jets
    from gsgm.generation.runs import load_sampling_run, sample_jets_to_directory

    work = Path(tempfile.mkdtemp(prefix="bench-resumable-"))
    cfg = load_config(REPO / "configs" / "quick.json")
    cfg.data.classes = ["t", "w"]
    cfg.training.epochs = 1
    train(cfg, data="builtin", out=work / "run", max_jets_per_class=64, verbose=0)
    _, model, preprocessor, run_cfg, steps = load_sampling_run(work / "run", args.steps)
    classes = list(run_cfg.data.classes)
    total = args.jets_per_class * len(classes)

    def in_memory() -> None:
        generate_jets(model, preprocessor, run_cfg, args.jets_per_class, classes, steps, seed=1,
                      batch_size=args.batch_size)  # fmt: skip

    def resumable(index: int) -> None:
        sample_jets_to_directory(work / "run", work / f"samples-{index}", args.jets_per_class, steps=steps,
                                 seed=1, batch_size=args.batch_size, write_timing=False)  # fmt: skip

    in_memory()  # tracing, once, outside the timings
    times = {"in memory (one call)": [], "resumable (chunks + files + manifest)": []}
    for repeat in range(args.repeats):
        started = time.perf_counter()
        in_memory()
        times["in memory (one call)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        resumable(repeat)
        times["resumable (chunks + files + manifest)"].append(time.perf_counter() - started)
    base = min(times["in memory (one call)"])
    print(f"{total} jets, {steps} steps, chunks of {args.batch_size}, minimum of {args.repeats}:")
    for name, values in times.items():
        best = min(values)
        print(f"  {name:40s} {best:7.2f} s  {1e3 * best / total:6.3f} ms/jet  ratio {best / base:.3f}")


if __name__ == "__main__":
    main()
