"""manifold.metrics against scikit-image on random images."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from manifold.metrics import local_contrast, psnr, relative_error, ssim


def _pair(seed, shape=(3, 40, 48)):
    rng = np.random.default_rng(seed)
    ref = rng.uniform(0, 1, shape)
    # a blurred structured image plus noise, so SSIM is neither ~0 nor ~1
    x = np.clip(0.7 * ref + 0.3 * np.roll(ref, 1, axis=-1) + 0.1 * rng.normal(size=shape), -0.2, 1.2)
    return x.astype(np.float32), ref.astype(np.float32)


def test_psnr_matches_skimage():
    x, ref = _pair(0)
    got = jax.jit(lambda a, b: psnr(a, b, data_range=1.0))(x, ref)
    want = [peak_signal_noise_ratio(r.astype(np.float64), a.astype(np.float64), data_range=1.0) for a, r in zip(x, ref)]
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_psnr_default_range_is_reference_range():
    x, ref = _pair(1)
    want = [peak_signal_noise_ratio(r, a, data_range=float(r.max() - r.min())) for a, r in zip(x, ref)]
    np.testing.assert_allclose(psnr(x, ref), want, rtol=1e-4)


def test_psnr_per_image_peak():
    """A per-image ``data_range`` (the peak ``max|x|``, as ``geometry.evaluate_mask`` uses it)."""
    x = jnp.zeros((2, 4, 4)).at[:, 0, 0].set(2.0)
    noisy = x.at[:, 1, 1].set(0.02)  # rmse = 0.02 / 4, peak 2 -> 20 log10(400) dB
    peak = jnp.max(jnp.abs(x), axis=(-2, -1))
    np.testing.assert_allclose(psnr(noisy, x, data_range=peak), 20 * np.log10(400.0), rtol=1e-5)
    assert np.all(np.isinf(psnr(x, x)))


@pytest.mark.parametrize("data_range", [1.0, 2.5])
def test_ssim_matches_skimage(data_range):
    x, ref = _pair(2)
    got = jax.jit(lambda a, b: ssim(a, b, data_range=data_range))(x, ref)
    want = [
        structural_similarity(
            r.astype(np.float64),
            a.astype(np.float64),
            data_range=data_range,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        for a, r in zip(x, ref)
    ]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_ssim_identical_images_is_one_and_vmap_agrees():
    x, ref = _pair(3)
    np.testing.assert_allclose(ssim(ref, ref, data_range=1.0), np.ones(3), atol=1e-6)
    batched = ssim(x, ref, data_range=1.0)
    mapped = jax.vmap(lambda a, b: ssim(a, b, data_range=1.0))(jnp.asarray(x), jnp.asarray(ref))
    np.testing.assert_allclose(mapped, batched, rtol=1e-6)


def test_relative_error_and_grad():
    x, ref = _pair(4)
    want = [np.linalg.norm(a - r) / np.linalg.norm(r) for a, r in zip(x, ref)]
    np.testing.assert_allclose(relative_error(x, ref), want, rtol=1e-5)
    z = (x + 1j * ref).astype(np.complex64)
    want = [np.linalg.norm(a - r) / np.linalg.norm(r) for a, r in zip(z, ref)]
    np.testing.assert_allclose(relative_error(z, ref), want, rtol=1e-5)
    g = jax.grad(lambda a: jnp.sum(ssim(a, ref, data_range=1.0)))(jnp.asarray(x))
    assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g)))


def test_bad_input():
    x, ref = _pair(5)
    with pytest.raises(ValueError, match="x: expected the shape of ref"):
        psnr(x[:, :-1], ref[:, :-1, :-1])
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, ref, data_range=0.0)
    with pytest.raises(ValueError, match="x: expected a floating"):
        ssim(np.zeros((20, 20), int), ref[0, :20, :20])
    with pytest.raises(ValueError, match="real image"):
        ssim(x.astype(np.complex64), ref)
    with pytest.raises(ValueError, match="window"):
        ssim(x[:, :8, :8], ref[:, :8, :8])


def test_local_contrast_is_one_when_kept_zero_when_erased_and_ignores_a_smooth_background():
    size = 24
    yy, xx = np.mgrid[:size, :size]
    background = jnp.asarray(0.01 * xx + 0.02 * yy, jnp.float32)  # a linear ramp cancels in mask - ring
    spot = jnp.zeros((size, size)).at[10:13, 10:13].set(1.0)
    mask = spot > 0
    truth = background + 0.5 * spot
    recs = jnp.stack([truth, background, background + 0.25 * spot, background - 0.5 * spot, 2.0 * truth - background])
    np.testing.assert_allclose(local_contrast(recs, jnp.broadcast_to(truth, recs.shape), mask), [1, 0, 0.5, -1, 2], atol=1e-5)
    # one mask per image, and a wider ring
    masks = jnp.stack([mask, jnp.roll(mask, 5, axis=0)])
    truths = jnp.stack([truth, background + 0.5 * jnp.roll(spot, 5, axis=0)])
    np.testing.assert_allclose(local_contrast(0.5 * truths, truths, masks, ring=3), [0.5, 0.5], atol=1e-5)


@pytest.mark.parametrize(
    "mask, ring, match",
    [
        (np.zeros((8, 8), bool), 2, "mask"),
        (np.ones((8, 8), bool), 2, "mask"),
        (np.ones((8, 8)), 2, "mask"),
        (np.ones((4, 4), bool), 2, "mask"),
        (np.eye(8, dtype=bool), 0, "ring"),
        (np.eye(8, dtype=bool) & (np.arange(8) < 7)[:, None], 2, "ref"),  # x = ref = eye: no contrast
    ],
)
def test_local_contrast_bad_input_names_the_argument(mask, ring, match):
    x = jnp.ones((8, 8))
    with pytest.raises(ValueError, match=match):
        local_contrast(x, x, mask, ring=ring)


def test_local_contrast_ring_does_not_wrap_around_the_image_edge():
    """A structure on the top edge: its ring is the rows below it, not the bottom rows of the image."""
    truth = jnp.zeros((12, 12)).at[0:2, 5:7].set(1.0).at[10:, :].set(5.0)  # a bright band at the bottom
    mask = truth == 1.0
    np.testing.assert_allclose(local_contrast(truth, truth, mask), 1.0, atol=1e-6)
    np.testing.assert_allclose(local_contrast(0.5 * truth * mask, truth, mask), 0.5, atol=1e-6)
