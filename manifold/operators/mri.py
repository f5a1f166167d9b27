"""Cartesian MRI: single-coil and multi-coil (SENSE) undersampled Fourier operators.

The centred, orthonormal 2-D DFT used throughout is

    F x = fftshift(fft2(ifftshift(x), norm="ortho")),

so the DC coefficient sits at row ``H // 2``, column ``W // 2`` and ``F^H F = I``. With a
boolean sampling mask ``M`` (see :mod:`manifold.operators.masks`) the single-coil operator is
``A = M F`` and returns the full ``(H, W)`` k-space with zeros at unsampled locations. Because
``M`` is an orthogonal projection and ``F`` is unitary, ``A^H = F^H M`` and the pseudo-inverse
is the zero-filled reconstruction, ``A^+ = A^H``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from manifold.operators._base import LinearOperator, check_array
from manifold.operators.masks import check_mask

__all__ = ["MRI", "MultiCoilMRI", "fft2c", "ifft2c", "simulated_coil_maps"]

_AXES = (-2, -1)


def _checkerboard(shape: tuple[int, ...]) -> np.ndarray:
    """``(-1)^(i + j)`` over the last two axes of ``shape`` (size-1 leading axes).

    For even sizes a cyclic shift by half the grid is this modulation in the Fourier domain.
    """
    h, w = shape[-2:]
    s = 1 - 2 * ((np.arange(h)[:, None] + np.arange(w)[None, :]) % 2)
    return s.reshape((1,) * (len(shape) - 2) + (h, w)).astype(np.float32)


def fft2c(x: jax.Array) -> jax.Array:
    """Centred orthonormal 2-D FFT over the last two axes (DC at ``(H//2, W//2)``).

    Equal to ``fftshift(fft2(ifftshift(x), norm="ortho"))``. For even ``H`` and ``W`` the two
    shifts are computed as modulations, ``c · s ⊙ fft2(s ⊙ x)`` with ``s = (-1)^(i+j)`` and
    ``c = (-1)^((H+W)/2)``, which fuse with neighbouring element-wise ops instead of copying.
    """
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        return jnp.fft.fftshift(jnp.fft.fft2(jnp.fft.ifftshift(x, axes=_AXES), norm="ortho"), axes=_AXES)
    s = _checkerboard(x.shape)
    return (s * (-1.0) ** ((h + w) // 2)) * jnp.fft.fft2(s * x, norm="ortho")


def ifft2c(k: jax.Array) -> jax.Array:
    """Inverse of :func:`fft2c` (and its adjoint: the transform is unitary)."""
    h, w = k.shape[-2:]
    if h % 2 or w % 2:
        return jnp.fft.fftshift(jnp.fft.ifft2(jnp.fft.ifftshift(k, axes=_AXES), norm="ortho"), axes=_AXES)
    s = _checkerboard(k.shape)
    return (s * (-1.0) ** ((h + w) // 2)) * jnp.fft.ifft2(s * k, norm="ortho")


class MRI(LinearOperator):
    """Single-coil Cartesian MRI, ``A x = M ⊙ F x``.

    Args:
      mask: boolean ``(H, W)`` sampling mask (``True`` = acquired), at least one entry ``True``.

    Attributes:
      mask: the boolean mask (a pytree leaf).
      in_shape, out_shape: both ``(H, W)``; unsampled k-space entries are zero.
      dtype: ``complex64``; real images are accepted and promoted.
      out_dtype: ``complex64``: data ``b`` passed to :meth:`pinv`, :meth:`adjoint` or a solver must
        be complex (a real ``|b|`` raises, see :meth:`check_output`).

    Examples:
      Every second line of an 8 x 8 k-space (rows 0, 2, 4, 6; the centre row 4 included):

      >>> import jax, jax.numpy as jnp
      >>> from manifold.operators import MRI, masks
      >>> A = MRI(masks.uniform((8, 8), 2))
      >>> x = jax.random.uniform(jax.random.key(0), (8, 8))
      >>> b = A(x)
      >>> b.shape, b.dtype
      ((8, 8), dtype('complex64'))
      >>> bool(jnp.all(b[1] == 0))  # unsampled lines are zero
      True
      >>> x_zf = A.pinv(b)  # zero-filled reconstruction: x folded twice, A x_zf = b
      >>> bool(jnp.allclose(A(x_zf), b, atol=1e-5))
      True
      >>> A(jnp.stack([x, x])).shape  # leading batch axes
      (2, 8, 8)
      >>> A.pinv(jnp.abs(b))  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      ValueError: y: expected a complex array of shape (8, 8) ... not |b| or b.real)
    """

    exact_pinv = True  # A^+ = A^H: x + A^+(b - A x) puts the measured k-space samples back

    def __init__(self, mask: jax.Array):
        self.mask = check_mask(mask)
        self.in_shape = tuple(self.mask.shape)
        self.out_shape = tuple(self.mask.shape)
        self.dtype = jnp.complex64

    def _forward(self, x):
        return jnp.where(self.mask, fft2c(x.astype(jnp.result_type(x.dtype, jnp.complex64))), 0)

    def _adjoint(self, y):
        return ifft2c(jnp.where(self.mask, y.astype(jnp.result_type(y.dtype, jnp.complex64)), 0))

    def _pinv(self, y):
        # M F with M a projection and F unitary: A^+ = F^H M = A^H (zero-filled inverse).
        return self._adjoint(y)


class MultiCoilMRI(LinearOperator):
    """Multi-coil Cartesian MRI (SENSE), ``(A x)_c = M ⊙ F (S_c ⊙ x)`` for coils ``c = 1..C``.

    Adjoint: ``A^H y = sum_c conj(S_c) ⊙ F^H (M ⊙ y_c)``. With a fully sampled mask the normal
    operator is the diagonal ``diag(sum_c |S_c|^2)``, so the pseudo-inverse is closed form,
    ``A^+ y = A^H y / sum_c |S_c|^2`` (zero where no coil sees the pixel); otherwise it is CG on
    the normal equations.

    Args:
      mask: boolean ``(H, W)`` sampling mask shared by all coils.
      coil_maps: complex ``(C, H, W)`` sensitivities, e.g. from :func:`simulated_coil_maps`.

    Attributes:
      in_shape: ``(H, W)``; out_shape: ``(C, H, W)``; dtype: ``complex64``.
    """

    def __init__(self, mask: jax.Array, coil_maps: jax.Array):
        self.mask = check_mask(mask)
        maps = check_array(coil_maps, "coil_maps")
        if maps.ndim != 3 or maps.shape[1:] != self.mask.shape:
            raise ValueError(
                f"coil_maps: expected shape (n_coils, {self.mask.shape[0]}, {self.mask.shape[1]}), got {maps.shape}"
            )
        self.coil_maps = maps.astype(jnp.complex64)
        self.in_shape = tuple(self.mask.shape)
        self.out_shape = tuple(maps.shape)
        self.dtype = jnp.complex64
        self.fully_sampled = bool(np.all(np.asarray(self.mask)))

    def _forward(self, x):
        return jnp.where(self.mask[None], fft2c(self.coil_maps * x[None]), 0)

    def _adjoint(self, y):
        return jnp.sum(jnp.conj(self.coil_maps) * ifft2c(jnp.where(self.mask[None], y, 0)), axis=0)

    def _pinv(self, y):
        if not self.fully_sampled:
            return super()._pinv(y)
        power = jnp.sum(jnp.abs(self.coil_maps) ** 2, axis=0)
        safe = jnp.where(power > 0, power, 1)
        return jnp.where(power > 0, self._adjoint(y) / safe, 0)


def simulated_coil_maps(
    shape: tuple[int, int], n_coils: int, *, distance: float = 1.5, width: float = 1.0
) -> jax.Array:
    """Smooth birdcage-like receive sensitivities, normalised so ``sum_c |S_c|^2 = 1``.

    Coil ``c`` sits at ``distance * (cos φ_c, sin φ_c)`` on the ``[-1, 1]^2`` image square,
    ``φ_c = 2π c / C``. Its raw sensitivity at pixel ``p`` is a Gaussian fall-off times a phase
    that winds with the angle seen from the coil,

        s_c(p) = exp(-|p - p_c|^2 / (2 width^2)) · exp(i (φ_c + angle(p - p_c))),

    and the maps are divided by the root-sum-of-squares ``sqrt(sum_c |s_c|^2)``.

    Args:
      shape: image shape ``(H, W)``.
      n_coils: number of coils ``C >= 1``.
      distance: distance of the coil centres from the image centre.
      width: Gaussian fall-off length.

    Returns:
      complex64 array ``(C, H, W)``.
    """
    if not (isinstance(shape, (tuple, list)) and len(shape) == 2 and all(isinstance(s, int) and s >= 1 for s in shape)):
        raise ValueError(f"shape: expected a tuple (H, W) of positive ints, got {shape!r}")
    if isinstance(n_coils, bool) or not isinstance(n_coils, int) or n_coils < 1:
        raise ValueError(f"n_coils: expected an int >= 1, got {n_coils!r}")
    if not (math.isfinite(width) and width > 0):
        raise ValueError(f"width: expected a positive number, got {width!r}")
    h, w = shape
    y = (jnp.arange(h, dtype=jnp.float32) + 0.5) / h * 2 - 1
    x = (jnp.arange(w, dtype=jnp.float32) + 0.5) / w * 2 - 1
    yy, xx = jnp.meshgrid(-y, x, indexing="ij")
    phi = 2 * jnp.pi * jnp.arange(n_coils, dtype=jnp.float32) / n_coils
    cx = (distance * jnp.cos(phi))[:, None, None]
    cy = (distance * jnp.sin(phi))[:, None, None]
    dx, dy = xx[None] - cx, yy[None] - cy
    magnitude = jnp.exp(-(dx**2 + dy**2) / (2 * width**2))
    phase = phi[:, None, None] + jnp.arctan2(dy, dx)
    maps = magnitude * jnp.exp(1j * phase)
    rss = jnp.sqrt(jnp.sum(jnp.abs(maps) ** 2, axis=0, keepdims=True))
    return (maps / rss).astype(jnp.complex64)
