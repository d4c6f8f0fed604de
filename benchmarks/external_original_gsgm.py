#!/usr/bin/env python
"""External sampler command: time the released GSGM code's own DDIM sampler (jet + particle stage).

This program does not contain the original code; it imports it from a checkout the user names
(``--checkout``, the root of github.com/ViniciusMikuni/GSGM) and calls its ``GSGM`` model's
``DDPMSampler`` the way its ``generate`` does: the jet network first, then the particle network on
every one of the ``P`` slots with the multiplicity mask. Weights are freshly initialised (time does not
depend on them). The original is Keras 2 code, so it runs with the ``tf-keras`` package::

    pip install --target /tmp/tfk --no-deps tf-keras==2.21.0      # beside TensorFlow 2.21, not into it
    PYTHONPATH=/tmp/tfk TF_USE_LEGACY_KERAS=1 python benchmarks/external_original_gsgm.py \
        --checkout /path/to/GSGM --particles 30 --batch 1000 --steps 8 --multiplicities m.npy

It prints one JSON line, the protocol of ``benchmarks/bench_vs_original.py``:
``{"seconds": best wall time of one sampling call [s], "batch", "particles", "steps",
"jet_parameters", "particle_parameters", "seconds_all": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def load_original_model(checkout: Path, num_particles: int, num_steps: int):
    """The original ``GSGM`` Keras model at its released sizes (``scripts/config_jet.json``)."""
    scripts = checkout / "scripts"
    if not (scripts / "GSGM.py").is_file():
        raise SystemExit(f"{checkout}: no scripts/GSGM.py (give the root of a GSGM checkout)")
    # Its utils module (plotting, data loading) imports packages the sampler never uses; the sampler
    # itself needs none of it, so an empty module stands in for it.
    sys.modules.setdefault("utils", types.ModuleType("utils"))
    sys.path.insert(0, str(scripts))
    import GSGM  # noqa: N813  (the original's module name)

    # The file is a Python dict literal with single quotes, not JSON.
    config = eval((scripts / "config_jet.json").read_text(), {"__builtins__": {}})  # noqa: S307
    config["MAX_STEPS"] = num_steps
    return GSGM.GSGM(config=config, npart=num_particles)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkout", required=True, type=Path, help="root of a GSGM checkout")
    parser.add_argument("--particles", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--multiplicities", required=True, help=".npy file: [batch] particle counts")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    counts = np.load(args.multiplicities)
    if counts.shape != (args.batch,):
        raise SystemExit(f"{args.multiplicities}: shape {counts.shape}, expected ({args.batch},)")
    model = load_original_model(args.checkout, args.particles, args.steps)
    num_classes = model.num_cond
    cond = tf.constant(np.eye(num_classes, dtype=np.float32)[np.arange(args.batch) % num_classes])
    mask = (np.arange(args.particles)[None, :] < counts[:, None]).astype(np.float32)[..., None]
    mask = tf.constant(mask)

    def sample_once() -> float:
        started = time.perf_counter()
        jets = model.DDPMSampler(
            cond, model.ema_jet, data_shape=[args.batch, model.num_jet], const_shape=[-1, 1]
        ).numpy()
        model.DDPMSampler(
            cond,
            model.ema_part,
            data_shape=[args.batch, args.particles, model.num_feat],
            jet=tf.constant(jets),
            const_shape=model.shape,
            mask=mask,
        ).numpy()
        return time.perf_counter() - started

    sample_once()  # trace both loops
    seconds = [sample_once() for _ in range(args.repeats)]
    print(
        json.dumps(
            {
                "seconds": min(seconds),
                "seconds_all": seconds,
                "batch": args.batch,
                "particles": args.particles,
                "steps": args.steps,
                "jet_parameters": int(model.model_jet.count_params()),
                "particle_parameters": int(model.model_part.count_params()),
            }
        )
    )


if __name__ == "__main__":
    main()
