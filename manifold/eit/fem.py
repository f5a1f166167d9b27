r"""P1 finite elements for the EIT forward problem: complete and point electrode models.

The potential ``u`` solves ``-∇·(σ ∇u) = 0`` in the body with one conductivity ``σ_e`` per
triangle. With P1 hat functions ``φ_i`` the stiffness matrix is

.. math::  K(σ) = \sum_e σ_e K_e,   (K_e)_{ij} = |T_e| ∇φ_i·∇φ_j   (a 3 x 3 block of element e),

assembled with one vectorised scatter-add and factorised once for all excitations, by static
condensation on a bisection partition (:mod:`manifold.eit._schur`, default) or densely.

**Complete electrode model** (Somersalo, Cheney, Isaacson 1992), unknowns ``(u, U)`` with the
electrode potentials ``U ∈ R^L``, contact impedances ``z_l`` and electrode arcs ``e_l``:

.. math::
   \begin{pmatrix} K(σ) + B & C \\ C^T & D \end{pmatrix}
   \begin{pmatrix} u \\ U \end{pmatrix} = \begin{pmatrix} 0 \\ I \end{pmatrix},\quad
   B_{ij} = \sum_l \frac1{z_l}\int_{e_l} φ_i φ_j,\;
   C_{il} = -\frac1{z_l}\int_{e_l} φ_i,\; D = \mathrm{diag}(|e_l| / z_l).

The matrix is singular (constants); we ground with ``ΣU = 0`` by adding ``c 1 1^T`` to the
``D`` block: for currents with ``ΣI = 0`` the solution of the modified SPD system has ``ΣU = 0``
and solves the original one.

**Point-electrode model** (pyEIT's model): current ``±1`` enters at one node per electrode,
``K(σ) u = b``, grounded by replacing row and column of a reference node by the identity.

In both models the system matrix ``A(σ)`` is symmetric and the electrode readout equals the
current injection ``R`` (``U = R^T x``), so the measurement ``v_k = p_k^T R^T A^{-1} R I_{i_k}``
for pattern ``p_k`` and excitation currents ``I_{i_k}``, and the sensitivity is

.. math::  \frac{∂ v_k}{∂ σ_e} = -\, w_k^T K_e\, u_{i_k},\qquad u_i = A^{-1} R I_i,\;
           w_k = A^{-1} R p_k

(lead fields), the derivative itself, i.e. ``Δv ≈ J Δσ``. pyEIT's ``compute_jac`` returns the
opposite sign, ``-∂v/∂σ``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from manifold.eit._schur import SchurSolver, sparse_dense, sparse_matvec, sparse_spd_solve
from manifold.eit.mesh import EITMesh
from manifold.eit.protocol import Protocol
from manifold.operators import apply_batched

__all__ = ["FEM", "local_stiffness"]


def local_stiffness(nodes: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit-conductivity P1 element stiffness matrices, ``(n_elements, 3, 3)`` float64.

    ``(K_e)_{ij} = |T_e| ∇φ_i·∇φ_j = s_i·s_j / (4 |T_e|)`` with the edge vectors ``s_i``
    opposite to node ``i``.
    """
    p = np.asarray(nodes, dtype=np.float64)[triangles]  # (M, 3, 2)
    s = p[:, [2, 0, 1]] - p[:, [1, 2, 0]]  # edge opposite node i
    area = 0.5 * (s[:, 0, 0] * s[:, 1, 1] - s[:, 0, 1] * s[:, 1, 0])
    return np.einsum("eid,ejd->eij", s, s) / (4.0 * area[:, None, None])


