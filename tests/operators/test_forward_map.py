"""ForwardMap: the pytree base of every forward map, and the construction-time checks of subclasses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.operators import MRI, ForwardMap, LinearOperator, masks


class Cube(ForwardMap):
    """``x -> scale * x**3`` on vectors of length ``n``: a nonlinear forward map."""

    def __init__(self, n, scale):
        self.scale = jnp.asarray(scale, jnp.float32)
        self.in_shape = (n,)
        self.out_shape = (n,)
        self.dtype = jnp.float32

    def _forward(self, x):
        return self.scale * x**3


class WrongShape(LinearOperator):
    def __init__(self):
        self.in_shape, self.out_shape, self.dtype = (4,), (3,), jnp.float32

    def _forward(self, x):
        return 2 * x  # (4,), not the declared (3,)


class Nonlinear(LinearOperator):
    def __init__(self):
        self.in_shape, self.out_shape, self.dtype = (4,), (4,), jnp.float32

    def _forward(self, x):
        return jnp.sin(x)


class Affine(LinearOperator):
    """``x -> x + 1``: transposable (the constant drops out), but not linear."""

    def __init__(self):
        self.in_shape, self.out_shape, self.dtype = (4,), (4,), jnp.float32

    def _forward(self, x):
        return x + 1.0


class BadAdjoint(LinearOperator):
    def __init__(self):
        self.in_shape, self.out_shape, self.dtype = (4,), (4,), jnp.float32

    def _forward(self, x):
        return 2 * x

    def _adjoint(self, y):
        return 3 * y


class NoOutShape(ForwardMap):
    def __init__(self):
        self.in_shape = (4,)

    def _forward(self, x):
        return x


class NoForward(ForwardMap):
    def __init__(self):
        self.in_shape, self.out_shape = (4,), (4,)


def test_forward_map_batches_and_is_a_pytree():
    F = Cube(3, 2.0)
    x = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(F(x), 2 * x**3)
    assert F(x[0]).shape == (3,) and F.out_dtype == jnp.float32
    leaves, treedef = jax.tree_util.tree_flatten(F)
    assert len(leaves) == 1 and leaves[0] is F.scale
    G = jax.tree_util.tree_unflatten(treedef, [jnp.float32(5.0)])
    assert type(G) is Cube and G.in_shape == (3,)
    np.testing.assert_allclose(G(x[1]), 5 * x[1] ** 3)
    assert not isinstance(F, LinearOperator) and isinstance(MRI(masks.uniform((4, 4), 2)), ForwardMap)


def test_new_instance_does_not_recompile():
    traces = []

    @jax.jit
    def apply(F, x):
        traces.append(1)
        return F(x)

    x = jnp.ones(3)
    np.testing.assert_allclose(apply(Cube(3, 2.0), x), 2.0)
    np.testing.assert_allclose(apply(Cube(3, 3.0), x), 3.0)
    assert len(traces) == 1 and apply._cache_size() == 1
    apply(Cube(4, 3.0), jnp.ones(4))  # a new static structure (shape) compiles once more
    assert apply._cache_size() == 2


def test_eager_call_is_one_compiled_program_per_structure():
    """``F(x)`` outside jit runs one executable per (class, static fields, shape), not op by op."""
    from manifold.operators import _base

    traces = []

    class Counted(Cube):
        def _forward(self, x):
            traces.append(1)
            return super()._forward(x)

    x = jnp.arange(6.0).reshape(2, 3)
    F, F5 = Counted(3, 2.0), Counted(3, 5.0)
    traces.clear()  # construction traces _forward once each (the shape check)
    np.testing.assert_allclose(F(x), 2 * x**3)
    np.testing.assert_allclose(F5(x), 5 * x**3)  # new weights: the same executable
    assert len(traces) == 1
    size = _base._apply_method._cache_size()
    F5(x[0])  # unbatched: a new shape compiles once more
    assert _base._apply_method._cache_size() == size + 1 and len(traces) == 2


def test_forward_map_input_validation():
    F = Cube(3, 2.0)
    with pytest.raises(
        ValueError, match=r"x: expected shape \(3,\) or \(batch, \*\(3,\)\) of dtype float32, got shape \(4,\)"
    ):
        F(jnp.ones(4))
    with pytest.raises(ValueError, match="x: expected a real array .* for Cube, got complex"):
        F(jnp.ones(3, jnp.complex64))  # a nonlinear real map has no complex extension
    with pytest.raises(ValueError, match="x: contains NaN"):
        F(jnp.array([1.0, jnp.nan, 0.0]))
    with pytest.raises(ValueError, match=r"b: expected a real array of shape \(3,\)"):
        F.check_output(jnp.ones(3, jnp.complex64))


def test_declared_out_shape_is_checked_at_construction():
    with pytest.raises(
        ValueError, match=r"WrongShape: _forward returns shape \(4,\) .* out_shape is declared as \(3,\)"
    ):
        WrongShape()


def test_nonlinear_forward_of_an_operator_is_rejected_at_construction():
    with pytest.raises(ValueError, match="Nonlinear: _forward is not linear in x"):
        Nonlinear()


def test_self_check_finds_affine_forward_and_wrong_adjoint():
    with pytest.raises(ValueError, match=r"Affine: linearity defect .* exceeds"):
        Affine().self_check(jax.random.key(0))
    with pytest.raises(ValueError, match=r"BadAdjoint: adjointness defect .* exceeds"):
        BadAdjoint().self_check()
    defects = MRI(masks.uniform((8, 8), 2)).self_check(jax.random.key(1))
    assert defects["linearity"] < 1e-5 and defects["adjointness"] < 1e-5


def test_missing_declarations_name_the_class():
    with pytest.raises(TypeError, match=r"NoOutShape: out_shape must be set in __init__"):
        NoOutShape()
    with pytest.raises(TypeError, match="NoForward: a ForwardMap subclass must implement _forward"):
        NoForward()


def test_construction_inside_jit_with_traced_leaves():
    @jax.jit
    def f(mask, x):
        return MRI(mask)(x)

    mask = masks.uniform((8, 8), 2)
    x = jax.random.normal(jax.random.key(0), (8, 8))
    np.testing.assert_allclose(f(mask, x), MRI(mask)(x), atol=1e-6)
