"""Electron-proton DIS events as images: a learned-variance DDPM on a circular U-Net (family ``dis``).

Data (``gsgm train --data``): a DIS event file (:mod:`gsgm.data.dis_format`), a directory holding
``dis_ep105.hdf5``, or ``builtin`` (the shipped sample). The first 80 % of its events (``split_events``
"train") are imaged (``data.num_pixels``), rescaled to z' in [-1, 1] (:class:`ZRescaling`) and split
into training and validation images; the last 20 % stay for evaluation. A run directory holds,
besides what every run has::

    RUN/preprocessing.json   image geometry (num_pixels, eta_max, sqrt_s) and the rescaling parameters

Learning rate: constant (paper: AdamW 1e-4), per rank like every family. No family options.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gsgm.config.dis import DisConfig, load_dis_config, save_dis_config
from gsgm.config.registry import config_from_any_dict
from gsgm.data.dis_format import read_dis_file, resolve_dis_file, split_events
from gsgm.data.dis_images import ZRescaling, events_to_images, image_sparsity, make_dis_dataset
from gsgm.data.pipeline import train_valid_split
from gsgm.diffusion import DiscreteCosineSchedule
from gsgm.diffusion.importance import LossSecondMomentSampler
from gsgm.models.unet import build_unet
from gsgm.training.dis_model import DisDiffusionModel
from gsgm.training.family import Family, PreparedData
from gsgm.training.run_dir import RunDirectory
from gsgm.utils.atomic import write_json_atomic
from gsgm.utils.provenance import hash_arrays

__all__ = ["DIS", "DisFamily", "build_dis_model", "dis_rescaling", "load_dis_run"]

NAME = "dis"


def dis_rescaling(cfg: DisConfig) -> ZRescaling:
    """The z map of the config (``data.rescaling``)."""
    return ZRescaling(**cfg.data.rescaling.model_dump())


def _net(cfg: DisConfig, name: str) -> keras.Model:
    unet = cfg.unet
    return build_unet(
        unet,
        cfg.data.num_pixels,
        num_classes=None,
        seed=cfg.training.seed,
        name=name,
        in_channels=3,
        out_channels=6,  # eps and the variance weight v per channel
        padding=unet.padding,
        attention_resolutions=tuple(unet.attention_resolutions),
        attention_heads=unet.attention_heads,
        time_name="t",
    )


def build_dis_model(cfg: DisConfig) -> DisDiffusionModel:
    """The training model of ``cfg`` with fixed initial weights (from ``training.seed``)."""
    keras.utils.set_random_seed(cfg.training.seed)
    net, ema = _net(cfg, "dis_net"), _net(cfg, "dis_ema")
    d = cfg.diffusion
    importance = LossSecondMomentSampler(d.num_steps, d.importance_history, d.importance_uniform)
    return DisDiffusionModel(
        net,
        ema,
        DiscreteCosineSchedule(num_steps=d.num_steps),
        vlb_weight=d.vlb_weight,
        importance=importance if d.importance_sampling else None,
        ema_decay=d.ema_decay,
        seed=cfg.training.seed,
    )


def load_dis_run(run_dir: str | os.PathLike) -> tuple[DisDiffusionModel, DisConfig]:
    """A run's model with its inference weights (best epoch, else the latest checkpoint) and config."""
    run = RunDirectory(run_dir).require()
    cfg = load_dis_config(run.config_path)
    model = build_dis_model(cfg)
    model.load_weights(run.inference_weights())
    return model, cfg


class DisFamily(Family):
    name = NAME
    learning_rate_schedule = "constant"

    def load_config(self, path: str | os.PathLike) -> DisConfig:
        return load_dis_config(path)

    def save_config(self, cfg: DisConfig, path: str | os.PathLike) -> None:
        save_dis_config(cfg, path)

    def config_to_dict(self, cfg: DisConfig) -> dict[str, Any]:
        return cfg.model_dump()

    def config_from_dict(self, data: dict[str, Any], source: str = "<dict>") -> DisConfig:
        return config_from_any_dict(data, source, family=NAME)[1]  # type: ignore[return-value]

    def default_search_space(self) -> dict[str, Any]:
        return {
            "unet.base_channels": [16, 32, 64],
            "training.learning_rate": {"min": 3e-5, "max": 1e-3, "sampling": "log"},
        }

    def prepare_data(
        self,
        cfg: DisConfig,
        data: str,
        *,
        max_per_class: int | None,
        options: Mapping[str, Any],
        resume_run: RunDirectory | None,
    ) -> PreparedData:
        path = resolve_dis_file(data)
        events = split_events(read_dis_file(path), "train")
        limit = min(x for x in (cfg.data.max_events, max_per_class, len(events)) if x is not None)
        events = events.select(slice(0, limit))
        z_images = events_to_images(events, cfg.data.num_pixels)
        images = dis_rescaling(cfg).forward(z_images)
        train_idx, valid_idx = train_valid_split(len(images), cfg.training.valid_fraction, cfg.training.seed)

        def write_files(run: RunDirectory) -> None:
            write_json_atomic(
                run.preprocessing_path,
                {
                    "kind": "dis",
                    "num_pixels": cfg.data.num_pixels,
                    "eta_max": events.eta_max,
                    "sqrt_s": events.sqrt_s,
                    "channels": ["pi+", "e-", "K+"],
                    "rescaling": cfg.data.rescaling.model_dump(),
                    "data_file": str(path),
                },
            )

        return PreparedData(
            config=cfg,
            train_arrays=(images[train_idx],),
            valid_arrays=(images[valid_idx],),
            train_index=train_idx,
            sha256=hash_arrays([images]),
            write_files=write_files,
            metadata={
                "num_events": int(len(images)),
                "num_train": int(len(train_idx)),
                "num_valid": int(len(valid_idx)),
                "sparsity": image_sparsity(z_images),
                "eta_max": events.eta_max,
                "sqrt_s": events.sqrt_s,
            },
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
        (images,) = arrays
        return make_dis_dataset(
            images, batch_size, shuffle=shuffle, seed=seed, rank=rank, num_ranks=num_ranks, index=index
        )

    def build_training_model(
        self, cfg: DisConfig, prepared: PreparedData, *, options: Mapping[str, Any], steps_per_epoch: int
    ) -> DisDiffusionModel:
        return build_dis_model(cfg)

    def load_run(self, run_dir: str | os.PathLike) -> tuple[keras.Model, DisConfig]:
        return load_dis_run(run_dir)


#: The registered instance (``gsgm.families.get_family("dis")``).
DIS = DisFamily()
