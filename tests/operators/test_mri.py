"""Single- and multi-coil Cartesian MRI: conventions, folding, SENSE."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.operators import MRI, MultiCoilMRI, fft2c, ifft2c, masks, measured_rows, simulated_coil_maps

H = W = 32


def _image(seed, shape=(H, W)):
    return jax.random.normal(jax.random.key(seed), shape)


def test_centred_orthonormal_fft():
    x = _image(0) + 1j * _image(1)
    k = fft2c(x)
    np.testing.assert_allclose(jnp.linalg.norm(k), jnp.linalg.norm(x), rtol=1e-5)  # unitary
    np.testing.assert_allclose(ifft2c(k), x, atol=1e-5)
    dc = fft2c(jnp.ones((H, W)))
    assert np.unravel_index(int(jnp.argmax(jnp.abs(dc))), (H, W)) == (H // 2, W // 2)
    np.testing.assert_allclose(dc[H // 2, W // 2], np.sqrt(H * W), rtol=1e-6)
    reference = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(np.asarray(x)), norm="ortho"))
    np.testing.assert_allclose(np.asarray(k), reference, atol=1e-4)


def test_real_input_and_zero_filled_pinv():
    mask = masks.uniform((H, W), 3, acs=4)
    A = MRI(mask)
    x = _image(2)
    y = A(x)
    assert y.dtype == jnp.complex64 and y.shape == (H, W)
    np.testing.assert_allclose(A(x.astype(jnp.complex64)), y, atol=1e-6)
    assert not bool(jnp.any(y[~mask]))  # unsampled k-space is exactly zero
    zero_filled = ifft2c(jnp.where(mask, fft2c(x), 0))
    np.testing.assert_allclose(A.pinv(y), zero_filled, atol=1e-5)
    np.testing.assert_allclose(A.adjoint(y), zero_filled, atol=1e-5)


def _folded_point_source(mask, row, col):
    x = jnp.zeros((H, W)).at[row, col].set(1.0)
    return jnp.abs(MRI(mask).pinv(MRI(mask)(x)))


def test_uniform_undersampling_folds_a_point_into_four_equal_copies():
    row, col = 5, 11
    image = _folded_point_source(masks.uniform((H, W), 4), row, col)
    copies = (row + np.arange(4) * H // 4) % H
    np.testing.assert_allclose(image[copies, col], np.full(4, 0.25), atol=1e-6)  # Poisson summation
    rest = image.at[copies, col].set(0)
    assert float(jnp.max(rest)) < 1e-6  # nothing anywhere else


def test_one_extra_central_line_makes_the_copies_unequal():
    row, col = 5, 11
    mask = masks.uniform((H, W), 4)
    extra = H // 2 + 1
    assert not bool(mask[extra, 0])
    image = _folded_point_source(masks.with_lines(mask, [extra]), row, col)
    copies = image[(row + np.arange(4) * H // 4) % H, col]
    assert float(jnp.max(copies) - jnp.min(copies)) > 0.01
    assert int(jnp.argmax(copies)) == 0  # the true location is now the brightest copy


def test_coil_maps_are_smooth_and_normalised():
    maps = simulated_coil_maps((H, W), 6)
    assert maps.shape == (6, H, W) and maps.dtype == jnp.complex64
    np.testing.assert_allclose(jnp.sum(jnp.abs(maps) ** 2, axis=0), np.ones((H, W)), rtol=1e-5)
    # smooth: neighbouring pixels differ little; distinct coils see the image differently
    assert float(jnp.max(jnp.abs(jnp.diff(maps, axis=-1)))) < 0.2
    assert float(jnp.max(jnp.abs(maps[0] - maps[3]))) > 0.5


def test_multicoil_with_one_unit_coil_is_single_coil_mri():
    mask = masks.random((H, W), 2, acs=4, key=jax.random.key(0))
    x = _image(3) + 1j * _image(4)
    A1 = MultiCoilMRI(mask, jnp.ones((1, H, W), jnp.complex64))
    np.testing.assert_allclose(A1(x)[0], MRI(mask)(x), atol=1e-5)


def test_sense_full_sampling_pinv_is_exact_and_coils_resolve_folding():
    maps = simulated_coil_maps((H, W), 8)
    x = _image(5)
    full = MultiCoilMRI(jnp.ones((H, W), bool), maps)
    np.testing.assert_allclose(full.pinv(full(x)), x, atol=1e-4)
    # With 8 coils, 2x uniform undersampling is still injective: CG recovers x (SENSE).
    sense = MultiCoilMRI(masks.uniform((H, W), 2), maps)
    err = jnp.linalg.norm(sense.pinv(sense(x)) - x) / jnp.linalg.norm(x)
    assert float(err) < 1e-2


def test_fft2c_matches_numpy_for_odd_sizes_and_batches():
    rng = np.random.default_rng(0)
    for shape in [(2, 15, 32), (3, 32, 15), (15, 15)]:
        x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        ax = (-2, -1)
        want = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=ax), norm="ortho"), axes=ax)
        got = fft2c(jnp.asarray(x, jnp.complex64))
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-4)
        np.testing.assert_allclose(np.asarray(ifft2c(got)), x, atol=1e-4)


def test_measured_rows_are_the_sampled_k_space():
    """Real parts of every sampled location; imaginary parts too, except at most the 4 points
    where a real image's spectrum is real (DC and the Nyquist corners)."""
    mask = masks.random((H, W), 4, acs=4, key=jax.random.key(0))
    rows = measured_rows(MRI(mask), (H, W))
    sampled = np.flatnonzero(np.asarray(mask))
    real, imag = rows[rows < H * W], rows[rows >= H * W] - H * W
    np.testing.assert_array_equal(real, sampled)
    assert set(imag) <= set(sampled) and sampled.size - 4 <= imag.size < sampled.size
    coils = MultiCoilMRI(mask, simulated_coil_maps((H, W), 3))
    assert measured_rows(coils, (H, W)).size == 2 * 3 * sampled.size  # complex coil maps: both parts
    with pytest.raises(ValueError, match="in_shape"):
        measured_rows(MRI(mask), (H // 2, W))
