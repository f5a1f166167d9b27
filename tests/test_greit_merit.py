"""GREIT figures of merit on images whose answers are known in closed form."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from manifold.metrics import greit_figures_of_merit

S = 128
PX = 2.0 / S
_c = (np.arange(S) + 0.5) / S * 2 - 1
X, Y = np.meshgrid(_c, -_c)
MASK = X**2 + Y**2 < 0.95**2
BODY = MASK.sum() * PX**2


def _disk(cx, cy, r, v=1.0):
    return np.where((X - cx) ** 2 + (Y - cy) ** 2 < r**2, v, 0.0)


def test_exact_disk_images():
    centres = np.array([[0.3, 0.2], [-0.5, 0.1], [0.0, -0.6], [0.1, 0.1]])
    r = np.array([0.1, 0.08, 0.12, 0.05])
    contrast = np.array([0.5, -0.3, 1.0, 0.2])
    images = np.stack([_disk(cx, cy, rr, v) for (cx, cy), rr, v in zip(centres, r, contrast)])
    m = greit_figures_of_merit(images, centres, r, contrast, mask=MASK)
    area = np.array([(img != 0).sum() * PX**2 for img in images])
    np.testing.assert_allclose(m.amplitude, area / (np.pi * r**2), rtol=1e-5)  # = 1 up to pixelation
    np.testing.assert_allclose(m.amplitude, 1.0, atol=0.06)
    np.testing.assert_allclose(m.position_distance, 0.0, atol=0.25 * PX)
    np.testing.assert_allclose(m.position_error, 0.0, atol=0.25 * PX)
    np.testing.assert_allclose(m.resolution, np.sqrt(area / BODY), rtol=1e-5)
    assert np.all(np.asarray(m.shape_deformation) < 0.05)  # a pixelated disk fits its circle
    np.testing.assert_array_equal(m.ringing, 0.0)


def test_shifted_image_gives_the_radial_position_error():
    """An image pulled towards the centre by ``s`` along the radius has PE = s."""
    c = np.array([0.6, 0.0])
    img = _disk(0.6 - 0.15, 0.0, 0.1)
    m = greit_figures_of_merit(img, c, 0.1, 1.0, mask=MASK)
    assert abs(float(m.position_error) - 0.15) < 0.25 * PX
    assert abs(float(m.position_distance) - 0.15) < 0.25 * PX
    outwards = greit_figures_of_merit(_disk(0.0, 0.45, 0.1), np.array([0.0, 0.3]), 0.1, 1.0, mask=MASK)
    assert abs(float(outwards.position_error) + 0.15) < 0.25 * PX


def test_gaussian_blob_resolution_and_amplitude():
    """A Gaussian exp(-d²/2s²) of peak p: the quarter set is the disk d <= s sqrt(2 ln 4) and the
    integral 2π s² p, so RES and AR are known."""
    s, p, r_t, v_t = 0.1, 0.3, 0.05, 1.0
    img = p * np.exp(-((X + 0.2) ** 2 + (Y - 0.1) ** 2) / (2 * s**2))
    m = greit_figures_of_merit(img, np.array([-0.2, 0.1]), r_t, v_t, mask=MASK)
    rq = s * math.sqrt(2 * math.log(4))
    np.testing.assert_allclose(float(m.resolution), math.sqrt(math.pi * rq**2 / BODY), rtol=0.02)
    np.testing.assert_allclose(float(m.amplitude), 2 * math.pi * s**2 * p / (math.pi * r_t**2 * v_t), rtol=1e-3)
    assert float(m.position_distance) < 0.1 * PX and float(m.shape_deformation) < 0.03


def test_square_shape_deformation():
    """A square of side a against the circle of equal area (radius a / sqrt(π)): the fraction of
    the square outside the circle is 1 - |circle ∩ square| / a², computed here by quadrature."""
    a = 0.4
    img = np.where((np.abs(X) < a / 2) & (np.abs(Y) < a / 2), 1.0, 0.0)
    m = greit_figures_of_merit(img, np.array([0.0, 0.0]), 0.2, 1.0, mask=MASK)
    R = a / math.sqrt(math.pi)
    u = np.linspace(-a / 2, a / 2, 4001)
    inside = np.clip(np.sqrt(np.maximum(R**2 - u**2, 0.0)), 0, a / 2) * 2  # chord length within the square
    expected = 1 - np.trapezoid(inside, u) / a**2
    assert abs(float(m.shape_deformation) - expected) < 0.01
    assert expected > 0.05  # a real deformation, not zero


def test_ringing_of_a_negative_annulus():
    """+1 on a disk of radius r, -g on the annulus r2 < d < r3: RNG = g (r3² - r2²) / r²."""
    r, r2, r3, g = 0.1, 0.2, 0.3, 0.1
    d2 = X**2 + Y**2
    img = np.where(d2 < r**2, 1.0, 0.0) - g * ((d2 > r2**2) & (d2 < r3**2))
    m = greit_figures_of_merit(img, np.array([0.0, 0.0]), r, 1.0, mask=MASK)
    disk = (d2 < r**2).sum()
    circle = d2 <= disk * PX**2 / np.pi  # C: the circle of the quarter set's area at its centroid (0, 0)
    annulus = ((d2 > r2**2) & (d2 < r3**2)).sum()
    np.testing.assert_allclose(float(m.ringing), g * annulus / (img > 0)[circle].sum(), rtol=1e-5)
    np.testing.assert_allclose(float(m.ringing), g * (r3**2 - r2**2) / r**2, rtol=0.08)  # pixelated disk and annulus


def test_negative_targets_use_the_opposite_polarity_and_batches_broadcast():
    img = -_disk(0.2, 0.2, 0.1, 0.4) + 0.05 * _disk(-0.5, 0.0, 0.1)  # a small positive artefact
    m = greit_figures_of_merit(img, np.array([0.2, 0.2]), 0.1, -0.4, mask=MASK)
    assert float(m.position_distance) < PX
    batch = greit_figures_of_merit(
        jnp.stack([jnp.asarray(img)] * 6).reshape(2, 3, S, S),
        np.tile([0.2, 0.2], (2, 3, 1)),
        np.full((2, 3), 0.1),
        np.full((2, 3), -0.4),
        mask=MASK,
    )
    assert batch.amplitude.shape == (2, 3)
    np.testing.assert_allclose(batch.position_distance, float(m.position_distance), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(images=np.zeros((S, S), np.complex64)), "images"),
        (dict(images=np.full((S, S), np.nan)), "images"),
        (dict(mask=MASK[:-1]), "mask"),
        (dict(centres=np.zeros(3)), "centres"),
        (dict(radii=0.0), "radii"),
        (dict(contrasts=0.0), "contrasts"),
    ],
)
def test_bad_input_names_the_argument(kwargs, name):
    args = dict(images=_disk(0, 0, 0.1), centres=np.zeros(2), radii=0.1, contrasts=1.0, mask=MASK) | kwargs
    with pytest.raises(ValueError, match=name):
        greit_figures_of_merit(
            args.pop("images"), args.pop("centres"), args.pop("radii"), args.pop("contrasts"), **args
        )
