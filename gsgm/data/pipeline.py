"""tf.data input pipeline for the diffusion models: sharding, shuffling, batching.

The pipeline works on the outputs of :meth:`gsgm.data.preprocessing.JetPreprocessor.transform`. Data
are sharded over ranks (e.g. Horovod / multi-worker processes) *before* shuffling, so every jet
belongs to exactly one rank and each rank sees each of its jets once per epoch.

Shuffling uses an index dataset (a permutation of int64 indices) and gathers whole batches, so the
shuffle buffer holds indices rather than copies of [P, 3] particle arrays, which matters for the
150-particle data.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gsgm.data.jetnet_format import JET_CLASSES


def shard_indices(n: int, rank: int, num_ranks: int) -> np.ndarray:
    """Indices of the jets that ``rank`` of ``num_ranks`` processes, out of ``n``.

    Strided (``rank, rank + num_ranks, ...``) rather than contiguous: inputs are usually concatenated
    class by class, and striding gives every rank the same class mix. Every index in [0, n) is in
    exactly one shard, and shard sizes differ by at most 1.

    Returns:
        [n_rank] int64, increasing.
    """
    n, rank, num_ranks = int(n), int(rank), int(num_ranks)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if num_ranks < 1:
        raise ValueError(f"num_ranks must be >= 1, got {num_ranks}")
    if not 0 <= rank < num_ranks:
        raise ValueError(f"rank must be in [0, {num_ranks}), got {rank}")
    return np.arange(rank, n, num_ranks, dtype=np.int64)


def train_valid_split(n: int, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random split of ``n`` jets into training and validation indices (FPCD holds out 20%).

    The validation set has round(n * valid_fraction) jets, but at least 1 and at most n - 1 when
    0 < valid_fraction < 1 and n >= 2, so that early stopping always has something to monitor.

    Returns:
        (train_idx, valid_idx): disjoint, increasing int64 arrays whose union is [0, n); the same
        ``seed`` always gives the same split.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    n_valid = int(round(n * valid_fraction))
    if valid_fraction > 0 and n >= 2:
        n_valid = min(max(n_valid, 1), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    # Sorting keeps the original (class-ordered) layout, so strided sharding stays class-balanced.
    return np.sort(perm[n_valid:]).astype(np.int64), np.sort(perm[:n_valid]).astype(np.int64)


def make_dataset(
    particles_norm: np.ndarray,
    jets_norm: np.ndarray,
    mask: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    rank: int = 0,
    num_ranks: int = 1,
    drop_remainder: bool = False,
    repeat: bool = False,
    index: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batched dataset of normalised jets for one rank.

    Args:
        particles_norm: [N, P, 3] standardised particle features (padded slots 0).
        jets_norm: [N, J] normalised jet features (J = 4, plus one for each of the preprocessor's
            ``pt_sum`` and ``constituent_mass``).
        mask: [N, P] (or [N, P, 1]) 1 for real particles, 0 for padding.
        labels: [N] integer class indices into JET_CLASSES.
        batch_size: jets per batch (per rank).
        shuffle: reshuffle the rank's jets every epoch (every iteration over the dataset, or every
            pass when ``repeat``). The order is a deterministic function of ``seed`` (and of TensorFlow's
            global seed, if the caller sets one with ``tf.random.set_seed``/``keras.utils.set_random_seed``).
        seed: shuffle seed.
        rank, num_ranks: this process' shard, see :func:`shard_indices`; applied before shuffling.
        drop_remainder: drop the last, smaller batch of each epoch (ignored in effect when ``repeat``,
            since epochs then run into each other).
        repeat: repeat forever (the caller then sets steps_per_epoch).
        index: optional [N] integer id per jet; batches then also carry ``index`` [B] int64 (the
            training driver records which jets each rank saw; the order is unchanged by it).

    Returns:
        Dataset of dicts of float32 tensors: ``particles`` [B, P, 3], ``jets`` [B, J],
        ``class_onehot`` [B, len(JET_CLASSES)], ``mask`` [B, P, 1].
    """
    particles_norm = np.asarray(particles_norm, dtype=np.float32)
    jets_norm = np.asarray(jets_norm, dtype=np.float32)
    mask = np.asarray(mask, dtype=np.float32)
    labels = np.asarray(labels)
    if particles_norm.ndim != 3 or particles_norm.shape[-1] != 3:
        raise ValueError(f"particles_norm must have shape [N, P, 3], got {list(particles_norm.shape)}")
    n, num_particles = particles_norm.shape[:2]
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.shape != (n, num_particles):
        raise ValueError(f"mask must have shape [{n}, {num_particles}], got {list(mask.shape)}")
    if jets_norm.ndim != 2 or jets_norm.shape[0] != n or jets_norm.shape[1] not in (4, 5, 6):
        raise ValueError(
            f"jets_norm must have shape [{n}, 4] (5 or 6 with pt_sum and constituent_mass), "
            f"got {list(jets_norm.shape)}"
        )
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape [{n}], got {list(labels.shape)}")
    if n and (labels.min() < 0 or labels.max() >= len(JET_CLASSES)):
        raise ValueError(f"labels must be in [0, {len(JET_CLASSES)}) (indices into JET_CLASSES)")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    idx = shard_indices(n, rank, num_ranks)
    if idx.size == 0:
        raise ValueError(f"rank {rank} of {num_ranks} gets no jets out of {n}")
    onehot = np.eye(len(JET_CLASSES), dtype=np.float32)[labels[idx].astype(np.int64)]
    tensors = {
        "particles": tf.constant(particles_norm[idx]),
        "jets": tf.constant(jets_norm[idx]),
        "class_onehot": tf.constant(onehot),
        "mask": tf.constant(mask[idx][..., None]),
    }
    if index is not None:
        tensors["index"] = tf.constant(np.asarray(index, dtype=np.int64)[idx])

    ds = tf.data.Dataset.range(idx.size)
    if shuffle:
        # Full-shard buffer of indices: a uniform permutation per epoch; reshuffle before repeat so
        # every epoch is a complete pass over the shard.
        ds = ds.shuffle(idx.size, seed=int(seed), reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    ds = ds.map(
        lambda batch: {key: tf.gather(value, batch) for key, value in tensors.items()},
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.prefetch(tf.data.AUTOTUNE)
