"""The small CNN jet-image classifier whose embedding the image FD uses, and its shipped weights.

The paper reports FID with Inception features; Inception weights cannot be downloaded here, and an
ImageNet network is a poor judge of 25 x 25 jet images anyway, so gsgm trains its own classifier on
truth images (:func:`train_image_classifier`, ``scripts/train_image_classifier.py``) and ships the
weights in ``gsgm/evaluation/weights/`` (:data:`CLASSIFIER_WEIGHTS`, with a JSON record beside them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.utils.atomic import write_json_atomic

__all__ = [
    "CLASSIFIER_WEIGHTS",
    "build_image_classifier",
    "classifier_embeddings",
    "classifier_info",
    "load_image_classifier",
    "train_image_classifier",
]

CLASSIFIER_WEIGHTS = Path(__file__).resolve().parent / "weights" / "jet_image_classifier.weights.h5"


def build_image_classifier(
    num_pixels: int = 25, num_classes: int = len(JET_CLASSES), embedding_dim: int = 32
):
    """Small CNN jet-image classifier; its ``embedding`` layer (``embedding_dim`` wide) feeds the FD.

    ``[B, N, N]`` or ``[B, N, N, 1]`` pt_rel images -> class logits ``[B, num_classes]``. The first
    layer takes the square root of the intensities, so soft radiation is visible next to the hard
    core. About 90 k parameters (a weights file of ~0.4 MB).
    """
    import keras
    from keras import ops

    inputs = keras.Input((num_pixels, num_pixels), name="images")
    h = keras.layers.Reshape((num_pixels, num_pixels, 1))(inputs)
    h = keras.layers.Activation(lambda x: ops.sqrt(ops.relu(x)), name="sqrt_intensity")(h)
    for i, width in enumerate((16, 32)):
        h = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i}a")(h)
        h = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i}b")(h)
        h = keras.layers.MaxPooling2D(2, name=f"pool{i}")(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(64, activation="relu", name="dense")(h)
    embedding = keras.layers.Dense(embedding_dim, activation="relu", name="embedding")(h)
    logits = keras.layers.Dense(num_classes, name="logits")(embedding)
    return keras.Model(inputs, logits, name="jet_image_classifier")


def load_image_classifier(path: str | os.PathLike = CLASSIFIER_WEIGHTS):
    """The classifier with weights from ``path`` (default: the shipped file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"classifier weights not found: {path}; train them with python scripts/train_image_classifier.py"
        )
    info = classifier_info(path)
    model = build_image_classifier(info.get("num_pixels", 25), embedding_dim=info.get("embedding_dim", 32))
    model.load_weights(path)
    return model


def _info_path(weights: Path) -> Path:
    return weights.with_name(weights.name.replace(".weights.h5", ".json"))


def classifier_info(weights: str | os.PathLike) -> dict[str, Any]:
    """The JSON record written next to classifier weights (empty dict if there is none)."""
    info = _info_path(Path(weights))
    return json.loads(info.read_text()) if info.is_file() else {}


def classifier_embeddings(classifier, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """``[M, D]`` features of the classifier's ``embedding`` layer for ``[M, N, N]`` images."""
    import keras

    images = np.asarray(images, np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    embed = keras.Model(classifier.input, classifier.get_layer("embedding").output)
    return (
        np.concatenate(
            [
                np.asarray(embed(images[i : i + batch_size], training=False))
                for i in range(0, len(images), batch_size)
            ]
        )
        if len(images)
        else np.zeros((0, embed.output.shape[-1]), np.float32)
    )


def train_image_classifier(
    data: str,
    out: str | os.PathLike = CLASSIFIER_WEIGHTS,
    epochs: int = 40,
    patience: int = 8,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
    num_particles: int = 30,
    verbose: int = 0,
) -> dict[str, Any]:
    """Train the classifier on truth images and write weights + a JSON record (accuracy, data hash).

    Training split: jetnet ``train``; early stopping (best weights kept) on ``valid``; the reported
    accuracy is on ``test``. Writes ``out`` (weights, no optimizer state) and ``out`` with
    ``.json`` instead of ``.weights.h5``; returns that record.
    """
    import keras

    from gsgm.data.images import load_jet_images
    from gsgm.utils.provenance import hash_arrays, now_iso, package_versions

    classes = list(JET_CLASSES)
    splits = {s: load_jet_images(data, classes, num_particles, split=s) for s in ("train", "valid", "test")}
    keras.utils.set_random_seed(seed)
    model = build_image_classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        *splits["train"],
        validation_data=splits["valid"],
        epochs=epochs,
        batch_size=batch_size,
        callbacks=[keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)],
        verbose=verbose,
    )
    test_images, test_labels = splits["test"]
    predicted = np.argmax(np.asarray(model.predict(test_images, verbose=0)), axis=1)
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(confusion, (test_labels, predicted), 1)
    # A fresh, uncompiled copy: its weights file carries no optimizer state (small file).
    clean = build_image_classifier()
    clean.set_weights(model.get_weights())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{os.getpid()}.{out.name}")  # Keras insists on the .weights.h5 suffix
    clean.save_weights(tmp)
    os.replace(tmp, out)
    record = {
        "created": now_iso(),
        "data_source": str(data),
        "data_sha256": hash_arrays([splits["train"][0], splits["train"][1]]),
        "num_train": int(len(splits["train"][1])),
        "num_valid": int(len(splits["valid"][1])),
        "num_test": int(len(test_labels)),
        "classes": classes,
        "num_pixels": int(test_images.shape[1]),
        "embedding_dim": int(clean.get_layer("embedding").output.shape[-1]),
        "test_accuracy": float((predicted == test_labels).mean()),
        "test_accuracy_per_class": {
            c: float(confusion[i, i] / max(confusion[i].sum(), 1)) for i, c in enumerate(classes)
        },
        "confusion_matrix_test": confusion.tolist(),
        "seed": seed,
        "epochs_max": epochs,
        "versions": package_versions(),
    }
    write_json_atomic(_info_path(out), record)
    return record
