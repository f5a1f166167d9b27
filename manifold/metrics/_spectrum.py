"""Grid artefacts of a generator, read from the mean power spectrum of its samples.

A decoder that doubles its resolution ``L`` times (upsampling, transposed or sub-pixel
convolutions) can print a pattern of period ``2, 4, ..., 2^L`` pixels on every image it makes: the
checkerboard of Odena et al. (2016). In the mean power spectrum of its samples that is a peak at
the *upsampling frequencies* ``(a N / 2^j, b N / 2^j)`` cycles per image, or, when the grid is
not strictly periodic, more power at high frequency than real images have. Both are measured
against reference images (the training data), so that structure the data have themselves (the
edges along the axes, the skull's ring) is not counted.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SpectralArtifacts", "mean_power_spectrum", "spectral_peak_excess", "spectral_artifacts"]


@dataclasses.dataclass(frozen=True)
class SpectralArtifacts:
    """What :func:`spectral_artifacts` measures; ratios of the samples' to the reference's.

    Attributes:
      peak_ratio: the largest, over the upsampling frequencies, of the samples' peak prominence
        (power at the frequency over the median of a ring 2-4 bins around it) divided by the
        reference's (at least 1). About 1: no grid peak; a checkerboard gives 10-1000.
      peak_frequency: ``(ky, kx)`` in cycles per image where ``peak_ratio`` is reached.
      high_frequency_ratio: the share of the (non-DC) power above ``N / 4`` cycles per image,
        samples over reference. Below 1: smoother than the data (a VAE's blur); well above 1:
        noise or a grid the data lack.
      axis_high_frequency_ratio: the same on the two frequency axes only, where a grid of
        horizontal or vertical lines puts its power.
    """

    peak_ratio: float
    peak_frequency: tuple[int, int]
    high_frequency_ratio: float
    axis_high_frequency_ratio: float


def mean_power_spectrum(images: jax.Array) -> jax.Array:
    """Mean power spectrum of ``images``, normalised to unit total power (differentiable).

    ``P = mean_i |FFT2(w (x_i - mean x_i))|^2 / sum(...)`` with ``w`` the periodic 2-D Hann
    window: without it the jump between opposite edges (the DFT's wrap-around) puts power on the
    frequency axes that depends on what the edges hold, not on lines in the image. A pure
    frequency leaks only into its 8 neighbours.

    Args:
      images: ``(n, N, M)`` real images.

    Returns:
      ``(N, M)`` float32, unnormalised FFT order (``jnp.fft.fftfreq``), summing to 1.
    """
    x = jnp.asarray(images, jnp.float32)
    if x.ndim != 3:
        raise ValueError(f"images: expected a batch of images (n, N, M), got shape {x.shape}")
    hann = [0.5 - 0.5 * jnp.cos(2 * jnp.pi * jnp.arange(m) / m) for m in x.shape[-2:]]
    x = (x - jnp.mean(x, axis=(-2, -1), keepdims=True)) * (hann[0][:, None] * hann[1][None, :])[None]
    p = jnp.mean(jnp.abs(jnp.fft.fft2(x)) ** 2, axis=0)
    return p / jnp.maximum(jnp.sum(p), jnp.finfo(jnp.float32).tiny)


def spectral_peak_excess(
    samples: jax.Array, reference: jax.Array, *, levels: int = 3, margin: float = 1.5
) -> jax.Array:
    """Grid peaks of ``samples`` beyond the reference's, as a differentiable penalty.

    The quantity :func:`spectral_artifacts` reports as ``peak_ratio``, made smooth: at every
    upsampling frequency ``k`` (``levels`` as there), the prominence ``q(k) = P(k) / mean of P``
    over the bins 2-4 away (the median there; along the axis for a point on an axis) of the
    :func:`mean_power_spectrum` ``P``, and::

        mean over k of max(0, log q_s(k) - max(0, log q_r(k)) - log margin).

    Zero while no upsampling frequency of the samples stands out of its surroundings by more than
    ``margin`` times the reference's (at least 1); a checkerboard or a line of period 2, 4 or 8
    pixels makes it positive. As a training penalty (:func:`manifold.train.vaegan_losses`) it holds
    the frequencies a decoder's upsampling prints grids at (Odena et al. 2016), which an
    anti-aliased discriminator cannot see. It looks at those frequencies only: a grid elsewhere
    shows in ``spectral_artifacts(...).high_frequency_ratio``.

    Args:
      samples: ``(n, N, N)`` generated images (``N`` even).
      reference: ``(m, N, N)`` data (no gradient flows into it).
      levels: the number of 2x upsamplings to look at.
      margin: prominence ratios below this are free (batch spectra are noisy: a bin of the mean
        spectrum of 64 images has a relative standard deviation of about 1/8).

    Returns:
      A scalar, dimensionless.
    """
    samples, reference = _check_pair(jnp.asarray(samples), jnp.asarray(reference), levels)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 1.0 <= margin < float("inf"):
        raise ValueError(f"margin: expected a finite number >= 1, got {margin!r}")
    n = samples.shape[-1]
    points = _upsampling_frequencies(n, levels)
    rings = [_ring(n, k) for k in points]
    py, px = np.array(points).T
    tiny = jnp.finfo(jnp.float32).tiny

    def log_prominence(p):
        surroundings = jnp.stack([jnp.mean(p[ring]) for ring in rings])
        return jnp.log(p[py, px] + tiny) - jnp.log(surroundings + tiny)

    q_s = log_prominence(mean_power_spectrum(samples))
    q_r = jax.lax.stop_gradient(log_prominence(mean_power_spectrum(reference)))
    return jnp.mean(jax.nn.relu(q_s - jax.nn.relu(q_r) - float(np.log(margin))))


def _mean_power(x: np.ndarray) -> np.ndarray:
    p = np.asarray(mean_power_spectrum(x), np.float64)
    return p / max(float(p.sum()), np.finfo(np.float64).tiny)


def _upsampling_frequencies(n: int, levels: int) -> list[tuple[int, int]]:
    out = set()
    for j in range(1, levels + 1):
        if n % 2**j:
            break
        step = n // 2**j
        out.update((a * step, b * step) for a in range(2**j) for b in range(2**j))
    out.discard((0, 0))
    return sorted(out)


def _ring(n: int, k: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rows, cols)`` of the bins 2-4 away from ``k`` on an ``n x n`` spectrum (outside the
    window's leakage); on an axis, along that axis only (edges and straight structures make the axes
    brighter than their surroundings in real images too)."""
    offsets = [d for d in range(-4, 5) if abs(d) >= 2]
    if k[0] == 0:
        bins = [(0, (k[1] + d) % n) for d in offsets]
    elif k[1] == 0:
        bins = [((k[0] + d) % n, 0) for d in offsets]
    else:
        bins = [
            ((k[0] + a) % n, (k[1] + b) % n)
            for a in range(-4, 5)
            for b in range(-4, 5)
            if max(abs(a), abs(b)) >= 2 and (k[0] + a) % n and (k[1] + b) % n
        ]
    rows, cols = np.array(bins).T
    return rows, cols


def _prominence(p: np.ndarray, k: tuple[int, int]) -> float:
    """``p[k]`` over the median of its :func:`_ring`."""
    return float(p[k] / max(np.median(p[_ring(p.shape[0], k)]), np.finfo(np.float64).tiny))


def _check_pair(samples, reference, levels):
    """The shape, dtype and ``levels`` checks of :func:`spectral_artifacts` and
    :func:`spectral_peak_excess` (arrays or tracers: nothing here reads values)."""
    for name, x in (("samples", samples), ("reference", reference)):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"{name}: expected real floating-point images, got dtype {x.dtype}")
        if x.ndim != 3 or x.shape[1] != x.shape[2] or x.shape[1] < 8 or x.shape[1] % 2 or x.shape[0] < 1:
            raise ValueError(
                f"{name}: expected square images (n, N, N) with an even N >= 8 (a decoder that upsamples by 2 "
                f"makes even sizes), got shape {x.shape}"
            )
    if samples.shape[1:] != reference.shape[1:]:
        raise ValueError(
            f"reference: expected images of the samples' size {samples.shape[1:]}, got {reference.shape[1:]}"
        )
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels: expected a positive int, got {levels!r}")
    return samples, reference


def spectral_artifacts(samples, reference, *, levels: int = 3) -> SpectralArtifacts:
    """Grid artefacts of a generator's ``samples`` against ``reference`` images.

    With ``P`` the mean power spectrum (each image's mean removed, normalised to unit power):
    the prominence of ``P`` at every upsampling frequency ``(a N / 2^j, b N / 2^j)``,
    ``j = 1..levels``, relative to the reference's there, and the share of power above ``N / 4``
    cycles per image relative to the reference's (see :class:`SpectralArtifacts`).

    Args:
      samples: ``(n, N, N)`` real images, e.g. ``G(h)`` for ``h`` drawn from the latent prior.
      reference: ``(m, N, N)`` real images of the same size, e.g. training images.
      levels: the number of 2x upsamplings to look for (3: periods 2, 4 and 8 pixels, the last
        stages of a decoder, where a grid shows).

    Returns:
      :class:`SpectralArtifacts`.

    Raises:
      ValueError: images that are not square, not of one size, not real floats, or not finite.
    """
    samples, reference = _check_pair(np.asarray(samples), np.asarray(reference), levels)
    for name, x in (("samples", samples), ("reference", reference)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name}: contains NaN or infinite values")
    ps, pr = _mean_power(samples), _mean_power(reference)
    n = ps.shape[0]
    ratios = {k: _prominence(ps, k) / max(_prominence(pr, k), 1.0) for k in _upsampling_frequencies(n, levels)}
    worst = max(ratios, key=ratios.get)
    f = np.abs(np.fft.fftfreq(n, 1.0 / n))
    high = np.maximum(f[:, None], f[None, :]) >= n / 4
    axes = np.zeros((n, n), bool)
    axes[0, :] = axes[:, 0] = True

    def ratio(band):  # ps and pr have unit total power, so their sums over a band are shares
        return float(ps[band].sum() / max(pr[band].sum(), np.finfo(np.float64).tiny))

    return SpectralArtifacts(
        peak_ratio=float(ratios[worst]),
        peak_frequency=(int(worst[0]), int(worst[1])),
        high_frequency_ratio=ratio(high),
        axis_high_frequency_ratio=ratio(high & axes),
    )
