"""The ``phase_space`` family: generative models of massless N-particle phase space (RAMBO q-space).

Processes: muon decay and q qbar g (N = 3, MLP score network) and the antenna (N = 10, eq. 21; the
permutation-equivariant transformer, ``model.network: "transformer"``).

Data (``gsgm train --data``): ``generated`` (the config's ``data`` section: process, number of events,
seed, cut; same seed, same events), ``builtin`` (the shipped sample of the config's process) or an
event file (``gsgm make-phase-space``). Events are split into training and validation events
(``training.valid_fraction``, ``training.seed``), then

* q-space methods: mapped to q-space by the config's embedding (section II.4), which is drawn once
  from ``data.embedding_seed`` for all events (train and valid share the same (b, x));
* p-space methods: their 3-momenta divided by one scale (the RMS component of the training events).

A run directory holds, besides what every run has, ``preprocessing.json``: the representation, the
scale and, for flows, the fitted Gaussian prior. Samplers (``gsgm sample``) write event files
(:mod:`gsgm.data.phase_space_files`): q-space samples go through RAMBO's map in float64 (exact
conservation), p-space samples get E_i = |p_i| (no conservation by construction).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gsgm.config import validate_section
from gsgm.config.phase_space import FAMILY, PhaseSpaceConfig
from gsgm.config.registry import config_from_any_dict, save_any_config
from gsgm.data.phase_space_files import read_events, resolve_events_path
from gsgm.data.phase_space_processes import PROCESSES, generate_events
from gsgm.data.pipeline import train_valid_split
from gsgm.data.rambo import embed, massless, rambo_map
from gsgm.diffusion.flow_matching import GaussianPrior
from gsgm.diffusion.qspace import LangevinSchedule
from gsgm.models.phase_space_mlp import build_phase_space_mlp
from gsgm.models.phase_space_transformer import build_phase_space_transformer
from gsgm.training.family import Family, PreparedData
from gsgm.training.phase_space_model import PhaseSpaceTrainingModel
from gsgm.training.run_dir import RunDirectory
from gsgm.utils.atomic import write_json_atomic
from gsgm.utils.provenance import hash_arrays

__all__ = ["PHASE_SPACE", "PhaseSpaceFamily", "events_from_samples", "langevin_schedule"]


def langevin_schedule(cfg: PhaseSpaceConfig) -> LangevinSchedule:
    """The q-space Langevin schedule of a config's ``diffusion`` section."""
    d = cfg.diffusion
    return LangevinSchedule.linear(
        d.num_steps, d.step_min, d.step_max, d.gaussian_steps, d.gaussian_step_size
    )


def is_qspace(cfg: PhaseSpaceConfig) -> bool:
    return cfg.model.method.startswith("qspace")


def load_process_events(cfg: PhaseSpaceConfig, data: str) -> tuple[np.ndarray, str]:
    """(events [n, N, 4], description of the source) for ``--data`` generated | builtin | FILE."""
    d = cfg.data
    if data == "generated":
        return generate_events(d.process, d.num_events, d.seed, d.y_min, d.xi_max), "generated"
    path = resolve_events_path(data, d.process)
    events, attrs = read_events(path)
    if attrs.get("process") not in (None, d.process):
        raise ValueError(f"{path} holds {attrs['process']} events, the config's data.process is {d.process}")
    if events.shape[1] != PROCESSES[d.process]:
        raise ValueError(
            f"{path}: {events.shape[1]} particles per event, {d.process} has {PROCESSES[d.process]}"
        )
    return events, str(path)


def representation(cfg: PhaseSpaceConfig, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x [m, N, 3] float64, source row [m]): q-space vectors by the config's embedding, or 3-momenta."""
    if is_qspace(cfg):
        rng = np.random.default_rng(cfg.data.embedding_seed)
        return embed(events, cfg.data.embedding, rng, cfg.data.copies)
    return events[..., 1:].copy(), np.arange(len(events))


