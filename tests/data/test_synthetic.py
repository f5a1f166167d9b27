"""synthetic_mri and mri_training_images: pure functions of the key, valid images, varied draws."""

import jax
import numpy as np
import pytest

from manifold.data import CONTRAST_FAMILIES, mri_training_images, synthetic_mri, tissue_volume


@pytest.fixture(scope="module")
def draw():
    return synthetic_mri(24, size=32, key=jax.random.key(0), lesions=3)


def test_shapes_range_and_info(draw):
    images, info = draw
    assert images.shape == (24, 32, 32) and images.dtype == np.float32
    x = np.asarray(images)
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(x.min(axis=(1, 2)), 0.0, atol=1e-6)  # min-max normalised per image
    np.testing.assert_allclose(x.max(axis=(1, 2)), 1.0, atol=1e-5)
    assert info["intensity"].shape == (24, 4) and info["lesion_mask"].shape == (24, 32, 32)
    assert set(np.asarray(info["orientation"]).tolist()) <= {0, 1, 2}
    assert set(np.asarray(info["family"]).tolist()) <= set(range(-1, len(CONTRAST_FAMILIES)))
    assert np.all((70 <= np.asarray(info["fov_mm"])) & (np.asarray(info["fov_mm"]) <= 250))


def test_pure_function_of_the_key(draw):
    again, _ = synthetic_mri(24, size=32, key=jax.random.key(0), lesions=3)
    np.testing.assert_array_equal(np.asarray(draw[0]), np.asarray(again))
    other, _ = synthetic_mri(24, size=32, key=jax.random.key(1), lesions=3)
    assert not np.allclose(np.asarray(draw[0]), np.asarray(other))


def test_draws_vary_in_orientation_contrast_and_lesions():
    images, info = synthetic_mri(96, size=32, key=jax.random.key(2), lesions=2)
    assert len(set(np.asarray(info["orientation"]).tolist())) == 3
    assert len(set(np.asarray(info["family"]).tolist())) >= 4
    assert np.asarray(info["lesion_mask"]).any(axis=(1, 2)).mean() > 0.5
    # images are not copies of one another
    flat = np.asarray(images).reshape(96, -1)
    assert np.min(np.linalg.norm(flat[:, None] - flat[None], axis=-1) + np.eye(96) * 1e9) > 0.5


def test_no_lesions_by_default():
    _, info = synthetic_mri(8, size=16, key=jax.random.key(3))
    assert not np.asarray(info["lesion_mask"]).any()


def test_chunks_agree_with_one_call():
    """n above the chunk size goes through several jitted calls; the images depend only on the key."""
    big, _ = synthetic_mri(300, size=16, key=jax.random.key(4))
    small, _ = synthetic_mri(8, size=16, key=jax.random.key(4))
    assert big.shape == (300, 16, 16)
    assert np.all(np.isfinite(np.asarray(big)))
    assert not np.allclose(np.asarray(big[288:296]), np.asarray(big[:8]))  # the padding (first-key copies) is cut off
    assert small.shape == (8, 16, 16)


def test_tissue_volume_fractions():
    vol = tissue_volume()
    assert vol.shape[-1] == 4 and vol.dtype == np.float32
    assert vol.min() >= 0.0 and vol[..., :3].sum(-1).max() <= 1.0 + 1e-5  # WM + GM + CSF <= 1
    assert (vol[..., 2] > 0.5).sum() > 10_000  # ventricles and sulci exist


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n:"),
        ({"size": 4}, "size:"),
        ({"fov": (200.0, 250.0)}, "fov:"),
        ({"fov": (90.0,)}, "fov:"),
        ({"noise": -0.1}, "noise:"),
        ({"p_random": 2.0}, "p_random:"),
        ({"lesions": -1}, "lesions:"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"n": 2, "size": 16, "key": jax.random.key(0), **kwargs}
    with pytest.raises(ValueError, match=match):
        synthetic_mri(args.pop("n"), **args)


def test_key_required():
    with pytest.raises(TypeError, match="key"):
        synthetic_mri(2, size=16, key=None)


def test_training_mixture():
    x = mri_training_images(20, size=32, key=jax.random.key(5), mni_fraction=0.3)
    assert x.shape == (20, 32, 32)
    a = np.asarray(x)
    np.testing.assert_allclose(a.min(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(a.max(axis=(1, 2)), 1.0, atol=1e-5)
    np.testing.assert_array_equal(
        a, np.asarray(mri_training_images(20, size=32, key=jax.random.key(5), mni_fraction=0.3))
    )
    with pytest.raises(ValueError, match="mni_fraction"):
        mri_training_images(4, size=16, key=jax.random.key(0), mni_fraction=1.5)
