"""The EIT solves call LAPACK on one matrix at a time, also under vmap (no XLA:CPU deadlock).

jaxlib 0.10 splits a batched LAPACK call over XLA:CPU's intra-op pool from a worker of that pool
and blocks; two such calls at once on a 2-thread pool deadlock (``manifold/eit/_schur.py``). These
tests check the cause is gone from the compiled programs, and that the unbatched helpers give the
same numbers as JAX's batched linear algebra. ``tests/solve/test_no_hang.py`` (slow) runs the
forward and the solve in fresh 2-thread processes.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.eit import FEM
from manifold.eit._schur import cho_solve, cholesky

_LAPACK_CALL = re.compile(r"custom_call @(lapack_\w+)\(")
_BATCH_DIMS = re.compile(r'num_batch_dims = "(\d+)"')


def _lapack_calls(fn, *args) -> list[tuple[str, int]]:
    """``(target, number of batch axes)`` of every LAPACK custom call in the lowered program."""
    calls = []
    for line in jax.jit(fn).lower(*args).as_text().splitlines():
        target = _LAPACK_CALL.search(line)
        if target:
            batch = _BATCH_DIMS.search(line)
            calls.append((target.group(1), int(batch.group(1)) if batch else -1))
    return calls


def _spd(key, shape):
    m = jax.random.normal(key, shape)
    return m @ jnp.swapaxes(m, -1, -2) + shape[-1] * jnp.broadcast_to(jnp.eye(shape[-1]), shape)


@pytest.mark.parametrize("solver", ["schur", "dense"])
def test_vmapped_forward_jvp_and_grad_use_unbatched_lapack(coarse_thorax, solver):
    """Restarts (vmap) x Jacobian directions (vmap of jvp) and a gradient per restart: every
    Cholesky and triangular solve in the lowered program is on one matrix."""
    fem = FEM(coarse_thorax, solver=solver)
    assert solver == "dense" or fem._schur.n_parts > 1
    sigma = 1.0 + 0.2 * jax.random.uniform(jax.random.key(0), (3, coarse_thorax.n_elements))

    def restarts(s):  # (restarts, directions): forward and JVPs, and a gradient per restart
        f, jac = jax.vmap(lambda x: jax.vmap(lambda t: jax.jvp(fem._forward, (x,), (t,)))(s[:2]))(s)
        grad = jax.vmap(jax.grad(lambda x: jnp.sum(fem._forward(x) ** 2)))(s)
        return f[:, 0], jac, grad

    calls = _lapack_calls(restarts, sigma)
    targets = {t for t, _ in calls}
    assert any("potrf" in t for t in targets) and any("trsm" in t for t in targets), targets
    batched = [c for c in calls if c[1] != 0]
    assert not batched, f"batched LAPACK calls (split over the XLA:CPU pool, may deadlock): {batched}"


def test_model_difference_map_under_vmap_uses_unbatched_lapack(small_model):
    forward = small_model.difference_map()
    delta = 0.1 * jax.random.normal(jax.random.key(1), (4, *forward.in_shape))
    calls = _lapack_calls(jax.vmap(forward), delta)
    assert calls and all(n == 0 for _, n in calls), calls


def test_cholesky_and_cho_solve_match_batched_jax():
    a = _spd(jax.random.key(2), (2, 3, 6, 6))
    b = jax.random.normal(jax.random.key(3), (2, 3, 6, 4))

    def variants(a, b):
        chol = cholesky(a)
        return {
            "cholesky": chol,
            "leading axes": cho_solve(chol, b),
            "vmap both": jax.vmap(cho_solve)(chol[0], b[0]),
            "vmap rhs only": jax.vmap(cho_solve, in_axes=(None, 0))(chol[0, 0], b[0]),
            "vmap factor only": jax.vmap(cho_solve, in_axes=(0, None))(chol[0], b[0, 0]),
            "nested vmap": jax.vmap(jax.vmap(lambda m, r: cho_solve(cholesky(m), r)))(a, b),
        }

    got = jax.jit(variants)(a, b)
    solve = jnp.linalg.solve
    expected = {
        "cholesky": jnp.linalg.cholesky(a),
        "leading axes": solve(a, b),
        "vmap both": solve(a[0], b[0]),
        "vmap rhs only": solve(jnp.broadcast_to(a[0, 0], a[0].shape), b[0]),
        "vmap factor only": solve(a[0], jnp.broadcast_to(b[0, 0], b[0].shape)),
        "nested vmap": solve(a, b),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    calls = _lapack_calls(variants, a, b)
    assert calls and all(n == 0 for _, n in calls), calls


def test_cholesky_of_indefinite_matrix_is_nan():
    assert bool(jnp.isnan(cholesky(-jnp.eye(3))).any())


def test_cho_solve_rejects_mismatched_batch():
    chol = cholesky(_spd(jax.random.key(4), (3, 5, 5)))
    with pytest.raises(ValueError, match="b: expected shape"):
        cho_solve(chol, jnp.ones((2, 5, 1)))


@pytest.mark.parametrize("solver", ["schur", "dense"])
def test_forward_through_helpers_equals_float64_dense_solve(coarse_thorax, solver):
    """The FEM forward (helpers inside) equals NumPy's dense solve of the same system."""
    with jax.enable_x64(True):
        fem = FEM(coarse_thorax, solver=solver)
        sigma = 1.0 + 0.3 * jax.random.uniform(jax.random.key(5), (coarse_thorax.n_elements,), jnp.float64)
        rhs = np.asarray(fem._injection(fem._currents, jnp.float64))
        x = np.linalg.solve(np.asarray(fem.system_matrix(sigma)), rhs)
        expected = fem._measure(jnp.asarray(x[fem._readout].T))
        np.testing.assert_allclose(fem.forward(sigma), expected, rtol=1e-8, atol=1e-10 * float(jnp.abs(expected).max()))
