r"""GREIT figures of merit (Adler et al. 2009, *GREIT: a unified approach to 2D linear EIT
reconstruction of lung images*, Physiol. Meas. 30 S35) for reconstructions of small targets.

For a reconstructed image ``x̂`` of a small circular target (centre ``c_t``, radius ``r_t``,
contrast ``Δσ_t``), on an image of the square ``[-1, 1]²`` whose body is ``mask`` (pixel area
``a``), all images first multiplied by ``sign(Δσ_t)`` so the target is positive:

* the *quarter-amplitude set* ``Q = {k : x̂_k >= max(x̂) / 4}`` (inside the body), its area
  ``A_Q = a |Q|`` and centroid ``c_Q`` (the centroid of the pixels of ``Q``);
* **amplitude response** ``AR = a Σ_k x̂_k / (π r_t² Δσ_t)``, the sum over the whole body relative
  to the target's ``volume x contrast`` (1 for an exact image; GREIT wants it uniform over positions);
* **position error** ``PE = |c_t| - |c_Q|``, the radial error (positive: the image is pulled
  towards the centre), and the distance ``PE_dist = ||c_Q - c_t||``;
* **resolution** ``RES = sqrt(A_Q / A_body)``;
* **shape deformation** ``SD = |Q \ C| / |Q|``, the fraction of ``Q`` outside the circle ``C`` of
  area ``A_Q`` centred at ``c_Q``;
* **ringing** ``RNG = -Σ_{k ∉ C, x̂_k < 0} x̂_k / Σ_{k ∈ C} x̂_k``, the opposite-sign amplitude
  outside ``C`` relative to the amplitude inside it (reported as a positive number).

Pure ``jax.numpy``, batched over leading axes of the images and targets.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["GreitMerit", "greit_figures_of_merit"]


class GreitMerit(NamedTuple):
    """Figures of merit of :func:`greit_figures_of_merit`, each of the batch shape."""

    amplitude: jax.Array  # AR
    position_error: jax.Array  # PE, radial (|c_t| - |c_Q|)
    position_distance: jax.Array  # ||c_Q - c_t||
    resolution: jax.Array  # RES
    shape_deformation: jax.Array  # SD
    ringing: jax.Array  # RNG


def _grid(h: int, w: int):
    """Pixel centres on [-1, 1]²: x grows with the column, y shrinks with the row (row 0 at the top)."""
    cx = (jnp.arange(w, dtype=jnp.float32) + 0.5) / w * 2.0 - 1.0
    cy = 1.0 - (jnp.arange(h, dtype=jnp.float32) + 0.5) / h * 2.0
    return jnp.meshgrid(cx, cy, indexing="xy")


@jax.jit
def _merit(image, centre, radius, contrast, mask):
    h, w = image.shape
    x, y = _grid(h, w)
    area = 4.0 / (h * w)
    inside = mask
    img = jnp.where(inside, image * jnp.sign(contrast), 0.0)
    q = inside & (img >= 0.25 * jnp.max(jnp.where(inside, img, -jnp.inf)))
    nq = jnp.maximum(jnp.sum(q), 1)
    a_q = area * nq
    cqx, cqy = jnp.sum(jnp.where(q, x, 0.0)) / nq, jnp.sum(jnp.where(q, y, 0.0)) / nq
    amplitude = area * jnp.sum(img) / (jnp.pi * radius**2 * jnp.abs(contrast))
    pe = jnp.hypot(centre[0], centre[1]) - jnp.hypot(cqx, cqy)
    dist = jnp.hypot(cqx - centre[0], cqy - centre[1])
    res = jnp.sqrt(a_q / (area * jnp.sum(inside)))
    circle = (x - cqx) ** 2 + (y - cqy) ** 2 <= a_q / jnp.pi
    sd = jnp.sum(q & ~circle) / nq
    ring = jnp.sum(jnp.where(inside & ~circle & (img < 0), -img, 0.0)) / jnp.sum(jnp.where(inside & circle, img, 0.0))
    return GreitMerit(amplitude, pe, dist, res, sd, ring)


_batched = jax.jit(jax.vmap(_merit, in_axes=(0, 0, 0, 0, None)))


def greit_figures_of_merit(images, centres, radii, contrasts, *, mask) -> GreitMerit:
    """GREIT figures of merit of reconstructions of small circular targets (see the module docstring).

    Args:
      images: ``(*batch, H, W)`` real reconstructions (conductivity change).
      centres: ``(*batch, 2)`` target centres ``(x, y)`` on ``[-1, 1]²`` (``y`` up, row 0 at ``y = 1``).
      radii: ``(*batch,)`` target radii (> 0).
      contrasts: ``(*batch,)`` target conductivity changes (non-zero; the sign selects which
        polarity counts as the target).
      mask: ``(H, W)`` boolean body mask: only pixels inside count.

    Returns:
      A :class:`GreitMerit` of float32 arrays of shape ``batch``: ``amplitude`` (AR),
      ``position_error`` (radial PE), ``position_distance``, ``resolution`` (RES),
      ``shape_deformation`` (SD), ``ringing`` (RNG).

    Raises:
      ValueError: naming the argument for mismatched shapes, a complex or non-finite image,
        non-positive radii or zero contrasts.

    Examples:
      An exact image of a disk target: amplitude 1, no position error, no ringing.

      >>> import jax.numpy as jnp
      >>> c = (jnp.arange(64) + 0.5) / 32 - 1
      >>> x, y = jnp.meshgrid(c, -c)
      >>> mask = x**2 + y**2 < 1
      >>> disk = jnp.where((x - 0.3) ** 2 + (y - 0.2) ** 2 < 0.1**2, 0.5, 0.0)
      >>> m = greit_figures_of_merit(disk, jnp.array([0.3, 0.2]), 0.1, 0.5, mask=mask)
      >>> round(float(m.amplitude), 1), round(float(m.position_distance), 2), float(m.ringing)
      (1.0, 0.0, 0.0)
    """
    images = jnp.asarray(images)
    if not jnp.issubdtype(images.dtype, jnp.floating) or images.ndim < 2:
        raise ValueError(f"images: expected real floating images (*batch, H, W), got {images.dtype} {images.shape}")
    images = images.astype(jnp.float32)
    batch = images.shape[:-2]
    mask = jnp.asarray(mask)
    if mask.shape != images.shape[-2:] or mask.dtype != jnp.bool_:
        raise ValueError(f"mask: expected a boolean array of shape {images.shape[-2:]}, got {mask.dtype} {mask.shape}")
    centres = jnp.asarray(centres, jnp.float32)
    radii = jnp.asarray(radii, jnp.float32)
    contrasts = jnp.asarray(contrasts, jnp.float32)
    if centres.shape != (*batch, 2):
        raise ValueError(f"centres: expected shape {(*batch, 2)}, got {centres.shape}")
    for name, v in (("radii", radii), ("contrasts", contrasts)):
        if v.shape != batch:
            raise ValueError(f"{name}: expected shape {batch}, got {v.shape}")
    if not bool(jnp.all(radii > 0)):
        raise ValueError("radii: expected positive target radii")
    if not bool(jnp.all((contrasts != 0) & jnp.isfinite(contrasts))):
        raise ValueError("contrasts: expected finite non-zero target contrasts")
    if not bool(jnp.all(jnp.isfinite(images))):
        raise ValueError("images: contain NaN or infinite values")
    n = int(np.prod(batch)) if batch else 1
    out = _batched(
        images.reshape((n, *images.shape[-2:])), centres.reshape(n, 2), radii.reshape(n), contrasts.reshape(n), mask
    )
    return GreitMerit(*(v.reshape(batch) for v in out))
