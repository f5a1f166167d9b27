"""The shared thorax outline and pixel grid."""

import numpy as np
import pytest

from manifold.thorax import pixel_grid, thorax_boundary, thorax_mask, thorax_radius


def test_pixel_grid_orientation():
    x, y = pixel_grid(4)
    np.testing.assert_allclose(np.asarray(x[0]), [-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(np.asarray(y[:, 0]), [0.75, 0.25, -0.25, -0.75])


def test_boundary_points_lie_on_the_outline():
    pts = thorax_boundary(64)
    theta = np.arctan2(pts[:, 1], pts[:, 0])
    np.testing.assert_allclose(np.hypot(pts[:, 0], pts[:, 1]), np.asarray(thorax_radius(theta)), rtol=1e-6)


def test_mask_is_the_inside_of_the_outline():
    size = 64
    mask = np.asarray(thorax_mask(size))
    x, y = (np.asarray(a) for a in pixel_grid(size))
    r_pixel = np.hypot(x, y)
    r_outline = np.asarray(thorax_radius(np.arctan2(y, x)))
    np.testing.assert_array_equal(mask, r_pixel < r_outline)
    assert 0.4 < mask.mean() < 0.7


@pytest.mark.parametrize("bad", [1, 0, 2.5, "8"])
def test_bad_size(bad):
    with pytest.raises(ValueError, match="size"):
        pixel_grid(bad)
