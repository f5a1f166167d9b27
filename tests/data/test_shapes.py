"""Anomaly phantoms and the rotated-image manifold."""

import jax
import numpy as np
import pytest
from scipy import ndimage

from manifold.data import anomaly_phantoms, rotations

N, SIZE = 24, 64


@pytest.fixture(scope="module")
def sets():
    key = jax.random.key(0)
    return {
        mode: tuple(map(np.asarray, anomaly_phantoms(N, key=key, size=SIZE, anomaly=mode)))
        for mode in (True, False, "random")
    }


def test_shapes_ranges_and_determinism(sets):
    images, mask = sets[True]
    assert images.shape == mask.shape == (N, SIZE, SIZE)
    assert images.dtype == np.float32 and mask.dtype == bool
    assert images.min() >= 0.0 and images.max() <= 1.0
    again, mask_again = anomaly_phantoms(N, key=jax.random.key(0), size=SIZE, anomaly=True)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(mask, mask_again)
    other, _ = anomaly_phantoms(N, key=jax.random.key(1), size=SIZE, anomaly=True)
    assert np.abs(images - np.asarray(other)).max() > 0.2


def test_anomaly_flags(sets):
    counts = sets[True][1].sum(axis=(1, 2))
    assert (counts >= 4).all() and (counts <= 32).all()  # radius 1.5 to 3 pixels
    assert not sets[False][1].any()
    labels = sets["random"][1].any(axis=(1, 2))
    assert 0 < labels.sum() < N
    # same key: the same disk and rectangle, the anomaly only where the mask says
    with_a, mask = sets[True]
    without = sets[False][0]
    np.testing.assert_array_equal(with_a[~mask], without[~mask])
    assert len(np.unique(without[0])) == 3  # background, disk, rectangle


def test_anomaly_lies_inside_its_host_with_contrast(sets):
    images, mask = sets[True]
    for img, m in zip(images, mask):
        ring = ndimage.binary_dilation(m, iterations=1) & ~m
        host = np.unique(img[ring])
        assert host.size == 1 and host[0] > 0.0  # surrounded by one shape, not by background
        value = np.unique(img[m])
        assert value.size == 1 and abs(value[0] - host[0]) >= 0.25 - 1e-6


def test_rotations_identity_quarter_turn_and_direction():
    image = np.asarray(anomaly_phantoms(1, key=jax.random.key(2), size=SIZE)[0][0])
    angles = [0.0, 90.0, -90.0, 360.0, 10.0, 20.0, 30.0, 40.0, 50.0]  # 9 angles: one compiled shape
    rot = np.asarray(rotations(image, angles))
    assert rot.shape == (9, SIZE, SIZE) and rot.dtype == np.float32
    np.testing.assert_array_equal(rot[0], image)
    np.testing.assert_allclose(rot[1], np.rot90(image, 1), atol=1e-4)  # counter-clockwise
    np.testing.assert_allclose(rot[2], np.rot90(image, -1), atol=1e-4)
    np.testing.assert_allclose(rot[3], image, atol=1e-4)


def test_rotations_move_smoothly_and_keep_mass():
    image = np.asarray(anomaly_phantoms(1, key=jax.random.key(3), size=SIZE)[0][0])
    angles = np.linspace(0.0, 40.0, 9)
    rot = np.asarray(rotations(image, angles))
    steps = np.linalg.norm((rot[1:] - rot[:-1]).reshape(8, -1), axis=1)
    assert (steps > 0.1).all() and steps.max() < 3 * steps.min()
    np.testing.assert_allclose(rot.sum(axis=(1, 2)), image.sum(), rtol=0.03)  # shapes stay in frame


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: anomaly_phantoms(0, key=jax.random.key(0)), "n"),
        (lambda: anomaly_phantoms(2, key=jax.random.key(0), size=16), "size"),
        (lambda: anomaly_phantoms(2, key=jax.random.key(0), anomaly="maybe"), "anomaly"),
        (lambda: anomaly_phantoms(2, key=jax.random.key(0), anomaly=1), "anomaly"),
        (lambda: rotations(np.zeros((2, 8, 8)), [0.0]), "image"),
        (lambda: rotations(np.zeros((8, 8)), np.zeros((2, 2))), "angles"),
        (lambda: rotations(np.zeros((8, 8)), [np.nan]), "angles"),
    ],
)
def test_bad_arguments_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_missing_key_is_a_type_error():
    with pytest.raises(TypeError, match="key"):
        anomaly_phantoms(2, key=None)
