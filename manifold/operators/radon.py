"""2-D parallel-beam X-ray (Radon) transform with a matched adjoint and filtered back-projection.

The discretisation is the one of ``skimage.transform.radon(image, theta, circle=True)``: for
each angle θ the ``n x n`` image is rotated about the pixel ``(c, c)``, ``c = n // 2``, by
bilinear interpolation (zero outside the image) and summed over rows. With ``(r, q)`` the row
and column of the rotated image,

    y[θ, q] = sum_r x̃( c + cos θ (r - c) - sin θ (q - c),  c + sin θ (r - c) + cos θ (q - c) ),

where ``x̃(row, col)`` is the bilinear interpolant of ``x``. The output is ``(n_angles, n)``:
one row per angle (skimage returns the transpose). Sparse-view and limited-angle CT are the
same operator with fewer or a narrower range of ``angles``.

The forward gathers the four bilinear neighbours of every sample, one angle and 32 rotated rows
at a time so the gathered values stay in cache; the batch of images is the trailing, contiguous
axis of the gather, so every fetched index serves the whole batch. The adjoint is
the exact transpose, from :func:`jax.linear_transpose`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from manifold.operators._base import LinearOperator, check_array

__all__ = ["Radon", "ramp_filter"]


def ramp_filter(size: int) -> np.ndarray:
    """Ram-Lak filter in the Fourier domain for projections zero-padded to ``size`` samples.

    Built, as in scikit-image, from the band-limited spatial-domain ramp kernel
    ``h[0] = 1/4``, ``h[k] = -1/(π k)^2`` for odd ``k``, ``0`` for even ``k`` (Kak & Slaney,
    eq. 3.61), which avoids the DC bias of sampling ``|ω|`` directly.

    Returns:
      float32 array ``(size,)`` in FFT order.
    """
    k = np.concatenate([np.arange(1, size // 2 + 1, 2), np.arange(size // 2 - 1, 0, -2)])
    h = np.zeros(size)
    h[0] = 0.25
    h[1::2] = -1.0 / (np.pi * k) ** 2
    return (2 * np.real(np.fft.fft(h))).astype(np.float32)


class Radon(LinearOperator):
    """Parallel-beam Radon transform ``(n, n) -> (n_angles, n)``, skimage-compatible.

    Args:
      shape: image shape ``(n, n)`` (square) or ``n``.
      angles: projection angles in degrees, 1-d.

    Attributes:
      angles: float32 ``(n_angles,)`` degrees (a pytree leaf).
      in_shape: ``(n, n)``; out_shape: ``(n_angles, n)``; dtype: ``float32``.
    """

    def __init__(self, shape: int | tuple[int, int], angles):
        if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
            shape = (int(shape), int(shape))
        if (
            not isinstance(shape, (tuple, list))
            or len(shape) != 2
            or shape[0] != shape[1]
            or not all(isinstance(s, (int, np.integer)) and s >= 2 for s in shape)
        ):
            raise ValueError(f"shape: expected a square image shape (n, n) with n >= 2, got {shape!r}")
        angles = np.asarray(angles)
        if angles.ndim != 1 or angles.size == 0 or not np.issubdtype(angles.dtype, np.number):
            raise ValueError(f"angles: expected a non-empty 1-d array of angles in degrees, got shape {angles.shape}")
        if not np.all(np.isfinite(angles)):
            raise ValueError("angles: contains NaN or infinite values")
        n = int(shape[0])
        self.angles = jnp.asarray(angles, jnp.float32)
        self.in_shape = (n, n)
        self.out_shape = (int(angles.size), n)
        self.dtype = jnp.float32

    # -- forward and adjoint: batched, compiled once per shape ---------------------------------
    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply ``A`` to ``x`` of shape ``(n, n)`` or ``(*batch, n, n)``.

        Batches go through one gather per angle with the batch as the contiguous trailing axis
        (faster than ``vmap`` of the single-image forward, which fetches each index per image).
        """
        x = self.check_input(x)
        return _unbatch(_project(_batch(x, self.in_shape), self.angles), x.shape[:-2], self.out_shape)

    def adjoint(self, y: jax.Array) -> jax.Array:
        """Apply ``A^H = A^T`` (the exact transpose) to real ``y`` of shape ``(*batch, n_angles, n)``."""
        y = self.check_output(y, "y")
        return _unbatch(_backproject(_batch(y, self.out_shape), self.angles), y.shape[:-2], self.in_shape)

    def _forward(self, x):
        return _project(x[None], self.angles)[0]

    def _adjoint(self, y):
        return _backproject(y[None], self.angles)[0]

    # -- filtered back-projection -------------------------------------------------------------
    def fbp(self, sinogram: jax.Array) -> jax.Array:
        """Filtered back-projection with the Ram-Lak (ramp) filter, as ``skimage.transform.iradon``.

        Each projection is zero-padded to ``P = max(64, 2^ceil(log2(2 ceil(sqrt(2) n))))``
        samples, filtered with :func:`ramp_filter` in the Fourier domain, and back-projected
        with linear interpolation along the detector:

            x(p) = π / (2 n_angles) · sum_θ (h * y_θ)(t),   t = (col - c) cos θ - (row - c) sin θ,

        then set to zero outside the inscribed circle of radius ``n // 2``. For angles spread
        uniformly over 180° this approximately inverts the forward (``fbp(A(x)) ≈ x``).

        Args:
          sinogram: ``(n_angles, n)`` or ``(*batch, n_angles, n)``.

        Returns:
          Images ``(*batch, n, n)``, float32.
        """
        y = check_array(sinogram, "sinogram", shape=self.out_shape)
        if jnp.iscomplexobj(y):
            raise ValueError("sinogram: expected a real array, got a complex one")
        return _unbatch(_fbp(_batch(y, self.out_shape).astype(jnp.float32), self.angles), y.shape[:-2], self.in_shape)


