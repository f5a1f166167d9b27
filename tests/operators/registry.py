"""Small example instances of every operator, the single registry the property tests run over.

It lives with the tests, not in the library: it builds an EIT operator, and ``manifold.eit``
builds on ``manifold.operators``, so a library registry would point an import upwards.

Each entry maps a name to an :class:`OperatorExample`: a factory ``make(key) -> LinearOperator``
building a small instance (sizes ≤ 32, so ``matrix()`` and CG pseudo-inverses are cheap) and the
facts the tests need about it. To register a new operator, add one entry to
:func:`example_operators`; a test fails while an operator class defined in ``manifold`` has no
entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from manifold.eit import EITModel
from manifold.operators import (
    MRI,
    Denoise,
    GaussianCS,
    Haar,
    Inpaint,
    LinearOperator,
    MultiCoilMRI,
    Radon,
    masks,
    simulated_coil_maps,
)

__all__ = ["OperatorExample", "example_operators"]


@dataclasses.dataclass(frozen=True)
class OperatorExample:
    """A registry entry.

    Attributes:
      make: ``make(key) -> LinearOperator``, a small instance (``key`` drives any randomness).
      injective: ``A`` has full column rank, so ``A.pinv(A(x)) == x`` exactly (up to CG tolerance).
    """

    make: Callable[[jax.Array], LinearOperator]
    injective: bool = False


def _random_pixels(key, shape, fraction):
    return jax.random.uniform(key, shape) < fraction


def _eit_linearized(key):
    return EITModel(16, image_size=16, mesh="disk", h_electrode=0.1, h_max=0.3).linearized()


def example_operators() -> dict[str, OperatorExample]:
    """All registered example operators, ``{name: OperatorExample}``."""
    n = 16
    return {
        "mri_full": OperatorExample(lambda key: MRI(jnp.ones((n, n), bool)), injective=True),
        "mri_uniform4_acs": OperatorExample(lambda key: MRI(masks.uniform((n, n), 4, acs=2))),
        "mri_variable_density": OperatorExample(
            lambda key: MRI(masks.variable_density((n, n), 3, acs=2, key=key))
        ),
        "multicoil_mri_full": OperatorExample(
            lambda key: MultiCoilMRI(jnp.ones((n, n), bool), simulated_coil_maps((n, n), 4)), injective=True
        ),
        "multicoil_mri_random": OperatorExample(
            lambda key: MultiCoilMRI(masks.random((n, n), 2, acs=2, key=key), simulated_coil_maps((n, n), 4))
        ),
        "radon_sparse_view": OperatorExample(lambda key: Radon((n, n), np.linspace(0, 180, 12, endpoint=False))),
        "radon_limited_angle": OperatorExample(lambda key: Radon((n, n), np.linspace(0, 120, 12, endpoint=False))),
        "inpaint_random": OperatorExample(lambda key: Inpaint(_random_pixels(key, (n, n), 0.5))),
        "inpaint_full": OperatorExample(lambda key: Inpaint(jnp.ones((n, n), bool)), injective=True),
        "denoise": OperatorExample(lambda key: Denoise((n, n)), injective=True),
        "haar_3_levels": OperatorExample(lambda key: Haar((n, n), levels=3), injective=True),
        "gaussian_cs_wide": OperatorExample(lambda key: GaussianCS(40, (8, 8), key=key)),
        "gaussian_cs_tall": OperatorExample(lambda key: GaussianCS(96, 64, key=key), injective=True),
        "eit_linearized": OperatorExample(_eit_linearized),
        "composed_mri_inpaint": OperatorExample(
            lambda key: MRI(masks.uniform((n, n), 2, acs=4)) @ Inpaint(_random_pixels(key, (n, n), 0.7))
        ),
    }
