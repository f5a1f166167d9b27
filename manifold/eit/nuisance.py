r"""Model mismatch as parameters: contact impedances, an electrode-belt shift and a boundary scale.

The complete electrode model of :class:`~manifold.eit.FEM` is extended by a nuisance vector

.. math::  θ = (\log(z_1/z^0_1), \dots, \log(z_L/z^0_L),\; δ,\; \log s_x,\; \log s_y) \in R^{L+3}

(``θ = 0`` is the nominal model), and the forward map ``v = F(σ, θ)`` is differentiable in
``θ`` through the same implicit solve as in ``σ`` (``lax.custom_linear_solve``):

* **Contact impedances** ``z_l = z^0_l e^{θ_l}`` (positive by construction) enter the CEM blocks
  ``B``, ``C``, ``D`` as ``1/z_l`` (:mod:`manifold.eit.fem`).
* **Electrode shift** ``δ`` (degrees of a full turn of the perimeter ``P``; arc length
  ``δ P / 360``, the angle on the disk): every electrode arc ``[a_l, b_l]`` moves to
  ``[a_l + δ_s, b_l + δ_s]`` along the polygonal boundary, and the boundary integrals
  ``∫_{e_l} φ_i φ_j`` and ``∫_{e_l} φ_i`` are computed exactly over the part of each boundary edge
  the moved arc covers (P1 hats are linear on an edge, so the integrals are cubic polynomials of the
  clipped end points). They are continuously differentiable in ``δ``: the derivative of an
  integral in its end point is the integrand there, which is continuous. The mesh is not moved,
  so the boundary edges near the electrodes (the mesher's ``h_electrode`` refinement) must be fine
  enough to resolve the shifted arcs; ``|δ|`` is limited to ``max_shift`` (default 5°, well
  inside the gap between electrodes), and clipped to it inside ``jit``. Exact for any outline
  (thorax or disk), up to the mesh resolution, unlike a rotation of the image, which is exact only
  for the disk.
* **Boundary scale** ``(s_x, s_y) = (e^{θ_{L+1}}, e^{θ_{L+2}})``: the body is the reference mesh
  stretched by ``S = diag(s_x, s_y)``, and the conductivity image is in the body's own
  (normalised) coordinates, so element ``e`` keeps its conductivity. Pulled back to the reference
  mesh, ``|T'| ∇'φ_i · ∇'φ_j = |T| ∇φ_i^T \mathrm{diag}(s_y/s_x, s_x/s_y) ∇φ_j``: an anisotropic
  conductivity on the reference mesh (stiffness ``σ_e (s_y/s_x K^x_e + s_x/s_y K^y_e)``, exact),
  and every boundary edge of unit tangent ``t`` has length ``|S t|`` times its reference length.

**Identifiability.** In 2-D a uniform scale ``s_x = s_y = s`` leaves the stiffness unchanged and
multiplies every boundary integral by ``s``: it is the same as dividing every contact impedance
by ``s``. Only the aspect ratio ``s_x / s_y`` is seen by the data apart from the impedances; a
joint estimate of both relies on the Gaussian prior for the split.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from manifold.eit._schur import SchurSolver, sparse_matvec, sparse_spd_solve
from manifold.eit.fem import FEM, _as_float
from manifold.eit.mesh import EITMesh
from manifold.operators import ForwardMap

__all__ = ["NUISANCE_PRIOR_STD", "EITNuisanceMap", "NuisanceFEM", "boundary_loop"]

#: Default prior standard deviations of the nuisance groups, in the units of ``θ``: log contact
#: impedance 0.5 (a factor e^{±0.5} = 0.61..1.65 at one sigma), electrode shift 2 degrees, log
#: boundary scale 0.05 (5 % of the chest width and depth).
NUISANCE_PRIOR_STD = {"contact_impedance": 0.5, "electrode_shift": 2.0, "scale": 0.05}


def boundary_loop(mesh: EITMesh) -> np.ndarray:
    """The boundary nodes of ``mesh`` in counter-clockwise order, ``(n_boundary,)``.

    Raises:
      ValueError: when the boundary is not one closed curve.
    """
    tri = mesh.triangles
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    key = np.sort(edges, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    boundary = edges[counts[inverse.reshape(-1)] == 1]  # oriented as in their (counter-clockwise) triangle
    nxt = dict(zip(boundary[:, 0].tolist(), boundary[:, 1].tolist(), strict=True))
    start = int(boundary[0, 0])
    loop = [start]
    while True:
        node = nxt[loop[-1]]
        if node == start:
            break
        loop.append(node)
        if len(loop) > len(boundary):
            raise ValueError("mesh: the boundary is not one closed curve")
    if len(loop) != len(boundary):
        raise ValueError("mesh: the boundary is not one closed curve (several components)")
    return np.asarray(loop, dtype=np.int64)


class NuisanceFEM:
    r"""The CEM forward map ``(σ, θ) -> v`` with the nuisance vector ``θ`` of this module.

    Built on an existing :class:`FEM` (its mesh, protocol, nominal contact impedances ``z^0``
    and solver); at ``θ = 0`` it computes the same voltages as that FEM.

    Args:
      fem: a complete-electrode-model :class:`FEM`.
      max_shift: the largest electrode shift ``|δ|`` in degrees (``θ_L`` is clipped to it).

    Raises:
      ValueError: for a point-electrode FEM, an electrode not on the boundary, or a
        ``max_shift`` that is not positive or does not fit in the gaps between electrodes.
    """

    def __init__(self, fem: FEM, *, max_shift: float = 5.0):
        if not isinstance(fem, FEM):
            raise TypeError(f"fem: expected an FEM, got {type(fem).__name__}")
        if fem.model != "cem":
            raise ValueError("fem: nuisance parameters need the complete electrode model (model='cem')")
        if isinstance(max_shift, bool) or not np.isfinite(max_shift) or max_shift <= 0:
            raise ValueError(f"max_shift: expected a positive number of degrees, got {max_shift!r}")
        mesh = fem.mesh
        n, L = mesh.n_nodes, mesh.n_electrodes
        self.fem, self.mesh, self.protocol = fem, mesh, fem.protocol
        self.n_electrodes = L
        self.z0 = np.asarray(fem.contact_impedance, dtype=np.float64)
        self.max_shift = float(max_shift)
        self.size = fem.size

        # stiffness split K_e = K^x_e + K^y_e (the x- and y-derivative parts)
        p = mesh.nodes[mesh.triangles]
        s = p[:, [2, 0, 1]] - p[:, [1, 2, 0]]
        area = 0.5 * (s[:, 0, 0] * s[:, 1, 1] - s[:, 0, 1] * s[:, 1, 0])
        self._kx = np.einsum("ei,ej->eij", s[..., 1], s[..., 1]) / (4.0 * area[:, None, None])
        self._ky = np.einsum("ei,ej->eij", s[..., 0], s[..., 0]) / (4.0 * area[:, None, None])

        # arc-length coordinates along the counter-clockwise boundary
        loop = boundary_loop(mesh)
        xy = mesh.nodes[loop]
        seg = np.roll(xy, -1, axis=0) - xy
        seg_len = np.linalg.norm(seg, axis=1)
        arc = np.concatenate([[0.0], np.cumsum(seg_len)[:-1]])
        perimeter = float(seg_len.sum())
        self.perimeter = perimeter
        pos = np.full(n, -1, dtype=np.int64)
        pos[loop] = np.arange(len(loop))

        def wrap(d):
            return (d + perimeter / 2) % perimeter - perimeter / 2

        margin = self.max_shift / 360.0 * perimeter
        ends, el, ei, ej, h, r, tangent = [], [], [], [], [], [], []
        for l, idx in enumerate(mesh.electrode_nodes):
            if len(idx) < 2:
                raise ValueError(f"fem: electrode {l} covers no boundary edge; the CEM needs electrodes of >= 2 nodes")
            if np.any(pos[idx] < 0):
                raise ValueError(f"fem: electrode {l} has nodes that are not on the boundary")
            centre = arc[pos[mesh.electrode_centres[l]]]
            rel = wrap(arc[pos[idx]] - centre)
            a, b = float(rel.min()), float(rel.max())
            ends.append((a, b))
            start = wrap(arc - centre)  # every boundary edge k: loop[k] -> loop[k + 1]
            window = (start + seg_len > a - margin - 1e-12) & (start < b + margin + 1e-12)
            k = np.flatnonzero(window)
            el.append(np.full(len(k), l))
            ei.append(loop[k])
            ej.append(loop[(k + 1) % len(loop)])
            h.append(seg_len[k])
            r.append(start[k])
            tangent.append(seg[k] / seg_len[k, None])
        spacing = perimeter / L
        widths = np.array([b - a for a, b in ends])
        if 2 * margin >= spacing - widths.max():
            raise ValueError(
                f"max_shift: {self.max_shift} degrees moves an electrode across the gap to its neighbour "
                f"(gap {spacing - widths.max():.3g} of perimeter {perimeter:.3g}); use a smaller max_shift"
            )
        self._ends = np.asarray(ends)  # (L, 2) arc [a, b] relative to the centre
        self._el = np.concatenate(el)
        self._i, self._j = np.concatenate(ei), np.concatenate(ej)
        self._h, self._r = np.concatenate(h), np.concatenate(r)
        self._t = np.concatenate(tangent)

        # sparsity pattern: stiffness, then B and C / C^T per (electrode, edge), then the D block
        u = n + self._el
        i, j = self._i, self._j
        grid_r, grid_c = np.meshgrid(n + np.arange(L), n + np.arange(L), indexing="ij")
        self._stiff_rows, self._stiff_cols = fem._rows, fem._cols
        self._all_rows = np.concatenate([fem._rows, i, j, i, j, i, j, u, u, grid_r.ravel()])
        self._all_cols = np.concatenate([fem._cols, i, j, j, i, u, u, i, j, grid_c.ravel()])
        # grounding c 1 1^T with c the mean nominal D_ll (any c > 0 grounds; fixed, so θ-free)
        self._ground = float(np.mean(widths / self.z0))
        self._readout = n + np.arange(L)
        self.solver = fem.solver
        if self.solver == "schur":
            self._schur = SchurSolver(self.size, self._all_rows, self._all_cols, mesh.nodes, self._readout)

    @property
    def n_params(self) -> int:
        """``L + 3``: the length of ``θ``."""
        return self.n_electrodes + 3

    # -- assembly -----------------------------------------------------------------------------
    def _stiffness(self, sigma: jax.Array, theta: jax.Array) -> jax.Array:
        dtype = sigma.dtype
        sx, sy = jnp.exp(theta[-2]), jnp.exp(theta[-1])
        ke = (sy / sx) * jnp.asarray(self._kx, dtype) + (sx / sy) * jnp.asarray(self._ky, dtype)
        return (sigma[:, None, None] * ke).reshape(-1)

    def _boundary(self, theta: jax.Array, dtype) -> jax.Array:
        """Values of the B, C / C^T and D entries at ``θ``."""
        L = self.n_electrodes
        z = jnp.asarray(self.z0, dtype) * jnp.exp(theta[:L])
        shift = jnp.clip(theta[L], -self.max_shift, self.max_shift) * (self.perimeter / 360.0)
        sx, sy = jnp.exp(theta[L + 1]), jnp.exp(theta[L + 2])
        h = jnp.asarray(self._h, dtype)
        r = jnp.asarray(self._r, dtype)
        ends = jnp.asarray(self._ends, dtype)[self._el]
        t0 = jnp.clip((ends[:, 0] + shift - r) / h, 0.0, 1.0)
        t1 = jnp.clip((ends[:, 1] + shift - r) / h, 0.0, 1.0)
        d1, d2, d3 = t1 - t0, (t1**2 - t0**2) / 2, (t1**3 - t0**3) / 3
        ii = h * (d1 - 2 * d2 + d3)  # ∫ (1 - t)^2
        jj = h * d3  # ∫ t^2
        ij = h * (d2 - d3)  # ∫ t (1 - t)
        i1 = h * (d1 - d2)  # ∫ (1 - t)
        j1 = h * d2  # ∫ t
        t = jnp.asarray(self._t, dtype)
        stretch = jnp.sqrt((sx * t[:, 0]) ** 2 + (sy * t[:, 1]) ** 2)
        w = stretch / z[self._el]
        diag = jax.ops.segment_sum(w * (i1 + j1), jnp.asarray(self._el), num_segments=L)
        dblock = jnp.diag(diag) + jnp.asarray(self._ground, dtype)
        return jnp.concatenate(
            [w * ii, w * jj, w * ij, w * ij, -w * i1, -w * j1, -w * i1, -w * j1, dblock.reshape(-1)]
        )

    def _data(self, sigma: jax.Array, theta: jax.Array) -> jax.Array:
        return jnp.concatenate([self._stiffness(sigma, theta), self._boundary(theta, sigma.dtype)])

    def _solve(self, data: jax.Array, rhs: jax.Array) -> jax.Array:
        """``A^{-1} rhs`` for the matrix of entry values ``data``, differentiated implicitly."""
        schur = self._schur if self.solver == "schur" else None
        return sparse_spd_solve(data, rhs, self._all_rows, self._all_cols, self.size, schur)

    # -- the forward map ----------------------------------------------------------------------
    def _rhs(self, dtype) -> jax.Array:
        return self.fem._injection(self.fem._currents, dtype)

    def forward(self, sigma: jax.Array, theta: jax.Array) -> jax.Array:
        """Measurements ``(n_meas,)`` of element conductivities ``(n_elements,)`` at ``θ`` ``(L+3,)``."""
        sigma = _as_float(sigma)
        theta = jnp.asarray(theta, sigma.dtype)
        x = self._solve(self._data(sigma, theta), self._rhs(sigma.dtype))
        return self.fem._measure(x[self._readout].T)

    def difference(self, sigma_ref: jax.Array, d_sigma: jax.Array, theta: jax.Array) -> jax.Array:
        """``F(σ_ref + Δσ, θ) - F(σ_ref, θ)`` without cancellation (as :meth:`FEM.difference`)."""
        sigma_ref, d_sigma = _as_float(sigma_ref), _as_float(d_sigma)
        theta = jnp.asarray(theta, sigma_ref.dtype)
        x_ref = self._solve(self._data(sigma_ref, theta), self._rhs(sigma_ref.dtype))
        k_d = self._stiffness(d_sigma, theta)
        k_x = sparse_matvec(k_d, x_ref, self._stiff_rows, self._stiff_cols)  # K(Δσ) x_ref
        dx = self._solve(self._data(sigma_ref + d_sigma, theta), -k_x)
        return self.fem._measure(dx[self._readout].T)

    def __repr__(self) -> str:
        return f"NuisanceFEM({self.fem!r}, max_shift={self.max_shift})"


class EITNuisanceMap(ForwardMap):
    r"""``δ (H, W) -> D(δ, θ)`` (n_meas,): an EIT map of change images at nuisance parameters ``θ``.

    Made by :meth:`EITModel.nuisance_map`. As a :class:`ForwardMap` it evaluates at its own
    ``theta`` (a pytree leaf, default ``0``: the nominal model, where it agrees with
    :meth:`EITModel.difference_map` / :meth:`EITModel.absolute_map`); :meth:`forward_at` takes
    ``θ`` as an argument, which is what :func:`manifold.solve.solve_latent_nuisance` fits.

    ``θ = (log(z_l / z^0_l))_{l<L}, δ, log s_x, log s_y`` (see :mod:`manifold.eit.nuisance`);
    :meth:`nuisance_vector` builds it from physical values and :meth:`nuisance_params` reads it.

    Attributes:
      model: the :class:`EITModel` (static).
      fem: its :class:`NuisanceFEM` (static).
      theta: ``(L + 3,)`` float32 nuisance parameters of ``A(δ)``.
      sigma_ref: reference conductivity image ``(H, W)`` of difference data (``None`` when
        ``absolute``).
      floor: relative conductivity floor of ``σ(δ)``.
      absolute: ``True`` for ``F(σ(δ), θ)``, ``False`` for ``F(σ(δ), θ) - F(σ_ref, θ)``.
      nuisance_std: ``(L + 3,)`` tuple, the prior standard deviation of each entry of ``θ`` (``0``
        for parameters held at their value in ``theta``, not estimated).
    """

    def __init__(self, model, fem: NuisanceFEM, theta, sigma_ref, floor: float, absolute: bool, nuisance_std):
        self.model = model
        self.fem = fem
        self.theta = theta
        self.sigma_ref = sigma_ref
        self.floor = floor
        self.absolute = bool(absolute)
        self.nuisance_std = tuple(float(v) for v in nuisance_std)
        self.in_shape = tuple(model.image_shape)
        self.out_shape = (model.n_meas,)
        self.dtype = jnp.float32

    @property
    def nuisance_dim(self) -> int:
        """``L + 3``, the length of ``θ``."""
        return self.fem.n_params

    def forward_at(self, delta: jax.Array, theta: jax.Array) -> jax.Array:
        """``D(δ, θ)`` for one change image ``δ`` ``(H, W)`` and ``θ`` ``(L + 3,)`` (traceable)."""
        model = self.model
        sigma = model._clip(model._conductivity(delta, self.floor))
        s = model.map.to_mesh(sigma)
        if self.absolute:
            return self.fem.forward(s, theta)
        s_ref = model.map.to_mesh(model._clip(self.sigma_ref.astype(sigma.dtype)))
        return self.fem.difference(s_ref, s - s_ref, theta)

    def _forward(self, delta):
        return self.forward_at(delta, self.theta)

    def check_nuisance(self, theta, name: str = "theta") -> jax.Array:
        """Validate ``θ``: a real ``(L + 3,)`` array, finite (when concrete).

        Raises:
          ValueError: naming ``name`` and what was expected.
        """
        theta = jnp.asarray(theta)
        p = self.nuisance_dim
        if not jnp.issubdtype(theta.dtype, jnp.floating) and not jnp.issubdtype(theta.dtype, jnp.integer):
            raise ValueError(f"{name}: expected a real array of shape ({p},), got dtype {theta.dtype}")
        if theta.shape != (p,):
            raise ValueError(
                f"{name}: expected shape ({p},) (log contact impedance ratio per electrode, shift in degrees, "
                f"log scale x, log scale y), got {theta.shape}"
            )
        if not isinstance(theta, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(theta))):
            raise ValueError(f"{name}: contains NaN or infinite values")
        return theta.astype(jnp.float32)

    def with_nuisance(self, theta) -> EITNuisanceMap:
        """The same map at nuisance parameters ``theta`` ``(L + 3,)`` (shares the compiled solvers)."""
        theta = self.check_nuisance(theta)
        return EITNuisanceMap(
            self.model, self.fem, theta, self.sigma_ref, self.floor, self.absolute, self.nuisance_std
        )

    def nuisance_vector(
        self,
        *,
        contact_impedance=None,
        electrode_shift: float = 0.0,
        scale=(1.0, 1.0),
    ) -> jax.Array:
        """``θ`` ``(L + 3,)`` of physical values (defaults: the nominal model).

        Args:
          contact_impedance: ``z_l``, a positive scalar or ``(L,)`` (default: the model's ``z^0``).
          electrode_shift: common shift of the electrodes along the boundary, degrees of a full
            turn of the perimeter, counter-clockwise; ``|shift| <= fem.max_shift``.
          scale: ``(s_x, s_y)``, positive stretch factors of the chest width and depth.

        Raises:
          ValueError: naming the argument, for non-positive or non-finite impedances or scales, a
            wrong shape, or a shift beyond ``max_shift``.
        """
        L = self.fem.n_electrodes
        z0 = self.fem.z0
        if contact_impedance is None:
            z = z0
        else:
            z = np.asarray(contact_impedance, dtype=np.float64)
            if z.ndim > 1 or (z.ndim == 1 and z.shape != (L,)):
                raise ValueError(f"contact_impedance: expected a scalar or shape ({L},), got shape {z.shape}")
            z = np.broadcast_to(z, (L,))
            if not np.all(np.isfinite(z)) or np.any(z <= 0):
                raise ValueError(f"contact_impedance: expected positive finite values, got {contact_impedance!r}")
        try:
            shift = float(electrode_shift)
        except (TypeError, ValueError):
            raise ValueError(f"electrode_shift: expected a number of degrees, got {electrode_shift!r}") from None
        if not np.isfinite(shift) or abs(shift) > self.fem.max_shift:
            raise ValueError(
                f"electrode_shift: expected a finite shift of at most max_shift = {self.fem.max_shift} degrees, "
                f"got {electrode_shift!r}"
            )
        sc = np.asarray(scale, dtype=np.float64)
        if sc.shape != (2,) or not np.all(np.isfinite(sc)) or np.any(sc <= 0):
            raise ValueError(f"scale: expected two positive finite factors (s_x, s_y), got {scale!r}")
        theta = np.concatenate([np.log(z / z0), [shift], np.log(sc)])
        return jnp.asarray(theta, jnp.float32)

    def nuisance_params(self, theta=None) -> dict:
        """Physical values of ``θ`` (default: this map's): ``{"contact_impedance": (..., L),
        "electrode_shift": (...) degrees, "scale": (..., 2)}`` (NumPy; ``theta`` may be batched)."""
        theta = np.asarray(self.theta if theta is None else theta, dtype=np.float64)
        L = self.fem.n_electrodes
        if theta.shape[-1:] != (L + 3,):
            raise ValueError(f"theta: expected shape (..., {L + 3}), got {theta.shape}")
        return {
            "contact_impedance": self.fem.z0 * np.exp(theta[..., :L]),
            "electrode_shift": np.clip(theta[..., L], -self.fem.max_shift, self.fem.max_shift),
            "scale": np.exp(theta[..., L + 1 :]),
        }