class FEM:
    """The EIT forward map ``σ (per element) -> v (per measurement)`` on one mesh and protocol.

    All methods are jit-compiled once per input shape/dtype and take element conductivities
    ``sigma`` of shape ``(n_elements,)``; the computation dtype follows ``sigma`` (float32, or
    float64 when x64 is enabled). ``jax.grad``, ``jax.jacfwd``, ``jax.jacrev`` and ``jax.vmap``
    apply to :meth:`forward`.

    Args:
      mesh: the :class:`EITMesh`.
      protocol: the :class:`Protocol` (default: adjacent, ``Protocol.adjacent(L)``).
      model: ``"cem"`` (complete electrode model) or ``"point"`` (point electrodes, pyEIT).
      contact_impedance: ``z_l`` of the CEM, a positive scalar or ``(L,)`` array (ignored for
        ``"point"``).
      ref_node: grounded node of the point model (default: a node not on an electrode).
      solver: ``"schur"`` (static condensation on a bisection partition, see
        :mod:`manifold.eit._schur`), ``"dense"`` (one dense Cholesky factorisation) or
        ``"auto"`` (``"schur"`` from 256 nodes on, else ``"dense"``, which compiles faster).

    Raises:
      ValueError: for an unknown model, a protocol using more electrodes than the mesh has,
        electrodes without a boundary edge in the CEM, or non-positive contact impedances.
    """

    def __init__(
        self,
        mesh: EITMesh,
        protocol: Protocol | None = None,
        *,
        model: str = "cem",
        contact_impedance: float | np.ndarray = 0.01,
        ref_node: int | None = None,
        solver: str = "auto",
    ):
        if not isinstance(mesh, EITMesh):
            raise TypeError(f"mesh: expected an EITMesh, got {type(mesh).__name__}")
        L = mesh.n_electrodes
        protocol = Protocol.adjacent(L) if protocol is None else protocol
        if not isinstance(protocol, Protocol):
            raise TypeError(f"protocol: expected a Protocol, got {type(protocol).__name__}")
        if protocol.n_electrodes != L:
            raise ValueError(
                f"protocol: uses {protocol.n_electrodes} electrodes but the mesh has {L} (n_electrodes must match)"
            )
        if model not in ("cem", "point"):
            raise ValueError(f"model: expected 'cem' or 'point', got {model!r}")
        self.mesh, self.protocol, self.model = mesh, protocol, model
        n = mesh.n_nodes
        tri = mesh.triangles
        self._ke = local_stiffness(mesh.nodes, tri)
        self._rows = np.repeat(tri, 3, axis=1).reshape(-1)  # (M*9,) row index of K_e entries
        self._cols = np.tile(tri, (1, 3)).reshape(-1)

        if model == "cem":
            z = np.broadcast_to(np.asarray(contact_impedance, dtype=np.float64), (L,))
            if not np.all(np.isfinite(z)) or np.any(z <= 0):
                raise ValueError(f"contact_impedance: expected positive finite values, got {contact_impedance!r}")
            self.contact_impedance = z.copy()
            self.size = n + L
            self._fixed = self._cem_blocks(mesh, z)
            self._readout = n + np.arange(L)
        else:
            self.contact_impedance = None
            self.size = n
            on_electrode = np.zeros(n, dtype=bool)
            on_electrode[np.concatenate(mesh.electrode_nodes)] = True
            if ref_node is None:
                ref_node = int(np.flatnonzero(~on_electrode)[0])
            if not 0 <= ref_node < n or on_electrode[ref_node]:
                raise ValueError(f"ref_node: expected a node index in [0, {n}) not on an electrode, got {ref_node}")
            self.ref_node = ref_node
            self._ke_mask = (self._rows != ref_node) & (self._cols != ref_node)
            self._fixed = (np.array([ref_node]), np.array([ref_node]), np.array([1.0]))
            self._readout = np.asarray(mesh.electrode_centres)
        self._currents = protocol.currents  # (n_exc, L)
        if solver not in ("auto", "schur", "dense"):
            raise ValueError(f"solver: expected 'auto', 'schur' or 'dense', got {solver!r}")
        if solver == "auto":
            solver = "schur" if n >= 256 else "dense"
        self.solver = solver
        self._all_rows = np.concatenate([self._rows, self._fixed[0]])  # positions of _data(fixed=True)
        self._all_cols = np.concatenate([self._cols, self._fixed[1]])
        if solver == "schur":
            keep = np.concatenate([self._readout, [self.ref_node] if model == "point" else []]).astype(np.int64)
            self._schur = SchurSolver(self.size, self._all_rows, self._all_cols, mesh.nodes, keep)

        # jit once, unbatched and vmapped over a batch axis
        self._jit_forward = _JitPair(self._forward)
        self._jit_potentials = _JitPair(self._electrode_potentials)
        self._jit_jacobian = _JitPair(self._jacobian)
        self._jit_difference = jax.jit(self._difference)

    # -- public API ---------------------------------------------------------------------------
    def check_sigma(self, sigma, name: str = "sigma") -> jax.Array:
        """Validate element conductivities ``(..., n_elements)``: floating, finite and > 0.

        The value checks run only on concrete arrays (not inside ``jit``/``grad``).

        Raises:
          ValueError: naming ``name`` and what was expected.
        """
        sigma = jnp.asarray(sigma)
        if not jnp.issubdtype(sigma.dtype, jnp.floating):
            raise ValueError(f"{name}: expected a real floating array, got dtype {sigma.dtype}")
        if sigma.ndim == 0 or sigma.shape[-1] != self.mesh.n_elements:
            raise ValueError(
                f"{name}: expected shape (..., {self.mesh.n_elements}) (one value per element), got {sigma.shape}"
            )
        if not isinstance(sigma, jax.core.Tracer):
            if not bool(jnp.all(jnp.isfinite(sigma))):
                raise ValueError(f"{name}: conductivity contains NaN or infinite values")
            if not bool(jnp.all(sigma > 0)):
                raise ValueError(f"{name}: conductivity must be positive, got min {float(jnp.min(sigma)):.3g}")
        return sigma

    def forward(self, sigma: jax.Array) -> jax.Array:
        """Measurements ``(..., n_meas)`` of element conductivities ``(..., n_elements)``."""
        return self._jit_forward(self.check_sigma(sigma))

    def difference(self, sigma: jax.Array, sigma_ref: jax.Array) -> jax.Array:
        """``F(σ) - F(σ_ref)`` ``(n_meas,)`` without cancellation (see :meth:`_difference`)."""
        sigma, sigma_ref = self.check_sigma(sigma), self.check_sigma(sigma_ref, "sigma_ref")
        if sigma.ndim != 1 or sigma_ref.ndim != 1:
            raise ValueError(f"sigma: expected single conductivities ({self.mesh.n_elements},), got {sigma.shape}")
        return self._jit_difference(sigma_ref, sigma - sigma_ref)

    def electrode_potentials(self, sigma: jax.Array) -> jax.Array:
        """Electrode potentials ``(..., n_exc, L)`` of every excitation (CEM: ``ΣU = 0``)."""
        return self._jit_potentials(self.check_sigma(sigma))

    def jacobian(self, sigma: jax.Array) -> jax.Array:
        """``∂v/∂σ`` ``(..., n_meas, n_elements)`` by the adjoint (lead-field) formula."""
        return self._jit_jacobian(self.check_sigma(sigma))

    def system_matrix(self, sigma: jax.Array) -> jax.Array:
        """The SPD system matrix ``A(σ)`` ``(size, size)`` of one conductivity."""
        return self._system_matrix(self.check_sigma(sigma))

    # -- assembly ---------------------------------------------------------------------------
    @staticmethod
    def _cem_blocks(mesh: EITMesh, z: np.ndarray):
        """``(rows, cols, values)`` of the σ-independent CEM blocks ``B``, ``C``, ``D`` + grounding."""
        n, L = mesh.n_nodes, mesh.n_electrodes
        rows, cols, vals, diag = [], [], [], []
        for l, idx in enumerate(mesh.electrode_nodes):
            if len(idx) < 2:
                raise ValueError(
                    f"mesh: electrode {l} covers no boundary edge; the complete electrode model needs "
                    "electrodes of >= 2 nodes (use model='point')"
                )
            i, j = idx[:-1], idx[1:]
            h = np.linalg.norm(mesh.nodes[j] - mesh.nodes[i], axis=1) / z[l]  # edge length / z_l
            u = np.full_like(i, n + l)
            # B: edge mass matrices (length / 6) [[2, 1], [1, 2]] / z_l
            rows += [i, j, i, j]
            cols += [i, j, j, i]
            vals += [h / 3.0, h / 3.0, h / 6.0, h / 6.0]
            # C and C^T: -(1 / z_l) * length / 2 at both ends of every edge
            rows += [i, j, u, u]
            cols += [u, u, i, j]
            vals += [-h / 2.0] * 4
            diag.append(h.sum())  # D_ll = |e_l| / z_l
        # D + c 1 1^T (grounding ΣU = 0), c of the size of D
        gr, gc = np.meshgrid(n + np.arange(L), n + np.arange(L), indexing="ij")
        rows.append(gr.ravel())
        cols.append(gc.ravel())
        vals.append((np.diag(diag) + np.mean(diag)).ravel())
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)

    def _data(self, sigma: jax.Array, *, fixed: bool) -> jax.Array:
        """Entry values at ``(rows, cols)``: ``σ_e K_e`` (point model: reference row/column
        removed), followed by the σ-independent entries when ``fixed``."""
        dtype = sigma.dtype
        data = (sigma[:, None, None] * jnp.asarray(self._ke, dtype)).reshape(-1)
        if self.model == "point":
            data = jnp.where(jnp.asarray(self._ke_mask), data, jnp.zeros((), dtype))
        if fixed:
            data = jnp.concatenate([data, jnp.asarray(self._fixed[2], dtype)])
        return data

    def _system_matrix(self, sigma: jax.Array) -> jax.Array:
        """The dense SPD system matrix ``A(σ)``, ``(size, size)``."""
        return sparse_dense(self._data(sigma, fixed=True), self._all_rows, self._all_cols, self.size)

    def _injection(self, currents: np.ndarray, dtype) -> jax.Array:
        """``R @ currents.T``: ``(size, k)`` right-hand sides of electrode currents ``(k, L)``."""
        rhs = jnp.zeros((self.size, currents.shape[0]), dtype)
        return rhs.at[self._readout].set(jnp.asarray(currents.T, dtype))

    # -- the forward map ----------------------------------------------------------------------
    def _solve(self, sigma: jax.Array, rhs: jax.Array) -> jax.Array:
        """``A(σ)^{-1} rhs`` for ``rhs`` of shape ``(size, k)``.

        Differentiated implicitly (``lax.custom_linear_solve``): ``dx = A^{-1}(d rhs - dA x)``
        reuses the factorisation of the primal solve, so a JVP costs one sparse product and two
        triangular solves instead of the derivative of a Cholesky factorisation. This is what
        makes Jacobians of the forward map in a handful of latent directions cheap.
        """
        schur = self._schur if self.solver == "schur" else None
        return sparse_spd_solve(self._data(sigma, fixed=True), rhs, self._all_rows, self._all_cols, self.size, schur)

    def _readout_solve(self, sigma: jax.Array, currents: np.ndarray) -> jax.Array:
        """Electrode potentials ``(k, L)`` for electrode currents ``(k, L)``."""
        return self._solve(sigma, self._injection(currents, sigma.dtype))[self._readout].T

    def _electrode_potentials(self, sigma: jax.Array) -> jax.Array:
        """``(n_exc, L)`` electrode potentials of every excitation (CEM: ΣU = 0)."""
        sigma = _as_float(sigma)
        return self._readout_solve(sigma, self._currents)

    def _measure(self, U: jax.Array) -> jax.Array:
        """Measurements ``(n_meas,)`` of electrode potentials ``(n_exc, L)``."""
        exc = self.protocol.meas_excitation
        pairs = self.protocol.meas_pairs
        return U[exc, pairs[:, 0]] - U[exc, pairs[:, 1]]

    def _forward(self, sigma: jax.Array) -> jax.Array:
        """``(n_meas,)`` measurements ``v_k = p_k · U_{i_k}``, excitation-major."""
        return self._measure(self._electrode_potentials(sigma))

    def _difference(self, sigma_ref: jax.Array, d_sigma: jax.Array) -> jax.Array:
        """``F(σ_ref + Δσ) - F(σ_ref)`` computed as ``-R^T A(σ)^{-1} K(Δσ) x_ref`` with
        ``A(σ_ref) x_ref = R I``.

        Exact, and accurate in float32 for small ``Δσ``: the difference is never formed from two
        nearly equal voltages. The reference solve does not depend on ``Δσ``, so derivatives
        with respect to ``Δσ`` only differentiate the second solve.
        """
        sigma_ref, d_sigma = _as_float(sigma_ref), _as_float(d_sigma)
        x_ref = self._solve(sigma_ref, self._injection(self._currents, sigma_ref.dtype))
        k_x = sparse_matvec(self._data(d_sigma, fixed=False), x_ref, self._rows, self._cols)  # K(Δσ) x_ref
        dx = self._solve(sigma_ref + d_sigma, -k_x)
        return self._measure(dx[self._readout].T)

    def _jacobian(self, sigma: jax.Array) -> jax.Array:
        """``∂v/∂σ``, ``(n_meas, n_elements)``, by the adjoint (lead-field) formula."""
        sigma = _as_float(sigma)
        L = self.mesh.n_electrodes
        X = self._solve(sigma, self._injection(np.eye(L), sigma.dtype))  # (size, L) unit-current fields
        tri = self.mesh.triangles
        Xe = X[tri]  # (M, 3, L)
        U = jnp.einsum("ejl,il->iej", Xe, jnp.asarray(self._currents, sigma.dtype))  # (n_exc, M, 3)
        KU = jnp.einsum("ejk,iek->iej", jnp.asarray(self._ke, sigma.dtype), U)
        Z = jnp.einsum("ejl,iej->iel", Xe, KU)  # (n_exc, M, L): X_e^T K_e u_i
        exc = self.protocol.meas_excitation
        pairs = self.protocol.meas_pairs
        return -(Z[exc, :, pairs[:, 0]] - Z[exc, :, pairs[:, 1]])

    def __repr__(self) -> str:
        return f"FEM(model={self.model!r}, mesh={self.mesh!r}, protocol={self.protocol!r})"


class _JitPair:
    """A function of one input with ``core_ndim`` axes, jit-compiled as is and vmapped over a batch.

    Called on ``x`` with any leading batch axes (:func:`manifold.operators.apply_batched`).
    """

    def __init__(self, fn, core_ndim: int = 1):
        self.single = jax.jit(fn)
        self.batch = jax.jit(jax.vmap(fn))
        self.core_ndim = core_ndim

    def __call__(self, x: jax.Array) -> jax.Array:
        return apply_batched(self.single, x, self.core_ndim, batched=self.batch)


def _as_float(sigma: jax.Array) -> jax.Array:
    sigma = jnp.asarray(sigma)
    if not jnp.issubdtype(sigma.dtype, jnp.floating):
        sigma = sigma.astype(jnp.result_type(float))
    return sigma
