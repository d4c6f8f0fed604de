"""Helpers shared by tests/test_reliability_*.py: a tiny Keras model for the epoch loop, tiny FPCD runs."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

REPO = Path(__file__).resolve().parents[1]


class TinyRegression(keras.Model):
    """y = w x + b fitted by MSE: the smallest model that satisfies :func:`gsgm.training.loop.fit_epochs`."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.eval_counter = keras.Variable(0, dtype="int64", trainable=False, name="eval_counter")

    def call(self, x):
        return self.dense(x)

    @property
    def optimized_variables(self):
        return self.trainable_variables

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self(x) - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": loss}

    def test_step(self, data):
        x, y = data
        return {"loss": tf.reduce_mean(tf.square(self(x) - y))}


def tiny_regression(seed: int = 0) -> TinyRegression:
    keras.utils.set_random_seed(seed)
    model = TinyRegression()
    model(np.zeros((1, 2), np.float32))
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def regression_data(n: int = 64, seed: int = 0, poison_from: int | None = None):
    """(x [n, 2], y [n, 1]); rows from ``poison_from`` on hold NaN (a corrupt batch)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (x @ np.array([[1.5], [-0.5]], np.float32) + 0.1).astype(np.float32)
    if poison_from is not None:
        x[poison_from:] = np.nan
    return x, y


def dataset(x, y, batch_size: int = 16) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def tiny_fpcd_config_file(directory: Path, classes=("q", "z"), epochs: int = 1) -> Path:
    """configs/quick.json shrunk to a model that trains in seconds."""
    from gsgm.config import config_to_dict, load_config

    cfg = load_config(REPO / "configs" / "quick.json")
    cfg.data.classes = list(classes)
    cfg.jet_net.num_blocks, cfg.jet_net.width = 1, 16
    cfg.particle_net.embed_dim, cfg.particle_net.num_transformer_blocks = 8, 1
    cfg.particle_net.num_heads, cfg.particle_net.ffn_dim, cfg.particle_net.output_hidden_dim = 2, 16, 8
    cfg.embedding.fourier_features, cfg.embedding.time_dims, cfg.embedding.cond_dim = 4, [8, 8], 8
    cfg.training.batch_size, cfg.training.epochs = 16, epochs
    cfg.sampling.num_steps = 4
    path = directory / "tiny.json"
    path.write_text(json.dumps(config_to_dict(cfg)))
    return path
