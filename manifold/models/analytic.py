"""Analytic generators with known geometry: oracles for :mod:`manifold.geometry`.

Each function returns a :class:`~manifold.models.Generator` whose tangent rank, curvature or
aliasing behaviour is known in closed form, so the numerical geometry tools can be checked
against an answer that does not come from the code under test:

* :func:`linear_generator`: ``G(h) = W h``, a flat manifold of dimension ``rank(W)``;
* :func:`circle_generator`: ``G(t) = R (cos t, sin t)``, normal curvature ``1 / R`` everywhere;
* :func:`ignored_latents_generator`: a smooth nonlinear map that reads only some latent entries,
  so its tangent rank is the number of entries used;
* :func:`spot_generator`: small bright periodic Gaussian spots at positions ``h``, the example in
  which uniform 4x MRI undersampling cannot tell a spot from its alias a quarter image away;
* :func:`rotation_generator`: rotated copies of one image (``k = 1``), the example in which a
  linear subspace of rotated copies blurs the rotation it should represent;
* :func:`lung_generator`: the lung EIT phantom as a function of its 8 parameters, a generator
  of known intrinsic dimension 8 to hold trained generators against.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key, is_key
from manifold.data import LUNG_PARAM_NAMES, LUNG_PARAM_RANGES, lung_phantom_from_params
from manifold.models._generator import Generator

__all__ = [
    "circle_generator",
    "ignored_latents_generator",
    "linear_generator",
    "lung_generator",
    "rotation_generator",
    "spot_generator",
]


def _check_shape(image_shape, name: str = "image_shape") -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in image_shape)
    except TypeError:
        raise TypeError(f"{name}: expected a tuple of positive integers, got {image_shape!r}") from None
    if not shape or min(shape) < 1:
        raise ValueError(f"{name}: expected a tuple of positive integers, got {image_shape!r}")
    return shape


def _linear_apply(params, h, *, shape):
    return (h @ params["W"].T).reshape((h.shape[0], *shape))


@functools.cache
def _reshaping(apply, shape: tuple[int, ...]):
    """``apply`` with the image shape bound (cached, so equal shapes share one jit cache entry)."""
    return functools.partial(apply, shape=shape)


def linear_generator(
    weights_or_key,
    *,
    image_shape: tuple[int, ...] | None = None,
    latent_dim: int | None = None,
    rank: int | None = None,
) -> Generator:
    """The linear generator ``G(h) = W h`` (reshaped to ``image_shape``).

    Its image is the subspace ``range(W)``: tangent rank ``rank(W)`` at every ``h``, zero curvature.

    Args:
      weights_or_key: either the matrix ``W`` of shape ``(n_pixels, k)``, or a PRNG key from which
        a random ``W = U diag(s) V^T`` of exactly rank ``rank`` is drawn (``s`` in [1, 2]).
      image_shape: shape of one image; default ``(n_pixels,)`` for a given ``W``. Required with a key.
      latent_dim: ``k``; required with a key, ignored (taken from ``W``) otherwise.
      rank: rank of the random ``W`` (default ``min(n_pixels, latent_dim)``); only with a key.

    Returns:
      A :class:`Generator` named ``"linear"``.
    """
    if is_key(weights_or_key):
        if image_shape is None or latent_dim is None:
            raise ValueError("image_shape, latent_dim: both are required when a PRNG key is given")
        shape = _check_shape(image_shape)
        n, k = math.prod(shape), int(latent_dim)
        r = min(n, k) if rank is None else int(rank)
        if not 0 <= r <= min(n, k):
            raise ValueError(f"rank: expected an integer in [0, min(n_pixels, latent_dim) = {min(n, k)}], got {rank}")
        ku, kv, ks = jax.random.split(weights_or_key, 3)
        # Draw at full size and orthonormalise on the host: no shape-specific compilation per rank.
        u, _ = np.linalg.qr(np.asarray(jax.random.normal(ku, (n, min(n, k)))))
        v, _ = np.linalg.qr(np.asarray(jax.random.normal(kv, (k, min(n, k)))))
        s = np.asarray(jax.random.uniform(ks, (min(n, k),), minval=1.0, maxval=2.0))
        w = jnp.asarray((u[:, :r] * s[None, :r]) @ v[:, :r].T, jnp.float32)
    else:
        if rank is not None:
            raise ValueError("rank: only meaningful when a PRNG key is given (W fixes its own rank)")
        w = jnp.asarray(weights_or_key, dtype=jnp.float32)
        if w.ndim != 2:
            raise ValueError(f"weights_or_key: expected a PRNG key or a matrix (n_pixels, k), got shape {w.shape}")
        if latent_dim is not None and int(latent_dim) != w.shape[1]:
            raise ValueError(f"latent_dim: W has {w.shape[1]} columns but latent_dim={latent_dim}")
        shape = (w.shape[0],) if image_shape is None else _check_shape(image_shape)
        if math.prod(shape) != w.shape[0]:
            raise ValueError(f"image_shape: {shape} has {math.prod(shape)} pixels but W has {w.shape[0]} rows")
        k = w.shape[1]
    return Generator(_reshaping(_linear_apply, shape), {"W": w}, latent_dim=k, image_shape=shape, name="linear")


def _circle_apply(params, h):
    t = h[:, 0]
    return params["radius"] * jnp.stack([jnp.cos(t), jnp.sin(t)], axis=-1)


def circle_generator(radius: float = 1.0) -> Generator:
    """The circle ``G(t) = R (cos t, sin t)`` in ``R^2`` (``k = 1``, ``image_shape = (2,)``).

    Its normal curvature is ``1 / R`` at every point: the oracle for
    :func:`manifold.geometry.normal_curvature`.

    Args:
      radius: ``R > 0``.
    """
    if not float(radius) > 0 or not math.isfinite(float(radius)):
        raise ValueError(f"radius: expected a positive finite number, got {radius}")
    return Generator(_circle_apply, {"radius": jnp.float32(radius)}, latent_dim=1, image_shape=(2,), name="circle")


def _ignored_apply(params, h, *, shape):
    hidden = jnp.tanh((h * params["mask"][None]) @ params["W1"].T + params["b1"][None])
    return (hidden @ params["W2"].T).reshape((h.shape[0], *shape))


def ignored_latents_generator(
    key: jax.Array,
    *,
    used: int | tuple[int, ...],
    latent_dim: int,
    image_shape: tuple[int, ...] = (8, 8),
    hidden: int = 32,
) -> Generator:
    """A smooth nonlinear generator that ignores some latent entries.

    ``G(h) = W2 tanh(W1 (m * h) + b1)`` with a 0/1 mask ``m``: only the entries where ``m = 1``
    change the image, so (for generic random weights) the tangent rank is ``sum(m)`` everywhere.

    Args:
      key: PRNG key for the weights.
      used: either the number of used entries (the first ``used`` ones) or their indices.
      latent_dim: ``k``.
      image_shape: shape of one image.
      hidden: width of the hidden layer (must be at least the number of used entries).
    """
    key = check_key(key)
    k = int(latent_dim)
    if k < 1:
        raise ValueError(f"latent_dim: expected a positive integer, got {latent_dim}")
    idx = np.arange(int(used)) if np.ndim(used) == 0 else np.asarray(used, dtype=int).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= k or len(set(idx.tolist())) != idx.size):
        raise ValueError(f"used: expected distinct indices in [0, {k}) or a count <= {k}, got {used}")
    if idx.size > k or idx.size > hidden:
        raise ValueError(f"used: {idx.size} used entries exceed latent_dim={k} or hidden={hidden}")
    shape = _check_shape(image_shape)
    n = math.prod(shape)
    if idx.size > n:
        raise ValueError(f"used: {idx.size} used entries exceed the {n} pixels of image_shape {shape}")
    k1, k2, k3 = jax.random.split(key, 3)
    params = {
        "mask": jnp.zeros(k, jnp.float32).at[idx].set(1.0),
        "W1": jax.random.normal(k1, (hidden, k)) / math.sqrt(max(idx.size, 1)),
        "b1": 0.1 * jax.random.normal(k2, (hidden,)),
        "W2": jax.random.normal(k3, (n, hidden)) / math.sqrt(hidden),
    }
    return Generator(_reshaping(_ignored_apply, shape), params, latent_dim=k, image_shape=shape, name="ignored_latents")


def _spot_apply(params, h):
    spectrum = params["spectrum"]  # (size, size) real, the DFT of one centred spot
    size = spectrum.shape[0]
    f = jnp.fft.fftfreq(size).astype(jnp.float32)[None, None, :]
    pos = h.reshape(h.shape[0], -1, 2) * params["scale"] + params["centre"]  # (B, spots, 2) in pixels
    phase_rows = jnp.exp(-2j * jnp.pi * pos[..., 0:1] * f)  # (B, spots, size)
    phase_cols = jnp.exp(-2j * jnp.pi * pos[..., 1:2] * f)
    shifted = spectrum[None, None] * phase_rows[..., :, None] * phase_cols[..., None, :]  # (B, spots, size, size)
    images = jnp.fft.ifft2(jnp.sum(shifted, axis=1)).real
    return params["amplitude"] * images


def spot_generator(size: int = 16, *, width: float = 1.0, n_spots: int = 1, amplitude: float = 1.0) -> Generator:
    """Small bright Gaussian spots at latent-controlled positions on a periodic ``size x size`` grid.

    Spot ``s`` sits at pixel position ``(row, col) = size/2 + (size/4) * (h[2s], h[2s+1])``, so
    ``h ~ N(0, I)`` spreads spots over the image and a latent step of ``1`` moves a spot by a
    quarter of the image. The spot is the periodic Gaussian ``exp(-d^2 / (2 width^2))`` shifted in
    Fourier space, so a shift by ``size/4`` rows is *exactly* a circular shift. This makes it the
    M-RIP example of the package: uniform 4x phase-encoding undersampling (keeping every fourth
    k-space row) cannot tell a spot from the one ``size/4`` rows away (``h`` and
    ``h + (1, 0)``), while one extra low-frequency line can.

    Args:
      size: image side length (a multiple of 4).
      width: spot standard deviation in pixels.
      n_spots: number of spots; ``latent_dim = 2 n_spots``.
      amplitude: peak brightness of a spot at an integer position.
    """
    if not isinstance(size, (int, np.integer)) or size < 4 or size % 4:
        raise ValueError(f"size: expected a positive multiple of 4, got {size!r}")
    if not float(width) > 0:
        raise ValueError(f"width: expected a positive number of pixels, got {width}")
    if not isinstance(n_spots, (int, np.integer)) or n_spots < 1:
        raise ValueError(f"n_spots: expected a positive integer, got {n_spots!r}")
    f = np.fft.fftfreq(size)
    g1 = np.exp(-2.0 * np.pi**2 * float(width) ** 2 * f**2)  # DFT of a periodic Gaussian, up to scale
    spectrum = np.outer(g1, g1)
    peak = np.fft.ifft2(spectrum).real.max()
    params = {
        "spectrum": jnp.asarray(spectrum / peak, jnp.float32),
        "scale": jnp.float32(size / 4),
        "centre": jnp.float32(size / 2),
        "amplitude": jnp.float32(amplitude),
    }
    return Generator(_spot_apply, params, latent_dim=2 * int(n_spots), image_shape=(size, size), name="spots")


def _rotation_apply(params, h):
    image = params["image"]
    rows, cols = image.shape
    r, c = jnp.meshgrid(jnp.arange(rows, dtype=jnp.float32), jnp.arange(cols, dtype=jnp.float32), indexing="ij")
    cy, cx = (rows - 1) / 2.0, (cols - 1) / 2.0

    def rotate(theta):
        # Output pixel p samples the input at R(-theta) p (rotation about the image centre).
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        src_r = cy + cos * (r - cy) - sin * (c - cx)
        src_c = cx + sin * (r - cy) + cos * (c - cx)
        return jax.scipy.ndimage.map_coordinates(image, [src_r, src_c], order=1, mode="constant", cval=0.0)

    return jax.vmap(rotate)(h[:, 0])


def rotation_generator(image) -> Generator:
    """Rotated copies ``G(theta)`` of a 2-D image (bilinear interpolation, zero outside; ``k = 1``).

    Args:
      image: a 2-D float array.
    """
    image = jnp.asarray(image)
    if image.ndim != 2 or not jnp.issubdtype(image.dtype, jnp.floating):
        raise ValueError(f"image: expected a 2-D float array, got shape {image.shape} and dtype {image.dtype}")
    return Generator(_rotation_apply, {"image": image}, latent_dim=1, image_shape=image.shape, name="rotation")


def _lung_apply(params, h, *, size):
    return lung_phantom_from_params(params["mid"][None] + params["half"][None] * jnp.tanh(h), size=size)


@functools.cache
def _lung_apply_for(size: int):
    return functools.partial(_lung_apply, size=size)


def lung_generator(size: int = 32) -> Generator:
    """Lung EIT phantoms as a generator of their 8 parameters (``k = 8``, intrinsic dimension 8).

    ``G(h) = lung_phantom_from_params(mid + half * tanh(h))`` maps ``R^8`` smoothly onto the
    parameter box :data:`manifold.data.LUNG_PARAM_RANGES` (mid-points ``mid``, half-widths
    ``half``), so ``h ~ N(0, I)`` covers the box and every latent entry changes the image.

    Args:
      size: image side length in pixels.
    """
    ranges = np.array([LUNG_PARAM_RANGES[name][:2] for name in LUNG_PARAM_NAMES], np.float32)
    params = {"mid": jnp.asarray(ranges.mean(axis=1)), "half": jnp.asarray((ranges[:, 1] - ranges[:, 0]) / 2)}
    k = len(LUNG_PARAM_NAMES)
    return Generator(_lung_apply_for(int(size)), params, latent_dim=k, image_shape=(size, size), name="lung")
