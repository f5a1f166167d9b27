"""MNI152 slices: equality with the template read by nibabel, disjoint splits, augmentation."""

import jax
import nibabel
import nilearn
import numpy as np
import pytest
from pathlib import Path

from manifold.data import mni152_path, mri_slice_indices, mri_slices

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}


@pytest.fixture(scope="module")
def template():
    path = Path(nilearn.__file__).parent / "datasets" / "data" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    assert mni152_path() == path
    data = np.asarray(nibabel.load(path).get_fdata(), dtype=np.float64)
    return data / data.max()


@pytest.mark.parametrize("axis", ["axial", "coronal"])
def test_native_slices_equal_the_template(template, axis):
    images, index = mri_slices(size=None, split="test", axis=axis)
    images = np.asarray(images)
    np.testing.assert_array_equal(index, mri_slice_indices("test", axis=axis))
    ax = AXES[axis]
    s = images.shape[-1]
    assert images.shape == (index.size, s, s) and s == max(np.delete(template.shape, ax))
    for img, i in zip(images, index):
        expected = np.rot90(np.take(template, i, axis=ax))  # anterior / superior at the top
        h, w = expected.shape
        top, left = (s - h) // 2, (s - w) // 2
        np.testing.assert_allclose(img[top : top + h, left : left + w], expected, rtol=0, atol=1e-7)
        padded = img.copy()
        padded[top : top + h, left : left + w] = 0.0
        assert not padded.any()


def test_resampled_slices_are_the_resized_native_slices():
    native, index = mri_slices(size=None, split="test")
    small, index_small = mri_slices(size=32, split="test")
    np.testing.assert_array_equal(index, index_small)
    assert small.shape == (index.size, 32, 32)
    expected = jax.image.resize(native[3], (32, 32), "linear", antialias=True)
    np.testing.assert_allclose(small[3], expected, rtol=0, atol=1e-6)
    # the resampled image keeps the mean intensity of the slice
    np.testing.assert_allclose(small.mean(axis=(1, 2)), native.mean(axis=(1, 2)), rtol=2e-2)


@pytest.mark.parametrize("axis", list(AXES))
def test_splits_are_disjoint_and_separated(axis, template):
    train, test = mri_slice_indices("train", axis=axis), mri_slice_indices("test", axis=axis)
    assert train.size > 50 and test.size > 10
    assert np.intersect1d(train, test).size == 0
    assert np.abs(train[:, None] - test[None, :]).min() >= 3
    ax = AXES[axis]
    fill = np.moveaxis(template > 0, ax, 0).reshape(template.shape[ax], -1).mean(axis=1)
    assert fill[train].min() >= 0.1 and fill[test].min() >= 0.1


def test_images_in_unit_range_and_brain_visible():
    images, index = mri_slices(size=32, split="train")
    images = np.asarray(images)
    assert images.shape == (mri_slice_indices("train").size, 32, 32)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert (images.reshape(len(images), -1).max(axis=1) > 0.3).all()


NA = 40  # one batch shape for the subset and augmentation tests: each jitted step compiles once


def test_subset_without_augment():
    a, ia = mri_slices(size=32, n=NA, key=jax.random.key(0))
    b, ib = mri_slices(size=32, n=NA, key=jax.random.key(0))
    c, ic = mri_slices(size=32, n=NA, key=jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert np.unique(ia).size == NA and np.isin(ia, mri_slice_indices("train")).all()
    assert not np.array_equal(ia, ic)
    full, index = mri_slices(size=32)
    np.testing.assert_array_equal(a, np.asarray(full)[np.searchsorted(index, ia)])


def test_augmentation_deterministic_in_range_and_varied():
    kw = dict(size=32, split="test", n=NA, augment=True)
    a, ia = mri_slices(key=jax.random.key(3), **kw)
    b, ib = mri_slices(key=jax.random.key(3), **kw)
    c, _ = mri_slices(key=jax.random.key(4), **kw)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ia, ib)
    assert np.abs(np.asarray(a) - np.asarray(c)).max() > 0.1
    assert a.shape == (NA, 32, 32) and np.isin(ia, mri_slice_indices("test")).all()
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    # more images than test slices: repeats occur, and augmented copies differ from the originals
    assert np.unique(ia).size < NA
    plain, index = mri_slices(size=32, split="test")
    originals = np.asarray(plain)[np.searchsorted(index, ia)]
    change = np.abs(np.asarray(a) - originals).mean(axis=(1, 2))
    assert (change > 1e-3).all() and (change < 0.2).all()


def test_augmentation_off_switches_give_the_plain_slices():
    a, ia = mri_slices(size=32, split="test", n=NA, key=jax.random.key(5), augment=True,
                       max_rotation=0.0, elastic=0.0, intensity=0.0)
    plain, index = mri_slices(size=32, split="test")
    np.testing.assert_allclose(a, np.asarray(plain)[np.searchsorted(index, ia)], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(split="validation"), "split"),
        (dict(axis="transverse"), "axis"),
        (dict(size=4), "size"),
        (dict(size=32.0), "size"),
        (dict(n=0, key=jax.random.key(0)), "n"),
        (dict(n=10_000, key=jax.random.key(0)), "n"),
        (dict(augment=True), "n"),
        (dict(n=4, key=jax.random.key(0), augment=True, max_rotation=-1.0), "max_rotation"),
        (dict(n=4, key=jax.random.key(0), augment=True, intensity=1.5), "intensity"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        mri_slices(**kwargs)


def test_missing_key_is_a_type_error():
    with pytest.raises(TypeError, match="key"):
        mri_slices(size=32, n=4, augment=True)
