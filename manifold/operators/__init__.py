"""Linear forward operators ``A`` of the imaging problems (MRI, CT, inpainting, CS, ...).

Every operator is a :class:`LinearOperator`: ``A(x)``, ``A.adjoint(y)``, ``A.pinv(y)``,
``A.normal(x)``, ``A @ B``, ``A.matrix()``, ``A.norm()``, ``A.adjointness_error(key)``, with
leading batch axes and JAX pytree registration. Sampling masks live in
:mod:`manifold.operators.masks`.
"""

from manifold.operators import masks
from manifold.operators._base import ComposedOperator, LinearOperator, check_array
from manifold.operators.mri import MRI, MultiCoilMRI, fft2c, ifft2c, simulated_coil_maps
from manifold.operators.noise import gaussian_noise, line_integrals, noise_sigma, poisson_counts
from manifold.operators.phantom import shepp_logan
from manifold.operators.radon import Radon, ramp_filter
from manifold.operators.registry import OperatorExample, example_operators
from manifold.operators.simple import Denoise, GaussianCS, Inpaint

__all__ = [
    "MRI",
    "ComposedOperator",
    "Denoise",
    "GaussianCS",
    "Inpaint",
    "LinearOperator",
    "MultiCoilMRI",
    "OperatorExample",
    "Radon",
    "check_array",
    "example_operators",
    "fft2c",
    "gaussian_noise",
    "ifft2c",
    "line_integrals",
    "masks",
    "noise_sigma",
    "poisson_counts",
    "ramp_filter",
    "shepp_logan",
    "simulated_coil_maps",
]
