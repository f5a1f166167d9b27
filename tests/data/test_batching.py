"""The mini-batch iterator: shapes, drop_last, per-epoch shuffles that cover every example."""

import itertools

import jax
import numpy as np
import pytest

from manifold.data import batches, num_batches

N = 23


def data():
    x = np.arange(N * 2, dtype=np.float32).reshape(N, 2)
    return x, np.arange(N)


def test_drop_last_shapes_and_cover():
    out = list(batches(data(), 5, key=jax.random.key(0), epochs=2))
    assert len(out) == 2 * num_batches(N, 5) == 8
    for xb, ib in out:
        assert xb.shape == (5, 2) and ib.shape == (5,) and isinstance(xb, jax.Array)
        np.testing.assert_array_equal(xb[:, 0], 2 * ib)  # arrays stay aligned
    for epoch in (out[:4], out[4:]):
        seen = np.concatenate([np.asarray(ib) for _, ib in epoch])
        assert np.unique(seen).size == 20  # no repeats within an epoch
    first = np.concatenate([np.asarray(ib) for _, ib in out[:4]])
    second = np.concatenate([np.asarray(ib) for _, ib in out[4:]])
    assert not np.array_equal(first, second)  # reshuffled each epoch


def test_keep_last_covers_every_index_once():
    out = list(batches(data(), 5, key=jax.random.key(1), drop_last=False, epochs=1))
    assert [len(ib) for _, ib in out] == [5, 5, 5, 5, 3] and num_batches(N, 5, drop_last=False) == 5
    seen = np.concatenate([np.asarray(ib) for _, ib in out])
    np.testing.assert_array_equal(np.sort(seen), np.arange(N))
    assert not np.array_equal(seen, np.arange(N))  # shuffled


def test_same_key_same_order_and_no_key_keeps_order():
    a = [np.asarray(b) for b in batches(data()[1], 4, key=jax.random.key(2), epochs=1)]
    b = [np.asarray(b) for b in batches(data()[1], 4, key=jax.random.key(2), epochs=1)]
    c = [np.asarray(b) for b in batches(data()[1], 4, key=jax.random.key(3), epochs=1)]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    assert not np.array_equal(np.stack(a), np.stack(c))
    ordered = np.concatenate([np.asarray(b) for b in batches(data()[1], 4, epochs=1)])
    np.testing.assert_array_equal(ordered, np.arange(20))


def test_endless_stream():
    stream = batches(data()[1], 10, key=jax.random.key(4))  # epochs=None: endless
    out = [np.asarray(b) for b in itertools.islice(stream, 7)]
    assert len(out) == 7 and all(b.shape == (10,) for b in out)
    for epoch in range(3):  # 2 batches per epoch, each epoch without repeats
        assert np.unique(np.concatenate(out[2 * epoch : 2 * epoch + 2])).size == 20


@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        ((data(), 0), {}, "batch_size"),
        ((data(), 24), {}, "batch_size"),
        ((data(), 4), {"epochs": 0}, "epochs"),
        (((np.zeros(3), np.zeros(4)), 2), {}, "arrays"),
        (((), 2), {}, "arrays"),
    ],
)
def test_bad_arguments_name_the_argument(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        batches(*args, **kwargs)
