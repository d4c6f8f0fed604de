"""Generate JetNet-format jets from a trained FPCD run (EMA networks, DDIM, inverse preprocessing)."""

from __future__ import annotations

import sys

import numpy as np

from gsgm.config import FPCDConfig
from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.data.preprocessing import JetPreprocessor
from gsgm.diffusion.point_cloud import sample_point_clouds
from gsgm.training.fpcd_model import FPCDModel


def generate_jets(
    model: FPCDModel,
    preprocessor: JetPreprocessor,
    cfg: FPCDConfig,
    jets_per_class: int,
    classes: list[str],
    num_steps: int,
    seed: int = 0,
    batch_size: int = 10_000,
    progress: bool = False,
    num_buckets: int = 8,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Sample ``jets_per_class`` jets of each class with the run's EMA networks.

    ``num_buckets`` groups each batch by sampled multiplicity and skips the padded slots beyond each
    group's largest jet (see ``sample_point_clouds``); 1 computes every slot.

    ``progress`` shows one bar on stderr counting jets over all classes and batches, with an ETA; it
    advances once per batch (a smaller ``batch_size`` gives a finer ETA). The samples do not depend on
    it.

    Returns:
        {class: (particle_features [N, P, 4], jet_features [N, 4])} in JetNet layout (valid files).
    """
    unknown = [c for c in classes if c not in cfg.data.classes]
    if unknown:
        raise ValueError(f"the run was trained on classes {list(cfg.data.classes)}, not on {unknown}")
    from tqdm import tqdm  # CLI-only dependency, imported lazily

    num_particles = cfg.data.num_particles
    results: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    total = jets_per_class * len(classes)
    bar = tqdm(total=total, unit="jet", desc="sampling", file=sys.stderr, disable=not progress)
    for class_number, jet_class in enumerate(classes):
        label = JET_CLASSES.index(jet_class)
        particle_parts, jet_parts = [], []
        bar.set_postfix_str(f"class {jet_class}")
        for start in range(0, jets_per_class, batch_size):
            count = min(batch_size, jets_per_class - start)
            labels = np.full(count, label, dtype=np.int32)
            onehot = np.eye(len(JET_CLASSES), dtype=np.float32)[labels]
            jets_norm, particles_norm, _ = sample_point_clouds(
                model.jet_denoiser,
                model.particle_denoiser,
                lambda jets, labels=labels: preprocessor.multiplicity_mask(jets, labels),
                onehot,
                num_particles=num_particles,
                num_particle_features=3,
                num_jet_features=4,
                num_steps=num_steps,
                seed=seed * 1_000_003 + class_number * 10_007 + start,
                # No per-step bars: they run the DDIM loop step by step from Python (slower, same
                # numbers); the bar above counts jets instead.
                progress=False,
                schedule=model.schedule,
                num_buckets=min(num_buckets, count),
            )
            particle_features, jet_features = preprocessor.inverse(particles_norm, jets_norm, labels)
            particle_parts.append(particle_features)
            jet_parts.append(jet_features)
            bar.update(count)
        results[jet_class] = (np.concatenate(particle_parts), np.concatenate(jet_parts))
    bar.close()
    return results
