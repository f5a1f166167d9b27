"""Peer data without the inverse crime: EIT data simulated by pyEIT on its own fine mesh.

The package reconstructs on its own mesh (``manifold.eit.thorax_mesh``, ~1000 nodes, complete
electrode model). Data simulated with that same mesh and model would share its discretisation
error with the reconstruction (the "inverse crime"). This module simulates instead with pyEIT's
FEM (point electrodes) on a distmesh triangulation of the same thorax outline
(:mod:`manifold.thorax`), several times finer (``h0 = 0.03``: ~3000 nodes), with the electrodes
at the package's electrode centres (:attr:`manifold.eit.EITModel.electrode_positions`) and the
same adjacent protocol. Images become element conductivities by the package's own image -> mesh
average (:class:`manifold.eit.ImageMeshMap` on the pyEIT mesh).

It also wraps pyEIT's linear reconstructions (JAC, GREIT) so that they return images on the
package's pixel grid. pyEIT is a test / benchmark dependency only: the library never imports this.

Used by ``tests/eit/pyeit_sim.py`` (the tests' import of this file) and ``experiments/eit_merit.py``.
"""

from __future__ import annotations

import functools
import hashlib
import os

import jax
import jax.numpy as jnp
import numpy as np

from manifold.eit import EITMesh, EITModel, ImageMeshMap
from manifold.operators import gaussian_noise
from manifold.thorax import THORAX_EXPONENT, THORAX_SEMI_AXES, pixel_grid, thorax_boundary

__all__ = ["PeerSimulator", "PyEITReconstructor", "simulate_with_pyeit", "thorax_pyeit_mesh"]


def _thorax_distance(pts: np.ndarray) -> np.ndarray:
    """Signed distance to the thorax outline (negative inside), exact along rays from the origin:
    ``|p| (1 - 1/ρ(p))`` with the superellipse gauge ``ρ = (|x/a|^p + |y/b|^p)^(1/p)``."""
    (a, b), p = THORAX_SEMI_AXES, THORAX_EXPONENT
    pts = np.asarray(pts, np.float64)
    rho = (np.abs(pts[:, 0] / a) ** p + np.abs(pts[:, 1] / b) ** p) ** (1.0 / p)
    r = np.hypot(pts[:, 0], pts[:, 1])
    return r * (1.0 - 1.0 / np.maximum(rho, 1e-12))


def _cache_dir() -> str:
    return os.environ.get("MANIFOLD_PYEIT_CACHE", os.path.join("out", "cache", "pyeit_mesh"))


def thorax_pyeit_mesh(electrode_positions: np.ndarray, *, h0: float = 0.03, boundary_points: int | None = None):
    """A pyEIT distmesh of the thorax outline with nodes at ``electrode_positions``.

    Args:
      electrode_positions: ``(L, 2)`` electrode centres on the outline (``EITModel.electrode_positions``).
      h0: distmesh's initial edge length (0.03: ~3000 nodes; 0.08: ~450, for tests).
      boundary_points: fixed nodes along the outline besides the electrodes (default: spacing ``h0``).

    Returns:
      A ``pyeit.mesh.PyEITMesh`` whose ``el_pos`` are the electrode nodes, in order. Meshes are
      cached as ``.npz`` under ``$MANIFOLD_PYEIT_CACHE`` (default ``out/cache/pyeit_mesh``):
      distmesh takes tens of seconds at ``h0 = 0.03``. It is seeded, so a cache miss gives the same mesh.
    """
    from pyeit.mesh import PyEITMesh, create, shape  # test / bench dependency only

    pos = np.asarray(electrode_positions, np.float64)
    n_el = pos.shape[0]
    if boundary_points is None:
        boundary_points = int(np.ceil(_perimeter() / h0))
    ring = thorax_boundary(boundary_points)
    far = np.min(np.linalg.norm(ring[:, None] - pos[None], axis=-1), axis=1) > 0.6 * h0
    p_fix = np.concatenate([pos, ring[far]])
    digest = hashlib.sha256(np.round(p_fix, 9).tobytes() + repr(h0).encode()).hexdigest()[:16]
    path = os.path.join(_cache_dir(), f"thorax_{n_el}_{digest}.npz")
    if os.path.exists(path):
        with np.load(path) as f:
            return PyEITMesh(node=f["node"], element=f["element"], el_pos=np.arange(n_el), ref_node=int(f["ref"]))
    state = np.random.get_state()
    np.random.seed(0)  # distmesh draws its initial points with np.random
    try:
        mesh = create(n_el, fd=_thorax_distance, fh=shape.area_uniform, h0=h0, p_fix=p_fix, bbox=[[-1, -0.8], [1, 0.8]])
    finally:
        np.random.set_state(state)
    np.testing.assert_allclose(mesh.node[:n_el, :2], pos, atol=1e-9)  # distmesh keeps p_fix first
    ref = int(np.argmin(np.linalg.norm(mesh.node[:, :2], axis=1)))  # ground an interior node
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + f".{os.getpid()}.tmp.npz"
    np.savez(tmp, node=mesh.node, element=mesh.element, ref=ref)
    os.replace(tmp, path)
    return PyEITMesh(node=mesh.node, element=mesh.element, el_pos=np.arange(n_el), ref_node=ref)


