"""Geometry of the image manifold ``M = {G(h)}``: tangent ranks, M-RIP constants, curvature."""

from manifold.geometry.jacobian import jacobian, randomized_svd, singular_values, tangent_basis, tangent_rank

__all__ = ["jacobian", "randomized_svd", "singular_values", "tangent_basis", "tangent_rank"]
