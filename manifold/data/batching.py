"""A shuffling mini-batch iterator that keeps a jit-compiled train step busy.

The data go to the device once. Each epoch draws a permutation with
``jax.random.fold_in(key, epoch)``, and each batch is one compiled gather; because JAX dispatches
asynchronously, the next batch is requested before the current one is handed out, so it is
ready when the train step asks for it.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator

import jax
import jax.numpy as jnp

from manifold.checks import check_key, check_positive_int

__all__ = ["batches", "num_batches"]


@functools.partial(jax.jit, static_argnames=("batch_size",))
def _gather(arrays, order, start, *, batch_size):
    idx = jax.lax.dynamic_slice_in_dim(order, start, batch_size)
    return tuple(jnp.take(a, idx, axis=0) for a in arrays)


def num_batches(n: int, batch_size: int, *, drop_last: bool = True) -> int:
    """Batches per epoch for ``n`` examples."""
    return n // batch_size if drop_last else -(-n // batch_size)


def batches(
    arrays,
    batch_size: int,
    *,
    key=None,
    drop_last: bool = True,
    epochs: int | None = None,
) -> Iterator:
    """Iterate over shuffled mini-batches of one or several aligned arrays.

    Args:
        arrays: an array, or a tuple/list of arrays with the same leading length ``n``.
        batch_size: examples per batch (>= 1; with ``drop_last``, at most ``n``).
        key: ``jax.random`` key for the per-epoch shuffle (``fold_in(key, epoch)``); ``None``
            keeps the original order.
        drop_last: drop the last, incomplete batch of each epoch (every batch then has the same
            shape, so a jitted train step compiles once). Otherwise it is yielded, smaller.
        epochs: number of passes over the data (>= 1); ``None`` (default) for an endless stream,
            to be cut by the training loop (``itertools.islice(batches(...), steps)``).

    Yields:
        A device array per batch for a single input array, else a tuple of them, in input order.
    """
    single = not isinstance(arrays, (tuple, list))
    arrays = tuple(jnp.asarray(a) for a in ((arrays,) if single else arrays))
    if not arrays or any(a.ndim == 0 for a in arrays):
        raise ValueError("arrays: expected one or more arrays with a leading example axis")
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise ValueError(f"arrays: leading lengths differ: {[a.shape[0] for a in arrays]}")
    batch_size = check_positive_int(batch_size, "batch_size")
    if drop_last and batch_size > n:
        raise ValueError(f"batch_size: {batch_size} exceeds the {n} examples, so drop_last would yield nothing")
    if epochs is not None:
        epochs = check_positive_int(epochs, "epochs")
    if key is not None:
        key = check_key(key)
    return _iterate(arrays, n, batch_size, key, drop_last, epochs, single)


def _iterate(arrays, n, batch_size, key, drop_last, epochs, single):
    def epoch_batches(epoch):
        order = jnp.arange(n) if key is None else jax.random.permutation(jax.random.fold_in(key, epoch), n)
        full = n // batch_size
        for b in range(full):
            yield _gather(arrays, order, b * batch_size, batch_size=batch_size)
        if not drop_last and n % batch_size:
            yield tuple(jnp.take(a, order[full * batch_size :], axis=0) for a in arrays)

    stream = itertools.chain.from_iterable(
        epoch_batches(e) for e in (itertools.count() if epochs is None else range(epochs))
    )
    pending = next(stream, None)  # one batch ahead: dispatched before the current one is used
    while pending is not None:
        current, pending = pending, next(stream, None)
        yield current[0] if single else current
