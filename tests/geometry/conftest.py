"""Shared fixtures of the geometry tests: small analytic generators and MRI masks."""

import jax
import pytest

from manifold.models.analytic import spot_generator
from manifold.operators import MRI, masks

SIZE = 16


@pytest.fixture(scope="session")
def spot():
    return spot_generator(SIZE, width=1.0)


@pytest.fixture(scope="session")
def uniform4():
    return MRI(masks.uniform((SIZE, SIZE), 4))


@pytest.fixture(scope="session")
def uniform4_plus_line():
    # One extra line next to the k-space centre (DC is row SIZE // 2).
    return MRI(masks.with_lines(masks.uniform((SIZE, SIZE), 4), [SIZE // 2 + 1]))


@pytest.fixture
def key():
    return jax.random.key(0)
