"""Registry-driven properties every linear operator must have."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import manifold
import manifold.operators as ops
from manifold.operators import LinearOperator, example_operators

EXAMPLES = example_operators()
NAMES = sorted(EXAMPLES)


@functools.cache
def _operator(name):
    return EXAMPLES[name].make(jax.random.key(NAMES.index(name)))


@pytest.fixture(params=NAMES)
def name(request):
    return request.param


def _random(key, shape, dtype):
    if jnp.issubdtype(dtype, jnp.complexfloating):
        kr, ki = jax.random.split(key)
        return jax.random.normal(kr, shape) + 1j * jax.random.normal(ki, shape)
    return jax.random.normal(key, shape, dtype)


def _close(a, b, rtol):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * max(np.abs(b).max(), 1e-30))


def test_shapes(name):
    A = _operator(name)
    x = _random(jax.random.key(0), (2, 3, *A.in_shape), A.dtype)
    assert A(x[0, 0]).shape == A.out_shape
    assert A(x).shape == (2, 3, *A.out_shape)
    y = _random(jax.random.key(1), (2, *A.out_shape), jnp.complex64)
    assert A.adjoint(y).shape == (2, *A.in_shape)
    assert A.normal(x).shape == x.shape


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adjointness(name, seed):
    assert float(_operator(name).adjointness_error(jax.random.key(seed))) < 1e-5


def test_linearity(name):
    A = _operator(name)
    k1, k2 = jax.random.split(jax.random.key(3))
    x1 = _random(k1, A.in_shape, jnp.complex64)
    x2 = _random(k2, A.in_shape, jnp.complex64)
    a, b = 0.7 - 1.3j, -2.1 + 0.4j
    _close(A(a * x1 + b * x2), a * A(x1) + b * A(x2), 1e-5)


def test_matrix_agrees_with_forward_and_adjoint(name):
    A = _operator(name)
    m = A.matrix()
    assert m.shape == (A.out_size, A.in_size)
    x = _random(jax.random.key(4), A.in_shape, A.dtype)
    _close(m @ x.reshape(-1), A(x).reshape(-1), 1e-5)
    y = _random(jax.random.key(5), A.out_shape, jnp.complex64)
    _close(m.conj().T @ y.reshape(-1), A.adjoint(y).reshape(-1), 1e-5)


def test_jit_and_vmap(name):
    A = _operator(name)
    xs = _random(jax.random.key(6), (3, *A.in_shape), A.dtype)
    ys = _random(jax.random.key(7), (3, *A.out_shape), jnp.complex64)
    looped = jnp.stack([A(x) for x in xs])
    _close(A(xs), looped, 1e-5)
    _close(jax.jit(lambda op, v: op(v))(A, xs), looped, 1e-5)
    _close(jax.vmap(A)(xs), looped, 1e-5)
    _close(jax.jit(lambda op, v: op.adjoint(v))(A, ys), jnp.stack([A.adjoint(y) for y in ys]), 1e-5)


def test_grad_of_data_term_is_normal_operator(name):
    A = _operator(name)
    x = jax.random.normal(jax.random.key(8), A.in_shape)  # a real image

    def loss(v):
        return 0.5 * jnp.sum(jnp.abs(A(v)) ** 2)

    _close(jax.jit(jax.grad(loss))(x), jnp.real(A.normal(x)), 1e-4)


def test_pinv(name):
    A = _operator(name)
    x = _random(jax.random.key(9), A.in_shape, A.dtype)
    b = A(x)
    xp = A.pinv(b)
    assert xp.shape == A.in_shape
    if EXAMPLES[name].injective:
        _close(xp, x, 1e-4)
    else:
        # Moore-Penrose: A A^+ A = A, and A^+ b is the minimum-norm solution.
        _close(A(xp), b, 1e-3)
        assert float(jnp.linalg.norm(xp)) <= float(jnp.linalg.norm(x)) * (1 + 1e-4)
        m = np.asarray(A.matrix(), np.complex128)
        _close(xp.reshape(-1), np.linalg.pinv(m) @ np.asarray(b, np.complex128).reshape(-1), 1e-3)


def test_norm_is_largest_singular_value(name):
    A = _operator(name)
    s = np.linalg.svd(np.asarray(A.matrix(), np.complex128), compute_uv=False)
    np.testing.assert_allclose(float(A.norm(key=jax.random.key(10), iters=300)), s[0], rtol=1e-3)


def test_operator_is_a_pytree(name):
    A = _operator(name)
    leaves, treedef = jax.tree_util.tree_flatten(A)
    B = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(B) is type(A) and B.in_shape == A.in_shape and B.out_shape == A.out_shape
    x = _random(jax.random.key(11), A.in_shape, A.dtype)
    _close(B(x), A(x), 0)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_registry_covers_every_operator_class():
    assert manifold.operators is ops
    defined = {c for c in _subclasses(LinearOperator) if c.__module__.split(".")[0] == "manifold"}
    registered = {type(_operator(n)) for n in NAMES}
    missing = sorted(c.__qualname__ for c in defined - registered)
    assert not missing, f"operators without a registry entry: {missing}"


def test_compose_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="other"):
        ops.Denoise((4, 4)) @ ops.Denoise((5,))
