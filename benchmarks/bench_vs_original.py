#!/usr/bin/env python
"""gsgm's sampler against an external sampler command at equal size, in interleaved rounds.

Each measurement is a fresh process that samples ``--batch`` jets (jet stage, then particle stage) with
``--steps`` DDIM steps, once to trace, then ``--repeats`` times, and prints one JSON line with the best
wall time and its networks' parameter counts. The external command (e.g. the released GSGM code through
``benchmarks/external_original_gsgm.py``) gets ``--particles P --batch B --steps S --multiplicities
FILE`` appended; gsgm's side is this script in ``--worker`` mode, with ``--config`` (default
``configs/fpcd_original_size.json``, the original's parameter counts) and each ``--variants`` entry
(``float32``, ``bfloat16``, ``float16``, ``+xla`` for XLA: ``float32+xla``). Both sides get the same
multiplicities, drawn from the shipped Pythia sample. Rounds alternate the order of the commands, so
that load drift on a shared machine hits every side; the best of the rounds is kept. The run stops if
the parameter counts differ by more than 5 %.

    pip install --target /tmp/tfk --no-deps tf-keras==2.21.0
    python benchmarks/bench_vs_original.py --rounds 3 --variants float32,bfloat16 --json out.json \\
        --external "env PYTHONPATH=/tmp/tfk TF_USE_LEGACY_KERAS=1 python \\
                    benchmarks/external_original_gsgm.py --checkout /path/to/GSGM"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
TOLERANCE = 0.05


def worker(args: argparse.Namespace) -> None:
    """Time gsgm's sampler; print the JSON line of the protocol."""
    import numpy as np

    sys.path.insert(0, str(HERE))
    from sampling_timing import sampling_seconds

    from gsgm.config import load_config
    from gsgm.data.jetnet_format import JET_CLASSES
    from gsgm.families.fpcd import build_model

    precision, _, xla = args.variant.partition("+")
    num_particles = int(args.particles)
    counts = np.load(args.multiplicities)
    cfg = load_config(args.config)
    cfg.data.num_particles = num_particles
    model = build_model(cfg, num_particles, seed=0)
    mask = (np.arange(num_particles)[None, :] < counts[:, None]).astype(np.float32)
    onehot = np.eye(len(JET_CLASSES), dtype=np.float32)[np.arange(args.batch) % len(JET_CLASSES)]
    options = {"precision": precision, "jit_compile": xla == "xla"}
    sampling_seconds(model, mask, onehot, args.steps, 1, args.buckets, **options)  # trace
    seconds = [
        sampling_seconds(model, mask, onehot, args.steps, 1, args.buckets, **options)
        for _ in range(args.repeats)
    ]
    count = lambda net: sum(int(w.shape.num_elements()) for w in net.trainable_weights)  # noqa: E731
    print(
        json.dumps(
            {
                "seconds": min(seconds),
                "seconds_all": seconds,
                "jet_parameters": count(model.jet_net),
                "particle_parameters": count(model.particle_net),
            }
        )
    )


def measure(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--external", help="external sampler command (the protocol above); none: gsgm alone")
    parser.add_argument("--external-label", default="original GSGM")
    parser.add_argument("--config", default="configs/fpcd_original_size.json")
    parser.add_argument("--variants", default="float32", help="e.g. float32,bfloat16,float32+xla")
    parser.add_argument("--particles", default="30,150")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--buckets", type=int, default=8, help="gsgm's multiplicity buckets")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per process (best kept)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn multiplicities")
    parser.add_argument("--json", help="write the table here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--multiplicities", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import numpy as np

    sys.path.insert(0, str(HERE))
    from sampling_timing import realistic_inputs

    from gsgm.generation.timing import describe_device

    sides = {f"gsgm {v}": ["--variant", v] for v in args.variants.split(",")}
    if args.external:
        sides[args.external_label] = None
    best: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            for num_particles in (int(p) for p in args.particles.split(",")):
                mask, _ = realistic_inputs(num_particles, args.batch, seed=args.seed)
                counts = Path(tmp) / f"multiplicities{num_particles}.npy"
                np.save(counts, mask.sum(axis=1).astype(np.int64))
                common = ["--particles", str(num_particles), "--batch", str(args.batch)]
                common += ["--steps", str(args.steps), "--multiplicities", str(counts)]
                names = list(sides) if round_index % 2 == 0 else list(sides)[::-1]
                for name in names:
                    if sides[name] is None:
                        command = [*shlex.split(args.external), *common]
                    else:
                        command = [sys.executable, __file__, "--worker", "--config", args.config]
                        command += [*sides[name], *common, "--buckets", str(args.buckets)]
                        command += ["--repeats", str(args.repeats)]
                    result = measure(command)
                    key = (name, num_particles)
                    if key not in best or result["seconds"] < best[key]["seconds"]:
                        best[key] = result
                    print(f"round {round_index + 1}, P={num_particles}, {name}: "
                          f"{1e3 * result['seconds'] / args.batch:.3f} ms/jet", flush=True)  # fmt: skip
    rows = []
    for (name, num_particles), result in best.items():
        rows.append(
            {
                "sampler": name,
                "particles": num_particles,
                "ms_per_jet": 1e3 * result["seconds"] / args.batch,
                "jet_parameters": result["jet_parameters"],
                "particle_parameters": result["particle_parameters"],
            }
        )
    if args.external:
        for row in rows:
            reference = best[(args.external_label, row["particles"])]
            mine = best[(row["sampler"], row["particles"])]
            row["speed_vs_external"] = reference["seconds"] / mine["seconds"]
            for which in ("jet_parameters", "particle_parameters"):
                if abs(row[which] / reference[which] - 1) > TOLERANCE:
                    raise SystemExit(
                        f"{row['sampler']}: {which} {row[which]} vs {reference[which]} of "
                        f"{args.external_label}: more than {TOLERANCE:.0%} apart (not equal sizes)"
                    )
    print(f"{'sampler':24s} {'P':>4s} {'ms/jet':>9s} {'jet params':>11s} {'particle params':>16s} speed-up")
    for row in rows:
        speed = f"{row['speed_vs_external']:.2f}x" if "speed_vs_external" in row else ""
        print(
            f"{row['sampler']:24s} {row['particles']:4d} {row['ms_per_jet']:9.3f} "
            f"{row['jet_parameters']:11,d} {row['particle_parameters']:16,d} {speed}"
        )
    if args.json:
        payload = {
            "device": describe_device(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "batch": args.batch,
            "steps": args.steps,
            "rounds": args.rounds,
            "config": args.config,
            "external": args.external,
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
