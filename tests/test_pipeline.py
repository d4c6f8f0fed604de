"""Tests of gsgm.data.pipeline: sharding, splitting and the tf.data dataset."""

from __future__ import annotations

import numpy as np
import pytest

from gsgm.data.jetnet_format import JET_CLASSES
from gsgm.data.pipeline import make_dataset, shard_indices, train_valid_split

P = 8


def _arrays(n: int, seed: int = 0):
    """Normalised-looking arrays where jets[:, 0] is the jet's index, so batches can be traced back."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, P + 1, size=n)
    mask = (np.arange(P)[None, :] < counts[:, None]).astype(np.float32)
    particles = rng.normal(size=(n, P, 3)).astype(np.float32) * mask[..., None]
    jets = rng.normal(size=(n, 4)).astype(np.float32)
    jets[:, 0] = np.arange(n)
    labels = rng.integers(0, len(JET_CLASSES), size=n).astype(np.int32)
    return particles, jets, mask, labels


def _ids(ds) -> np.ndarray:
    return np.concatenate([batch["jets"][:, 0].numpy() for batch in ds]).astype(np.int64)


@pytest.mark.parametrize(
    ("n", "num_ranks"), [(0, 1), (1, 1), (1, 3), (10, 1), (10, 4), (7, 3), (100, 7), (5, 8)]
)
def test_shards_cover_every_jet_once_and_are_balanced(n, num_ranks):
    shards = [shard_indices(n, rank, num_ranks) for rank in range(num_ranks)]
    joined = np.concatenate(shards)
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_shard_indices_rejects_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        shard_indices(10, 3, 3)
    with pytest.raises(ValueError, match="num_ranks"):
        shard_indices(10, 0, 0)


@pytest.mark.parametrize("num_ranks", [1, 2, 3])
def test_ranks_see_disjoint_jets_whose_union_is_everything(num_ranks):
    n = 37
    arrays = _arrays(n)
    seen = [
        _ids(make_dataset(*arrays, batch_size=5, seed=1, rank=r, num_ranks=num_ranks))
        for r in range(num_ranks)
    ]
    for ids in seen:
        assert len(np.unique(ids)) == len(ids)  # each jet once per epoch on its rank
    joined = np.concatenate(seen)
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))


def test_batch_shapes_dtypes_and_content():
    particles, jets, mask, labels = _arrays(23)
    ds = make_dataset(particles, jets, mask, labels, batch_size=10, shuffle=False)
    batches = list(ds)
    assert [int(b["jets"].shape[0]) for b in batches] == [10, 10, 3]
    first = batches[0]
    assert set(first) == {"particles", "jets", "class_onehot", "mask"}
    assert first["particles"].shape == (10, P, 3)
    assert first["jets"].shape == (10, 4)
    assert first["class_onehot"].shape == (10, len(JET_CLASSES))
    assert first["mask"].shape == (10, P, 1)
    for value in first.values():
        assert value.dtype.name == "float32"
    # shuffle=False keeps the input order; contents match the arrays
    np.testing.assert_array_equal(first["particles"].numpy(), particles[:10])
    np.testing.assert_array_equal(first["mask"].numpy()[..., 0], mask[:10])
    np.testing.assert_array_equal(first["class_onehot"].numpy().argmax(1), labels[:10])
    np.testing.assert_array_equal(first["class_onehot"].numpy().sum(1), 1.0)


def test_drop_remainder_and_repeat():
    arrays = _arrays(23)
    dropped = list(make_dataset(*arrays, batch_size=10, drop_remainder=True))
    assert [int(b["jets"].shape[0]) for b in dropped] == [10, 10]
    repeated = make_dataset(*arrays, batch_size=10, repeat=True, seed=3)
    ids = np.concatenate([b["jets"][:, 0].numpy() for b in repeated.take(5)]).astype(int)
    # epochs are complete, reshuffled passes: the first 23 and the next 23 are both permutations
    np.testing.assert_array_equal(np.sort(ids[:23]), np.arange(23))
    np.testing.assert_array_equal(np.sort(ids[23:46]), np.arange(23))
    assert not np.array_equal(ids[:23], ids[23:46])


def test_same_seed_same_order_different_seed_different_order():
    arrays = _arrays(200)
    a = _ids(make_dataset(*arrays, batch_size=16, seed=5))
    b = _ids(make_dataset(*arrays, batch_size=16, seed=5))
    c = _ids(make_dataset(*arrays, batch_size=16, seed=6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, np.arange(200))
    np.testing.assert_array_equal(np.sort(a), np.arange(200))


def test_reiterating_reshuffles_deterministically():
    arrays = _arrays(100)
    ds1 = make_dataset(*arrays, batch_size=16, seed=2)
    ds2 = make_dataset(*arrays, batch_size=16, seed=2)
    epochs1 = [_ids(ds1) for _ in range(2)]
    epochs2 = [_ids(ds2) for _ in range(2)]
    assert not np.array_equal(epochs1[0], epochs1[1])  # Keras iterates once per epoch: new order each time
    np.testing.assert_array_equal(epochs1[1], epochs2[1])


def test_make_dataset_checks_shapes():
    particles, jets, mask, labels = _arrays(10)
    with pytest.raises(ValueError, match="mask"):
        make_dataset(particles, jets, mask[:, :4], labels, batch_size=2)
    with pytest.raises(ValueError, match="labels"):
        make_dataset(particles, jets, mask, labels + 5, batch_size=2)
    ds = make_dataset(particles, jets, mask[..., None], labels, batch_size=4)  # [N, P, 1] mask accepted
    assert next(iter(ds))["mask"].shape == (4, P, 1)


@pytest.mark.parametrize(("n", "fraction"), [(100, 0.2), (11, 0.2), (2, 0.2), (5, 0.0), (1000, 0.5)])
def test_train_valid_split(n, fraction):
    train, valid = train_valid_split(n, fraction, seed=0)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, valid])), np.arange(n))
    assert len(np.intersect1d(train, valid)) == 0
    if fraction > 0:
        assert len(valid) == max(1, round(n * fraction))
    else:
        assert len(valid) == 0
    again_train, again_valid = train_valid_split(n, fraction, seed=0)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(valid, again_valid)
    if n >= 100:
        other_train, _ = train_valid_split(n, fraction, seed=1)
        assert not np.array_equal(train, other_train)


def test_train_valid_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="valid_fraction"):
        train_valid_split(10, 1.0, seed=0)
