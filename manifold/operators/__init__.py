"""Linear forward operators ``A`` of the imaging problems (MRI, CT, inpainting, CS, ...)."""

from manifold.operators._base import ComposedOperator, LinearOperator, check_array

__all__ = ["ComposedOperator", "LinearOperator", "check_array"]
