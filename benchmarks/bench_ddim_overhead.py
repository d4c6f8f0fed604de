"""Sampler overhead of ``ddim_sample``: compile modes and per-step cost on a stand-in network.

Compares, for the same Keras denoiser and noise:

* ``eager``     : a plain Python loop calling the model and ``ddim_step`` eagerly (reference, no compile);
* ``loop``      : ``ddim_sample`` default, one ``tf.function`` with a ``tf.while_loop`` (jit_compile=False);
* ``loop-xla``  : the same with ``jit_compile=True``;
* ``step``      : ``progress=True`` mode (Python loop over a compiled step; tqdm disabled via env here);
* ``step-xla``  : the same with XLA.

Reports the first call (trace + compile + run) and the steady-state time per step. Modes are run
interleaved, round after round, and the minimum over rounds is reported: on a shared machine the minimum
is the least disturbed estimate (the median is printed beside it).

    PYTHONPATH=. python benchmarks/bench_ddim_overhead.py [--batch 256] [--steps 64] [--net mlp,attn]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TQDM_DISABLE", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gsgm.diffusion import VDenoiser, VPCosineSchedule, ddim_sample, ddim_step  # noqa: E402

VP = VPCosineSchedule()


def make_net(kind: str, num_particles: int, num_features: int, width: int = 128) -> keras.Model:
    """A stand-in particle denoiser: per-particle MLP with time embedding (+ self-attention for 'attn')."""
    z_in = keras.Input((num_particles, num_features))
    t_in = keras.Input(())
    freqs = keras.ops.exp(keras.ops.linspace(0.0, 4.0, 16))
    emb = keras.ops.concatenate(
        [keras.ops.sin(t_in[:, None] * freqs), keras.ops.cos(t_in[:, None] * freqs)], -1
    )
    emb = keras.layers.Dense(width, activation="gelu")(emb)
    h = keras.layers.Dense(width)(z_in) + emb[:, None, :]
    for _ in range(3):
        if kind == "attn":
            a = keras.layers.MultiHeadAttention(num_heads=4, key_dim=width // 4)(h, h)
            h = keras.layers.LayerNormalization()(h + a)
        h = keras.layers.LayerNormalization()(h + keras.layers.Dense(width, activation="gelu")(h))
    out = keras.layers.Dense(num_features)(h)
    return keras.Model([z_in, t_in], out)


def run_once(fn) -> float:
    start = time.perf_counter()
    fn().numpy()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--particles", type=int, default=30)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--net", default="mlp,attn")
    parser.add_argument("--modes", default="eager,loop,loop-xla,step,step-xla")
    args = parser.parse_args()

    print(
        f"tf {tf.__version__}, keras {keras.__version__}, {platform.processor() or platform.machine()}, "
        f"devices {[d.device_type for d in tf.config.list_physical_devices()]}, "
        f"threads intra={tf.config.threading.get_intra_op_parallelism_threads()}"
    )
    print(f"batch {args.batch} x {args.particles} particles x 3 features, {args.steps} steps")
    rng = np.random.default_rng(0)
    noise = tf.constant(rng.normal(size=(args.batch, args.particles, 3)), tf.float32)
    mask = tf.constant(rng.uniform(size=(args.batch, args.particles)) < 0.7, tf.float32)

    for kind in args.net.split(","):
        net = make_net(kind, args.particles, 3)

        # One adapter object per network: the compiled loop is cached per denoiser object.
        denoiser = VDenoiser(lambda z, t, net=net: net([z, t], training=False), VP)

        def eager(denoiser=denoiser):
            grid = tf.constant(VP.sampling_times(args.steps), tf.float32)
            z = noise * mask[..., None]
            for i in range(args.steps):
                pred = denoiser.predict(z, tf.fill([args.batch], grid[i]))
                z = ddim_step(z, pred, grid[i], grid[i + 1], VP) * mask[..., None]
            return z

        modes = {
            "eager": eager,
            "loop": lambda d=denoiser: ddim_sample(d, noise, VP, args.steps, mask=mask),
            "loop-xla": lambda d=denoiser: ddim_sample(d, noise, VP, args.steps, mask=mask, jit_compile=True),
            "step": lambda d=denoiser: ddim_sample(d, noise, VP, args.steps, mask=mask, progress=True),
            "step-xla": lambda d=denoiser: ddim_sample(
                d, noise, VP, args.steps, mask=mask, progress=True, jit_compile=True
            ),
        }
        names = args.modes.split(",")
        first = {mode: run_once(modes[mode]) for mode in names}
        times = {mode: [] for mode in names}
        for _ in range(args.repeats):
            for mode in names:
                times[mode].append(run_once(modes[mode]))
        results = {}
        for mode in names:
            best, median = min(times[mode]), float(np.median(times[mode]))
            results[mode] = best
            print(
                f"  {kind:5s} {mode:9s} first call {first[mode]:6.2f} s   min {best:6.3f} s "
                f"= {1e3 * best / args.steps:6.2f} ms/step   (median {1e3 * median / args.steps:6.2f})"
            )
        if "eager" in results and "loop" in results:
            out_eager, out_loop = eager().numpy(), modes["loop"]().numpy()
            print(f"  {kind:5s} max |loop - eager| = {np.abs(out_eager - out_loop).max():.2e}")


if __name__ == "__main__":
    main()
