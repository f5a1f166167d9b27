r"""Sparse SPD solves by static condensation on a coordinate-bisection partition.

The mesh nodes are split into ``p = 2^depth`` parts by recursive coordinate bisection; nodes with
a neighbour in another part form the interface ``Γ`` (together with unknowns that must stay,
e.g. the CEM electrode potentials and the readout nodes). Ordering the interior unknowns part by
part makes the SPD system block-arrow shaped,

.. math::
   \begin{pmatrix} A_{II} & A_{IΓ} \\ A_{ΓI} & A_{ΓΓ} \end{pmatrix}, \quad
   A_{II} = \mathrm{diag}(A_1, \dots, A_p),

so that ``x_Γ = S^{-1}(f_Γ - Σ_j A_{Γj} A_j^{-1} f_j)`` with the Schur complement
``S = A_{ΓΓ} - Σ_j A_{Γj} A_j^{-1} A_{jΓ}`` and ``x_j = A_j^{-1}(f_j - A_{jΓ} x_Γ)``. The ``p``
interior blocks (padded to one size) are factorised one after the other, and each only couples
to its own few interface unknowns, so the cost is a small fraction of a dense ``(n x n)``
factorisation (one level of nested dissection). The FEM never differentiates the factors: it
differentiates the solve implicitly (``lax.custom_linear_solve``).

**One LAPACK call per matrix** (:func:`cholesky`, :func:`cho_solve`). jaxlib 0.10's CPU LAPACK
kernels split a *batched* call (``(B, m, m)``, enough work) over XLA:CPU's intra-op thread pool
from a worker of that same pool and block until the pieces are done (``ParallelBatchMap`` ->
``BlockingCounter::Wait``). When two such kernels run at once on a 2-thread pool, both workers
wait for a free worker and the process deadlocks: the first nonlinear EIT forward hung in fresh
2-thread processes (gdb: both pool workers in ``CholeskyFactorization::Kernel`` ->
``ParallelBatchMap`` -> ``BlockingCounter::Wait``). A call on a single matrix runs inline on the
calling thread. So every factorisation and triangular solve here gets one matrix: batches,
including the batches ``vmap`` adds (restarts, Jacobian directions), run in a ``lax.map`` loop
(``jax.custom_batching.custom_vmap``); right-hand sides that share a factor are solved as extra
columns in one call. No flag or environment variable turns the split off in jaxlib 0.10.2;
upstream jax stopped splitting LAPACK batches in open-source builds after it (commit 8599924,
jax-ml/jax#36927: "no faster on Linux and crashes on Windows").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SchurSolver", "cho_solve", "cholesky", "sparse_dense", "sparse_matvec", "sparse_spd_solve"]


def _bisect(coords: np.ndarray, depth: int) -> np.ndarray:
    """Part labels in ``[0, 2^depth)`` by recursive median splits along the longer extent."""
    labels = np.zeros(len(coords), dtype=np.int64)
    for _ in range(depth):
        new = labels * 2
        for lab in np.unique(labels):
            idx = np.flatnonzero(labels == lab)
            pts = coords[idx]
            axis = int(np.argmax(pts.max(0) - pts.min(0)))
            order = np.argsort(pts[:, axis], kind="stable")
            new[idx[order[len(idx) // 2 :]]] += 1
        labels = new
    return labels


class SchurSolver:
    """Solve ``A x = f`` for SPD matrices with a fixed sparsity pattern.

    Args:
      size: number of unknowns ``N``.
      rows, cols: ``(nnz,)`` the (possibly repeated) entry positions; values are summed.
      coords: ``(n, 2)`` coordinates of the first ``n <= N`` unknowns (the mesh nodes); unknowns
        ``n..N-1`` always belong to the interface.
      keep: indices that must belong to the interface (right-hand sides / readouts live there).
      depth: bisection depth (``2^depth`` parts); ``None`` picks parts of ~128 nodes.
    """

    def __init__(self, size, rows, cols, coords, keep, *, depth=None):
        n = len(coords)
        if depth is None:
            depth = int(np.clip(np.round(np.log2(max(n, 1) / 128.0)), 0, 6))
        labels = np.full(size, -1, dtype=np.int64)
        labels[:n] = _bisect(np.asarray(coords, dtype=np.float64), depth)
        # separator: of every pair of coupled unknowns in different parts, the higher-labelled one
        interface = np.zeros(size, dtype=bool)
        interface[n:] = True
        interface[np.asarray(keep, dtype=np.int64)] = True
        r, c = np.asarray(rows), np.asarray(cols)
        cross = (labels[r] != labels[c]) & (r < n) & (c < n)
        interface[np.where(labels[r] > labels[c], r, c)[cross]] = True
        labels[interface] = -1

        parts = [np.flatnonzero(labels == j) for j in range(2**depth)]
        parts = [p for p in parts if len(p)]
        p, m = len(parts), max(len(q) for q in parts)
        gamma = np.flatnonzero(interface)
        g = len(gamma)
        part_of = np.full(size, -1, dtype=np.int64)
        local = np.zeros(size, dtype=np.int64)
        for j, q in enumerate(parts):
            part_of[q] = j
            local[q] = np.arange(len(q))
        gpos = np.full(size, -1, dtype=np.int64)
        gpos[gamma] = np.arange(g)

        # interface unknowns coupled to each part (local interface columns)
        ig = (part_of[r] >= 0) & (part_of[c] < 0)
        couplings = [np.unique(c[ig & (part_of[r] == j)]) for j in range(p)]
        gm = max(1, max(len(k) for k in couplings))
        part_gamma = np.full((p, gm), g, dtype=np.int64)  # global Γ index, g = padding
        gamma_local = {}
        for j, k in enumerate(couplings):
            part_gamma[j, : len(k)] = gpos[k]
            gamma_local.update({(j, int(node)): col for col, node in enumerate(k)})

        ii = (part_of[r] >= 0) & (part_of[c] >= 0)
        gg = (part_of[r] < 0) & (part_of[c] < 0)
        self._k_ii = np.flatnonzero(ii)
        self._t_ii = part_of[r[ii]] * m * m + local[r[ii]] * m + local[c[ii]]
        self._k_ig = np.flatnonzero(ig)
        lc = np.array([gamma_local[(int(j), int(node))] for j, node in zip(part_of[r[ig]], c[ig])], dtype=np.int64)
        self._t_ig = part_of[r[ig]] * m * gm + local[r[ig]] * gm + lc
        self._k_gg = np.flatnonzero(gg)
        self._t_gg = gpos[r[gg]] * g + gpos[c[gg]]

        pad = np.ones((p, m), dtype=bool)
        part_nodes = np.full((p, m), size, dtype=np.int64)  # size = padding row
        for j, q in enumerate(parts):
            pad[j, : len(q)] = False
            part_nodes[j, : len(q)] = q
        self._pad_eye = np.einsum("pm,mk->pmk", pad.astype(np.float64), np.eye(m))
        self.size, self.n_parts, self.part_size, self.n_interface = size, p, m, g
        self.gamma, self.part_gamma, self.part_nodes = gamma, part_gamma, part_nodes

    def __repr__(self) -> str:
        return f"SchurSolver(size={self.size}, parts={self.n_parts} x {self.part_size}, interface={self.n_interface})"

    # -- numerics (jax) -----------------------------------------------------------------------
    def _blocks(self, data: jax.Array):
        p, m, g = self.n_parts, self.part_size, self.n_interface
        gm = self.part_gamma.shape[1]
        dt = data.dtype
        a_ii = jnp.zeros(p * m * m, dt).at[self._t_ii].add(data[self._k_ii]).reshape(p, m, m)
        a_ii = a_ii + jnp.asarray(self._pad_eye, dt)
        a_ig = jnp.zeros(p * m * gm, dt).at[self._t_ig].add(data[self._k_ig]).reshape(p, m, gm)
        a_gg = jnp.zeros(g * g, dt).at[self._t_gg].add(data[self._k_gg]).reshape(g, g)
        return a_ii, a_ig, a_gg

    def _scatter_gamma(self, blocks: jax.Array, cols: bool) -> jax.Array:
        """Sum per-part ``(p, gm, k)`` (or ``(p, gm, gm)`` with ``cols``) into interface space."""
        g = self.n_interface
        pg = self.part_gamma
        if cols:
            out = jnp.zeros((g + 1, g + 1), blocks.dtype).at[pg[:, :, None], pg[:, None, :]].add(blocks)
            return out[:g, :g]
        out = jnp.zeros((g + 1, blocks.shape[-1]), blocks.dtype).at[pg].add(blocks)
        return out[:g]

    def factor(self, data: jax.Array) -> tuple[jax.Array, ...]:
        """Factorise the matrix with entry values ``data`` ``(nnz,)`` for :meth:`apply`.

        Returns ``(chol_ii, a_ig, y, chol_s)``: the Cholesky factors of the interior blocks, the couplings ``A_jΓ``, ``Y_j = A_j^{-1} A_jΓ`` and the Cholesky factor of the
        Schur complement ``S``.
        """
        a_ii, a_ig, a_gg = self._blocks(data)
        chol = cholesky(a_ii)
        y = cho_solve(chol, a_ig)  # (p, m, gm)
        schur = a_gg - self._scatter_gamma(jnp.einsum("pmg,pmh->pgh", a_ig, y), cols=True)
        return chol, a_ig, y, cholesky(schur)

    def apply(self, factors: tuple[jax.Array, ...], rhs: jax.Array) -> jax.Array:
        """``A^{-1} rhs`` for ``rhs`` ``(N, k)`` with the factors of :meth:`factor`."""
        chol, a_ig, y, chol_s = factors
        rhs_ext = jnp.concatenate([rhs, jnp.zeros((1, rhs.shape[1]), rhs.dtype)])
        z = cho_solve(chol, rhs_ext[self.part_nodes])  # (p, m, k) = A_j^{-1} f_j
        f_g = rhs[self.gamma] - self._scatter_gamma(jnp.einsum("pmg,pmk->pgk", a_ig, z), cols=False)
        x_g = cho_solve(chol_s, f_g)
        x_g_ext = jnp.concatenate([x_g, jnp.zeros((1, x_g.shape[1]), x_g.dtype)])
        x_i = z - jnp.einsum("pmg,pgk->pmk", y, x_g_ext[self.part_gamma])
        x = jnp.zeros((self.size + 1, x_g.shape[1]), x_g.dtype)
        x = x.at[self.part_nodes].set(x_i).at[self.gamma].set(x_g)
        return x[: self.size]

    def solve(self, data: jax.Array, rhs: jax.Array) -> jax.Array:
        """Solve ``A x = rhs`` (``(N, k)``) for the matrix with entry values ``data`` (``(nnz,)``,
        summed at ``(rows, cols)``): :meth:`factor` then :meth:`apply`."""
        return self.apply(self.factor(data), rhs)


# -- one LAPACK call per matrix ---------------------------------------------------------------
@jax.custom_batching.custom_vmap
def _cholesky_2d(a: jax.Array) -> jax.Array:
    return jnp.linalg.cholesky(a)  # symmetrised input, as before


@_cholesky_2d.def_vmap
def _cholesky_2d_vmap(axis_size, in_batched, a):
    del axis_size, in_batched  # one argument, batched along axis 0
    return cholesky(a), True


@jax.custom_batching.custom_vmap
def _cho_solve_2d(chol: jax.Array, b: jax.Array) -> jax.Array:
    y = jax.lax.linalg.triangular_solve(chol, b, left_side=True, lower=True)
    return jax.lax.linalg.triangular_solve(chol, y, left_side=True, lower=True, transpose_a=True)


@_cho_solve_2d.def_vmap
def _cho_solve_2d_vmap(axis_size, in_batched, chol, b):
    chol_batched, b_batched = in_batched
    if not chol_batched:  # one factor, a batch of right-hand sides: extra columns of one call
        n, m, k = b.shape
        x = cho_solve(chol, jnp.moveaxis(b, 0, 1).reshape(m, n * k))
        return jnp.moveaxis(x.reshape(m, n, k), 1, 0), True
    if not b_batched:
        b = jnp.broadcast_to(b, (axis_size, *b.shape))
    return cho_solve(chol, b), True


@jax.jit  # traced once per shape: eager calls (a ForwardMap applied outside jit) stay cheap
def cholesky(a: jax.Array) -> jax.Array:
    """Lower Cholesky factors of SPD matrices ``a`` ``(..., m, m)``, one LAPACK call per matrix.

    The input is symmetrised first (as :func:`jax.numpy.linalg.cholesky`); a matrix that is not
    positive definite gives NaN. Batches (leading axes, and axes added by ``vmap``) run in a
    ``lax.map`` loop instead of one batched LAPACK call, which jaxlib 0.10 may split over the
    XLA:CPU pool it is running on and deadlock (see the module docstring).

    Args:
      a: ``(..., m, m)`` symmetric positive definite matrices.

    Returns:
      ``(..., m, m)`` lower triangular ``L`` with ``L L^T = a``.
    """
    if a.ndim == 2:
        return _cholesky_2d(a)
    flat = a.reshape(-1, *a.shape[-2:])
    return jax.lax.map(_cholesky_2d, flat).reshape(a.shape)


@jax.jit
def cho_solve(chol: jax.Array, b: jax.Array) -> jax.Array:
    """``(L L^T)^{-1} b`` for lower Cholesky factors ``L``, one LAPACK call per factor.

    Args:
      chol: ``(..., m, m)`` lower triangular factors (from :func:`cholesky`).
      b: ``(..., m, k)`` right-hand sides, the same leading axes as ``chol``.

    Returns:
      ``(..., m, k)`` solutions: two triangular solves per factor, batches in a ``lax.map`` loop
      (right-hand sides batched by ``vmap`` over one factor are solved as extra columns).
    """
    if chol.ndim == 2:
        return _cho_solve_2d(chol, b)
    lead = chol.shape[:-2]
    if b.shape[: len(lead)] != lead or b.ndim != chol.ndim:
        raise ValueError(f"b: expected shape {(*lead, chol.shape[-1], -1)} for factors {chol.shape}, got {b.shape}")
    pairs = (chol.reshape(-1, *chol.shape[-2:]), b.reshape(-1, *b.shape[-2:]))
    return jax.lax.map(lambda cb: _cho_solve_2d(*cb), pairs).reshape(b.shape)


def sparse_matvec(data: jax.Array, x: jax.Array, rows: np.ndarray, cols: np.ndarray) -> jax.Array:
    """``A x`` for ``x`` ``(size, k)`` and the matrix with entry values ``data`` summed at ``(rows, cols)``: O(nnz)."""
    return jnp.zeros_like(x).at[rows].add(data[:, None] * x[cols])


def sparse_dense(data: jax.Array, rows: np.ndarray, cols: np.ndarray, size: int) -> jax.Array:
    """The dense ``(size, size)`` matrix with entry values ``data`` summed at ``(rows, cols)``."""
    return jnp.zeros((size, size), data.dtype).at[rows, cols].add(data)


def sparse_spd_solve(
    data: jax.Array, rhs: jax.Array, rows: np.ndarray, cols: np.ndarray, size: int, schur: SchurSolver | None
) -> jax.Array:
    """``A^{-1} rhs`` for the SPD matrix with entry values ``data`` summed at ``(rows, cols)``.

    Factorised by ``schur`` (:class:`SchurSolver` on that pattern) or, when it is ``None``, by one
    dense Cholesky factorisation. Differentiated implicitly (``lax.custom_linear_solve``):
    ``dx = A^{-1}(d rhs - dA x)`` reuses the primal factors, so a JVP costs one sparse product and
    two triangular solves instead of the derivative of a factorisation.

    Args:
      data: ``(nnz,)`` entry values (duplicates are summed).
      rhs: ``(size, k)`` right-hand sides.
      rows, cols: ``(nnz,)`` entry positions.
      size: the matrix order.
      schur: the static-condensation solver of the pattern, or ``None`` for dense.

    Returns:
      ``(size, k)`` solutions.
    """
    fixed = jax.lax.stop_gradient(data)
    if schur is None:
        chol = cholesky(sparse_dense(fixed, rows, cols, size))

        def apply(_, b):
            return cho_solve(chol, b)
    else:
        factors = schur.factor(fixed)

        def apply(_, b):
            return schur.apply(factors, b)

    def matvec(x):
        return sparse_matvec(data, x, rows, cols)

    return jax.lax.custom_linear_solve(matvec, rhs, apply, symmetric=True)
