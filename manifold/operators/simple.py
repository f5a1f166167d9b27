"""Small operators: inpainting, denoising (identity) and Gaussian compressed sensing."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key
from manifold.operators._base import LinearOperator
from manifold.operators.masks import check_mask

__all__ = ["Denoise", "GaussianCS", "Inpaint"]


def _check_shape(shape, name: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) == 0
        or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in shape)
    ):
        raise ValueError(f"{name}: expected a positive int or a tuple of positive ints, got {shape!r}")
    return tuple(int(s) for s in shape)


class Inpaint(LinearOperator):
    """Inpainting, ``A x = M ⊙ x``: keep the pixels where ``mask`` is ``True``, zero the rest.

    The measurement has the image's shape (missing pixels are zero) rather than being the list
    of observed values, so images and data can be displayed alike. ``A`` is an orthogonal
    projection: ``A^H = A^+ = A``.

    Args:
      mask: boolean array of the image shape, at least one entry ``True``.
    """

    exact_pinv = True  # x + A^+(b - A x) puts the observed pixels back

    def __init__(self, mask: jax.Array):
        self.mask = check_mask(mask, ndim=None)
        self.in_shape = tuple(self.mask.shape)
        self.out_shape = tuple(self.mask.shape)
        self.dtype = jnp.float32

    def _forward(self, x):
        return jnp.where(self.mask, x, 0)

    def _adjoint(self, y):
        return jnp.where(self.mask, y, 0)

    def _pinv(self, y):
        return jnp.where(self.mask, y, 0)


class Denoise(LinearOperator):
    """Denoising, ``A = I`` on images of shape ``shape`` (``A^H = A^+ = I``).

    Args:
      shape: image shape, an int or a tuple of ints.
    """

    def __init__(self, shape: int | Sequence[int]):
        self.in_shape = _check_shape(shape, "shape")
        self.out_shape = self.in_shape
        self.dtype = jnp.float32

    def _forward(self, x):
        return x

    def _adjoint(self, y):
        return y

    def _pinv(self, y):
        return y


class GaussianCS(LinearOperator):
    """Compressed sensing with an i.i.d. Gaussian matrix, ``A x = Φ vec(x)``, ``Φ_ij ~ N(0, 1/m)``.

    The ``1/m`` variance makes ``E ||A x||^2 = ||x||^2``. The pseudo-inverse is closed form from
    a thin QR factorisation computed once: for ``m <= n``, ``Φ^T = Q R`` and
    ``Φ^+ y = Q R^{-T} y``; for ``m > n``, ``Φ = Q R`` and ``Φ^+ y = R^{-1} Q^T y``.

    Args:
      m: number of measurements.
      n: signal size ``n`` or image shape (the input is flattened).
      key: PRNG key of the matrix.

    Attributes:
      phi: the ``(m, prod(n))`` float32 matrix.
    """

    def __init__(self, m: int, n: int | Sequence[int], *, key: jax.Array):
        key = check_key(key)
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"m: expected a positive int (number of measurements), got {m!r}")
        self.in_shape = _check_shape(n, "n")
        self.out_shape = (int(m),)
        self.dtype = jnp.float32
        size = math.prod(self.in_shape)
        self.phi = jax.random.normal(key, (int(m), size), jnp.float32) / math.sqrt(m)
        self.wide = int(m) <= size
        self._q, self._r = jnp.linalg.qr(self.phi.T if self.wide else self.phi)

    def _forward(self, x):
        return self.phi @ x.reshape(-1)

    def _adjoint(self, y):
        return (self.phi.T @ y).reshape(self.in_shape)

    def _pinv(self, y):
        r = self._r.astype(jnp.result_type(self._r.dtype, y.dtype))
        if self.wide:
            x = self._q @ jax.scipy.linalg.solve_triangular(r, y, trans="T", lower=False)
        else:
            x = jax.scipy.linalg.solve_triangular(r, self._q.T @ y, lower=False)
        return x.reshape(self.in_shape)
