"""Geometry of the image manifold ``M = {G(h)}``: is ``b = A x`` solvable on it, and how well?

Every function takes any generator ``G``: a :class:`~manifold.models.Generator` or a plain
callable mapping one latent ``(k,)`` to one image (``latent_dim`` is read from ``G.latent_dim``
when present, else from the ``latent_dim`` argument, else from ``h``). Operators are
:class:`~manifold.operators.LinearOperator` s or linear callables; complex images and data are
treated as real vectors ``[Re; Im]``.

* Tangent spaces (:mod:`~manifold.geometry.jacobian`): :func:`jacobian`, :func:`singular_values`,
  :func:`tangent_rank`, :func:`tangent_basis`, :func:`randomized_svd` (matrix-free).
* Solvability (:mod:`~manifold.geometry.mrip`): :func:`measurement_rank`, :func:`local_mrip`,
  :func:`mrip_constants` (``(lower, upper, ...)`` from latent pairs and an adversarial search),
  :func:`solvability_report`.
* Curvature (:mod:`~manifold.geometry.curvature`): :func:`normal_curvature`,
  :func:`max_normal_curvature`, :func:`taylor_residual`, :func:`tangent_angles`,
  :func:`pca_distance`, :func:`span_projection`, :func:`rotation_blur_error`.
* Intrinsic dimension from samples: :func:`mle_dimension`, :func:`twonn_dimension`.
* Nonlinearity of the inverse map: :func:`linear_vs_latent`, :func:`latent_fit`.
* Sampling design for MRI: :func:`greedy_lines`, :func:`evaluate_mask`.
"""

from manifold.geometry.curvature import (
    SpanProjection,
    max_normal_curvature,
    normal_curvature,
    pca_distance,
    rotation_blur_error,
    span_projection,
    tangent_angles,
    taylor_residual,
)
from manifold.geometry.design import LineDesign, MaskScore, evaluate_mask, greedy_lines
from manifold.geometry.intrinsic_dim import mle_dimension, twonn_dimension
from manifold.geometry.jacobian import jacobian, randomized_svd, singular_values, tangent_basis, tangent_rank
from manifold.geometry.linear_inverse import InverseGap, latent_fit, linear_vs_latent
from manifold.geometry.mrip import (
    MeasurementRank,
    MRIPConstants,
    SolvabilityReport,
    local_mrip,
    measurement_rank,
    mrip_constants,
    solvability_report,
)

__all__ = [
    "InverseGap",
    "LineDesign",
    "MRIPConstants",
    "MaskScore",
    "MeasurementRank",
    "SolvabilityReport",
    "SpanProjection",
    "evaluate_mask",
    "greedy_lines",
    "jacobian",
    "latent_fit",
    "linear_vs_latent",
    "local_mrip",
    "max_normal_curvature",
    "measurement_rank",
    "mle_dimension",
    "mrip_constants",
    "normal_curvature",
    "pca_distance",
    "randomized_svd",
    "rotation_blur_error",
    "singular_values",
    "solvability_report",
    "span_projection",
    "tangent_angles",
    "tangent_basis",
    "tangent_rank",
    "taylor_residual",
    "twonn_dimension",
]
