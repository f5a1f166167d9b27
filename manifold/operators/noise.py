"""Measurement noise: complex-aware Gaussian noise and Poisson photon counts for low-dose CT."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from manifold.checks import check_key
from manifold.operators._base import check_array

__all__ = ["gaussian_noise", "line_integrals", "noise_sigma", "poisson_counts"]


def _check_where(where, y):
    if where is None:
        return jnp.ones(y.shape, bool)
    where = jnp.asarray(where)
    if where.dtype != bool:
        raise ValueError(f"where: expected a boolean array, got dtype {where.dtype}")
    if where.ndim > y.ndim or y.shape[y.ndim - where.ndim :] != where.shape:
        raise ValueError(f"where: expected a shape that y {y.shape} ends with, got {where.shape}")
    return jnp.broadcast_to(where.reshape((1,) * (y.ndim - where.ndim) + where.shape), y.shape)


def noise_sigma(y: jax.Array, snr_db: float, *, where: jax.Array | None = None) -> jax.Array:
    """Noise standard deviation giving ``snr_db`` for the signal ``y``.

    ``SNR_dB = 10 log10(P / sigma^2)`` with ``P = mean |y|^2`` over the entries selected by
    ``where`` (default all), so ``sigma = sqrt(P) · 10^(-SNR_dB / 20)``.
    """
    y = check_array(y, "y")
    sel = _check_where(where, y)
    power = jnp.sum(jnp.where(sel, jnp.abs(y) ** 2, 0)) / jnp.maximum(jnp.sum(sel), 1)
    return jnp.sqrt(power) * 10.0 ** (-snr_db / 20.0)


def gaussian_noise(
    key: jax.Array,
    y: jax.Array,
    *,
    sigma: float | None = None,
    snr_db: float | None = None,
    where: jax.Array | None = None,
) -> jax.Array:
    """Return ``y + n`` with white Gaussian noise ``n`` of standard deviation ``sigma``.

    For complex ``y`` the noise is circular, ``n = sigma/sqrt(2) · (n_r + i n_i)``, so that
    ``E|n|^2 = sigma^2`` in both cases. Give exactly one of ``sigma`` or ``snr_db`` (then
    ``sigma = noise_sigma(y, snr_db, where=where)``, the SNR relative to the mean signal power).

    Args:
      key: PRNG key.
      y: clean measurement, real or complex, any shape.
      sigma: noise standard deviation ``>= 0``.
      snr_db: signal-to-noise ratio in dB.
      where: optional boolean mask (broadcast against the trailing axes of ``y``): noise is added
        only there and the signal power is measured only there, e.g. the sampled k-space
        locations of a masked MRI measurement.

    Returns:
      The noisy measurement, same shape and dtype as ``y``.
    """
    key = check_key(key)
    y = check_array(y, "y")
    if (sigma is None) == (snr_db is None):
        raise ValueError("sigma, snr_db: expected exactly one of them, got " + ("neither" if sigma is None else "both"))
    if sigma is not None and not (isinstance(sigma, jax.Array) or (math.isfinite(sigma) and sigma >= 0)):
        raise ValueError(f"sigma: expected a finite number >= 0, got {sigma!r}")
    if snr_db is not None and not (isinstance(snr_db, jax.Array) or math.isfinite(snr_db)):
        raise ValueError(f"snr_db: expected a finite number, got {snr_db!r}")
    sel = _check_where(where, y)
    if sigma is None:
        sigma = noise_sigma(y, snr_db, where=where)
    if jnp.iscomplexobj(y):
        kr, ki = jax.random.split(key)
        real_dtype = jnp.real(y).dtype
        n = jax.random.normal(kr, y.shape, real_dtype) + 1j * jax.random.normal(ki, y.shape, real_dtype)
        n = n / math.sqrt(2)
    else:
        n = jax.random.normal(key, y.shape, y.dtype)
    return jnp.where(sel, y + sigma * n, y).astype(y.dtype)


def poisson_counts(key: jax.Array, sinogram: jax.Array, *, photons: float) -> jax.Array:
    """Photon counts of a low-dose CT scan, ``N ~ Poisson(photons · exp(-sinogram))``.

    Beer-Lambert: a ray with line integral ``p = ∫ μ ds`` (in units where the path length
    matches ``μ``, e.g. ``Radon(x) * pixel_size``) attenuates ``photons`` incident photons to
    ``photons · exp(-p)`` expected counts. Fewer photons = lower dose = more noise. Convert back
    to noisy line integrals with :func:`line_integrals`.

    Args:
      key: PRNG key.
      sinogram: real, non-negative line integrals, any shape.
      photons: incident photons per ray (blank-scan counts) ``> 0``.

    Returns:
      float32 counts, same shape as ``sinogram``.
    """
    key = check_key(key)
    p = check_array(sinogram, "sinogram")
    if jnp.iscomplexobj(p):
        raise ValueError("sinogram: expected a real array, got a complex one")
    if not (math.isfinite(photons) and photons > 0):
        raise ValueError(f"photons: expected a finite number > 0, got {photons!r}")
    rate = photons * jnp.exp(-p.astype(jnp.float32))
    return jax.random.poisson(key, rate, p.shape).astype(jnp.float32)


def line_integrals(counts: jax.Array, *, photons: float) -> jax.Array:
    """Noisy line integrals ``-log(max(N, 1/2) / photons)`` from photon counts ``N``.

    Zero counts (photon starvation) are replaced by ``1/2`` so the log stays finite.
    """
    n = check_array(counts, "counts")
    if not (math.isfinite(photons) and photons > 0):
        raise ValueError(f"photons: expected a finite number > 0, got {photons!r}")
    return -jnp.log(jnp.maximum(n, 0.5) / photons)
