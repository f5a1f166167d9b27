"""Cartesian undersampling masks."""

import jax
import numpy as np
import pytest

from manifold.operators import masks

H, W = 32, 20


def _rows(mask):
    m = np.asarray(mask)
    assert m.dtype == bool and m.shape == (H, W)
    assert np.all(m == m[:, :1])  # whole phase-encoding lines
    return np.flatnonzero(m[:, 0])


def test_uniform():
    np.testing.assert_array_equal(_rows(masks.uniform((H, W), 4)), np.arange(0, H, 4))
    # offset shifts the lattice off the centre; the centre line H // 2 = 16 stays sampled
    np.testing.assert_array_equal(_rows(masks.uniform((H, W), 4, offset=1)), np.union1d(np.arange(1, H, 4), [16]))
    rows = _rows(masks.uniform((H, W), 4, acs=6))
    np.testing.assert_array_equal(rows, np.union1d(np.arange(0, H, 4), np.arange(H // 2 - 3, H // 2 + 3)))
    assert masks.sampling_ratio(masks.uniform((H, W), 4)) == pytest.approx(0.25)
    assert masks.sampling_ratio(masks.uniform((H, W), 1)) == 1.0


@pytest.mark.parametrize("make", [masks.random, masks.variable_density])
def test_random_masks_count_acs_and_keys(make):
    m1 = make((H, W), 4, acs=4, key=jax.random.key(0))
    rows = _rows(m1)
    assert len(rows) == round(H / 4)
    assert set(range(H // 2 - 2, H // 2 + 2)) <= set(rows.tolist())
    np.testing.assert_array_equal(m1, make((H, W), 4, acs=4, key=jax.random.key(0)))
    draws = [tuple(_rows(make((H, W), 4, acs=4, key=jax.random.key(s)))) for s in range(1, 6)]
    assert len(set(draws)) > 1


def test_variable_density_prefers_low_frequencies():
    def central_fraction(make):
        counts = np.zeros(H)
        for s in range(40):
            counts[_rows(make((H, W), 4, acs=0, key=jax.random.key(s)))] += 1
        return counts[H // 4 : 3 * H // 4].sum() / counts.sum()

    assert central_fraction(masks.variable_density) > central_fraction(masks.random) + 0.1


@pytest.mark.parametrize("accel", [3, 5, 7, 31, 32, 100])
def test_uniform_always_samples_the_centre_line(accel):
    rows = _rows(masks.uniform((H, W), accel))
    assert H // 2 in rows.tolist()
    np.testing.assert_array_equal(np.diff(rows) % accel, 0)  # one lattice through the centre
    assert len(rows) == len(range(H // 2 % accel, H, accel))
    if accel >= H:
        np.testing.assert_array_equal(rows, [H // 2])  # not the edge row 0


def test_uniform_odd_height_centre():
    m = masks.uniform((15, 4), 4)
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(m)[:, 0]), [3, 7, 11])


def test_with_lines_rejects_rows_already_sampled():
    base = masks.uniform((H, W), 4)
    with pytest.raises(ValueError, match=r"rows: row\(s\) \[16\] are already sampled in mask"):
        masks.with_lines(base, [17, 16])
    with pytest.raises(ValueError, match=r"rows: row\(s\) \[3\] given more than once"):
        masks.with_lines(base, [3, 3])
    same = masks.with_lines(base, [16, 17], allow_sampled=True)
    np.testing.assert_array_equal(_rows(same), np.union1d(np.arange(0, H, 4), [17]))


def test_with_lines_adds_rows_without_mutating():
    base = masks.uniform((H, W), 4)
    more = masks.with_lines(base, [17, 3])
    np.testing.assert_array_equal(_rows(more), np.union1d(np.arange(0, H, 4), [3, 17]))
    np.testing.assert_array_equal(_rows(base), np.arange(0, H, 4))
    np.testing.assert_array_equal(_rows(masks.with_lines(base, 17)), np.union1d(np.arange(0, H, 4), [17]))


def test_acs_rows_are_centred():
    np.testing.assert_array_equal(masks.acs_rows(32, 4), [14, 15, 16, 17])
    np.testing.assert_array_equal(masks.acs_rows(31, 3), [14, 15, 16])
