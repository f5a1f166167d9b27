r"""EIT on images: the forward map ``σ image -> boundary voltages``, its Jacobian and linearisation.

Conductivity images are ``H x W`` on [-1, 1]² (row 0 anterior, :mod:`manifold.thorax`); values
outside the body are ignored. The reference body has conductivity 1; the phantoms of
:mod:`manifold.data` are conductivity *changes* ``δ``, turned into conductivities by
:meth:`EITModel.conductivity`, ``σ = max(1 + δ, floor)``.

The model is ``v = F(σ) = V(P max(σ, σ_min))`` with the image-to-element map ``P``
(:class:`ImageMeshMap`), the FEM forward ``V`` (:class:`FEM`) and the positivity floor
``σ_min = EITModel.min_conductivity``. Outside ``jit`` a conductivity below ``σ_min`` raises;
inside ``jit`` (where values cannot be checked) it is raised to ``σ_min``, so a traced call never
returns the NaN of a failed Cholesky factorisation. Difference imaging linearises ``F`` at a
reference ``σ_0``: ``Δv = F(σ) - F(σ_0) ≈ J Δσ`` with ``J = ∂F/∂σ(σ_0)`` of shape
``(n_meas, H*W)``.

For solvers the model hands out its nonlinear maps of change images ``δ`` as
:class:`~manifold.operators.ForwardMap` pytrees (:meth:`EITModel.difference_map`,
:meth:`EITModel.absolute_map`), so a jit-compiled solver taking them as arguments compiles once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from manifold.eit.fem import FEM, _JitPair
from manifold.eit.image_map import ImageMeshMap
from manifold.eit.mesh import EITMesh, disk_mesh, thorax_mesh
from manifold.eit.nuisance import NUISANCE_PRIOR_STD, EITNuisanceMap, NuisanceFEM
from manifold.eit.protocol import Protocol
from manifold.operators import ForwardMap, LinearOperator, check_array

__all__ = ["EITAbsoluteMap", "EITDifferenceMap", "EITLinearized", "EITModel"]


class EITLinearized(LinearOperator):
    """The linearised EIT operator ``Δσ (H, W) -> J Δσ.ravel() (n_meas,)``.

    Args:
      jac: ``(n_meas, H*W)`` Jacobian.
      image_shape: ``(H, W)``.

    The adjoint is the closed form ``J^T y`` and ``matrix()`` returns ``J`` itself.
    """

    def __init__(self, jac: jax.Array, image_shape: tuple[int, int]):
        jac = jnp.asarray(jac)
        if jac.ndim != 2 or jac.shape[1] != image_shape[0] * image_shape[1]:
            raise ValueError(f"jac: expected shape (n_meas, {image_shape[0] * image_shape[1]}), got {jac.shape}")
        self.jac = jac
        self.in_shape = tuple(image_shape)
        self.out_shape = (jac.shape[0],)
        self.dtype = jac.dtype

    def _forward(self, x):
        return self.jac @ x.reshape(-1)

    def _adjoint(self, y):
        return (self.jac.T @ y).reshape(self.in_shape)

    def matrix(self) -> jax.Array:
        return self.jac


class EITModel:
    r"""2-D EIT of ``image_size x image_size`` conductivity images.

    Forward model: with the element conductivities ``s = P max(σ, σ_min)`` of an image ``σ``,
    the electrode voltages of excitation ``i`` solve the FEM system ``A(s) x_i = R I_i`` and
    measurement ``k`` is ``v_k = p_k^T R^T x_{i_k}`` (see :class:`FEM`). Change images ``δ``
    (the phantoms and generators of this package) enter through
    ``σ(δ) = max(background + δ, floor · background)`` (:meth:`conductivity`).

    Args:
      n_electrodes: number of electrodes, spaced equally by arc length along the boundary
        (electrode 0 anterior, at θ = π/2, then counter-clockwise); on the thorax outline this
        is not equal spacing in angle, see :attr:`electrode_positions`.
      image_size: image side ``H = W``.
      mesh: ``"thorax"`` (the outline of :mod:`manifold.thorax`), ``"disk"`` (the unit disk) or
        an :class:`EITMesh`.
      model: ``"cem"`` (complete electrode model) or ``"point"`` (point electrodes).
      contact_impedance: CEM contact impedance ``z_l`` (scalar or ``(n_electrodes,)``).
      protocol: ``"adjacent"``, ``"opposite"`` or a :class:`Protocol`.
      electrode_width, h_electrode, h_max: mesher options (:func:`thorax_mesh`).
      background: conductivity of the reference body (the ``1`` of ``σ = 1 + δ``).
      min_conductivity: the positivity floor ``σ_min`` of the model (default
        ``1e-3 * background``): conductivities below it raise outside ``jit`` and are raised to
        it inside ``jit``.

    Raises:
      ValueError: naming the argument, e.g. when the electrodes do not fit on the mesh.

    Examples:
      A coarse disk model (16 electrodes, adjacent protocol: 16 x 13 = 208 measurements):

      >>> import jax.numpy as jnp
      >>> from manifold.eit import EITModel
      >>> model = EITModel(16, image_size=16, mesh="disk", h_electrode=0.1, h_max=0.3)
      >>> model.n_meas, model.electrode_positions.shape
      (208, (16, 2))
      >>> model.electrode_positions[0].round(6).tolist()  # electrode 0: anterior, (0, 1)
      [0.0, 1.0]
      >>> delta = jnp.zeros((16, 16)).at[4:8, 4:8].set(0.1)  # a more conductive block
      >>> F = model.difference_map()  # δ -> F(σ(δ)) - F(σ_ref), a ForwardMap pytree
      >>> dv = F(delta)
      >>> dv.shape
      (208,)
      >>> bool(jnp.allclose(dv, model.difference(model.conductivity(delta)), rtol=1e-5, atol=1e-7))
      True
      >>> J = model.linearized()  # the LinearOperator Δσ -> J Δσ at σ_ref = 1
      >>> float(jnp.linalg.norm(J(delta) - dv) / jnp.linalg.norm(dv)) < 0.1  # error O(|δ|)
      True
    """

    def __init__(
        self,
        n_electrodes: int = 16,
        image_size: int = 128,
        *,
        mesh: str | EITMesh = "thorax",
        model: str = "cem",
        contact_impedance: float | np.ndarray = 0.01,
        protocol: str | Protocol = "adjacent",
        electrode_width: float = 0.1,
        h_electrode: float = 0.02,
        h_max: float = 0.08,
        background: float = 1.0,
        min_conductivity: float | None = None,
    ):
        if isinstance(mesh, str):
            builders = {"thorax": thorax_mesh, "disk": disk_mesh}
            if mesh not in builders:
                raise ValueError(f"mesh: expected 'thorax', 'disk' or an EITMesh, got {mesh!r}")
            mesh = builders[mesh](
                n_electrodes, electrode_width=electrode_width, h_electrode=h_electrode, h_max=h_max
            )
        elif not isinstance(mesh, EITMesh):
            raise TypeError(f"mesh: expected 'thorax', 'disk' or an EITMesh, got {type(mesh).__name__}")
        if mesh.n_electrodes != n_electrodes:
            raise ValueError(f"n_electrodes: {n_electrodes} does not match the mesh's {mesh.n_electrodes} electrodes")
        if isinstance(protocol, str):
            makers = {"adjacent": Protocol.adjacent, "opposite": Protocol.opposite}
            if protocol not in makers:
                raise ValueError(f"protocol: expected 'adjacent', 'opposite' or a Protocol, got {protocol!r}")
            protocol = makers[protocol](n_electrodes)
        if not (np.isfinite(background) and background > 0):
            raise ValueError(f"background: expected a positive conductivity, got {background!r}")
        if min_conductivity is None:
            min_conductivity = 1e-3 * float(background)
        if not (np.isfinite(min_conductivity) and 0 < min_conductivity <= background):
            raise ValueError(
                f"min_conductivity: expected a positive number <= background = {background}, got {min_conductivity!r}"
            )
        self.min_conductivity = float(min_conductivity)
        self.mesh = mesh
        self.fem = FEM(mesh, protocol, model=model, contact_impedance=contact_impedance)
        self.protocol = self.fem.protocol
        self.map = ImageMeshMap(mesh, image_size)
        self.image_shape = self.map.image_shape
        self.mask = jnp.asarray(self.map.mask)
        self.background = float(background)
        self._forward = _JitPair(self._forward_image, 2)
        self._jacobian = _JitPair(self._jacobian_image, 2)
        self._difference_single = jax.jit(self._difference_image)
        self._difference_batch = jax.jit(jax.vmap(self._difference_image, in_axes=(0, None)))

    @property
    def n_meas(self) -> int:
        return self.protocol.n_meas

    @property
    def electrode_positions(self) -> np.ndarray:
        """``(n_electrodes, 2)`` float64 coordinates ``(x, y)`` of the electrode centres.

        In the ``[-1, 1]^2`` frame of the images (``x`` to the right, ``y`` up, so image row 0
        is ``y = 1``, anterior). Electrode ``l`` is centred at arc length ``l P / L`` from the
        anterior point (``P`` the perimeter, ``L`` the electrode count), counter-clockwise.
        """
        return self.mesh.nodes[self.mesh.electrode_centres].copy()

    # -- images -------------------------------------------------------------------------------
    def conductivity(self, delta: jax.Array, *, floor: float = 0.05) -> jax.Array:
        """Conductivity ``σ = max(background + δ, floor * background)`` inside the body,
        ``background`` outside, of a change image ``δ`` ``(..., H, W)``."""
        delta = check_array(delta, "delta", shape=self.image_shape)
        if jnp.iscomplexobj(delta):
            raise ValueError(f"delta: expected a real image, got dtype {delta.dtype}")
        return self._conductivity(delta, _check_floor(floor))

    def _conductivity(self, delta: jax.Array, floor: float) -> jax.Array:
        sigma = jnp.maximum(self.background + delta, floor * self.background)
        return jnp.where(self.mask, sigma, jnp.asarray(self.background, sigma.dtype))

    def reference(self, dtype=jnp.float32) -> jax.Array:
        """The homogeneous reference image ``σ_0 = background``, ``(H, W)``."""
        return jnp.full(self.image_shape, self.background, dtype)

    def check_conductivity(self, sigma: jax.Array, name: str = "sigma") -> jax.Array:
        """Validate conductivity images ``(..., H, W)``: real floating, and (when concrete)
        finite and at least :attr:`min_conductivity` inside the body. Values outside the body
        are not checked. Traced values (inside ``jit``) cannot be checked; the forward maps
        raise them to :attr:`min_conductivity` instead.

        Raises:
          ValueError: naming ``name`` and what was expected.
        """
        sigma = jnp.asarray(sigma)
        if not jnp.issubdtype(sigma.dtype, jnp.floating):
            raise ValueError(f"{name}: expected a real floating image, got dtype {sigma.dtype}")
        if sigma.ndim < 2 or sigma.shape[-2:] != self.image_shape:
            h, w = self.image_shape
            raise ValueError(f"{name}: expected an image of shape (..., {h}, {w}), got {sigma.shape}")
        if not isinstance(sigma, jax.core.Tracer):
            inside = sigma[..., self.map.mask]
            if not bool(jnp.all(jnp.isfinite(inside))):
                raise ValueError(f"{name}: conductivity contains NaN or infinite values inside the body")
            if not bool(jnp.all(inside >= self.min_conductivity)):
                raise ValueError(
                    f"{name}: conductivity must be positive, at least min_conductivity = {self.min_conductivity:.3g}, "
                    f"inside the body, got min {float(inside.min()):.3g}"
                )
        return sigma

    # -- forward model ------------------------------------------------------------------------
    def _clip(self, sigma: jax.Array) -> jax.Array:
        """``max(σ, σ_min)``: a no-op for checked input, the NaN guard for traced input."""
        return jnp.maximum(sigma, jnp.asarray(self.min_conductivity, sigma.dtype))

    def _forward_image(self, sigma: jax.Array) -> jax.Array:
        return self.fem._forward(self.map.to_mesh(self._clip(sigma)))

    def _difference_image(self, sigma: jax.Array, sigma_ref: jax.Array) -> jax.Array:
        sigma, sigma_ref = self._clip(sigma), self._clip(sigma_ref)
        return self.fem._difference(self.map.to_mesh(sigma_ref), self.map.to_mesh(sigma - sigma_ref))

    def _jacobian_image(self, sigma: jax.Array) -> jax.Array:
        jac = self.fem._jacobian(self.map.to_mesh(self._clip(sigma)))  # (n_meas, n_elements)
        return self.map.to_mesh_transpose(jac).reshape(jac.shape[0], -1)

    def forward(self, sigma: jax.Array) -> jax.Array:
        """Boundary voltages ``(..., n_meas)`` of conductivity images ``(..., H, W)``.

        Raises:
          ValueError: for a concrete ``sigma`` with NaN, or values below :attr:`min_conductivity`,
            inside the body. Under ``jit`` such values are raised to :attr:`min_conductivity`.
        """
        return self._forward(self.check_conductivity(sigma))

    def __call__(self, sigma: jax.Array) -> jax.Array:
        return self.forward(sigma)

    def jacobian(self, sigma: jax.Array) -> jax.Array:
        """``∂v/∂σ`` ``(..., n_meas, H*W)`` at conductivity images ``(..., H, W)``."""
        return self._jacobian(self.check_conductivity(sigma))

    def linearized(self, sigma_ref: jax.Array | None = None) -> EITLinearized:
        """The operator ``Δσ -> J Δσ`` at ``sigma_ref`` (default: the homogeneous reference)."""
        sigma_ref = self.reference() if sigma_ref is None else sigma_ref
        sigma_ref = self.check_conductivity(sigma_ref, "sigma_ref")
        if sigma_ref.ndim != 2:
            raise ValueError(f"sigma_ref: expected one image of shape {self.image_shape}, got {sigma_ref.shape}")
        return EITLinearized(self.jacobian(sigma_ref), self.image_shape)

    def difference(self, sigma: jax.Array, sigma_ref: jax.Array | None = None) -> jax.Array:
        """Difference data ``F(σ) - F(σ_ref)`` of the full nonlinear model, ``(..., n_meas)``.

        Computed as ``-R^T A(σ)^{-1} K(Δσ) x_ref`` (:meth:`FEM.difference`), which keeps its
        relative accuracy for small changes in float32, unlike subtracting two forwards.
        """
        sigma = self.check_conductivity(sigma)
        sigma_ref = self.reference(sigma.dtype) if sigma_ref is None else sigma_ref
        sigma_ref = self.check_conductivity(sigma_ref, "sigma_ref").astype(sigma.dtype)
        if sigma_ref.ndim != 2:
            raise ValueError(f"sigma_ref: expected one image of shape {self.image_shape}, got {sigma_ref.shape}")
        if sigma.ndim == 2:
            return self._difference_single(sigma, sigma_ref)
        out = self._difference_batch(sigma.reshape((-1, *self.image_shape)), sigma_ref)
        return out.reshape(sigma.shape[:-2] + out.shape[1:])

    def difference_map(self, *, sigma_ref: jax.Array | None = None, floor: float = 0.05) -> EITDifferenceMap:
        """The nonlinear difference map of change images as a :class:`ForwardMap`.

        ``D(δ) = F(σ(δ)) - F(σ_ref)`` with ``σ(δ) = max(background + δ, floor · background)``
        (:meth:`conductivity`), computed without cancellation (:meth:`difference`); ``δ`` of
        shape ``(H, W)`` or ``(*batch, H, W)``, ``D(δ)`` of shape ``(n_meas,)`` (batched).

        Args:
          sigma_ref: reference conductivity image ``(H, W)`` (default: the homogeneous
            ``background``), a pytree leaf of the map.
          floor: the relative conductivity floor of :meth:`conductivity`.

        Returns:
          An :class:`EITDifferenceMap`; two maps of this model with the same ``floor`` share
          one compiled solver (``sigma_ref`` is an array argument, not a constant).
        """
        sigma_ref = self.reference() if sigma_ref is None else sigma_ref
        sigma_ref = self.check_conductivity(sigma_ref, "sigma_ref")
        if sigma_ref.ndim != 2:
            raise ValueError(f"sigma_ref: expected one image of shape {self.image_shape}, got {sigma_ref.shape}")
        return EITDifferenceMap(self, sigma_ref.astype(jnp.float32), _check_floor(floor))

    def absolute_map(self, *, floor: float = 0.05) -> EITAbsoluteMap:
        """The nonlinear absolute map of change images as a :class:`ForwardMap`.

        ``F_abs(δ) = F(σ(δ))``, the boundary voltages of ``σ(δ) = max(background + δ,
        floor · background)``; ``δ`` of shape ``(H, W)`` or batched, output ``(n_meas,)``.

        Args:
          floor: the relative conductivity floor of :meth:`conductivity`.

        Returns:
          An :class:`EITAbsoluteMap`.
        """
        return EITAbsoluteMap(self, _check_floor(floor))

    def nuisance_map(
        self,
        *,
        estimate: tuple[str, ...] = ("contact_impedance", "electrode_shift", "scale"),
        prior_std: dict | None = None,
        absolute: bool = False,
        sigma_ref: jax.Array | None = None,
        floor: float = 0.05,
        max_shift: float = 5.0,
    ) -> EITNuisanceMap:
        r"""The nonlinear map of change images at nuisance parameters ``θ``, as a :class:`ForwardMap`.

        ``D(δ, θ) = F_θ(σ(δ)) - F_θ(σ_ref)`` (or ``F_θ(σ(δ))`` when ``absolute``), where ``F_θ``
        is the CEM forward with contact impedances ``z_l = z^0_l e^{θ_l}``, all electrodes moved
        along the boundary by ``θ_L`` degrees, and the body stretched by
        ``(e^{θ_{L+1}}, e^{θ_{L+2}})`` in width and depth (:mod:`manifold.eit.nuisance`: the
        formulation, its exactness and limits). At ``θ = 0`` it equals :meth:`difference_map`
        (:meth:`absolute_map`). :func:`manifold.solve.solve_latent_nuisance` fits ``θ`` jointly
        with the latent code.

        Args:
          estimate: the parameter groups to estimate, a subset of ``"contact_impedance"``
            (``L`` values), ``"electrode_shift"`` and ``"scale"`` (``s_x``, ``s_y``); the others are
            held at the map's ``theta`` (prior std 0).
          prior_std: per-group Gaussian prior standard deviations of ``θ`` overriding
            :data:`~manifold.eit.nuisance.NUISANCE_PRIOR_STD` (log impedance 0.5, shift 2
            degrees, log scale 0.05).
          absolute: absolute instead of difference data.
          sigma_ref: reference conductivity of difference data (default homogeneous).
          floor: relative conductivity floor of :meth:`conductivity`.
          max_shift: the largest electrode shift in degrees (the FEM covers the boundary edges
            within it; the shift is clipped to it).

        Returns:
          An :class:`EITNuisanceMap` at ``θ = 0`` (``.with_nuisance(theta)`` moves it).

        Raises:
          ValueError: naming the argument: point-electrode models (``model``), an unknown group
            in ``estimate`` or ``prior_std``, a negative or non-finite prior std, a bad
            ``sigma_ref``, ``floor`` or ``max_shift``.
        """
        if self.fem.model != "cem":
            raise ValueError("model: nuisance parameters need the complete electrode model (model='cem')")
        groups = tuple(NUISANCE_PRIOR_STD)
        if isinstance(estimate, str):
            estimate = (estimate,)
        bad = [g for g in estimate if g not in groups]
        if bad:
            raise ValueError(f"estimate: unknown nuisance groups {bad}; expected a subset of {groups}")
        std = dict(NUISANCE_PRIOR_STD)
        for name, value in (prior_std or {}).items():
            if name not in groups:
                raise ValueError(f"prior_std: unknown nuisance group {name!r}; expected one of {groups}")
            if isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise ValueError(f"prior_std: expected a finite std >= 0 for {name!r}, got {value!r}")
            std[name] = float(value)
        L = self.mesh.n_electrodes
        per_entry = np.concatenate(
            [
                np.full(L, std["contact_impedance"] if "contact_impedance" in estimate else 0.0),
                [std["electrode_shift"] if "electrode_shift" in estimate else 0.0],
                np.full(2, std["scale"] if "scale" in estimate else 0.0),
            ]
        )
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, float, np.integer, np.floating)):
            raise ValueError(f"max_shift: expected a positive number of degrees, got {max_shift!r}")
        key = float(max_shift)
        cache = self.__dict__.setdefault("_nuisance_fems", {})
        if key not in cache:
            cache[key] = NuisanceFEM(self.fem, max_shift=key)
        floor = _check_floor(floor)
        if absolute:
            ref = None
        else:
            ref = self.reference() if sigma_ref is None else sigma_ref
            ref = self.check_conductivity(ref, "sigma_ref")
            if ref.ndim != 2:
                raise ValueError(f"sigma_ref: expected one image of shape {self.image_shape}, got {ref.shape}")
            ref = ref.astype(jnp.float32)
        theta = jnp.zeros((L + 3,), jnp.float32)
        return EITNuisanceMap(self, cache[key], theta, ref, floor, bool(absolute), per_entry)

    @staticmethod
    def add_noise(key: jax.Array, v: jax.Array, *, snr_db: float) -> jax.Array:
        """``v + ε`` with white Gaussian ``ε`` at the signal-to-noise ratio ``snr_db``:
        ``std(ε) = rms(v) 10^(-snr_db / 20)``, the rms over the last axis of ``v`` (of each
        measurement vector; for difference data, the rms of the difference)."""
        v = check_array(v, "v")
        if v.ndim < 1:
            raise ValueError(f"v: expected measurements of shape (..., n_meas), got {v.shape}")
        if not np.isfinite(snr_db):
            raise ValueError(f"snr_db: expected a finite number, got {snr_db!r}")
        rms = jnp.sqrt(jnp.mean(jnp.abs(v) ** 2, axis=-1, keepdims=True))
        noise = jax.random.normal(key, v.shape, v.dtype)
        return v + noise * rms * 10.0 ** (-snr_db / 20.0)

    def to_image(self, values: jax.Array, *, fill: float = 0.0) -> jax.Array:
        """Display image ``(..., H, W)`` of element values ``(..., n_elements)``."""
        return self.map.to_image(values, fill=fill)

    def __repr__(self) -> str:
        return (
            f"EITModel(mesh={self.mesh!r}, model={self.fem.model!r}, protocol={self.protocol!r}, "
            f"image_shape={self.image_shape})"
        )


def _check_floor(floor) -> float:
    if isinstance(floor, bool) or not isinstance(floor, (int, float, np.integer, np.floating)):
        raise TypeError(f"floor: expected a number in (0, 1], got {floor!r}")
    if not (np.isfinite(floor) and 0 < floor <= 1):
        raise ValueError(f"floor: expected a relative conductivity floor in (0, 1], got {floor!r}")
    return float(floor)


class EITDifferenceMap(ForwardMap):
    """``δ (H, W) -> F(σ(δ)) - F(σ_ref) (n_meas,)``, made by :meth:`EITModel.difference_map`.

    A pytree: ``sigma_ref`` is a leaf; the model and ``floor`` are static.

    Attributes:
      model: the :class:`EITModel`.
      sigma_ref: reference conductivity image ``(H, W)``.
      floor: relative conductivity floor of ``σ(δ) = max(background + δ, floor · background)``.
    """

    def __init__(self, model: EITModel, sigma_ref: jax.Array, floor: float):
        self.model = model
        self.sigma_ref = sigma_ref
        self.floor = floor
        self.in_shape = tuple(model.image_shape)
        self.out_shape = (model.n_meas,)
        self.dtype = jnp.float32

    def _forward(self, delta):
        return self.model._difference_image(self.model._conductivity(delta, self.floor), self.sigma_ref)


class EITAbsoluteMap(ForwardMap):
    """``δ (H, W) -> F(σ(δ)) (n_meas,)``, made by :meth:`EITModel.absolute_map`.

    Attributes:
      model: the :class:`EITModel` (static).
      floor: relative conductivity floor of ``σ(δ)`` (static).
    """

    def __init__(self, model: EITModel, floor: float):
        self.model = model
        self.floor = floor
        self.in_shape = tuple(model.image_shape)
        self.out_shape = (model.n_meas,)
        self.dtype = jnp.float32

    def _forward(self, delta):
        return self.model._forward_image(self.model._conductivity(delta, self.floor))
