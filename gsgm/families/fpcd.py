"""FPCD (Fast Point Cloud Diffusion): particle jets as point clouds, jet ResNet + particle Transformer.

The family glue: its config (:class:`gsgm.config.FPCDConfig`), its data (JetNet-format files,
reversible preprocessing, :func:`gsgm.data.pipeline.make_dataset`), its networks
(:func:`gsgm.models.build_fpcd_networks`) and training model (:class:`gsgm.training.fpcd_model.FPCDModel`,
L_jet + L_particle, v-prediction on the cosine VP schedule). Training follows the paper (section III)
and the released code: Adamax with cosine-decay learning rate (per rank, scaled by the ranks),
per-tensor clipping, EMA weights, early stopping on a held-out fraction of the training split.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gsgm.config import (
    FPCDConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    resolve_config_path,
    save_config,
)
from gsgm.data.jetnet_format import JET_CLASSES, JetSample
from gsgm.data.loading import load_jets, resolve_data_dir
from gsgm.data.pipeline import make_dataset, train_valid_split
from gsgm.data.preprocessing import JetPreprocessor
from gsgm.data.preprocessing_file import jet_feature_names
from gsgm.models import build_jet_net, build_particle_net
from gsgm.training.distillation_model import DistillationModel
from gsgm.training.distributed import Distributed
from gsgm.training.driver import train_run
from gsgm.training.family import Family, PreparedData
from gsgm.training.fpcd_model import FPCDModel
from gsgm.training.loop import TrainingSetupError
from gsgm.training.run_dir import RunDirectory
from gsgm.utils.provenance import hash_arrays

__all__ = [
    "FPCD",
    "FPCDFamily",
    "SEARCH_SPACE",
    "TrainingData",
    "build_distillation_model",
    "build_fpcd_networks",
    "build_model",
    "load_trained_model",
    "load_training_data",
    "train",
]


#: What the paper tuned (section III): embedding sizes, layer counts and widths, transformer heads
#: and blocks, learning rate. The paper's choices (64 / 8 blocks / 512 x 5 / 16e-4 on 16 ranks, i.e.
#: 1e-4 per rank: the tuned learning rate is per rank like the configs') are inside.
SEARCH_SPACE: dict[str, Any] = {
    "embedding.fourier_features": [16, 32, 64],
    "embedding.time_dims": ["16,32", "32,64", "64,128"],
    "embedding.cond_dim": [32, 64, 128],
    "jet_net.num_blocks": [3, 5, 7],
    "jet_net.width": [128, 256, 512],
    "particle_net.embed_dim": [32, 64, 128],
    "particle_net.num_transformer_blocks": [4, 6, 8],
    "particle_net.num_heads": [1, 2, 4],
    "particle_net.ffn_dim": [64, 128, 256],
    "particle_net.output_hidden_dim": [32, 64, 128],
    "training.learning_rate": {"min": 3e-5, "max": 3e-3, "sampling": "log"},
}


def build_fpcd_networks(
    cfg: FPCDConfig, num_particles: int | None = None, *, any_particle_count: bool = False
) -> tuple[keras.Model, keras.Model]:
    """(jet_net, particle_net) for ``cfg``, with its embedding sizes and seeds.

    ``num_particles`` overrides ``cfg.data.num_particles`` as the particle net's slot count;
    ``any_particle_count=True`` builds it for any slot count instead (its weights do not depend on
    P), which lets the sampler crop trailing padded slots.

    The class one-hot is always ``len(JET_CLASSES)`` wide (even when ``cfg.data.classes`` is a subset),
    so one trained model can be conditioned on any class index of the shared label convention.
    The two networks get different Fourier-frequency seeds (derived from ``cfg.training.seed``).
    The jet features are JetNet's four, plus the particles' summed pt_rel with ``cfg.data.pt_sum`` and
    their mass with ``cfg.data.constituent_mass``.
    """
    num_classes = len(JET_CLASSES)
    num_jet_features = len(jet_feature_names(cfg.data.pt_sum, cfg.data.constituent_mass))
    jet_net = build_jet_net(
        cfg.jet_net,
        num_classes,
        embedding=cfg.embedding,
        seed=cfg.training.seed,
        num_jet_features=num_jet_features,
    )
    particle_net = build_particle_net(
        cfg.particle_net,
        None if any_particle_count else (cfg.data.num_particles if num_particles is None else num_particles),
        num_jet_features=num_jet_features,
        num_classes=num_classes,
        embedding=cfg.embedding,
        seed=cfg.training.seed + 1,
    )
    return jet_net, particle_net


def build_model(cfg: FPCDConfig, num_particles: int, seed: int) -> FPCDModel:
    """Construct the FPCD training model (networks + EMA copies) for ``cfg`` with fixed initial weights."""
    keras.utils.set_random_seed(seed)
    jet_net, particle_net = build_fpcd_networks(cfg, num_particles, any_particle_count=True)
    return FPCDModel(jet_net, particle_net, ema_decay=cfg.training.ema_decay, seed=seed)


@dataclass
class TrainingData:
    """The normalised training and validation arrays of a run (before sharding over ranks).

    ``train_arrays``/``valid_arrays`` are (particles [N, P, 3], jets [N, J], mask [N, P], labels [N])
    as :func:`gsgm.data.pipeline.make_dataset` takes them; ``train_idx``/``valid_idx`` index ``sample``.
    """

    sample: JetSample
    sha256: str
    train_idx: np.ndarray
    valid_idx: np.ndarray
    preprocessor: JetPreprocessor
    train_arrays: list[np.ndarray]
    valid_arrays: list[np.ndarray]


def load_training_data(
    cfg: FPCDConfig,
    data: str,
    max_jets_per_class: int | None = None,
    preprocessor: JetPreprocessor | None = None,
) -> TrainingData:
    """Load the training split, hold out the validation jets and normalise both.

    The split depends only on ``cfg.training.seed``; the preprocessing is fitted on the training jets
    unless ``preprocessor`` (a resumed run's) is given. Deterministic, so every rank computes the same:
    the multiplicity's dequantisation (``data.jet_transform="quantile"``) is seeded by the run's seed.
    """
    sample = load_jets(
        resolve_data_dir(data),
        list(cfg.data.classes),
        cfg.data.num_particles,
        split="train",
        max_jets_per_class=max_jets_per_class,
    )
    sha256 = hash_arrays([sample.particles, sample.jets, sample.labels])
    train_idx, valid_idx = train_valid_split(len(sample), cfg.training.valid_fraction, cfg.training.seed)
    if preprocessor is None:
        preprocessor = JetPreprocessor.fit(
            sample.select(train_idx),
            recenter=cfg.data.recenter,
            jet_transform=cfg.data.jet_transform,
            pt_feature=cfg.data.pt_feature,
            pt_sum=cfg.data.pt_sum,
            constituent_mass=cfg.data.constituent_mass,
            seed=cfg.training.seed,
        )
    else:
        # The networks are built from the config: their jet width must be the preprocessor's.
        for key in ("pt_sum", "constituent_mass"):
            if getattr(preprocessor, key) != getattr(cfg.data, key):
                raise TrainingSetupError(
                    f"data.{key} is {getattr(cfg.data, key)} in the config but the run's preprocessing file "
                    f"was fitted with {key}={getattr(preprocessor, key)}; resume with the run's own config"
                )
    particles, jets, mask = preprocessor.transform(sample, seed=cfg.training.seed)
    arrays = (particles, jets, mask, sample.labels)
    return TrainingData(
        sample=sample,
        sha256=sha256,
        train_idx=train_idx,
        valid_idx=valid_idx,
        preprocessor=preprocessor,
        train_arrays=[a[train_idx] for a in arrays],
        valid_arrays=[a[valid_idx] for a in arrays],
    )


def build_distillation_model(
    cfg: FPCDConfig, teacher: FPCDModel, num_steps: int, seed: int
) -> DistillationModel:
    """A student for ``num_steps`` steps, initialised (raw and EMA weights) with the teacher's EMA weights.

    Args:
        cfg: the config of the teacher's run (the student has the same architecture).
        teacher: a loaded FPCDModel (e.g. from :func:`load_trained_model`).
        num_steps: the student's sampling steps (half the teacher's).
        seed: seeds the student's noise stream (and any dropout).
    """
    # Networks built exactly as a training run builds them, so the student has the teacher's layout.
    fresh = build_model(cfg, cfg.data.num_particles, seed)
    jet_net, particle_net = fresh.jet_net, fresh.particle_net
    jet_net.set_weights(teacher.ema_jet_net.get_weights())
    particle_net.set_weights(teacher.ema_particle_net.get_weights())
    return DistillationModel(
        jet_net, particle_net, teacher, num_steps, ema_decay=cfg.training.ema_decay, seed=seed
    )


def load_trained_model(run_dir: str | os.PathLike) -> tuple[FPCDModel, JetPreprocessor, FPCDConfig]:
    """Rebuild the model of a run and load its inference weights (best epoch, else latest checkpoint)."""
    run = RunDirectory(run_dir).require()
    cfg = load_config(run.config_path)
    weights = run.inference_weights()
    preprocessor = JetPreprocessor.load(run.preprocessing_path)
    model = build_model(cfg, cfg.data.num_particles, cfg.training.seed)
    model.load_weights(weights)
    return model, preprocessor, cfg


class FPCDFamily(Family):
    """Point-cloud jets (JetNet format): the FPCD paper's model."""

    name = "fpcd"
    option_names = ("num_particles",)
    learning_rate_schedule = "cosine"

    def load_config(self, path: str | os.PathLike) -> FPCDConfig:
        return load_config(resolve_config_path(path))

    def save_config(self, cfg: FPCDConfig, path: str | os.PathLike) -> None:
        save_config(cfg, path)

    def config_to_dict(self, cfg: FPCDConfig) -> dict[str, Any]:
        return config_to_dict(cfg)

    def check_options(self, cfg: FPCDConfig, options: Mapping[str, Any]) -> dict[str, Any]:
        num_particles = options.get("num_particles")
        if num_particles is not None and num_particles != cfg.data.num_particles:
            raise TrainingSetupError(
                f"--particles {num_particles} does not match the config's data.num_particles="
                f"{cfg.data.num_particles}; use a config made for {num_particles} particles"
            )
        # Recorded as the config's value: the option only checks it.
        return {}

    def prepare_data(
        self,
        cfg: FPCDConfig,
        data: str,
        *,
        max_per_class: int | None,
        options: Mapping[str, Any],
        resume_run: RunDirectory | None,
    ) -> PreparedData:
        preprocessor = JetPreprocessor.load(resume_run.preprocessing_path) if resume_run else None
        prepared = load_training_data(cfg, data, max_per_class, preprocessor)
        classes = list(cfg.data.classes)
        return PreparedData(
            config=cfg,
            train_arrays=tuple(prepared.train_arrays),
            valid_arrays=tuple(prepared.valid_arrays),
            train_index=prepared.train_idx,
            sha256=prepared.sha256,
            write_files=lambda run: prepared.preprocessor.save(run.preprocessing_path),
            metadata={
                "num_jets": len(prepared.sample),
                "num_train": int(len(prepared.train_idx)),
                "num_valid": int(len(prepared.valid_idx)),
                "num_particles": cfg.data.num_particles,
                "classes": classes,
                "class_index": {c: JET_CLASSES.index(c) for c in classes},
            },
            context={"training_data": prepared},
        )

    def make_dataset(
        self,
        arrays: tuple[np.ndarray, ...],
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        num_ranks: int = 1,
        index: np.ndarray | None = None,
    ) -> tf.data.Dataset:
        return make_dataset(
            *arrays,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            rank=rank,
            num_ranks=num_ranks,
            index=index,
        )

    def build_training_model(
        self, cfg: FPCDConfig, prepared: PreparedData, *, options: Mapping[str, Any], steps_per_epoch: int
    ) -> FPCDModel:
        return build_model(cfg, cfg.data.num_particles, cfg.training.seed)

    def config_from_dict(self, data: dict[str, Any], source: str = "<dict>") -> FPCDConfig:
        return config_from_dict(data, source)

    def default_search_space(self) -> dict[str, Any]:
        return copy.deepcopy(SEARCH_SPACE)

    def check_search_space(self, base: FPCDConfig, space: Mapping[str, Any]) -> None:
        widths = space.get("particle_net.embed_dim", [base.particle_net.embed_dim])
        heads = space.get("particle_net.num_heads", [base.particle_net.num_heads])
        if isinstance(widths, list) and isinstance(heads, list):
            bad = [(w, h) for w, h in product(widths, heads) if w % h]
            if bad:
                raise TrainingSetupError(
                    "search space: particle_net.num_heads must divide particle_net.embed_dim; failing pairs "
                    f"(embed_dim, num_heads): {bad}"
                )

    def load_run(self, run_dir: str | os.PathLike) -> tuple[FPCDModel, FPCDConfig]:
        model, _, cfg = load_trained_model(run_dir)
        return model, cfg

    def build_distillation_model(
        self, cfg: FPCDConfig, teacher: FPCDModel, num_steps: int, seed: int
    ) -> DistillationModel:
        return build_distillation_model(cfg, teacher, num_steps, seed)


