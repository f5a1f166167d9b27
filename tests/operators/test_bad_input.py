"""Bad input raises ValueError/TypeError naming the argument and what was expected."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.operators import (
    MRI,
    Denoise,
    GaussianCS,
    Inpaint,
    MultiCoilMRI,
    Radon,
    gaussian_noise,
    masks,
    poisson_counts,
    simulated_coil_maps,
)

KEY = jax.random.key(0)
FULL = np.ones((8, 8), bool)


@pytest.mark.parametrize(
    "op",
    [MRI(FULL), Inpaint(FULL), Denoise((8, 8)), Radon(8, [0.0, 90.0]), GaussianCS(5, (8, 8), key=KEY)],
    ids=lambda op: type(op).__name__,
)
def test_operator_inputs(op):
    with pytest.raises(ValueError, match=r"x: expected shape \(8, 8\)"):
        op(np.zeros((8, 7), np.float32))
    with pytest.raises(ValueError, match="x: expected a floating or complex array, got dtype int"):
        op(np.zeros((8, 8), np.int32))
    with pytest.raises(ValueError, match="x: contains NaN"):
        op(np.full((8, 8), np.nan, np.float32))
    with pytest.raises(ValueError, match="y: expected shape"):
        op.adjoint(np.zeros((3,), np.float32))
    with pytest.raises(ValueError, match="y: contains NaN"):
        op.pinv(np.full(op.out_shape, np.inf, np.float32))


@pytest.mark.parametrize("make", [MRI, Inpaint, lambda m: MultiCoilMRI(m, simulated_coil_maps((8, 8), 2))])
def test_all_zero_and_non_boolean_masks(make):
    with pytest.raises(ValueError, match="mask: expected at least one sampled"):
        make(np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="mask: expected a boolean array"):
        make(np.full((8, 8), 0.5))


def test_mask_functions():
    for bad in (0, 0.5, -2):
        with pytest.raises(ValueError, match="accel: expected"):
            masks.random((8, 8), bad, acs=0, key=KEY)
        with pytest.raises(ValueError, match="accel: expected"):
            masks.variable_density((8, 8), bad, acs=0, key=KEY)
    with pytest.raises(ValueError, match="accel: expected an int >= 1"):
        masks.uniform((8, 8), 0)
    with pytest.raises(TypeError, match="accel: expected an int"):
        masks.uniform((8, 8), 2.5)
    with pytest.raises(ValueError, match="acs: expected an int in"):
        masks.uniform((8, 8), 2, acs=9)
    with pytest.raises(ValueError, match="offset"):
        masks.uniform((8, 8), 2, offset=2)
    with pytest.raises(ValueError, match="shape: expected a tuple"):
        masks.uniform((8,), 2)
    with pytest.raises(ValueError, match="rows: expected integer row indices"):
        masks.with_lines(masks.uniform((8, 8), 2), [8])
    with pytest.raises(ValueError, match="mask: expected at least one sampled"):
        masks.with_lines(np.zeros((8, 8), bool), [1])
    with pytest.raises(ValueError, match="mask: expected at least one sampled"):
        masks.sampling_ratio(np.zeros((8, 8), bool))


def test_constructors():
    with pytest.raises(ValueError, match="shape: expected a square"):
        Radon((8, 6), [0.0])
    with pytest.raises(ValueError, match="angles: contains NaN"):
        Radon(8, [0.0, np.nan])
    with pytest.raises(ValueError, match="angles: expected a non-empty 1-d"):
        Radon(8, [])
    with pytest.raises(ValueError, match="m: expected a positive int"):
        GaussianCS(0, 4, key=KEY)
    with pytest.raises(ValueError, match="n: expected a positive int"):
        GaussianCS(3, (4, 0), key=KEY)
    with pytest.raises(ValueError, match="shape: expected a positive int"):
        Denoise(-1)
    with pytest.raises(ValueError, match=r"coil_maps: expected shape \(n_coils, 8, 8\)"):
        MultiCoilMRI(FULL, jnp.ones((2, 8, 7), jnp.complex64))
    with pytest.raises(ValueError, match="n_coils: expected an int >= 1"):
        simulated_coil_maps((8, 8), 0)


def test_noise():
    y = jnp.ones((4, 4))
    with pytest.raises(ValueError, match="sigma, snr_db: expected exactly one"):
        gaussian_noise(KEY, y)
    with pytest.raises(ValueError, match="sigma, snr_db: expected exactly one"):
        gaussian_noise(KEY, y, sigma=0.1, snr_db=20.0)
    with pytest.raises(ValueError, match="sigma: expected a finite number >= 0"):
        gaussian_noise(KEY, y, sigma=-1.0)
    with pytest.raises(ValueError, match="y: contains NaN"):
        gaussian_noise(KEY, y.at[0, 0].set(jnp.nan), sigma=0.1)
    with pytest.raises(ValueError, match="where: expected a boolean"):
        gaussian_noise(KEY, y, sigma=0.1, where=jnp.ones((4, 4)))
    with pytest.raises(ValueError, match="photons: expected a finite number > 0"):
        poisson_counts(KEY, y, photons=0)
