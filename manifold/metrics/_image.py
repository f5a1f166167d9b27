"""Image-quality metrics: PSNR, SSIM (scikit-image conventions), relative error, local contrast.

All metrics compare images over their trailing axes and broadcast over leading batch axes, are
pure ``jax.numpy`` (so ``jit``/``vmap``/``grad`` work) and return float32 arrays of shape
``batch``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

__all__ = ["local_contrast", "psnr", "relative_error", "ssim"]


def _check_pair(x, ref, *, ndim: int, real: bool = False) -> tuple[jax.Array, jax.Array]:
    x, ref = jnp.asarray(x), jnp.asarray(ref)
    for name, v in (("x", x), ("ref", ref)):
        if not (jnp.issubdtype(v.dtype, jnp.floating) or jnp.issubdtype(v.dtype, jnp.complexfloating)):
            raise ValueError(f"{name}: expected a floating or complex array, got dtype {v.dtype}")
        if real and jnp.iscomplexobj(v):
            raise ValueError(f"{name}: expected a real image, got a complex one (pass jnp.abs({name}))")
        if v.ndim < ndim:
            raise ValueError(f"{name}: expected at least {ndim} image axes, got shape {v.shape}")
    if x.shape != ref.shape:
        raise ValueError(f"x: expected the shape of ref {ref.shape}, got {x.shape}")
    return x, ref


def _check_ndim(ndim) -> int:
    if isinstance(ndim, bool) or not isinstance(ndim, int) or ndim < 1:
        raise ValueError(f"ndim: expected a positive int (number of trailing image axes), got {ndim!r}")
    return ndim


def _check_range(data_range):
    if data_range is None or isinstance(data_range, jax.Array):
        return data_range
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range: expected a positive number, got {data_range!r}")
    return jnp.float32(data_range)


def _data_range(ref, data_range, axes):
    """``data_range``, or the per-image ``max(ref) - min(ref)`` when it is ``None``."""
    if data_range is None:
        return jnp.max(ref, axis=axes) - jnp.min(ref, axis=axes)
    return jnp.asarray(data_range, jnp.float32)


def relative_error(x: jax.Array, ref: jax.Array, *, ndim: int = 2) -> jax.Array:
    """Relative L2 error ``||x - ref|| / ||ref||`` over the last ``ndim`` axes.

    Args:
      x: estimate, real or complex, ``(*batch, *image)``.
      ref: reference of the same shape (must not be all zero).
      ndim: number of trailing axes that form one image.

    Returns:
      ``(*batch,)`` relative errors.
    """
    x, ref = _check_pair(x, ref, ndim=_check_ndim(ndim))
    return _relative_error(x, ref, ndim)


@functools.partial(jax.jit, static_argnums=2)
def _relative_error(x, ref, ndim):
    batch = x.shape[: x.ndim - ndim]
    return jnp.linalg.norm((x - ref).reshape(*batch, -1), axis=-1) / jnp.linalg.norm(ref.reshape(*batch, -1), axis=-1)


def local_contrast(x: jax.Array, ref: jax.Array, mask: jax.Array, *, ring: int = 2) -> jax.Array:
    """Recovered contrast of a small structure: its local contrast in ``x`` relative to ``ref``'s.

    The local contrast of an image is the mean over the structure's pixels ``mask`` minus the mean
    over a ring of ``ring`` pixels around it (``mask`` dilated by a ``(2 ring + 1)^2`` square, minus
    ``mask``), so a smooth background cancels. ``1``: the structure is kept at full contrast,
    ``0``: erased, negative: inverted.

    Args:
      x: reconstructions ``(*batch, H, W)``, real.
      ref: the truths, same shape; their local contrast must not be zero.
      mask: the structure, boolean ``(H, W)`` or ``(*batch, H, W)``, not empty, not the whole image.
      ring: width of the surrounding ring in pixels (>= 1).

    Returns:
      ``(*batch,)`` float32 recovered contrasts.

    Examples:
      >>> import jax.numpy as jnp
      >>> truth = jnp.zeros((16, 16)).at[7:9, 7:9].set(1.0)
      >>> float(local_contrast(0.5 * truth + 0.25, truth, truth > 0))  # a constant background cancels
      0.5
    """
    x, ref = _check_pair(x, ref, ndim=2, real=True)
    if isinstance(ring, bool) or not isinstance(ring, int) or ring < 1:
        raise ValueError(f"ring: expected an integer >= 1, got {ring!r}")
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_ or mask.shape[-2:] != x.shape[-2:]:
        raise ValueError(
            f"mask: expected a boolean array of shape (..., {x.shape[-2]}, {x.shape[-1]}), got {mask.dtype} {mask.shape}"
        )
    counts = mask.sum(axis=(-2, -1))
    if bool(jnp.any(counts == 0)) or bool(jnp.any(counts == mask.shape[-1] * mask.shape[-2])):
        raise ValueError("mask: every structure needs at least one pixel inside and one outside")
    ratio, truth = _local_contrast(x, ref, jnp.broadcast_to(mask, x.shape), ring)
    if not bool(jnp.all(jnp.isfinite(truth) & (truth != 0))):
        raise ValueError("ref: the structure has no local contrast in ref (or no ring around it inside the image)")
    return ratio


@functools.partial(jax.jit, static_argnums=3)
def _local_contrast(x, ref, mask, ring):
    """``(local(x) / local(ref), local(ref))``; local: mask mean minus ring mean, the ring not
    wrapping around the image edges."""
    width = 2 * ring + 1
    window = (1,) * (mask.ndim - 2) + (width, width)
    grown = jax.lax.reduce_window(mask.astype(jnp.float32), 0.0, jax.lax.max, window, (1,) * mask.ndim, "SAME") > 0
    around = grown & ~mask

    def local(img):
        mean = lambda m: jnp.sum(jnp.where(m, img, 0.0), axis=(-2, -1)) / jnp.sum(m, axis=(-2, -1))
        return mean(mask) - mean(around)

    truth = local(ref)
    return (local(x) / truth).astype(jnp.float32), truth


def psnr(x: jax.Array, ref: jax.Array, *, data_range: float | None = None, ndim: int = 2) -> jax.Array:
    """Peak signal-to-noise ratio ``10 log10(R^2 / MSE)`` in dB.

    ``MSE = mean |x - ref|^2`` over the last ``ndim`` axes. ``R`` is ``data_range``, or by
    default the dynamic range of the reference, ``max(ref) - min(ref)`` per image (scikit-image
    instead infers ``R`` from the dtype; pass ``data_range`` to match it).

    Args:
      x: estimate ``(*batch, *image)``.
      ref: real reference of the same shape.
      data_range: peak-to-peak range ``R > 0`` of the images.
      ndim: number of trailing axes that form one image.

    Returns:
      ``(*batch,)`` PSNR values (``inf`` where ``x == ref``).
    """
    x, ref = _check_pair(x, ref, ndim=_check_ndim(ndim))
    if jnp.iscomplexobj(ref):
        raise ValueError("ref: expected a real reference image (pass jnp.abs(ref))")
    return _psnr(x, ref, _check_range(data_range), ndim)


@functools.partial(jax.jit, static_argnums=3)
def _psnr(x, ref, data_range, ndim):
    axes = tuple(range(-ndim, 0))
    r = _data_range(ref, data_range, axes)
    mse = jnp.mean(jnp.abs(x - ref) ** 2, axis=axes)
    return 10.0 * jnp.log10(r**2 / mse)


def _gaussian_kernel(sigma: float, truncate: float) -> jax.Array:
    """Normalised 1-d Gaussian window of radius ``int(truncate * sigma + 0.5)`` (as scipy)."""
    radius = int(truncate * sigma + 0.5)  # as scipy.ndimage.gaussian_filter
    t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    w = jnp.exp(-0.5 * (t / sigma) ** 2)
    return w / jnp.sum(w)


def _filter(img: jax.Array, kernel: jax.Array) -> jax.Array:
    """Separable filter over the last two axes, 'reflect' boundary (scipy: half-sample symmetric)."""
    r = (kernel.shape[0] - 1) // 2
    pad = [(0, 0)] * (img.ndim - 2) + [(r, r), (r, r)]
    p = jnp.pad(img, pad, mode="symmetric")
    h, w = img.shape[-2:]
    rows = sum(kernel[k] * p[..., k : k + h, :] for k in range(kernel.shape[0]))
    return sum(kernel[k] * rows[..., k : k + w] for k in range(kernel.shape[0]))


def ssim(
    x: jax.Array,
    ref: jax.Array,
    *,
    data_range: float | None = None,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> jax.Array:
    """Mean structural similarity of 2-D images, as ``skimage.metrics.structural_similarity``.

    Matches scikit-image with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``:
    local means ``μ``, variances ``σ²`` and covariance ``σ_xr`` come from a Gaussian window
    (truncated at 3.5 σ, reflecting boundary), and

        SSIM = ((2 μ_x μ_r + C1)(2 σ_xr + C2)) / ((μ_x² + μ_r² + C1)(σ_x² + σ_r² + C2)),

    ``C1 = (k1 R)^2``, ``C2 = (k2 R)^2``, averaged over the pixels at least the window radius
    away from the border.

    Args:
      x: estimate ``(*batch, H, W)``, real.
      ref: reference of the same shape.
      data_range: ``R``, default ``max(ref) - min(ref)`` per image.
      sigma: width of the Gaussian window.
      k1, k2: stabilising constants.

    Returns:
      ``(*batch,)`` mean SSIM.
    """
    x, ref = _check_pair(x, ref, ndim=2, real=True)
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma: expected a positive number, got {sigma!r}")
    pad = int(3.5 * sigma + 0.5)
    if min(x.shape[-2:]) <= 2 * pad:
        raise ValueError(f"x: expected images larger than the {2 * pad + 1}x{2 * pad + 1} window, got {x.shape}")
    return _ssim(x.astype(jnp.float32), ref.astype(jnp.float32), _check_range(data_range), float(sigma), k1, k2)


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _ssim(x, ref, data_range, sigma, k1, k2):
    kernel = _gaussian_kernel(sigma, 3.5)
    pad = (kernel.shape[0] - 1) // 2
    r = jnp.broadcast_to(_data_range(ref, data_range, (-2, -1)), x.shape[:-2])[..., None, None]
    c1, c2 = (k1 * r) ** 2, (k2 * r) ** 2
    mx, mr = _filter(x, kernel), _filter(ref, kernel)
    vx = _filter(x * x, kernel) - mx * mx
    vr = _filter(ref * ref, kernel) - mr * mr
    cov = _filter(x * ref, kernel) - mx * mr
    s = ((2 * mx * mr + c1) * (2 * cov + c2)) / ((mx**2 + mr**2 + c1) * (vx + vr + c2))
    return jnp.mean(s[..., pad:-pad, pad:-pad], axis=(-2, -1))
