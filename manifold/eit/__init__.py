"""Electrical impedance tomography: meshes, P1 FEM (complete and point electrode models),
protocols, the image <-> mesh map, the image-space model and classical reconstructions.

Example::

    from manifold.eit import EITModel

    model = EITModel(16, image_size=64)              # thorax mesh, CEM, adjacent protocol
    sigma = model.conductivity(delta)                # 1 + delta inside the body
    v = model.forward(sigma)                         # (208,) boundary voltages
    A = model.linearized()                           # Δv ≈ A(Δσ), a LinearOperator
    F = model.difference_map()                       # δ -> Δv, the nonlinear ForwardMap
    N = model.nuisance_map()                         # (δ, θ) -> Δv with contact impedances,
                                                     # electrode shift, boundary scale θ
"""

from manifold.eit.fem import FEM, local_stiffness
from manifold.eit.image_map import ImageMeshMap, body_mask
from manifold.eit.mesh import EITMesh, disk_mesh, mesh_from_arrays, thorax_mesh
from manifold.eit.model import EITAbsoluteMap, EITDifferenceMap, EITLinearized, EITModel
from manifold.eit.nuisance import NUISANCE_PRIOR_STD, EITNuisanceMap, NuisanceFEM, boundary_loop
from manifold.eit.protocol import Protocol
from manifold.eit.reconstruct import gauss_newton, one_step_tikhonov

__all__ = [
    "FEM",
    "EITAbsoluteMap",
    "EITDifferenceMap",
    "EITLinearized",
    "EITMesh",
    "EITModel",
    "EITNuisanceMap",
    "ImageMeshMap",
    "NUISANCE_PRIOR_STD",
    "NuisanceFEM",
    "Protocol",
    "body_mask",
    "boundary_loop",
    "disk_mesh",
    "gauss_newton",
    "local_stiffness",
    "mesh_from_arrays",
    "one_step_tikhonov",
    "thorax_mesh",
]
