"""``optim.fast_compile_options``: faster XLA:CPU compilation, the same results, and a safe fallback."""

import jax
import jax.numpy as jnp
import numpy as np

from manifold import optim
from manifold.optim import _jit


def test_the_options_compile_the_same_program():
    opts = optim.fast_compile_options()
    assert isinstance(opts, dict)

    def program(x):  # a few fusions: reductions, elementwise, a matrix product
        y = jnp.tanh(x @ x.T) + jnp.exp(-(x**2)).sum(axis=1, keepdims=True)
        return y / jnp.linalg.norm(y)

    x = jax.random.normal(jax.random.key(0), (16, 8))
    fast = jax.jit(program, compiler_options=opts or None)(x)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(jax.jit(program)(x)), rtol=1e-5, atol=1e-6)


def test_an_option_this_jaxlib_lacks_falls_back_to_the_defaults(monkeypatch):
    monkeypatch.setattr(_jit, "_FAST_COMPILE", {"xla_no_such_option_for_this_test": True})
    _jit.fast_compile_options.cache_clear()
    try:
        assert optim.fast_compile_options() == {}
    finally:
        _jit.fast_compile_options.cache_clear()
