"""Cost of resumable sampling: the former one-shot path vs ``sample_jets_to_directory``.

Both load the run (so both trace the sampler once), then sample with batches of ``--batch-size``:
the one-shot path (what ``sample_jets_to_directory`` did before) calls ``generate_jets`` once and
writes the class files; the resumable path calls it once per chunk of ``--batch-size`` jets, keeps
every chunk as an ``.npz`` file, then writes the class files, hashes them and writes the manifest.
The difference is the price of "a kill loses at most one chunk".

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
    from gsgm.generation.jet_files import write_jet_samples
    from gsgm.generation.jets import generate_jets
    from gsgm.generation.runs import load_sampling_run, sample_jets_to_directory

    work = Path(tempfile.mkdtemp(prefix="bench-resumable-"))
    cfg = load_config(REPO / "configs" / "quick.json")
    cfg.data.classes = ["t", "w"]
    cfg.training.epochs = 1
    train(cfg, data="builtin", out=work / "run", max_jets_per_class=64, verbose=0)
    classes = list(cfg.data.classes)
    total = args.jets_per_class * len(classes)

    def one_shot(index: int) -> None:
        _, model, preprocessor, run_cfg, steps = load_sampling_run(work / "run", args.steps)
        generated = generate_jets(model, preprocessor, run_cfg, args.jets_per_class, classes, steps, seed=1,
                                  batch_size=args.batch_size)  # fmt: skip
        write_jet_samples(work / f"one-shot-{index}", generated, run_cfg.data.num_particles)

    def resumable(index: int) -> None:
        out = work / f"samples-{index}"
        sample_jets_to_directory(work / "run", out, args.jets_per_class, steps=args.steps, seed=1,
                                 batch_size=args.batch_size, write_timing=False)  # fmt: skip

    one_shot(-1)  # warm-up (imports, first graph construction), outside the timings
    times = {"one shot (former path)": [], "resumable (chunks + files + manifest)": []}
    for repeat in range(args.repeats):
        for name, run in (
            ("one shot (former path)", one_shot),
            ("resumable (chunks + files + manifest)", resumable),
        ):
            started = time.perf_counter()
            run(repeat)
            times[name].append(time.perf_counter() - started)
    base = min(times["one shot (former path)"])
    print(f"{total} jets, {args.steps} steps, chunks of {args.batch_size}, minimum of {args.repeats}:")
    for name, values in times.items():
        best = min(values)
        print(f"  {name:40s} {best:7.2f} s  {1e3 * best / total:6.3f} ms/jet  ratio {best / base:.3f}")


if __name__ == "__main__":
    main()