#: The registered instance (``gsgm.families.get_family("fpcd")``).
FPCD = FPCDFamily()


def train(
    config: str | os.PathLike | FPCDConfig | None,
    data: str,
    out: str | os.PathLike,
    num_particles: int | None = None,
    epochs: int | None = None,
    resume: bool | str = False,
    seed: int | None = None,
    max_jets_per_class: int | None = None,
    verbose: int = 1,
    num_replicas: int | None = None,
    distributed: Distributed | None = None,
    debug_dump: str | os.PathLike | None = None,
) -> RunDirectory:
    """Train FPCD on the JetNet files in ``data`` (a directory or ``"builtin"``) into run directory ``out``.

    ``config`` None means :data:`gsgm.config.DEFAULT_CONFIG` for a new run and the run's own config
    when resuming; ``num_particles`` (30 or 150) must match the config if given. Everything else is
    :func:`gsgm.training.driver.train_run`.
    """
    if config is None and not _holds_run(out, resume):
        config = resolve_config_path(None)
    return train_run(
        FPCD,
        config,
        data,
        out,
        epochs=epochs,
        resume=resume,
        seed=seed,
        max_per_class=max_jets_per_class,
        options={"num_particles": num_particles},
        verbose=verbose,
        num_replicas=num_replicas,
        distributed=distributed,
        debug_dump=debug_dump,
    )


def _holds_run(out: str | os.PathLike, resume: bool | str) -> bool:
    return resume is True or (resume == "auto" and RunDirectory(out).exists())
