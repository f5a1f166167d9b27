"""The one-step linearised EIT reconstruction (NOSER-type Tikhonov), in the baselines' call shape.

With ``J`` the Jacobian of the electrode voltages at the reference conductivity (the
linearised forward operator, ``EITModel.linearized(sigma_ref)``) and ``b`` the difference data,

    dsigma = argmin ||J d - b||^2 + lam ||R^{1/2} d||^2 = (J^T J + lam R)^{-1} J^T b,

with the NOSER prior ``R = diag(J^T J)`` (Cheney et al. 1990), which evens out the much lower
sensitivity of the centre. There are far fewer measurements (``m = 208``) than pixels, so the
solve uses the push-through identity

    (J^T J + lam R)^{-1} J^T = R^{-1} J^T (J R^{-1} J^T + lam I)^{-1},

an ``m x m`` system instead of an ``n x n`` one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from manifold.baselines._common import check_linear_problem, check_positive, vmap_over_batch

__all__ = ["eit_one_step"]


def _one_step(A, b, lam):
    J = A.matrix()  # (m, n), real
    R = jnp.sum(J * J, axis=0)
    R = jnp.maximum(R, 1e-6 * jnp.max(R))  # pixels outside the mesh have no sensitivity
    JR = J / R[None]
    z = jnp.linalg.solve(JR @ J.T + lam * jnp.trace(JR @ J.T) / J.shape[0] * jnp.eye(J.shape[0]), b)
    return (JR.T @ z).reshape(A.in_shape)


@jax.jit
def _eit_one_step(A, b, lam):
    return vmap_over_batch(_one_step, A, b, lam)


def eit_one_step(A, b: jax.Array, *, lam: float = 1e-2) -> jax.Array:
    """One-step linearised difference-EIT reconstruction with the NOSER prior.

    ``lam`` is relative: the ridge added to ``J R^{-1} J^T`` is ``lam * trace(J R^{-1} J^T) / m``,
    so one value works across meshes and measurement scales.

    Args:
      A: the linearised forward operator (``EITModel.linearized(sigma_ref)``), a real
        :class:`~manifold.operators.LinearOperator` with ``A.matrix()`` available.
      b: difference data ``v - v_ref`` of shape ``A.out_shape`` or ``(*batch, *A.out_shape)``.
      lam: relative regularisation weight (> 0).

    Returns:
      Conductivity changes of shape ``(*batch, *A.in_shape)``.
    """
    b = check_linear_problem(A, b)
    if len(A.out_shape) != 1:
        raise ValueError(f"A: expected 1-D measurements, got A.out_shape {A.out_shape}")
    return _eit_one_step(A, b, jnp.float32(check_positive(lam, "lam")))