def _perimeter() -> float:
    ring = thorax_boundary(4096)
    return float(np.linalg.norm(np.diff(np.concatenate([ring, ring[:1]]), axis=0), axis=1).sum())


def _pyeit_protocol(model: EITModel):
    from pyeit.eit.protocol import create as create_protocol

    n_el = model.mesh.n_electrodes
    ours = model.protocol
    for dist in range(1, n_el):  # the pyEIT protocol with our excitations and measurement order
        proto = create_protocol(n_el, dist_exc=dist, step_meas=1, parser_meas="std")
        if proto.ex_mat.shape == ours.excitations.shape and np.array_equal(proto.ex_mat, ours.excitations):
            if np.array_equal(proto.meas_mat.reshape(-1, 2), ours.meas_pairs):
                return proto
    raise ValueError(f"protocol: no pyEIT 'std' protocol matches {ours!r}")


class PeerSimulator:
    """Difference data of change images, by pyEIT on a fine mesh of the same thorax.

    Args:
      model: the package's :class:`EITModel` (thorax outline): its electrode positions, protocol
        and image size are used; its mesh and FEM are not.
      h0: distmesh edge length of the simulation mesh.
      floor: relative conductivity floor, as ``EITModel.conductivity``.
    """

    def __init__(self, model: EITModel, *, h0: float = 0.03, floor: float = 0.05):
        from pyeit.eit.fem import EITForward

        if model.mesh.outline != "thorax":
            raise ValueError(f"model: expected a model of the thorax outline, got mesh outline {model.mesh.outline!r}")
        self.model = model
        self.h0 = float(h0)
        self.floor = float(floor)
        self.pyeit_mesh = thorax_pyeit_mesh(model.electrode_positions, h0=h0)
        self.protocol = _pyeit_protocol(model)
        self.forward = EITForward(self.pyeit_mesh, self.protocol)
        n_el = model.mesh.n_electrodes
        mesh = EITMesh(
            self.pyeit_mesh.node[:, :2],
            self.pyeit_mesh.element,
            tuple(np.array([i]) for i in range(n_el)),
            np.arange(n_el),
            "thorax",
        )
        self.map = ImageMeshMap(mesh, model.image_shape[0])
        self.v_ref = self.forward.solve_eit(np.ones(self.pyeit_mesh.n_elems))

    @property
    def n_nodes(self) -> int:
        return int(self.pyeit_mesh.n_nodes)

    def conductivity(self, delta: np.ndarray) -> np.ndarray:
        """Element conductivities ``(..., n_elements)`` of change images ``(..., H, W)``."""
        sigma = np.maximum(1.0 + np.asarray(delta, np.float64), self.floor)
        return np.asarray(self.map.to_mesh(jnp.asarray(sigma, jnp.float32)), np.float64)

    def difference(self, delta: np.ndarray) -> np.ndarray:
        """Noise-free difference data ``F(σ(δ)) - F(1)`` ``(..., n_meas)`` (float64)."""
        delta = np.asarray(delta)
        flat = delta.reshape((-1, *delta.shape[-2:]))
        perms = self.conductivity(flat)
        out = np.stack([self.forward.solve_eit(p) - self.v_ref for p in perms])
        return out.reshape(delta.shape[:-2] + out.shape[-1:])


@functools.lru_cache(maxsize=4)
def _simulator(model: EITModel, h0: float) -> PeerSimulator:
    return PeerSimulator(model, h0=h0)


