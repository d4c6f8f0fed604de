"""DIS family: Pythia events per second per core, U-Net time per image per step, sampling time per event.

* generator: ``generate_dis_chunk`` (one process, one core) on ``--events`` events, Pythia set-up
  included (about 0.3 s of it); events/s per core.
* U-Net: one forward pass of the learned-variance U-Net of each config (weights freshly initialised:
  time does not depend on them) at batch ``--batch``; ms per image per step (= per network call).
* sampling: the samplers ``gsgm sample`` runs (ancestral with learned variance, DDIM), x0 clipped,
  on one batch of ``--batch`` events with the quick config's U-Net, for ``--steps`` (comma list);
  ms per event. The first call (tracing) is excluded.

Timings are the minimum over ``--repeats`` rounds (the least disturbed estimate on a shared machine),
with the median beside it.

    PYTHONPATH=. python benchmarks/bench_dis.py [--events 20000] [--batch 16] [--steps 500,50,10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gsgm.config.dis import load_dis_config  # noqa: E402
from gsgm.data.dis_generation import DisSettings, generate_dis_chunk  # noqa: E402
from gsgm.diffusion.ddim import ddim_sample  # noqa: E402
from gsgm.diffusion.samplers import sample_ancestral  # noqa: E402
from gsgm.families.dis import build_dis_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def timed(function, repeats: int) -> tuple[float, float]:
    """(min, median) seconds of ``function()`` over ``repeats`` calls after one untimed call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.min(times)), float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", default="500,50,10")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--precisions",
        default="float32",
        help="U-Net step timings in these compute types, same run (float32, bfloat16, float16)",
    )
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "batch": args.batch}

    start = time.perf_counter()
    generate_dis_chunk((1, 0, args.events, DisSettings(chunk_size=args.events)))
    seconds = time.perf_counter() - start
    results["generator_events_per_s_per_core"] = args.events / seconds
    print(f"generator: {args.events} events in {seconds:.2f} s = {args.events / seconds:.0f} events/s/core")

    for name in ("dis_quick", "dis_paper"):
        cfg = load_dis_config(REPO / "configs" / f"{name}.json")
        model = build_dis_model(cfg)
        n = cfg.data.num_pixels
        z = tf.random.normal([args.batch, n, n, 3])
        t = tf.fill([args.batch], 250.0)
        params = int(sum(np.prod(w.shape) for w in model.net.trainable_weights))
        for precision in args.precisions.split(","):
            denoiser = model.sampling_denoiser(True, precision)
            best, median = timed(lambda d=denoiser, z=z, t=t: d.predict(z, t).x0.numpy(), args.repeats)
            suffix = "" if precision == "float32" else f"_{precision}"
            results[f"unet_{name}_ms_per_image_per_step{suffix}"] = 1e3 * best / args.batch
            per_image, median_per_image = 1e3 * best / args.batch, 1e3 * median / args.batch
            print(
                f"U-Net {name} ({n}x{n}, {params / 1e6:.2f} M parameters, {precision}): "
                f"{per_image:.2f} ms per image per step (median {median_per_image:.2f})"
            )

    cfg = load_dis_config(REPO / "configs" / "dis_quick.json")
    model = build_dis_model(cfg)
    denoiser = model.sampling_denoiser(True)
    n = cfg.data.num_pixels
    noise = tf.random.stateless_normal([args.batch, n, n, 3], seed=[0, 1])
    for steps in (int(s) for s in args.steps.split(",")):
        for sampler in ("ancestral", "ddim"):

            def run(steps=steps, sampler=sampler):
                if sampler == "ancestral":
                    out = sample_ancestral(denoiser, noise, model.schedule, steps, variance="learned", seed=1)
                else:
                    out = ddim_sample(denoiser, noise, model.schedule, steps)
                return np.asarray(out)

            best, median = timed(run, 1 if steps >= 200 else args.repeats)
            results[f"sampling_{sampler}_{steps}_ms_per_event"] = 1e3 * best / args.batch
            print(
                f"sampling dis_quick {sampler} {steps} steps: {1e3 * best / args.batch:.1f} ms/event "
                f"(median {1e3 * median / args.batch:.1f})"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
