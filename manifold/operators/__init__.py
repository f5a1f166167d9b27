"""Linear forward operators ``A`` of the imaging problems (MRI, CT, inpainting, CS, ...).

Every operator is a :class:`LinearOperator`: ``A(x)``, ``A.adjoint(y)``, ``A.pinv(y)``,
``A.normal(x)``, ``A @ B``, ``A.matrix()``, ``A.norm()``, ``A.adjointness_error(key)``,
``A.self_check(key)``, with leading batch axes and JAX pytree registration. A
:class:`LinearOperator` is a linear :class:`ForwardMap`, the pytree base of every forward map
(``in_shape``, ``out_shape``, ``dtype``, batched ``F(x)``, ``check_input`` and ``check_output``);
nonlinear forward maps such as the full EIT model subclass :class:`ForwardMap` directly. Sampling masks live in
:mod:`manifold.operators.masks`; :class:`Haar` is an orthonormal sparsifying transform. Modelling error
(a coarse reconstruction model of finer physics) enters as correlated noise: :func:`approximation_error` from
paired simulations, and :func:`whiten` (a :class:`Whitened` map and data at unit noise).
"""

from manifold.operators import masks
from manifold.operators._base import (
    ComposedOperator,
    ForwardMap,
    LinearOperator,
    apply_batched,
    check_array,
    measured_rows,
    real_view,
)
from manifold.operators.error_model import ErrorModel, Whitened, approximation_error, whiten
from manifold.operators.mri import MRI, MultiCoilMRI, fft2c, ifft2c, simulated_coil_maps
from manifold.operators.noise import gaussian_noise, line_integrals, noise_sigma, poisson_counts
from manifold.operators.phantom import shepp_logan
from manifold.operators.radon import Radon, ramp_filter
from manifold.operators.simple import Denoise, GaussianCS, Inpaint
from manifold.operators.wavelet import Haar

__all__ = [
    "MRI",
    "ComposedOperator",
    "Denoise",
    "ErrorModel",
    "ForwardMap",
    "GaussianCS",
    "Haar",
    "Inpaint",
    "LinearOperator",
    "MultiCoilMRI",
    "Radon",
    "Whitened",
    "apply_batched",
    "approximation_error",
    "check_array",
    "fft2c",
    "gaussian_noise",
    "ifft2c",
    "line_integrals",
    "masks",
    "measured_rows",
    "noise_sigma",
    "poisson_counts",
    "ramp_filter",
    "real_view",
    "shepp_logan",
    "simulated_coil_maps",
    "whiten",
]
