"""Sampling phase-space runs into event files (``gsgm sample`` for the ``phase_space`` family)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsgm.data.phase_space_files import write_events
from gsgm.data.phase_space_processes import PROCESSES
from gsgm.families.phase_space import PHASE_SPACE, events_from_samples
from gsgm.generation.sample_sets import (
    MANIFEST_ATTRIBUTE,
    ChunkStore,
    arrays_hash,
    finished_already,
    make_manifest,
    prepare_output,
)

__all__ = ["PhaseSpaceSamples", "sample_phase_space"]


@dataclass
class PhaseSpaceSamples:
    path: Path
    num: int
    steps: int
    seconds: float

    def summary(self) -> str:
        per = 1e3 * self.seconds / self.num
        return (f"wrote {self.num} events with {self.steps} steps to {self.path} in {self.seconds:.1f} s "
                f"({per:.3f} ms per event, {1e3 * per / self.steps:.2f} us per event per step)")  # fmt: skip


def sample_phase_space(
    run,
    out,
    per_class: int,
    *,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    overwrite: bool = False,
) -> PhaseSpaceSamples:
    """``per_class`` events from run ``run`` into the event file ``out`` (same seed, same events).

    ``out`` is checked before sampling (a writable file name with room for the events; an existing
    file only with ``overwrite``) and written atomically. Events are generated in chunks of
    ``batch_size`` (default 10,000), each with its own seed, kept in ``.<out>.partial`` as they finish:
    the same command after a kill continues with the missing chunks and writes the same file.
    """
    if per_class < 1:
        raise ValueError(f"--per-class must be positive, got {per_class}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    model, cfg = PHASE_SPACE.load_run(run)
    if cfg.model.method == "qspace_diffusion":
        if steps not in (None, cfg.diffusion.num_steps):
            raise ValueError(
                f"--steps {steps}: q-space diffusion samples with its Langevin schedule's "
                f"{cfg.diffusion.num_steps} steps (diffusion.num_steps)"
            )
        steps = cfg.diffusion.num_steps
    steps = int(steps or cfg.sampling.num_steps)
    batch = int(batch_size or 10_000)
    params = {
        "kind": "phase-space events",
        "run": str(Path(run).resolve()),
        "steps": steps,
        "seed": seed,
        "per_class": per_class,
        "chunk_size": batch,
    }
    if not overwrite and finished_already(out, params, directory=False):
        return PhaseSpaceSamples(Path(out), per_class, steps, 0.0)
    # four-momenta of the particles, float64, twice (HDF5 temporary and margin)
    prepare_output(out, directory=False, overwrite=overwrite, estimated_bytes=2 * per_class * 10 * 4 * 8)
    store = ChunkStore(out, params, overwrite=overwrite)
    n_particles = PROCESSES[cfg.data.process]
    chunks = []
    for k, first in enumerate(range(0, per_class, batch)):
        n = min(batch, per_class - first)

        def make(n=n, k=k):
            samples = model.generate(
                n, n_particles, steps=steps, seed=seed * 100_003 + k, ode_method=cfg.sampling.ode_method
            )
            return {"samples": np.asarray(samples)}

        chunks.append(store.chunk(f"chunk-{k:05d}", make)["samples"])
    seconds = store.seconds
    events = events_from_samples(np.concatenate(chunks), model.preprocessing)
    attrs = {
        "process": cfg.data.process,
        "y_min": cfg.data.y_min,
        "xi_max": cfg.data.xi_max,
        "method": cfg.model.method,
        "embedding": cfg.data.embedding,
        "steps": steps,
        "seed": seed,
        "run": str(run),
        "seconds": seconds,
        "ms_per_event": 1e3 * seconds / per_class,
    }
    attrs[MANIFEST_ATTRIBUTE] = make_manifest(params, content=arrays_hash([np.asarray(events, np.float64)]))
    write_events(out, events, attrs)
    store.finish()
    return PhaseSpaceSamples(Path(out), per_class, steps, seconds)