def simulate_with_pyeit(model: EITModel, delta, *, noise: float = 0.0, key=None, h0: float = 0.03) -> np.ndarray:
    """Difference data of change images ``δ`` ``(..., H, W)`` simulated by pyEIT on a fine mesh.

    Args:
      model: the package's thorax :class:`EITModel` (electrodes, protocol, image size).
      delta: change images.
      noise: relative noise level: white Gaussian noise of standard deviation
        ``noise * rms(dv)`` per image (``0.01``: 1 %, SNR 40 dB), as
        :func:`manifold.operators.gaussian_noise` with ``snr_db = -20 log10(noise)``.
      key: ``jax.random`` key of the noise (required when ``noise > 0``).
      h0: simulation mesh size (the simulator is cached per model and ``h0``).

    Returns:
      ``(..., n_meas)`` float32 difference data in the package's measurement order.
    """
    dv = _simulator(model, float(h0)).difference(delta).astype(np.float32)
    if noise > 0:
        if key is None:
            raise ValueError("key: a jax.random key is required when noise > 0")
        flat = dv.reshape(-1, dv.shape[-1])
        keys = jax.random.split(key, flat.shape[0])
        snr = -20.0 * np.log10(noise)
        flat = np.stack([np.asarray(gaussian_noise(k, jnp.asarray(v), snr_db=snr)) for k, v in zip(keys, flat)])
        dv = flat.reshape(dv.shape)
    return dv


class PyEITReconstructor:
    """pyEIT's JAC (one-step Gauss-Newton, Kotre prior) and GREIT, returning images on the package grid.

    Both (or the ``kinds`` asked for) run on the package's own mesh (``model.mesh``, point electrodes at its electrode
    centres), not the simulation mesh. JAC's element values are shown by ``model.to_image``;
    GREIT's ``n x n`` grid over the mesh's bounding box is interpolated bilinearly to the pixel
    centres. Signs: pyEIT returns ``-H dv`` with its Jacobian ``-dv/dσ``, i.e. ``Δσ``.
    """

    def __init__(
        self,
        model: EITModel,
        *,
        jac_lamb: float = 1e-2,
        jac_p: float = 0.5,
        greit_lamb: float = 1e-2,
        greit_p: float = 0.5,
        greit_n: int = 32,
        kinds: tuple[str, ...] = ("jac", "greit"),
    ):
        from pyeit.eit.greit import GREIT
        from pyeit.eit.jac import JAC
        from pyeit.mesh import PyEITMesh

        self.model = model
        ref = int(np.argmin(np.linalg.norm(model.mesh.nodes, axis=1)))
        self.mesh = PyEITMesh(
            node=model.mesh.nodes, element=model.mesh.triangles, el_pos=model.mesh.electrode_centres, ref_node=ref
        )
        protocol = _pyeit_protocol(model)
        if "jac" in kinds:
            self.jac = JAC(self.mesh, protocol)
            self.jac.setup(p=jac_p, lamb=jac_lamb, method="kotre", perm=1.0, jac_normalized=False)
        if "greit" in kinds:
            self.greit = GREIT(self.mesh, protocol)
            self.greit.setup(p=greit_p, lamb=greit_lamb, n=greit_n, perm=1.0, jac_normalized=False)
            xg, yg, _ = self.greit.get_grid()
            self._greit_axes = (np.asarray(yg[:, 0]), np.asarray(xg[0, :]))
        x, y = (np.asarray(c, np.float64) for c in pixel_grid(model.image_shape[0]))
        self._pixels = np.stack([y.ravel(), x.ravel()], axis=1)
        self._mask = np.asarray(model.mask)

    def solve_jac(self, dv: np.ndarray) -> np.ndarray:
        """``(..., H, W)`` JAC images of difference data ``(..., n_meas)``."""
        dv = np.asarray(dv, np.float64)
        ds = -np.real(self.jac.H @ dv.reshape(-1, dv.shape[-1]).T).T  # pyEIT's solve: -H dv
        img = np.asarray(self.model.to_image(jnp.asarray(ds, jnp.float32)))
        return img.reshape(dv.shape[:-1] + img.shape[-2:])

    def solve_greit(self, dv: np.ndarray) -> np.ndarray:
        """``(..., H, W)`` GREIT images of difference data ``(..., n_meas)``."""
        from scipy.interpolate import RegularGridInterpolator

        dv = np.asarray(dv, np.float64)
        flat = dv.reshape(-1, dv.shape[-1])
        out = []
        for d in flat:
            grid = -np.real(self.greit.H @ d).reshape(len(self._greit_axes[0]), len(self._greit_axes[1]))
            interp = RegularGridInterpolator(self._greit_axes, grid, bounds_error=False, fill_value=None)
            img = interp(self._pixels).reshape(self._mask.shape)
            out.append(np.where(self._mask, img, 0.0))
        out = np.stack(out)
        return out.reshape(dv.shape[:-1] + out.shape[-2:]).astype(np.float32)
