"""A persistent JAX compilation cache, switched on when :mod:`manifold.solve` is imported.

Compiling a latent solve takes 5-15 s on a CPU; a new process (a notebook kernel, a script run
again) would pay it every time. JAX can keep compiled executables on disk
(``jax_compilation_cache_dir``); importing :mod:`manifold.solve` (and every solver call, in case
the setting changed) points it at a user cache folder unless the user has chosen one already:

* ``MANIFOLD_JAX_CACHE`` unset: ``$XDG_CACHE_HOME/manifold/jax`` (``~/.cache/manifold/jax``);
* ``MANIFOLD_JAX_CACHE=/some/dir``: that folder;
* ``MANIFOLD_JAX_CACHE=0`` or empty: off (the test suite sets this).

A directory already set with ``jax.config.update("jax_compilation_cache_dir", ...)`` (or
``JAX_COMPILATION_CACHE_DIR``) is left alone. JAX only writes executables that took at least
``jax_persistent_cache_min_compile_time_secs`` to compile; when manifold sets the folder it
lowers that threshold from JAX's 1 s to 0, so the small computations around a solve (building an
EIT model, shape checks, ``G(h)``, the checks of the result: each a 20-80 ms compilation, about
a second together) are read back too. The folder grows by a few kB per new small computation and
about 1 MB per compiled solve; deleting it at any time only costs the next compilations. (JAX's
own size cap, ``jax_compilation_cache_max_size``, is left unset: it needs ``filelock`` and warns
on every write to a folder filled without it.)
The cache is trusted code: do not point it at a folder others can write to.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

__all__ = ["ENV_VAR", "cache_dir", "enable_compilation_cache"]

ENV_VAR = "MANIFOLD_JAX_CACHE"
_MIN_COMPILE_SECONDS = 0.0
_state: dict[str, str | None] = {}


def cache_dir() -> Path | None:
    """The folder ``MANIFOLD_JAX_CACHE`` asks for, or ``None`` when it switches the cache off."""
    setting = os.environ.get(ENV_VAR)
    if setting is not None:
        setting = setting.strip()
        return None if setting in ("", "0") else Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "manifold" / "jax"


def enable_compilation_cache() -> str | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir` (once per process).

    Returns:
      The cache folder in use (the user's own if one was set), or ``None`` when off.
    """
    if "dir" in _state:
        return _state["dir"]
    current = jax.config.jax_compilation_cache_dir
    if current:
        _state["dir"] = current
        return current
    path = cache_dir()
    if path is None:
        _state["dir"] = None
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home, no permission: run without the cache
        _state["dir"] = None
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    if jax.config.jax_persistent_cache_min_compile_time_secs > _MIN_COMPILE_SECONDS:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", _MIN_COMPILE_SECONDS)
    _state["dir"] = str(path)
    return str(path)
