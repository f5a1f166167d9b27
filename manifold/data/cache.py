"""On-disk cache of generated data sets: one ``.npz`` per (generator, arguments, package version).

``cached(lung_phantoms, n=50_000, size=128, key=jax.random.key(0))`` (or ``cached("lung_phantoms",
...)``) returns what the call returns, as NumPy arrays, generating and saving it the first time.
The file name holds the SHA-256 of a canonical JSON description of the call: the generator's
name, every keyword argument (PRNG keys by their key data, arrays by dtype, shape and a hash of
their bytes) and ``manifold.__version__``. Files are written atomically (a temporary file in the
same folder, then ``os.replace``) and read with ``allow_pickle=False``. A file that cannot be
read, or whose stored description does not match, is regenerated with a ``RuntimeWarning``.

The folder is ``$MANIFOLD_CACHE`` if set, else ``~/.cache/manifold``; ``cache_dir=`` overrides both.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["cache_path", "cached", "default_cache_dir"]

_META = "__call__"


def default_cache_dir() -> Path:
    """The default cache folder: ``$MANIFOLD_CACHE`` or ``~/.cache/manifold`` (not created here)."""
    env = os.environ.get("MANIFOLD_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "manifold"


def _canonical(value, name: str):
    """A JSON-able, unambiguous description of one argument value."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return {"float": float(value).hex()}
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        data = np.asarray(jax.random.key_data(value))
        return {"key": data.tolist(), "impl": str(jax.random.key_impl(value))}
    if isinstance(value, (np.ndarray, jax.Array)):
        arr = np.ascontiguousarray(np.asarray(value))
        return {"array": str(arr.dtype), "shape": list(arr.shape), "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    if isinstance(value, (tuple, list)):
        return [_canonical(v, name) for v in value]
    raise TypeError(
        f"{name}: cannot be part of a cache key (type {type(value).__name__}); use numbers, strings, arrays or keys"
    )


def _resolve(fn) -> Callable:
    """``fn`` itself, or the :mod:`manifold.data` generator of that name."""
    if isinstance(fn, str):
        import manifold.data

        names = ("lung_phantoms", "mri_slices", "anomaly_phantoms", "rotations")
        if fn not in names:
            raise ValueError(f"fn: expected one of {names} or a callable, got {fn!r}")
        return getattr(manifold.data, fn)
    if not callable(fn):
        raise TypeError(f"fn: expected a data generator function or its name, got {fn!r}")
    return fn


def _describe(fn: Callable, kwargs: dict) -> str:
    import manifold

    spec = {
        "fn": f"{fn.__module__}.{fn.__qualname__}",
        "kwargs": {k: _canonical(v, k) for k, v in sorted(kwargs.items())},
        "version": manifold.__version__,
    }
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def cache_path(fn: Callable | str, /, *, cache_dir: str | os.PathLike | None = None, **kwargs) -> Path:
    """Where :func:`cached` stores ``fn(**kwargs)``."""
    fn = _resolve(fn)
    description = _describe(fn, kwargs)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = getattr(fn, "__name__", "data")
    return folder / f"{name}-{hashlib.sha256(description.encode()).hexdigest()[:32]}.npz"


def _load(path: Path, description: str):
    with np.load(path, allow_pickle=False) as f:
        if _META not in f.files or str(f[_META]) != description:
            raise ValueError("stored call description does not match")
        count = len(f.files) - 1
        return tuple(f[f"arr_{i}"] for i in range(count))


def _save(path: Path, arrays: tuple[np.ndarray, ...], description: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp.npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, *arrays, **{_META: np.array(description)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached(fn: Callable | str, /, *, cache_dir: str | os.PathLike | None = None, **kwargs) -> tuple[np.ndarray, ...]:
    """``fn(**kwargs)`` as a tuple of NumPy arrays, from the cache when it is there.

    Args:
        fn: a data generator returning an array or a tuple of arrays (e.g. :func:`lung_phantoms`),
            or the name of one in :mod:`manifold.data` (``"lung_phantoms"``, ``"mri_slices"``, ...).
        cache_dir: folder for the ``.npz`` files (default :func:`default_cache_dir`).
        **kwargs: the keyword arguments of ``fn``; they (and the package version) key the cache.

    Returns:
        The arrays ``fn`` returns, as NumPy arrays (a 1-tuple for a single array).
    """
    fn = _resolve(fn)
    description = _describe(fn, kwargs)
    path = cache_path(fn, cache_dir=cache_dir, **kwargs)
    if path.exists():
        try:
            return _load(path, description)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            warnings.warn(f"cache file {path} is unreadable ({err}); regenerating it", RuntimeWarning, stacklevel=2)
    out = fn(**kwargs)
    arrays = tuple(np.asarray(a) for a in (out if isinstance(out, (tuple, list)) else (out,)))
    _save(path, arrays, description)
    return arrays
