"""The orthonormal 2-D Haar wavelet transform, a sparsifying transform for images.

One level splits an image into four half-size bands from its 2 x 2 blocks
``[[a, b], [c, d]]``:

    LL = (a + b + c + d) / 2,   LH = (a - b + c - d) / 2,   HL = (a + b - c - d) / 2,   HH = (a - b - c + d) / 2,

stored in the quadrants ``[[LL, LH], [HL, HH]]``; the next level transforms ``LL`` again. Each
level is an orthogonal map, so ``W^T = W^{-1}`` (a closed-form adjoint and pseudo-inverse) and
``||W x|| = ||x||``. A small bright spot or an edge occupies a few coefficients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from manifold.operators._base import LinearOperator

__all__ = ["Haar"]


def _split(x: jax.Array) -> jax.Array:
    h, w = x.shape[0] // 2, x.shape[1] // 2
    blocks = x.reshape(h, 2, w, 2)  # reshapes and static slices: nothing strided to scatter or gather
    a, b, c, d = blocks[:, 0, :, 0], blocks[:, 0, :, 1], blocks[:, 1, :, 0], blocks[:, 1, :, 1]
    ll, lh = (a + b + c + d) / 2, (a - b + c - d) / 2
    hl, hh = (a + b - c - d) / 2, (a - b - c + d) / 2
    return jnp.block([[ll, lh], [hl, hh]])


def _merge(y: jax.Array) -> jax.Array:
    h, w = y.shape[0] // 2, y.shape[1] // 2
    ll, lh, hl, hh = y[:h, :w], y[:h, w:], y[h:, :w], y[h:, w:]
    top = jnp.stack([(ll + lh + hl + hh) / 2, (ll - lh + hl - hh) / 2], axis=-1)  # rows 0::2
    bottom = jnp.stack([(ll + lh - hl - hh) / 2, (ll - lh - hl + hh) / 2], axis=-1)  # rows 1::2
    return jnp.stack([top, bottom], axis=1).reshape(2 * h, 2 * w)


def _set_corner(x: jax.Array, block: jax.Array) -> jax.Array:
    """``x`` with its top-left corner replaced by ``block``."""
    return jax.lax.dynamic_update_slice(x, block, (0, 0))


class Haar(LinearOperator):
    """Orthonormal multi-level 2-D Haar transform ``W``: image ``(H, W)`` -> coefficients ``(H, W)``.

    Args:
      shape: image shape ``(H, W)``, both divisible by ``2**levels``.
      levels: number of decomposition levels (``>= 1``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from manifold.operators import Haar
      >>> W = Haar((8, 8), levels=2)
      >>> x = jax.random.normal(jax.random.key(0), (8, 8))
      >>> bool(jnp.allclose(W.adjoint(W(x)), x, atol=1e-5)), bool(jnp.allclose(jnp.linalg.norm(W(x)), jnp.linalg.norm(x)))
      (True, True)
      >>> int(jnp.sum(jnp.abs(W(jnp.ones((8, 8)))) > 1e-6))  # a constant image: the 2 x 2 coarsest band
      4
    """

    def __init__(self, shape: tuple[int, int], *, levels: int = 3):
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels: expected an integer >= 1, got {levels!r}")
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or any(s < 1 or s % 2**levels for s in shape):
            raise ValueError(f"shape: expected (H, W) with both divisible by 2**levels = {2**levels}, got {shape}")
        self.in_shape = self.out_shape = shape
        self.levels = levels
        self.dtype = jnp.float32

    def _forward(self, x):
        h, w = self.in_shape
        for _ in range(self.levels):
            x = _set_corner(x, _split(x[:h, :w]))
            h, w = h // 2, w // 2
        return x

    def _adjoint(self, y):
        h, w = self.in_shape[0] >> (self.levels - 1), self.in_shape[1] >> (self.levels - 1)
        for _ in range(self.levels):
            y = _set_corner(y, _merge(y[:h, :w]))
            h, w = h * 2, w * 2
        return y

    def _pinv(self, y):
        return self._adjoint(y)
