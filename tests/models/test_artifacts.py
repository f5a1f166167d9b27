"""Grid artefacts: ``spectral_artifacts`` finds them, ``spectral_peak_excess`` penalises them (a
differentiable training term), and the shipped MRI generators have none."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.data import mri_training_images
from manifold.metrics import mean_power_spectrum, spectral_artifacts, spectral_peak_excess
from manifold.models import load_generator

N = 64


@pytest.fixture(scope="module")
def images():
    x = np.asarray(mri_training_images(256, size=N, key=jax.random.key(1)))
    return x[:128], x[128:]


def test_other_draws_of_the_data_have_no_artefact(images):
    ref, other = images
    found = spectral_artifacts(other, ref)
    assert found.peak_ratio < 1.5
    assert 0.8 < found.high_frequency_ratio < 1.25 and 0.8 < found.axis_high_frequency_ratio < 1.25


@pytest.mark.parametrize("period, amplitude", [(2, 0.02), (4, 0.02), (8, 0.05)])
def test_finds_a_checkerboard(images, period, amplitude):
    """A grid of a few % of the image range; at period 8 (8 cycles per image at N = 64) real
    images have most of their power, so the grid must be stronger to stand out (2 %: ratio 3.6)."""
    ref, other = images
    yy, xx = np.mgrid[:N, :N]
    grid = amplitude * ((yy // (period // 2) + xx // (period // 2)) % 2)
    found = spectral_artifacts(other + grid, ref)
    assert found.peak_ratio > 10
    odd = range(1, period, 2)  # a square wave's harmonics
    assert found.peak_frequency in {(a * N // period, b * N // period) for a in odd for b in odd}


def test_finds_axis_aligned_stripes(images):
    """The broadband artefact of the 64x64 GAN shipped before: lines along the axes, not one period."""
    ref, other = images
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(len(other), N, 1)) * 0.03
    found = spectral_artifacts(other + rows, ref)
    assert found.axis_high_frequency_ratio > 2


def test_bad_input(images):
    ref, _ = images
    with pytest.raises(ValueError, match="samples: expected square images"):
        spectral_artifacts(ref[:, :, :32], ref)
    with pytest.raises(ValueError, match="samples: expected square images .* even N"):
        spectral_artifacts(ref[:, :63, :63], ref[:, :63, :63])
    with pytest.raises(ValueError, match="reference: expected images of the samples' size"):
        spectral_artifacts(ref[:, :32, :32], ref)
    with pytest.raises(ValueError, match="samples: contains NaN"):
        spectral_artifacts(np.where(ref > 0.5, np.nan, ref), ref)
    with pytest.raises(ValueError, match="reference: expected real floating-point"):
        spectral_artifacts(ref, (ref > 0.5).astype(np.int32))
    with pytest.raises(ValueError, match="levels"):
        spectral_artifacts(ref, ref, levels=0)
    # the penalty's shape checks are the metric's (a reference of another size would index out of range)
    with pytest.raises(ValueError, match="reference: expected images of the samples' size"):
        spectral_peak_excess(ref[:, :32, :32], ref)
    with pytest.raises(ValueError, match="samples: expected square images .* even N"):
        spectral_peak_excess(ref[:, :63, :63], ref[:, :63, :63])
    with pytest.raises(ValueError, match="margin: expected a finite number >= 1"):
        spectral_peak_excess(ref, ref, margin=0.5)


def _checkerboard(period, amplitude):
    yy, xx = np.mgrid[:N, :N]
    return amplitude * ((yy // (period // 2) + xx // (period // 2)) % 2)


def test_mean_power_spectrum_is_the_windowed_periodogram(images):
    ref, _ = images
    x = ref[:8].astype(np.float64)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N) / N)
    p = np.mean(np.abs(np.fft.fft2((x - x.mean(axis=(1, 2), keepdims=True)) * np.outer(hann, hann))) ** 2, axis=0)
    np.testing.assert_allclose(mean_power_spectrum(ref[:8]), p / p.sum(), rtol=2e-4, atol=1e-9)
    with pytest.raises(ValueError, match="images: expected"):
        mean_power_spectrum(ref[0])


def test_peak_excess_is_zero_for_the_data_and_grows_with_a_grid(images):
    """The penalty a VAE-GAN trains with: 0 for other draws of the data (within the batch noise
    its margin allows), positive and growing with the amplitude of a period-2 or period-4 grid,
    finite gradients that point at the grid (a gradient step lowers it)."""
    ref, other = images
    excess = jax.jit(spectral_peak_excess)
    assert float(excess(other[:64], ref[:32])) == 0.0
    for period in (2, 4):
        values = [float(excess(other[:64] + _checkerboard(period, a), ref[:32])) for a in (0.01, 0.02, 0.04)]
        assert 0 < values[0] < values[1] < values[2], (period, values)
    fakes = jnp.asarray(other[:64] + _checkerboard(2, 0.02))
    grad = jax.grad(spectral_peak_excess)(fakes, ref[:32])
    assert np.all(np.isfinite(grad))
    before = float(excess(fakes, ref[:32]))
    after = float(excess(fakes - 0.5 * grad / jnp.linalg.norm(grad) * jnp.linalg.norm(_checkerboard(2, 0.02)), ref[:32]))
    assert after < before
    # the reference receives no gradient: it is the data
    assert not np.any(jax.grad(spectral_peak_excess, argnums=1)(fakes, jnp.asarray(ref[:32])))


@pytest.fixture(scope="module")
def training_mixture():
    """128 images of the MRI generators' training mixture at a given size (drawn once per size)."""
    return functools.cache(lambda size: np.asarray(mri_training_images(128, size=size, key=jax.random.key(2))))


@pytest.mark.parametrize("name", ["mri-vae", "mri-gan"])
def test_shipped_mri_generators_draw_no_grid(name, training_mixture):
    """Prior samples against the training mixture: no peak at the upsampling frequencies, and no
    more high-frequency power than the data (in particular along the axes)."""
    G = load_generator(name)
    ref = training_mixture(G.image_shape[0])
    samples = np.asarray(jax.jit(jax.vmap(G))(jax.random.normal(jax.random.key(0), (128, G.latent_dim))))
    found = spectral_artifacts(samples, ref)
    assert found.peak_ratio < 2, found
    assert found.high_frequency_ratio < 2 and found.axis_high_frequency_ratio < 2, found
