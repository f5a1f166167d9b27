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

import jax.numpy as jnp
import numpy as np

__all__ = ["SpectralArtifacts", "spectral_artifacts"]


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


def _mean_power(x: np.ndarray) -> np.ndarray:
    """Mean over images of ``|FFT2(w (x - mean x))|^2``, normalised to unit total power.

    ``w`` is the periodic Hann window: without it the jump between opposite edges (the DFT's
    wrap-around) puts power on the frequency axes that depends on what the edges hold, not on
    lines in the image. A pure frequency leaks only into its 8 neighbours."""
    x = jnp.asarray(x, jnp.float32)
    n = x.shape[-1]
    hann = 0.5 - 0.5 * jnp.cos(2 * jnp.pi * jnp.arange(n) / n)
    x = (x - jnp.mean(x, axis=(-2, -1), keepdims=True)) * (hann[:, None] * hann[None, :])[None]
    p = np.asarray(jnp.mean(jnp.abs(jnp.fft.fft2(x)) ** 2, axis=0), np.float64)
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


def _prominence(p: np.ndarray, k: tuple[int, int]) -> float:
    """``p[k]`` over the median of the bins 2-4 away (outside the window's leakage); on an axis,
    along that axis only (edges and straight structures make the axes brighter than their
    surroundings in real images too)."""
    n0, n1 = p.shape
    offsets = [d for d in range(-4, 5) if abs(d) >= 2]
    if k[0] == 0:
        ring = [p[0, (k[1] + d) % n1] for d in offsets]
    elif k[1] == 0:
        ring = [p[(k[0] + d) % n0, 0] for d in offsets]
    else:
        ring = [
            p[(k[0] + a) % n0, (k[1] + b) % n1]
            for a in range(-4, 5)
            for b in range(-4, 5)
            if max(abs(a), abs(b)) >= 2 and (k[0] + a) % n0 and (k[1] + b) % n1
        ]
    return float(p[k] / max(np.median(ring), np.finfo(np.float64).tiny))


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
    arrays = {}
    for name, x in (("samples", samples), ("reference", reference)):
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{name}: expected real floating-point images, got dtype {x.dtype}")
        if x.ndim != 3 or x.shape[1] != x.shape[2] or x.shape[1] < 8 or x.shape[1] % 2 or x.shape[0] < 1:
            raise ValueError(
                f"{name}: expected square images (n, N, N) with an even N >= 8 (a decoder that upsamples by 2 "
                f"makes even sizes), got shape {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name}: contains NaN or infinite values")
        arrays[name] = x
    if arrays["samples"].shape[1:] != arrays["reference"].shape[1:]:
        raise ValueError(
            f"reference: expected images of the samples' size {arrays['samples'].shape[1:]}, "
            f"got {arrays['reference'].shape[1:]}"
        )
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels: expected a positive int, got {levels!r}")
    ps, pr = _mean_power(arrays["samples"]), _mean_power(arrays["reference"])
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
