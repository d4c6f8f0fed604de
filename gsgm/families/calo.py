"""The calorimeter-shower family ("calo"): CaloClouds-style point-cloud diffusion of photon showers.

Its config is :class:`gsgm.config.CaloConfig`; its data are point-cloud shower files
(:mod:`gsgm.data.calo_format`; ``builtin`` is the shipped GFlash sample
``gsgm/data/builtin/calo_showers.h5``), normalised by :class:`gsgm.data.calo_preprocessing.CaloPreprocessor`;
its training model is :class:`gsgm.training.calo_model.CaloModel` (EDM point model + shower-flow model)
and its distillation is consistency distillation of the point model straight to one step
(:class:`gsgm.training.calo_model.CaloConsistencyModel`): ``gsgm distill --run RUN`` writes the single
stage ``RUN/distill/steps-001``. Sampling is :mod:`gsgm.generation.calo`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gsgm.config import CALO_FAMILY, CaloConfig
from gsgm.config.base import validate_section
from gsgm.config.registry import config_from_any_dict, load_any_config, save_any_config
from gsgm.data.calo_format import CaloSample, read_point_cloud_file
from gsgm.data.calo_preprocessing import CaloPreprocessor
from gsgm.data.loading import builtin_data_dir
from gsgm.data.pipeline import train_valid_split
from gsgm.models.calo_nets import build_calo_networks
from gsgm.training.calo_model import CaloConsistencyModel, CaloModel
from gsgm.training.family import Family, PreparedData
from gsgm.training.loop import TrainingSetupError
from gsgm.training.run_dir import RunDirectory
from gsgm.utils.provenance import hash_arrays

__all__ = ["BUILTIN_SHOWERS", "CALO", "CaloFamily", "load_showers", "resolve_shower_file"]

#: The shipped sample (see gsgm/data/builtin/README.md for the command that made it).
BUILTIN_SHOWERS = "calo_showers.h5"


def resolve_shower_file(data: str | os.PathLike) -> Path:
    """``"builtin"`` -> the shipped shower file; a directory -> its calo_showers.h5; else the path."""
    if str(data) == "builtin":
        return builtin_data_dir() / BUILTIN_SHOWERS
    path = Path(data).expanduser()
    return path / BUILTIN_SHOWERS if path.is_dir() else path


def load_showers(data: str | os.PathLike, max_showers: int | None = None) -> CaloSample:
    """Read (and validate) the point-cloud shower file named by ``data``."""
    return read_point_cloud_file(resolve_shower_file(data), max_showers)


def _arrays(
    sample: CaloSample, pre: CaloPreprocessor, rng: np.random.Generator | None
) -> tuple[np.ndarray, ...]:
    return (
        pre.transform_points(sample, rng),
        sample.mask,
        pre.conditions(sample.energies, sample.num_points),
        pre.transform_flow(sample),
        pre.energy_condition(sample.energies),
    )


class CaloFamily(Family):
    """Photon showers as point clouds (x, y, layer, E), conditioned on the incident energy."""

    name = CALO_FAMILY
    learning_rate_schedule = "cosine"
    _KEYS = ("points", "mask", "cond", "flow", "energy")

    # -- configs
    def load_config(self, path: str | os.PathLike) -> CaloConfig:
        family, cfg = load_any_config(path)
        if family != CALO_FAMILY:
            raise TrainingSetupError(f"{path} is a {family} config, not a {CALO_FAMILY} one")
        return cfg

    def save_config(self, cfg: CaloConfig, path: str | os.PathLike) -> None:
        save_any_config(cfg, path)

    def config_to_dict(self, cfg: CaloConfig) -> dict[str, Any]:
        return cfg.model_dump()

    def config_from_dict(self, data: dict[str, Any], source: str = "<dict>") -> CaloConfig:
        if "family" in data:
            return config_from_any_dict(data, source, family=CALO_FAMILY)[1]
        return validate_section(CaloConfig, data, source)

    def default_search_space(self) -> dict[str, Any]:
        return {
            "point_net.embed_dim": [32, 64, 128],
            "point_net.num_transformer_blocks": [1, 2, 4],
            "flow_net.width": [128, 256, 512],
            "training.learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log"},
        }

    def distillation_start_steps(self, cfg: CaloConfig) -> int:
        """One consistency-distillation stage, from the EDM teacher straight to one step."""
        return 2

    # -- data
    def prepare_data(self, cfg, data, *, max_per_class, options, resume_run) -> PreparedData:
        sample = load_showers(data, max_per_class or cfg.data.max_showers)
        if len(sample) < 2:
            raise TrainingSetupError(f"{resolve_shower_file(data)} holds {len(sample)} shower(s); need >= 2")
        train_idx, valid_idx = train_valid_split(len(sample), cfg.training.valid_fraction, cfg.training.seed)
        if resume_run is not None:
            pre = CaloPreprocessor.load(resume_run.preprocessing_path)
        else:
            pre = CaloPreprocessor.fit(sample.select(train_idx))
        # Dequantization noise is drawn once from the training seed: resumed runs see the same arrays.
        rng = np.random.default_rng([cfg.training.seed, 0xCA10]) if cfg.data.dequantize else None
        arrays = _arrays(sample, pre, rng)
        return PreparedData(
            config=cfg,
            train_arrays=tuple(a[train_idx] for a in arrays),
            valid_arrays=tuple(a[valid_idx] for a in arrays),
            train_index=train_idx,
            sha256=hash_arrays([sample.energies, sample.points, sample.num_points]),
            write_files=lambda run: pre.save(run.preprocessing_path),
            metadata={
                "num_showers": len(sample),
                "num_train": int(len(train_idx)),
                "num_valid": int(len(valid_idx)),
                "max_points": int(sample.points.shape[1]),
                "data_file": str(resolve_shower_file(data)),
            },
            context={"preprocessor": pre},
        )

    def make_dataset(self, arrays, *, batch_size, shuffle, seed, rank=0, num_ranks=1, index=None):
        shard = np.arange(rank, len(arrays[0]), num_ranks)
        tensors = {key: tf.constant(a[shard]) for key, a in zip(self._KEYS, arrays, strict=True)}
        if index is not None:
            tensors["index"] = tf.constant(np.asarray(index, np.int64)[shard])
        order = np.random.default_rng(seed).permutation(len(shard)) if shuffle else np.arange(len(shard))
        ds = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        return ds.map(lambda i: {k: tf.gather(v, i) for k, v in tensors.items()})

    # -- models
    def build_training_model(self, cfg, prepared, *, options, steps_per_epoch) -> CaloModel:
        num_flow = 2 + 2 * self._num_layers(cfg, prepared)
        point_net, flow_net = build_calo_networks(cfg, num_flow)
        return CaloModel(point_net, flow_net, cfg.diffusion, cfg.training.ema_decay, cfg.training.seed)

    @staticmethod
    def _num_layers(cfg, prepared) -> int:
        if prepared is not None:
            return prepared.context["preprocessor"].num_layers
        raise TrainingSetupError("the number of layers comes from the data's preprocessing")

    def _load_base(self, run: RunDirectory) -> tuple[CaloModel, CaloConfig, CaloPreprocessor]:
        cfg = self.load_config(run.config_path)
        pre = CaloPreprocessor.load(run.preprocessing_path)
        point_net, flow_net = build_calo_networks(cfg, 2 + 2 * pre.num_layers)
        model = CaloModel(point_net, flow_net, cfg.diffusion, cfg.training.ema_decay, cfg.training.seed)
        model.load_weights(run.inference_weights())
        return model, cfg, pre

    def load_run(self, run_dir: str | os.PathLike) -> tuple[keras.Model, CaloConfig]:
        """The run's model: a CaloModel, or for a distilled stage a CaloConsistencyModel whose
        ``flow_denoiser`` is the base run's shower flow. ``model.preprocessor`` is attached."""
        run = RunDirectory(run_dir).require()
        distillation = run.read_metadata().get("distillation")
        if not distillation:
            model, cfg, pre = self._load_base(run)
            model.preprocessor = pre
            return model, cfg
        base = RunDirectory(Path(run.path).resolve().parents[1]).require()  # RUN/distill/steps-001
        teacher, _, pre = self._load_base(base)
        cfg = self.load_config(run.config_path)
        model = self.build_distillation_model(cfg, teacher, 1, cfg.training.seed)
        model.load_weights(run.inference_weights())
        model.flow_denoiser, model.preprocessor = teacher.flow_denoiser, pre
        return model, cfg

    def build_distillation_model(
        self, cfg, teacher: CaloModel, num_steps: int, seed: int
    ) -> CaloConsistencyModel:
        if num_steps != 1:
            raise TrainingSetupError(
                f"the {CALO_FAMILY} family distils by consistency distillation straight to one step, not to "
                f"{num_steps}: run gsgm distill --run RUN (--until 1)"
            )
        keras.utils.set_random_seed(seed)
        net = keras.models.clone_model(teacher.ema_point_net)
        net.set_weights(teacher.ema_point_net.get_weights())
        d = cfg.distillation
        return CaloConsistencyModel(
            net, teacher.point_denoiser, cfg.diffusion, num_points=d.num_points, target_ema=d.target_ema,
            solver=d.solver, seed=seed,
        )  # fmt: skip


#: The registered instance (``gsgm.families.get_family("calo")``).
CALO = CaloFamily()