class PhaseSpaceFamily(Family):
    name = FAMILY
    learning_rate_schedule = "cosine"

    def load_config(self, path: str | os.PathLike) -> PhaseSpaceConfig:
        return config_from_any_dict(json.loads(Path(path).read_text()), str(path), family=FAMILY)[1]

    def save_config(self, cfg: PhaseSpaceConfig, path: str | os.PathLike) -> None:
        save_any_config(cfg, path)

    def config_to_dict(self, cfg: PhaseSpaceConfig) -> dict[str, Any]:
        return cfg.model_dump()

    def config_from_dict(self, data: dict[str, Any], source: str = "<dict>") -> PhaseSpaceConfig:
        return validate_section(PhaseSpaceConfig, data, source)

    def default_search_space(self) -> dict[str, Any]:
        return {
            "model.width": [64, 128, 256],
            "training.learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log"},
        }

    def prepare_data(self, cfg, data, *, max_per_class, options, resume_run) -> PreparedData:
        events, source = load_process_events(cfg, data)
        if max_per_class is not None:
            events = events[:max_per_class]
        x, rows = representation(cfg, events)
        train_ev, valid_ev = train_valid_split(len(events), cfg.training.valid_fraction, cfg.training.seed)
        is_train = np.zeros(len(events), bool)
        is_train[train_ev] = True
        train_idx, valid_idx = np.flatnonzero(is_train[rows]), np.flatnonzero(~is_train[rows])
        scale = 1.0 if is_qspace(cfg) else float(np.sqrt(np.mean(x[train_idx] ** 2)))
        x = (x / scale).astype(np.float32)
        prior = GaussianPrior.fit(x[train_idx]) if cfg.model.method.endswith("flow") else None
        preprocessing = {
            "kind": FAMILY,
            "representation": "q" if is_qspace(cfg) else "p",
            "scale": scale,
            "prior": None if prior is None else prior.to_dict(),
        }

        def write_files(run: RunDirectory) -> None:
            write_json_atomic(run.preprocessing_path, preprocessing)

        return PreparedData(
            config=cfg,
            train_arrays=(x[train_idx],),
            valid_arrays=(x[valid_idx],),
            train_index=train_idx,
            sha256=hash_arrays([x]),
            write_files=write_files,
            metadata={
                "process": cfg.data.process,
                "data_source": source,
                "num_events": int(len(events)),
                "num_train": int(len(train_idx)),
                "num_valid": int(len(valid_idx)),
            },
            context={"preprocessing": preprocessing},
        )

    def make_dataset(self, arrays, *, batch_size, shuffle, seed, rank=0, num_ranks=1, index=None):
        (x,) = arrays
        shard = np.arange(rank, len(x), num_ranks)
        tensors = {"x": tf.constant(x[shard])}
        if index is not None:
            tensors["index"] = tf.constant(np.asarray(index, np.int64)[shard])
        order = np.random.default_rng(seed).permutation(len(shard)) if shuffle else np.arange(len(shard))
        ds = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        return ds.map(lambda i: {k: tf.gather(v, i) for k, v in tensors.items()})

    def _model(self, cfg: PhaseSpaceConfig, preprocessing: dict[str, Any]) -> PhaseSpaceTrainingModel:
        n = PROCESSES[cfg.data.process]
        m = cfg.model

        def build():
            if m.network == "transformer":
                return build_phase_space_transformer(
                    n, m.width, m.depth, m.num_heads, m.time_dim, seed=cfg.training.seed
                )
            return build_phase_space_mlp(n, m.width, m.depth, m.time_dim, seed=cfg.training.seed)

        prior = preprocessing.get("prior")
        return PhaseSpaceTrainingModel(
            build(),
            build(),
            method=m.method,
            langevin=langevin_schedule(cfg),
            prior=None if prior is None else GaussianPrior.from_dict(prior),
            time_weighting=m.time_weighting,
            loss=m.loss,
            ema_decay=cfg.training.ema_decay,
            seed=cfg.training.seed,
        )

    def build_training_model(self, cfg, prepared, *, options, steps_per_epoch) -> keras.Model:
        return self._model(cfg, prepared.context["preprocessing"])

    def load_run(self, run_dir: str | os.PathLike) -> tuple[PhaseSpaceTrainingModel, PhaseSpaceConfig]:
        run = RunDirectory(run_dir).require()
        cfg = self.load_config(run.config_path)
        preprocessing = json.loads(Path(run.preprocessing_path).read_text())
        model = self._model(cfg, preprocessing)
        model.load_weights(run.inference_weights())
        model.preprocessing = preprocessing
        return model, cfg


PHASE_SPACE = PhaseSpaceFamily()


def events_from_samples(x: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """Samples x [n, N, 3] -> events [n, N, 4] float64: RAMBO's map for q, E = |p| for 3-momenta."""
    x = np.asarray(x, np.float64) * float(preprocessing["scale"])
    if preprocessing["representation"] == "q":
        return rambo_map(massless(x))[0]
    return massless(x)
