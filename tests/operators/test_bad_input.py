"""Bad input raises ValueError/TypeError naming the argument and what was expected."""

import re

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
    with pytest.raises(ValueError, match=r"x: expected shape \(8, 8\).* of dtype .*got shape \(8, 8\) of dtype int32"):
        op(np.zeros((8, 8), np.int32))
    with pytest.raises(ValueError, match="x: contains NaN"):
        op(np.full((8, 8), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"y: expected a (real|complex) array of shape"):
        op.adjoint(np.zeros((3,), op.out_dtype))
    with pytest.raises(ValueError, match="y: contains NaN"):
        op.pinv(np.full(op.out_shape, np.inf, op.out_dtype))


REAL_OPS = [Inpaint(FULL), Denoise((8, 8)), Radon(8, [0.0, 90.0]), GaussianCS(5, (8, 8), key=KEY)]


@pytest.mark.parametrize("op", REAL_OPS, ids=lambda op: type(op).__name__)
def test_complex_data_for_a_real_operator_raises(op):
    b = jnp.ones(op.out_shape, jnp.complex64)
    expected = rf"b: expected a real array of shape {re.escape(str(op.out_shape))}.*got complex64"
    with pytest.raises(ValueError, match=expected):
        op.check_output(b)
    with pytest.raises(ValueError, match="y: expected a real array"):
        op.adjoint(b)
    with pytest.raises(ValueError, match="y: expected a real array"):
        op.pinv(b)
    assert op.check_output(jnp.ones((2, *op.out_shape))).shape == (2, *op.out_shape)  # real data pass


@pytest.mark.parametrize(
    "op", [MRI(FULL), MultiCoilMRI(FULL, simulated_coil_maps((8, 8), 2))], ids=lambda op: type(op).__name__
)
def test_real_data_for_a_complex_operator_raises(op):
    x = jax.random.normal(KEY, (8, 8))
    b = op(x)
    with pytest.raises(ValueError, match=r"b: expected a complex array of shape .* not \|b\|"):
        op.check_output(jnp.abs(b))
    with pytest.raises(ValueError, match="y: expected a complex array"):
        op.pinv(jnp.abs(b))
    with pytest.raises(ValueError, match="y: expected a complex array"):
        op.adjoint(b.real)
    with pytest.raises(ValueError, match=r"data: expected a complex array of shape"):
        op.check_output(b[..., :4], name="data")
    np.testing.assert_array_equal(op.check_output(b), b)
    # complex images are the operator's own domain; a real image is promoted
    assert op.check_input(x + 0j).dtype == jnp.complex64 and op.check_input(x).dtype == jnp.float32


def test_check_output_inside_jit_checks_kind_but_not_values():
    A = MRI(FULL)

    @jax.jit
    def f(b):
        return A.pinv(b)

    with pytest.raises(ValueError, match="y: expected a complex array"):
        f(jnp.ones((8, 8)))
    assert bool(jnp.all(jnp.isnan(f(jnp.full((8, 8), jnp.nan, jnp.complex64)))))  # values: traced, unchecked


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
