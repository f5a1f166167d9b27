r"""Modelling error as noise: the Bayesian approximation error model (Kaipio & Somersalo).

A reconstruction model ``F`` is always coarser than the physics that made the data: a coarse mesh,
point instead of complete electrodes, a pixel grid coarser than the anatomy. Write the data as

    b = F_true(x) + n = F(x) + ε(x) + n,        ε(x) = F_true(x) - F(x),

and treat the modelling error ``ε`` as Gaussian over the prior, with the mean ``μ`` and covariance
``Γ`` of paired simulations ``ε_i = F_acc(x_i) - F(x_i)`` of prior samples ``x_i`` with an accurate
model ``F_acc`` (a finer mesh, a finer image grid, another simulator). The likelihood becomes

    b ~ N(F(x) + μ, Γ + s² I),

so a latent solve on the whitened map ``x -> L^{-1} (F(x) + μ)`` with ``L L^T = Γ + s² I`` and
the whitened data ``L^{-1} b`` at unit noise is the MAP estimate under it. The whitened residual
is white again, so the off-manifold χ² test of the solvers tests the data against the noise *and*
the modelling error; with a plain ``F`` it flags the modelling error instead of the image.

References: J. Kaipio, E. Somersalo, *Statistical and Computational Inverse Problems*, Springer
2005, §7.4; A. Nissinen, L. Heikkinen, J. Kaipio, "The Bayesian approximation error approach for
electrical impedance tomography", Meas. Sci. Technol. 19 (2008) 015501.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from manifold.operators._base import ForwardMap, check_array

__all__ = ["ErrorModel", "Whitened", "approximation_error", "whiten"]


class ErrorModel(NamedTuple):
    """A Gaussian model of the modelling error ``ε = F_acc(x) - F(x)`` over prior samples.

    ``ε ~ N(mean + gain (F(x) - centre), cov)``: without ``gain`` the plain error model; with it the
    conditional one, where the part of ``ε`` that the reconstruction model's own data ``F(x)``
    predict linearly is moved into the mean.

    Attributes:
      mean: ``(m,)``, ``E ε`` (flattened data order).
      cov: ``(m, m)``, the covariance of ``ε`` (of its residual after the ``gain`` term).
      n_samples: the number of paired simulations it was estimated from.
      gain: ``(m, m)`` or ``None``.
      centre: ``(m,)``, the mean of ``F(x)`` over the samples, or ``None``.
    """

    mean: np.ndarray
    cov: np.ndarray
    n_samples: int
    gain: np.ndarray | None = None
    centre: np.ndarray | None = None


def _paired(value, name: str) -> np.ndarray:
    if np.iscomplexobj(check_array(value, name)):
        raise ValueError(f"{name}: expected real data (one simulation per row), got a complex array")
    arr = np.asarray(value, dtype=np.float64)  # float64 as given: the covariance is a small difference
    if arr.ndim < 2:
        raise ValueError(f"{name}: expected (n_samples, *data_shape) simulations, got shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def approximation_error(accurate, approximate, *, conditional: bool = False, ridge: float = 1e-4) -> ErrorModel:
    r"""The approximation error model of a reconstruction model from paired simulations.

    ``ε_i = accurate_i - approximate_i``: the data of the same prior sample ``x_i`` simulated by
    the accurate model and by the model the reconstruction uses. Draw the ``x_i`` from the prior
    the reconstruction assumes (training images, or ``G(h)`` with ``h ~ N(0, I)``), never from
    the images to be reconstructed. The covariance needs many more samples than it has rows to
    be well estimated; the whitening adds the noise variance, so it need not be full rank.

    With ``conditional=True`` the error is regressed on the reconstruction model's data
    ``y_i = approximate_i``: ``ε ≈ μ + B (y - ȳ)``, ``B = E^T Y (Y^T Y + r I)^{-1}`` (centred
    ``E``, ``Y``; ridge ``r = ridge · tr(Y^T Y) / m``), and ``cov`` is the covariance of the
    residual ``ε - B (y - ȳ)``. When much of the error is a function of the image that ``F`` sees
    (a coarse image grid or mesh), this leaves a much smaller covariance, so the data keep more
    of their information. Use it with at least several times ``m`` samples.

    Args:
      accurate: ``(n, *data_shape)`` real data of the accurate model, ``n >= 2``.
      approximate: the same shape: the reconstruction model's data of the same samples.
      conditional: also fit the linear ``gain`` ``B`` (default ``False``: the plain model).
      ridge: the relative ridge ``r`` of the regression (``>= 0``).

    Returns:
      :class:`ErrorModel` with the sample mean and the unbiased sample covariance of ``ε``
      (of its regression residual, with ``gain`` and ``centre``, when ``conditional``).

    Raises:
      ValueError: naming the argument, for complex, non-finite or mismatched arrays, ``n < 2``,
        or a negative ``ridge``.
    """
    acc, app = _paired(accurate, "accurate"), _paired(approximate, "approximate")
    if acc.shape != app.shape:
        raise ValueError(f"approximate: expected the shape of accurate {acc.shape}, got {app.shape}")
    n = acc.shape[0]
    if n < 2:
        raise ValueError(f"accurate: expected at least 2 paired simulations for a covariance, got {n}")
    if isinstance(ridge, (bool, str, bytes)) or not (np.isfinite(np.asarray(ridge, float)) and float(ridge) >= 0):
        raise ValueError(f"ridge: expected a finite number >= 0, got {ridge!r}")
    eps = acc - app
    mean = eps.mean(axis=0)
    if not conditional:
        return ErrorModel(mean=mean, cov=np.atleast_2d(np.cov(eps, rowvar=False)), n_samples=n)
    centre = app.mean(axis=0)
    Y, E = app - centre, eps - mean
    YY = Y.T @ Y
    m = YY.shape[0]
    # pinv, not solve: with ridge 0, or data that do not vary (Y = 0), the normal matrix is singular
    gain = (np.linalg.pinv(YY + float(ridge) * np.trace(YY) / m * np.eye(m), hermitian=True) @ (Y.T @ E)).T
    resid = E - Y @ gain.T
    cov = resid.T @ resid / (n - 1)
    return ErrorModel(mean=mean, cov=cov, n_samples=n, gain=gain, centre=centre)


class Whitened(ForwardMap):
    r"""``x -> L^{-1} (F(x) + μ)``: a real forward map whitened against its noise and modelling error.

    With a conditional error model (``gain`` ``B``): ``x -> L^{-1} ((I + B) F(x) + μ - B ȳ)``.
    ``L L^T = Γ + s^2 I`` with the error model's covariance ``Γ`` (zero without one) and the noise
    standard deviation ``s`` per data entry. Data ``b = F_true(x) + n`` whitened by
    :meth:`whiten_data` have unit white noise under the error model, so solve with
    ``noise_level = 1`` (the solvers of :mod:`manifold.solve` take it as the default for a
    ``Whitened`` map).

    Args:
      F: a real :class:`ForwardMap` (or ``LinearOperator``) the reconstruction uses.
      error: an :class:`ErrorModel` of ``F`` (:func:`approximation_error`), or ``None`` for
        noise whitening alone.
      noise_level: the measurement noise standard deviation ``s > 0`` per data entry.

    Attributes:
      F: the wrapped map.
      whitener: ``(m, m)``, ``L^{-1}``.
      transfer, offset: ``L^{-1} (I + B)`` and ``L^{-1} (μ - B ȳ)``: ``F_w(x) = transfer F(x) + offset``.
      noise_level: ``1.0``, the noise of whitened data.

    Raises:
      TypeError: when ``F`` is not a ForwardMap or ``error`` not an ErrorModel.
      ValueError: for complex ``F``, a non-positive or non-finite ``noise_level``, or an error
        model of another data size.
    """

    noise_level = 1.0

    def __init__(self, F: ForwardMap, error: ErrorModel | None = None, *, noise_level: float):
        if not isinstance(F, ForwardMap):
            raise TypeError(f"F: expected a manifold.operators.ForwardMap, got {type(F).__name__}")
        if jnp.issubdtype(F.out_dtype, jnp.complexfloating):
            raise ValueError(f"F: expected a real forward map, got outputs of dtype {jnp.dtype(F.out_dtype).name}")
        try:
            s = float(noise_level)
        except (TypeError, ValueError):
            s = float("nan")
        if isinstance(noise_level, (bool, str, bytes)) or not (np.isfinite(s) and s > 0):
            raise ValueError(f"noise_level: expected a finite noise standard deviation > 0, got {noise_level!r}")
        m = F.out_size
        mean, cov, transfer = np.zeros(m), np.zeros((m, m)), np.eye(m)
        if error is not None and not isinstance(error, ErrorModel):
            raise TypeError(f"error: expected a manifold.operators.ErrorModel or None, got {type(error).__name__}")
        if error is not None:
            mean, cov = np.asarray(error.mean, np.float64), np.asarray(error.cov, np.float64)
            gain = None if error.gain is None else np.asarray(error.gain, np.float64)
            centre = None if error.centre is None else np.asarray(error.centre, np.float64)
            shapes = (mean.shape, cov.shape, None if gain is None else gain.shape, None if centre is None else centre.shape)
            if shapes not in (((m,), (m, m), None, None), ((m,), (m, m), (m, m), (m,))):
                raise ValueError(
                    f"error: expected mean ({m},), cov ({m}, {m}) and, if any, gain ({m}, {m}) and centre ({m},) "
                    f"for F's {m} outputs, got {', '.join(map(str, shapes))}"
                )
            if gain is not None:
                transfer, mean = transfer + gain, mean - gain @ centre
        whitener = np.linalg.inv(np.linalg.cholesky(0.5 * (cov + cov.T) + s * s * np.eye(m)))
        self.F = F
        self.whitener = jnp.asarray(whitener, jnp.float32)
        self.transfer = jnp.asarray(whitener @ transfer, jnp.float32)  # L^{-1} (I + B)
        self.offset = jnp.asarray(whitener @ mean, jnp.float32)  # L^{-1} (μ - B ȳ)
        self.in_shape, self.out_shape, self.dtype = tuple(F.in_shape), (m,), F.dtype

    def _forward(self, x: jax.Array) -> jax.Array:
        return self.transfer @ jnp.ravel(self.F._forward(x)) + self.offset

    def whiten_data(self, b) -> jax.Array:
        """``L^{-1} b`` for data ``b`` of shape ``F.out_shape`` or ``(*batch, *F.out_shape)``."""
        b = self.F.check_output(b, "b")
        batch = b.shape[: b.ndim - len(self.F.out_shape)]
        return jnp.reshape(b, (*batch, -1)) @ self.whitener.T


def whiten(F: ForwardMap, b, *, noise_level: float, error: ErrorModel | None = None) -> tuple[Whitened, jax.Array]:
    r"""The whitened map and data of ``b = F(x) + ε + n``: ``(Whitened(F, error, noise_level=s), L^{-1} b)``.

    Solve the pair at unit noise (the default of the solvers for a :class:`Whitened` map):

        F_w, b_w = whiten(F, b, noise_level=s, error=approximation_error(b_fine, b_coarse))
        sol = solve_latent(G, F_w, b_w, key=key)

    Args:
      F: the reconstruction's real forward map.
      b: data of shape ``F.out_shape`` or ``(*batch, *F.out_shape)``.
      noise_level: the noise standard deviation per data entry (``> 0``).
      error: the modelling error of ``F`` (:func:`approximation_error`), or ``None``.

    Returns:
      ``(F_w, b_w)``: ``F_w`` with ``out_shape (m,)``, ``b_w`` of shape ``(*batch, m)``.

    Examples:
      Data from finer physics than the model (here a 10 % gain and an offset the model lacks),
      learned from paired simulations of prior samples:

      >>> import jax, jax.numpy as jnp
      >>> from manifold.operators import GaussianCS, approximation_error, whiten
      >>> F = GaussianCS(20, (4, 4), key=jax.random.key(0))
      >>> x = jax.random.normal(jax.random.key(1), (500, 4, 4))
      >>> accurate = 1.1 * F(x) + 0.01
      >>> err = approximation_error(accurate, F(x), conditional=True)
      >>> Fw, bw = whiten(F, accurate[:3], noise_level=0.01, error=err)
      >>> bool(jnp.abs(Fw(x[:3]) - bw).max() < 0.1)  # the whitened map predicts the accurate data
      True
    """
    Fw = Whitened(F, error, noise_level=noise_level)
    return Fw, Fw.whiten_data(b)
