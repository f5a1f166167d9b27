"""Grid artefacts: ``spectral_artifacts`` finds them, and the shipped MRI generators have none."""

import jax
import numpy as np
import pytest

from manifold.data import mri_training_images
from manifold.metrics import spectral_artifacts
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


@pytest.mark.parametrize("name", ["mri-vae"])
def test_shipped_mri_generators_draw_no_grid(name):
    """Prior samples against the training mixture: no peak at the upsampling frequencies, and no
    more high-frequency power than the data (in particular along the axes)."""
    G = load_generator(name)
    size = G.image_shape[0]
    ref = np.asarray(mri_training_images(128, size=size, key=jax.random.key(2)))
    samples = np.asarray(jax.jit(jax.vmap(G))(jax.random.normal(jax.random.key(0), (128, G.latent_dim))))
    found = spectral_artifacts(samples, ref)
    assert found.peak_ratio < 2, found
    assert found.high_frequency_ratio < 2 and found.axis_high_frequency_ratio < 2, found
