"""Registry-driven properties every linear operator must have."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import manifold
import manifold.operators as ops
from manifold.operators import LinearOperator

from .registry import example_operators

EXAMPLES = example_operators()
NAMES = sorted(EXAMPLES)


@functools.cache
def _operator(name):
    return EXAMPLES[name].make(jax.random.key(NAMES.index(name)))


@pytest.fixture(params=NAMES)
def name(request):
    return request.param


def _random(rng, shape, dtype):
    """Standard normal test input from NumPy (no compiled JAX RNG: keeps the suite fast)."""
    x = rng.standard_normal(shape)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        x = x + 1j * rng.standard_normal(shape)
    return jnp.asarray(x, dtype)


def _close(a, b, rtol):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * max(np.abs(b).max(), 1e-30))


ALPHA, BETA = 0.7 - 1.3j, -2.1 + 0.4j


@jax.jit
def _evaluate(op, v):
    """Everything the properties below check, for one operator, in one compiled call."""

    def loss(x):
        return 0.5 * jnp.sum(jnp.abs(op(x)) ** 2)

    pinv = op.pinv(op(v["x"]))
    return {
        # shapes, batching, jit, vmap
        "batched": op(v["xs"]),
        "vmapped": jax.vmap(op)(v["xs"][0]),
        "adjoint_batched": op.adjoint(v["ys"]),
        "normal_batched": op.normal(v["xs"]),
        # adjointness on random complex inputs, linearity
        "forward_complex": op(v["cs"]),
        "adjoint_complex": op.adjoint(v["ys"]),
        "combination": op(ALPHA * v["cs"][0] + BETA * v["cs"][1]),
        # dense matrix
        "matrix": op.matrix(),
        "forward": op(v["x"]),
        # gradient of the data term of a real image
        "grad": jax.grad(loss)(v["real"]),
        "normal": op.normal(v["real"]),
        # pseudo-inverse
        "pinv": pinv,
        "reprojected": op(pinv),
    }


@functools.cache
def _results(name):
    A = _operator(name)
    rng = np.random.default_rng(NAMES.index(name))
    inputs = {
        "xs": _random(rng, (2, 3, *A.in_shape), A.dtype),
        # data of the operator's own kind: real for real operators, complex for MRI (check_output)
        "ys": _random(rng, (2, *A.out_shape), A.out_dtype),
        "cs": _random(rng, (2, *A.in_shape), jnp.complex64),
        "x": _random(rng, A.in_shape, A.dtype),
        "real": _random(rng, A.in_shape, jnp.float32),
    }
    return inputs, _evaluate(A, inputs)


def test_shapes_batching_jit_vmap(name):
    A = _operator(name)
    v, r = _results(name)
    assert r["batched"].shape == (2, 3, *A.out_shape)
    assert r["adjoint_batched"].shape == (2, *A.in_shape)
    assert r["normal_batched"].shape == v["xs"].shape
    _close(r["vmapped"], r["batched"][0], 1e-5)
    _close(A(v["xs"][1, 2]), r["batched"][1, 2], 1e-5)  # eager, unbatched call
    _close(A.adjoint(v["ys"][1]), r["adjoint_batched"][1], 1e-5)


def test_adjointness(name):
    v, r = _results(name)
    for x, y, ax, aty in zip(v["cs"], v["ys"], r["forward_complex"], r["adjoint_complex"]):
        x, y, ax, aty = (np.asarray(a, np.complex128) for a in (x, y, ax, aty))
        defect = abs(np.vdot(y, ax) - np.vdot(aty, x)) / (np.linalg.norm(ax) * np.linalg.norm(y))
        assert defect < 1e-5
    assert float(_operator(name).adjointness_error(jax.random.key(0))) < 1e-5


def test_linearity(name):
    r = _results(name)[1]
    _close(r["combination"], ALPHA * r["forward_complex"][0] + BETA * r["forward_complex"][1], 1e-5)


def test_matrix_agrees_with_forward_and_adjoint(name):
    A = _operator(name)
    v, r = _results(name)
    m = r["matrix"]
    assert m.shape == (A.out_size, A.in_size)
    _close(m @ v["x"].reshape(-1), r["forward"].reshape(-1), 1e-5)
    _close(m.conj().T @ v["ys"][0].reshape(-1), r["adjoint_complex"][0].reshape(-1), 1e-5)


def test_grad_of_data_term_is_normal_operator(name):
    r = _results(name)[1]
    _close(r["grad"], jnp.real(r["normal"]), 1e-4)


def test_pinv(name):
    v, r = _results(name)
    if EXAMPLES[name].injective:
        _close(r["pinv"], v["x"], 1e-4)
    else:
        # Moore-Penrose: A A^+ A = A, and A^+ b is the minimum-norm solution of A x = b.
        _close(r["reprojected"], r["forward"], 1e-3)
        assert float(jnp.linalg.norm(r["pinv"])) <= float(jnp.linalg.norm(v["x"])) * (1 + 1e-4)


@jax.jit
def _norm(op):
    return op.norm(key=jax.random.key(10), iters=300)


# norm() is shared base-class code: one operator per kind keeps the compile time down.
@pytest.mark.parametrize("name", ["composed_mri_inpaint", "gaussian_cs_wide", "mri_uniform4_acs", "radon_sparse_view"])
def test_norm_is_largest_singular_value(name):
    A = _operator(name)
    norm = _norm(A)
    s = np.linalg.svd(np.asarray(_results(name)[1]["matrix"], np.complex128), compute_uv=False)
    np.testing.assert_allclose(float(norm), s[0], rtol=1e-3)


def test_operator_is_a_pytree(name):
    A = _operator(name)
    leaves, treedef = jax.tree_util.tree_flatten(A)
    B = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(B) is type(A) and B.in_shape == A.in_shape and B.out_shape == A.out_shape
    assert all(isinstance(leaf, jax.Array) for leaf in leaves)


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


def test_closed_over_measurement_inside_jit():
    A = _operator("denoise")
    b = jnp.ones(A.out_shape)
    np.testing.assert_allclose(jax.jit(lambda op: op.adjoint(b))(A), b)


def test_measured_rows_hold_every_nonzero_output(name):
    """``measured_rows`` drops only rows that vanish on real images (checked on a third image)."""
    op = _operator(name)
    rows = ops.measured_rows(op, op.in_shape)
    y = np.asarray(ops.real_view(op(_random(np.random.default_rng(7), op.in_shape, jnp.float32))))
    assert rows.dtype == np.int32 and np.all(np.diff(rows) > 0) and rows.size > 0
    dropped = np.ones(y.size, bool)
    dropped[rows] = False
    assert not np.any(y[dropped])
    assert np.all(y[rows] != 0)
