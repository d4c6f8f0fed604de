#!/usr/bin/env python
"""float32 vs bfloat16 mixed precision vs XLA, for FPCD sampling and the training step, in one run.

Sampling: ``--steps`` DDIM steps of jet + particle stage for ``--batch`` jets (shipped multiplicities,
multiplicity buckets as ``gsgm sample``), with each of ``float32``, ``bfloat16`` (``sampling.precision``),
``float32+xla`` and ``bfloat16+xla`` (``sampling.jit_compile``). Training: one optimiser step of the
FPCD model (both networks) on ``--train-batch`` jets, built under the float32 or the ``mixed_bfloat16``
Keras policy, compiled as ``tf.function`` with and without ``jit_compile`` (a variant XLA cannot
compile is reported, not hidden). Every variant is traced first (excluded); then ``--rounds`` rounds
time every variant once each in turn, and the best round is kept. With ``--run RUN`` the samples of a
trained run also give the accuracy cost of bfloat16: the largest and mean difference from the float32
samples drawn from the same noise, per jet feature in physical units.

    python benchmarks/bench_precision.py --config configs/fpcd_original_size.json --particles 30,150 \\
        --batch 1000 --steps 4 --rounds 3 --json precision.json [--run runs/quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sampling_timing import realistic_inputs, sampling_seconds  # noqa: E402

from gsgm.config import load_config  # noqa: E402
from gsgm.data.jetnet_format import JET_CLASSES  # noqa: E402
from gsgm.data.loading import load_jets, resolve_data_dir  # noqa: E402
from gsgm.data.pipeline import make_dataset  # noqa: E402
from gsgm.data.preprocessing import JetPreprocessor  # noqa: E402
from gsgm.families.fpcd import build_model  # noqa: E402
from gsgm.generation.timing import describe_device  # noqa: E402
from gsgm.training.optim import make_optimizer  # noqa: E402

SAMPLING_VARIANTS = ("float32", "bfloat16", "float32+xla", "bfloat16+xla")
TRAINING_VARIANTS = ("float32", "bfloat16", "float32+xla")


def training_steps(cfg, num_particles: int, batch_size: int) -> dict:
    """{variant: zero-argument function running one training step}, or an error string per variant."""
    sample = load_jets(resolve_data_dir("builtin"), list(JET_CLASSES), num_particles)
    arrays = JetPreprocessor.fit(sample).transform(sample)
    batch = next(iter(make_dataset(*arrays, sample.labels, batch_size=batch_size, shuffle=True, seed=0)))
    steps = {}
    for variant in TRAINING_VARIANTS:
        precision, _, xla = variant.partition("+")
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
        try:
            model = build_model(cfg, num_particles, seed=0)
        finally:
            keras.config.set_dtype_policy(previous)
        model.compile(optimizer=make_optimizer(cfg.training, steps_per_epoch=1000))
        step = tf.function(model.train_step, jit_compile=xla == "xla")
        try:
            step(batch)  # trace (and compile)
        except Exception as error:  # noqa: BLE001  (reported in the table)
            steps[variant] = f"does not compile: {type(error).__name__}: {str(error).splitlines()[0][:160]}"
            continue

        def run(step=step, model=model):
            step(batch)
            model.metrics[0].result().numpy()  # wait for the step

        steps[variant] = run
    return steps


def accuracy_cost(run_dir: str, jets_per_class: int, steps: int) -> dict:
    """bfloat16 vs float32 samples of a trained run from the same noise: differences per jet feature."""
    from gsgm.generation.jets import generate_jets
    from gsgm.generation.runs import load_sampling_run

    _, model, preprocessor, cfg, _ = load_sampling_run(run_dir, steps)
    samples = {}
    for precision in ("float32", "bfloat16"):
        cfg.sampling.precision = precision
        samples[precision] = generate_jets(
            model, preprocessor, cfg, jets_per_class, list(cfg.data.classes), steps
        )
    names = ("pt [GeV]", "eta", "mass [GeV]", "multiplicity")
    report = {}
    for jet_class in cfg.data.classes:
        ref, low = samples["float32"][jet_class][1], samples["bfloat16"][jet_class][1]
        diff = np.abs(low - ref)
        report[jet_class] = {
            name: {
                "max": float(diff[:, i].max()),
                "mean": float(diff[:, i].mean()),
                "spread": float(ref[:, i].std()),
            }
            for i, name in enumerate(names)
        }
        report[jet_class]["multiplicity changed"] = float(np.mean(low[:, 3] != ref[:, 3]))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="configs/fpcd_original_size.json")
    parser.add_argument("--particles", default="30,150")
    parser.add_argument("--batch", type=int, default=1000, help="jets per sampling call")
    parser.add_argument("--steps", type=int, default=4, help="DDIM steps per sampling call")
    parser.add_argument("--train-batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--run", help="trained run for the accuracy cost of bfloat16 (optional)")
    parser.add_argument(
        "--accuracy-jets", type=int, default=1000, help="jets per class for the accuracy cost"
    )
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    results = {"device": describe_device(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results.update(config=args.config, batch=args.batch, steps=args.steps, train_batch=args.train_batch)
    results["rows"] = []
    for num_particles in (int(p) for p in args.particles.split(",")):
        cfg = load_config(args.config)
        cfg.data.num_particles = num_particles
        model = build_model(cfg, num_particles, seed=0)
        mask, onehot = realistic_inputs(num_particles, args.batch)
        jobs = {}
        for variant in SAMPLING_VARIANTS:
            precision, _, xla = variant.partition("+")
            options = {"buckets": 8, "precision": precision, "jit_compile": xla == "xla"}
            jobs[f"sampling {variant}"] = (
                lambda options=options, timed=(model, mask, onehot): sampling_seconds(
                    *timed, args.steps, 1, **options
                ),
                args.batch * args.steps,
            )
        for variant, step in training_steps(cfg, num_particles, args.train_batch).items():
            if isinstance(step, str):
                results["rows"].append(
                    {"particles": num_particles, "what": f"train step {variant}", "error": step}
                )
                print(f"P={num_particles} train step {variant}: {step}", flush=True)
                continue
            jobs[f"train step {variant}"] = (step, args.train_batch)
        for function, _ in jobs.values():
            function()  # trace / compile
        best = dict.fromkeys(jobs, float("inf"))
        for _ in range(args.rounds):
            for name, (function, _) in jobs.items():
                started = time.perf_counter()
                function()
                best[name] = min(best[name], time.perf_counter() - started)
        for name, (_, jets) in jobs.items():
            kind = name.split()[0]
            reference = best[f"{kind} float32" if kind == "sampling" else "train step float32"]
            row = {
                "particles": num_particles,
                "what": name,
                "ms_per_jet": 1e3 * best[name] / jets,  # sampling: per jet and step
                "speed_vs_float32": reference / best[name],
            }
            results["rows"].append(row)
            unit = "ms/jet/step" if kind == "sampling" else "ms/jet"
            print(
                f"P={num_particles} {name:26s} {row['ms_per_jet']:.4f} {unit}  x{row['speed_vs_float32']:.2f}"
            )
    if args.run:
        results["accuracy_bfloat16"] = accuracy_cost(args.run, args.accuracy_jets, args.steps)
        print(json.dumps(results["accuracy_bfloat16"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
