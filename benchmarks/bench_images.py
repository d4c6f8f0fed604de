"""Sampling time per jet image: score model (PC, 15 levels) vs consistency model (1 and 15 steps).

Both U-Nets have the paper's sizes (configs/images_score.json, configs/images_consistency.json: 128
base channels, [1, 2, 2, 2], 2 residual blocks, 34.2 M parameters each). Weights are freshly
initialised: the time does not depend on their values. Each mode runs the same sampler code as
``scripts/sample_images.py`` (one compiled network call per evaluation, the step loop in Python) on one
batch of mixed classes. The first call (tracing) is excluded; modes run interleaved, round after round,
and the minimum over rounds is reported (the least disturbed estimate on a shared machine) with the
median beside it.

Network evaluations per image: score PC with M Langevin steps makes ``levels * (M + 1)``; the paper's
"15 sampling forward passes" compare best with ``score-pc-M0`` (15 calls) and ``consistency-15``.

``--variants`` times every mode with each way of computing the network, in the same interleaved rounds:
``float32``, ``bfloat16`` / ``float16`` (mixed precision), ``xla`` (float32, each call XLA-compiled),
``bfloat16-xla`` (both); see ``gsgm.generation.images.image_sampling_denoiser``.

    PYTHONPATH=. python benchmarks/bench_images.py [--batch 8] [--repeats 3] [--modes ...]
        [--variants float32,bfloat16,xla] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gsgm.config import load_images_config, resolve_from_data  # noqa: E402
from gsgm.diffusion.consistency import sample_consistency  # noqa: E402
from gsgm.diffusion.samplers import sample_pc  # noqa: E402
from gsgm.families.jet_images import build_image_model  # noqa: E402
from gsgm.generation.images import image_sampling_denoiser  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Noise levels of the shipped sample (image_statistics of its training split); timing does not depend on them.
STATS = {"nonzero_q05": 1.43e-3, "max_pairwise_distance": 1.34, "pixel_std": 0.0241}
MODES = ("score-pc-M1", "score-pc-M0", "consistency-1", "consistency-15")
VARIANTS = {
    "float32": ("float32", False),
    "bfloat16": ("bfloat16", False),
    "float16": ("float16", False),
    "xla": ("float32", True),
    "bfloat16-xla": ("bfloat16", True),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=8, help="images per sampler call")
    parser.add_argument("--steps", type=int, default=15, help="levels / steps of the multistep modes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--modes", help=f"comma-separated (default {','.join(MODES)}, the last with --steps steps)"
    )
    parser.add_argument("--variants", default="float32", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    modes = args.modes.split(",") if args.modes else [*MODES[:3], f"consistency-{args.steps}"]
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")

    devices = [d.device_type for d in tf.config.list_physical_devices()]
    print(
        f"tf {tf.__version__}, keras {keras.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs visible, devices {devices}, batch {args.batch}"
    )
    score_cfg = resolve_from_data(load_images_config(REPO / "configs" / "images_score.json"), STATS)
    cm_cfg = resolve_from_data(load_images_config(REPO / "configs" / "images_consistency.json"), STATS)
    score_model = build_image_model(score_cfg)
    cm_model = build_image_model(cm_cfg)
    counts = (score_model.net.count_params(), cm_model.net.count_params())
    print(f"parameters per U-Net: score {counts[0]:,}, consistency {counts[1]:,}")

    noise = score_cfg.noise
    labels = tf.constant(np.arange(args.batch) % 5, tf.int32)
    x_score = tf.random.stateless_normal([args.batch, 25, 25, 1], [0, 1]) * noise.sigma_max

    def mode_runs(score, consistency):
        """mode -> (sampler call, network calls per image) for one pair of compiled denoisers."""

        def pc(corrector_steps):
            return lambda: sample_pc(
                score,
                x_score,
                score_model.schedule,
                args.steps,
                corrector_steps=corrector_steps,
                cond={"label": labels},
            )

        def cm(steps):
            return lambda: sample_consistency(
                consistency, x_score, cm_model.schedule, steps, cond={"label": labels}
            )

        return {
            "score-pc-M1": (pc(1), 2 * args.steps),
            "score-pc-M0": (pc(0), args.steps),
            "consistency-1": (cm(1), 1),
            f"consistency-{args.steps}": (cm(args.steps), args.steps),
        }

    runs = {}
    for variant in variants:
        precision, xla = VARIANTS[variant]
        per_mode = mode_runs(
            image_sampling_denoiser(score_model, precision, xla),
            image_sampling_denoiser(cm_model, precision, xla),
        )
        for name in modes:
            runs[name if len(variants) == 1 else f"{name} {variant}"] = per_mode[name]
    first = {}
    for name, (fn, _) in runs.items():  # trace + compile + one run
        start = time.perf_counter()
        np.asarray(fn())
        first[name] = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, (fn, _) in runs.items():
            start = time.perf_counter()
            np.asarray(fn())
            times[name].append(time.perf_counter() - start)

    header = ("mode", "net calls", "ms/image (min)", "median", "ms/call/image", "first call s")
    print("\n{:<28} {:>9} {:>15} {:>9} {:>14} {:>13}".format(*header))
    results = []
    for name, (_, calls) in runs.items():
        best, median = min(times[name]), float(np.median(times[name]))
        per_image = 1e3 * best / args.batch
        print(
            f"{name:<28} {calls:>9} {per_image:>15.1f} {1e3 * median / args.batch:>9.1f} "
            f"{per_image / calls:>14.1f} {first[name]:>13.1f}"
        )
        results.append(
            {
                "mode": name,
                "network_calls": calls,
                "ms_per_image_min": per_image,
                "ms_per_image_median": 1e3 * median / args.batch,
                "first_call_s": first[name],
            }
        )
    print("\npaper (RTX 4070, 15 forward passes): score-based 18.31 ms, consistency 17.88 ms")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"batch": args.batch, "variants": variants, "devices": devices, "results": results}, indent=2
            )
        )


if __name__ == "__main__":
    main()
