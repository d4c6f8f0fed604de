#!/usr/bin/env python
"""Data-parallel throughput: training jets per second with 1 process and with N Horovod ranks.

Each configuration trains FPCD (default configs/quick.json, 128 jets per rank and step as in the
paper) on the shipped sample, sharded over the ranks, with the same model, optimizer and gradient
allreduce as scripts/train.py. One untimed epoch traces the step; then ``--repeats`` epochs of
``--steps`` steps are timed on rank 0 between barriers. The configurations run ``--rounds`` times,
interleaved, so that a change in the machine's load affects all of them alike; reported are the
median and the best (least disturbed) epoch over all rounds. Throughput is global:
ranks x batch x steps / epoch time.

    python benchmarks/bench_horovod.py                      # no Horovod, then horovodrun -np 1 and 2
    python benchmarks/bench_horovod.py --ranks 1,2,4 --threads 0,1 --json out.json

``--threads 0`` leaves TensorFlow's thread pools at their defaults (every process uses every core);
``--threads K`` gives each rank K intra-op threads (and OMP threads), which avoids oversubscribing
the cores when several ranks share one machine. The machine's load average is recorded with each
result: other processes on the machine slow every configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=str(REPO / "configs" / "quick.json"))
    parser.add_argument("--steps", type=int, default=30, help="steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of every configuration, interleaved")
    parser.add_argument("--ranks", default="1,2", help="comma-separated Horovod rank counts")
    parser.add_argument(
        "--threads", default="0", help="comma-separated intra-op threads per rank (0: default)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the run without Horovod")
    parser.add_argument("--json", help="also write the results here")
    # internal: one measurement (run by the driver, directly or under horovodrun)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--horovod", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--intra-threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args()


def worker(args: argparse.Namespace) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    if args.intra_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.intra_threads)

    from gsgm.config import load_config
    from gsgm.data.pipeline import make_dataset
    from gsgm.families.fpcd import build_model, load_training_data
    from gsgm.training.distributed import init_distributed
    from gsgm.training.optim import make_optimizer

    dist = init_distributed("horovod" if args.horovod else "none")
    cfg = load_config(args.config)
    data = load_training_data(cfg, "builtin")
    batch = cfg.training.batch_size
    dataset = make_dataset(
        *data.train_arrays,
        batch_size=batch,
        shuffle=True,
        seed=dist.rank,
        rank=dist.rank,
        num_ranks=dist.size,
        repeat=True,
    )
    model = build_model(cfg, cfg.data.num_particles, cfg.training.seed)
    model.compile(
        optimizer=make_optimizer(cfg.training, args.steps, dist.size),
        jit_compile=False if dist.size > 1 else "auto",
    )
    model.distributed = dist
    model.optimizer.build(model.optimized_variables)
    dist.broadcast_variables(list(model.weights) + list(model.optimizer.variables))

    seconds: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            dist.barrier()
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            dist.barrier()
            if epoch > 0:  # epoch 0 traces the step
                seconds.append(time.perf_counter() - self.started)

    model.fit(dataset, epochs=1 + args.repeats, steps_per_epoch=args.steps, callbacks=[Timer()], verbose=0)
    if dist.is_chief:
        result = {
            "horovod": bool(args.horovod),
            "ranks": dist.size,
            "intra_threads": args.intra_threads or "default",
            "per_rank_batch": batch,
            "steps": args.steps,
            "epoch_seconds": seconds,
            "load_average_1min": os.getloadavg()[0],
        }
        Path(args.result).write_text(json.dumps(result))


def measure(args: argparse.Namespace, ranks: int | None, threads: int) -> dict:
    """Run one worker configuration (``ranks`` None: a plain process without Horovod)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        command = [sys.executable, __file__, "--worker", "--config", args.config, "--steps", str(args.steps)]
        command += ["--repeats", str(args.repeats), "--intra-threads", str(threads), "--result", str(result)]
        if ranks is not None:
            horovodrun = str(Path(sys.executable).parent / "horovodrun")
            command = [horovodrun, "-np", str(ranks), "-H", f"localhost:{ranks}", *command, "--horovod"]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        measured = json.loads(result.read_text())
        measured["wall_seconds_including_startup"] = time.perf_counter() - started
        return measured


def summarise(runs: list[dict]) -> dict:
    """One configuration over all its rounds: median and best epoch, as step time and jets/s."""
    first = runs[0]
    epochs = [t for r in runs for t in r["epoch_seconds"]]
    jets = first["ranks"] * first["per_rank_batch"] * first["steps"]
    median, best = statistics.median(epochs), min(epochs)
    return {
        **{k: first[k] for k in ("horovod", "ranks", "intra_threads", "per_rank_batch", "steps")},
        "epochs_timed": len(epochs),
        "step_ms_median": 1e3 * median / first["steps"],
        "step_ms_best": 1e3 * best / first["steps"],
        "jets_per_second_median": jets / median,
        "jets_per_second_best": jets / best,
        "load_average_1min": [r["load_average_1min"] for r in runs],
        "runs": runs,
    }


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    threads = [int(t) for t in args.threads.split(",")]
    plan = [] if args.no_baseline else [(None, threads[0])]
    plan += [(int(r), t) for r in args.ranks.split(",") for t in threads]
    runs: dict[int, list[dict]] = {i: [] for i in range(len(plan))}
    for _ in range(args.rounds):
        for i, (ranks, thread_count) in enumerate(plan):
            runs[i].append(measure(args, ranks, thread_count))
            print(json.dumps(runs[i][-1]), flush=True)
    results = [summarise(runs[i]) for i in range(len(plan))]
    base = results[0]
    print(f"\ncpus: {os.cpu_count()}, config: {Path(args.config).name}, steps/epoch: {args.steps}")
    header = "| launcher | ranks | threads/rank | step ms (median / best) | jets/s (median / best)"
    print(header + " | vs first row | load |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        launcher = "horovodrun" if r["horovod"] else "python"
        ratio = r["jets_per_second_median"] / base["jets_per_second_median"]
        ratio_best = r["jets_per_second_best"] / base["jets_per_second_best"]
        load = "-".join(f"{x:.1f}" for x in (min(r["load_average_1min"]), max(r["load_average_1min"])))
        step = f"{r['step_ms_median']:.1f} / {r['step_ms_best']:.1f}"
        speed = f"{r['jets_per_second_median']:.0f} / {r['jets_per_second_best']:.0f}"
        print(
            f"| {launcher} | {r['ranks']} | {r['intra_threads']} | {step} | {speed} | "
            f"{ratio:.2f}x / {ratio_best:.2f}x | {load} |"
        )
    if args.json:
        payload = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "config": args.config,
            "results": results,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