def _batch(x, core_shape):
    return x.reshape((-1, *core_shape))


def _unbatch(x, batch, core_shape):
    return x.reshape(batch + core_shape)


_ROW_BLOCK = 32  # rotated-image rows gathered at once: keeps the gathered values in cache


@jax.jit
def _project(images: jax.Array, angles: jax.Array) -> jax.Array:
    """Project a stack ``(B, n, n)`` to ``(B, n_angles, n)`` (real or complex images)."""
    n = images.shape[-1]
    width = n + 3  # one zero column/row before, two after: every neighbour index is valid
    padded = jnp.pad(images, ((0, 0), (1, 2), (1, 2)))
    table = padded.reshape(images.shape[0], -1).T  # (pixels, B): a gathered row serves the batch
    centre = n // 2
    q = (jnp.arange(n, dtype=jnp.float32) - centre)[None, :]  # detector columns
    block = min(_ROW_BLOCK, n)
    n_blocks = -(-n // block)

    def one_angle(theta):
        cos, sin = jnp.cos(jnp.deg2rad(theta)), jnp.sin(jnp.deg2rad(theta))

        def add_rows(acc, start):
            rows = start + jnp.arange(block)
            r = (rows.astype(jnp.float32) - centre)[:, None]  # rotated-image rows, summed over
            # Source coordinates, clipped to [-1, n]: beyond that all neighbours are zero padding.
            row = jnp.clip(centre + cos * r - sin * q, -1, n)
            col = jnp.clip(centre + sin * r + cos * q, -1, n)
            row0, col0 = jnp.floor(row), jnp.floor(col)
            fr, fc = (row - row0)[..., None], (col - col0)[..., None]
            idx = (row0.astype(jnp.int32) + 1) * width + (col0.astype(jnp.int32) + 1)
            top = (1 - fc) * table[idx] + fc * table[idx + 1]
            bottom = (1 - fc) * table[idx + width] + fc * table[idx + width + 1]
            values = jnp.where((rows < n)[:, None, None], (1 - fr) * top + fr * bottom, 0)  # last block may overhang
            return acc + jnp.sum(values, axis=0), None

        acc0 = jnp.zeros((n, images.shape[0]), table.dtype)
        if n_blocks == 1:  # small images: no loop
            return add_rows(acc0, 0)[0]
        acc, _ = jax.lax.scan(add_rows, acc0, jnp.arange(n_blocks) * block)
        return acc  # (n, B)

    sino = jax.lax.map(one_angle, angles)  # (n_angles, n, B)
    return jnp.moveaxis(sino, -1, 0)


@jax.jit
def _backproject(sinos: jax.Array, angles: jax.Array) -> jax.Array:
    """Exact transpose of :func:`_project`: ``(B, n_angles, n) -> (B, n, n)``."""
    n = sinos.shape[-1]
    dtype = jnp.result_type(sinos.dtype, jnp.float32)
    primal = jax.ShapeDtypeStruct((sinos.shape[0], n, n), dtype)
    (images,) = jax.linear_transpose(lambda x: _project(x, angles), primal)(sinos.astype(dtype))
    return images


@jax.jit
def _fbp(sinos: jax.Array, angles: jax.Array) -> jax.Array:
    """Filtered back-projection of ``(B, n_angles, n)`` real sinograms (see :meth:`Radon.fbp`)."""
    n_angles, n = sinos.shape[-2:]
    size = max(64, 2 ** math.ceil(math.log2(2 * math.ceil(math.sqrt(2) * n))))
    spectrum = jnp.fft.fft(sinos, n=size, axis=-1) * jnp.asarray(ramp_filter(size))[None, None]
    filtered = jnp.real(jnp.fft.ifft(spectrum, axis=-1))[..., :n]  # (B, n_angles, n)
    table = jnp.pad(jnp.moveaxis(filtered, 0, -1), ((0, 0), (0, 1), (0, 0)))  # (angles, n+1, B)
    centre = n // 2
    grid = jnp.arange(n, dtype=jnp.float32) - centre
    row, col = grid[:, None], grid[None, :]

    def add_angle(acc, inputs):
        theta, proj = inputs
        cos, sin = jnp.cos(jnp.deg2rad(theta)), jnp.sin(jnp.deg2rad(theta))
        t = col * cos - row * sin + centre  # detector coordinate in samples
        inside = (t >= 0) & (t <= n - 1)  # np.interp(left=0, right=0)
        t = jnp.clip(t, 0, n - 1)
        t0 = jnp.floor(t)
        i0 = t0.astype(jnp.int32)
        f = (t - t0)[..., None]
        value = (1 - f) * proj[i0] + f * proj[i0 + 1]  # proj[n] is the zero pad
        return acc + jnp.where(inside[..., None], value, 0), None

    acc0 = jnp.zeros((n, n, sinos.shape[0]), jnp.float32)
    acc, _ = jax.lax.scan(add_angle, acc0, (angles, table))
    disk = (row**2 + col**2) <= (n // 2) ** 2
    image = jnp.where(disk[..., None], acc, 0) * (jnp.pi / (2 * n_angles))
    return jnp.moveaxis(image, -1, 0)
