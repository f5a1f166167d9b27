"""Domain-randomised brain MR images synthesised from the ICBM152 2009a maps that ship in nilearn.

A real scan differs from the MNI152 template in contrast (T1, T2, PD, FLAIR, EPI/b0), orientation,
field of view, shape, coil sensitivity, resolution and noise. A generator trained on template
slices alone learns *the template*. :func:`synthetic_mri` draws every one of those factors at
random per image (the idea of SynthSeg, Billot et al. 2023), so that a generator trained on it
has seen the variation real scans have.

**Tissue model.** From the ICBM 2009a symmetric T1, GM and WM maps (1 mm, read once with nibabel)
we build four tissue fractions per voxel:

* ``WM`` and ``GM``: the probability maps;
* ``CSF``: the filled, slightly smoothed brain mask ``B`` minus ``GM + WM`` (ventricles, sulci);
* ``other`` (scalp, fat, muscle, skull): the T1 template's own intensity outside the brain,
  ``T1 * (1 - B)``; background is where all four are zero.

An image is ``sum_c f_c(r) I_c`` with tissue intensities ``I = (I_WM, I_GM, I_CSF, I_other)`` drawn
per image: with probability ``1 - p_random`` from one of five contrast families (jittered by
``N(0, 0.08^2)``), otherwise uniformly on ``[0, 1]^4`` (pure domain randomisation):

=========  =====  =====  =====  =======
family     WM     GM     CSF    other
=========  =====  =====  =====  =======
T1         0.85   0.55   0.10   1.00
T2         0.35   0.55   1.00   0.60
PD         0.65   0.80   0.90   0.80
FLAIR      0.55   0.75   0.05   0.70
EPI / b0   0.45   0.60   1.00   0.30
=========  =====  =====  =====  =======

**Geometry.** The slice plane is axial, coronal or sagittal (equal odds), tilted by up to
``max_tilt`` degrees about both in-plane axes, mirrored left-right with probability 1/2
(radiological vs neurological display), at a position along its normal drawn within the central
``±slice_range`` of the brain. The field of view (square side, mm) shows the whole brain
(uniform on ``[170, fov[1]]``) or, with probability ``p_zoom``, a zoomed crop (log-uniform on
``[fov[0], 170]``); its centre wanders over the head as far as the crop allows. An in-plane affine adds a rotation ``U(-max_rotation, max_rotation)``,
an isotropic scale ``U(*scale)`` with an anisotropy of up to ±10 %, a shear ``U(-shear, shear)``;
a smooth elastic warp (coarse 5 x 5 grid, RMS ``elastic`` % of the field of view, cubic
upsampling) bends it. Tissue fractions are sampled trilinearly in the 1 mm volume, stored for
sampling as 8-bit fractions packed four to a 32-bit word (error at most 1/510 per fraction; the
float32 maps of :func:`tissue_volume` are unchanged).

**Acquisition.** A multiplicative bias field ``exp(b)``, with ``b`` a cubic-upsampled 4 x 4 grid of
std ``bias``; an anisotropic Gaussian blur of FWHM log-uniform on ``fwhm_mm`` per axis (1-4 mm:
slice-thickness and acquisition-matrix effects); Gaussian or Rician noise (equal odds) of std
``U(0, noise)`` relative to the image maximum (the two normal fields come from a per-pixel counter
hash seeded by the image's key, turned into normals by Box-Muller: cheaper than threefry normals).
Finally each image is min-max normalised to ``[0, 1]``, the same normalisation as
:func:`manifold.data.mri_validation`.

**Lesions** (``lesions > 0``): up to ``lesions`` small disks of radius 1-3 pixels, at positions
drawn inside the brain, each with its own random intensity, are painted before blurring; the
returned ``lesion_mask`` marks them (for anomaly experiments).

Everything is a pure function of the key: one jitted, vmapped call per chunk of 256 images.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key, check_positive_int
from manifold.data._checks import check_size

__all__ = ["CONTRAST_FAMILIES", "TISSUES", "mri_training_images", "synthetic_mri", "tissue_volume"]

TISSUES = ("wm", "gm", "csf", "other")
CONTRAST_FAMILIES = {
    "t1": (0.85, 0.55, 0.10, 1.00),
    "t2": (0.35, 0.55, 1.00, 0.60),
    "pd": (0.65, 0.80, 0.90, 0.80),
    "flair": (0.55, 0.75, 0.05, 0.70),
    "epi": (0.45, 0.60, 1.00, 0.30),
}
_FAMILY_TABLE = np.array(list(CONTRAST_FAMILIES.values()), np.float32)
_GM_FILENAME = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
_WM_FILENAME = "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"
_CHUNK = 32  # images per jitted call: as fast per image as 256 on CPU, and few padded copies for small n
_ELASTIC_GRID = 5
_BIAS_GRID = 4
_WHOLE_HEAD_MM = 170.0  # a field of view at least this wide shows the whole brain in-plane

# Slice frames in RAS voxel axes (x: left -> right, y: posterior -> anterior, z: inferior -> superior):
# rows run downwards on screen, columns to the right, as in manifold.data.mri_slices.
#   axial: row 0 anterior, subject's right on the image right; coronal/sagittal: row 0 superior.
_FRAMES = np.array(
    [
        [[0, -1, 0], [1, 0, 0], [0, 0, 1]],  # axial:    (row dir, column dir, normal)
        [[0, 0, -1], [1, 0, 0], [0, 1, 0]],  # coronal
        [[0, 0, -1], [0, 1, 0], [1, 0, 0]],  # sagittal
    ],
    np.float32,
)


def _nilearn_file(name: str):
    from manifold.data.mri import mni152_path

    path = mni152_path().parent / name
    if not path.is_file():
        raise FileNotFoundError(f"ICBM152 map not found at {path}; is nilearn (>= 0.10) installed?")
    return path


@functools.lru_cache(maxsize=1)
def _tissues() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import nibabel
    from scipy import ndimage

    from manifold.data.mri import mri_volume

    t1 = np.asarray(mri_volume(), np.float32)
    gm, wm = (np.asarray(nibabel.load(_nilearn_file(f)).dataobj, np.float32) for f in (_GM_FILENAME, _WM_FILENAME))
    gm, wm = (np.clip(a / a.max(), 0.0, 1.0) for a in (gm, wm))
    parenchyma = np.clip(gm + wm, 0.0, 1.0)
    mask = ndimage.binary_closing(parenchyma > 0.3, structure=np.ones((3, 3, 3)), iterations=2)
    mask = ndimage.binary_fill_holes(mask)
    brain = np.clip(ndimage.gaussian_filter(mask.astype(np.float32), 0.7), 0.0, 1.0)
    csf = np.clip(brain - parenchyma, 0.0, 1.0)
    other = t1 * (1.0 - brain)
    other /= max(float(other.max()), 1e-6)
    volume = np.stack([wm, gm, csf, other], axis=-1).astype(np.float32)
    volume.setflags(write=False)
    coords = np.argwhere(mask)
    centre = ((coords.min(0) + coords.max(0)) / 2).astype(np.float32)
    extent = (coords.max(0) - coords.min(0) + 1).astype(np.float32)
    return volume, centre, extent


def tissue_volume() -> np.ndarray:
    """The four tissue fractions ``(197, 233, 189, 4)`` float32 (``TISSUES`` order, RAS voxels), read-only."""
    return _tissues()[0]


@functools.lru_cache(maxsize=1)
def _packed_volume() -> tuple[np.ndarray, np.ndarray]:
    """The tissue fractions quantised to 8 bits and packed into one ``uint32`` per voxel, for sampling.

    Byte ``c`` (least significant first) of a voxel is ``round(255 f_c)`` for the tissues in
    ``TISSUES`` order. The volume is cropped to the bounding box of its non-zero voxels and padded
    with two voxels of zeros on every side, so that clamping a coordinate into the padded box gives
    exactly zero outside the head. Returns the ``(X', Y', Z')`` packed volume and the voxel
    coordinate (float32, 3) that maps to its index 0.
    """
    volume = _tissues()[0]
    q = np.rint(np.clip(volume, 0.0, 1.0) * 255.0).astype(np.uint32)
    packed = q[..., 0] | (q[..., 1] << 8) | (q[..., 2] << 16) | (q[..., 3] << 24)
    nonzero = np.argwhere(packed)
    lo, hi = nonzero.min(0), nonzero.max(0) + 1
    packed = np.pad(packed[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], 2)
    packed.setflags(write=False)
    return packed, (lo - 2).astype(np.float32)


def _sample(packed: jax.Array, corner0: jax.Array, coords, weights: jax.Array) -> list[jax.Array]:
    """Trilinear samples of ``sum_c weights[j, c] f_c`` at voxel coordinates ``coords`` (3 arrays), zero outside.

    ``packed`` is :func:`_packed_volume`'s volume, ``corner0`` its origin. One gather of the 8
    corners' packed words; every corner's words are unpacked and mixed with each row of
    ``weights (J, 4)`` before interpolating, so each output is a single elementwise pass.
    """
    dims = packed.shape
    strides = (dims[1] * dims[2], dims[2], 1)
    lin, frac = 0, []
    for axis in range(3):
        q = jnp.clip(coords[axis] - corner0[axis], 0.0, dims[axis] - 1.5)  # the edge cells are zero padding
        base = jnp.floor(q)
        frac.append(q - base)
        lin = lin + base.astype(jnp.int32) * strides[axis]
    offsets = np.array([np.dot(c, strides) for c in np.ndindex(2, 2, 2)], np.int32)
    words = packed.reshape(-1).at[lin[None] + offsets.reshape((8,) + (1,) * lin.ndim)].get(mode="promise_in_bounds")
    words = jax.lax.bitcast_convert_type(words, jnp.int32)
    channels = [[((words[k] >> (8 * c)) & 255).astype(jnp.float32) for c in range(4)] for k in range(8)]
    fx, fy, fz = frac
    out = []
    for w in weights * (1.0 / 255.0):
        v = [ch[0] * w[0] + ch[1] * w[1] + ch[2] * w[2] + ch[3] * w[3] for ch in channels]
        v00, v01 = v[0] + (v[1] - v[0]) * fz, v[2] + (v[3] - v[2]) * fz
        v10, v11 = v[4] + (v[5] - v[4]) * fz, v[6] + (v[7] - v[6]) * fz
        v0, v1 = v00 + (v01 - v00) * fy, v10 + (v11 - v10) * fy
        out.append(v0 + (v1 - v0) * fx)
    return out


def _hash32(x: jax.Array) -> jax.Array:
    """Wellons' ``lowbias32`` integer hash (a bijection of ``uint32`` with good avalanche)."""
    x = (x ^ (x >> 16)) * jnp.uint32(0x7FEB352D)
    x = (x ^ (x >> 15)) * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _normal_pair(key: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    """Two independent ``(size, size)`` standard normal fields for the noise, cheaply.

    Threefry bits for ``2 size^2`` values cost as much as the rest of the pipeline, so only a
    64-bit seed comes from ``key``; each pixel's 32 random bits are a two-round counter hash of
    its index and the seed, split into two 16-bit uniforms that Box-Muller turns into a pair of
    normals (tails truncated at ``sqrt(2 ln 65536) = 4.7`` std).
    """
    seed = jax.random.bits(key, (2,))
    shape = (size, size)
    counter = jax.lax.broadcasted_iota(jnp.uint32, shape, 0) * jnp.uint32(size)
    counter = counter + jax.lax.broadcasted_iota(jnp.uint32, shape, 1)
    bits = _hash32(_hash32(counter * jnp.uint32(0x9E3779B9) + seed[0]) ^ seed[1])
    radius = jnp.sqrt(-2.0 * jnp.log(((bits >> 16).astype(jnp.float32) + 1.0) * (1.0 / 65536.0)))
    angle = (bits & 0xFFFF).astype(jnp.float32) * np.float32(2.0 * np.pi / 65536.0)
    return radius * jnp.cos(angle), radius * jnp.sin(angle)


@functools.cache
def _cubic_matrix(size: int, grid: int) -> np.ndarray:
    """``(size, grid)`` matrix ``M`` with ``M @ x == jax.image.resize(x, (size,), "cubic")`` (resize is linear)."""
    with jax.ensure_compile_time_eval():
        return np.asarray(jax.image.resize(jnp.eye(grid, dtype=jnp.float32), (size, grid), "cubic"))


def _rotation(axis: int, angle: jax.Array) -> jax.Array:
    c, s = jnp.cos(angle), jnp.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    r = jnp.eye(3)
    return r.at[i, i].set(c).at[j, j].set(c).at[i, j].set(-s).at[j, i].set(s)


def _gaussian_blur(image: jax.Array, sigma_rows: jax.Array, sigma_cols: jax.Array) -> jax.Array:
    """Anisotropic Gaussian blur (std in pixels) by multiplication in the Fourier domain."""
    h, w = image.shape
    fr = jnp.fft.fftfreq(h)[:, None]
    fc = jnp.fft.rfftfreq(w)[None, :]
    kernel = jnp.exp(-2.0 * jnp.pi**2 * ((sigma_rows * fr) ** 2 + (sigma_cols * fc) ** 2))
    return jnp.fft.irfft2(jnp.fft.rfft2(image) * kernel, s=(h, w))


def _one_image(key, packed, corner0, centre, extent, opts):
    size = opts["size"]
    keys = iter(jax.random.split(key, 32))

    def u(lo, hi, shape=()):
        return jax.random.uniform(next(keys), shape, minval=lo, maxval=hi)

    # --- geometry: frame, tilt, mirror, slice position, field of view
    orientation = jax.random.randint(next(keys), (), 0, 3)
    frame = jnp.asarray(_FRAMES)[orientation]  # rows: row dir, column dir, normal
    tilt = jnp.deg2rad(opts["max_tilt"])
    rot = _rotation(0, u(-tilt, tilt)) @ _rotation(1, u(-tilt, tilt))
    frame = rot @ frame  # tilted about the in-plane axes (frame-local coordinates)
    mirror = jnp.where(jax.random.bernoulli(next(keys)), -1.0, 1.0)
    row_dir, col_dir, normal = frame[0], frame[1] * mirror, frame[2]
    zoom_fov = jnp.exp(u(jnp.log(opts["fov"][0]), jnp.log(_WHOLE_HEAD_MM)))
    fov = jnp.where(jax.random.bernoulli(next(keys), opts["p_zoom"]), zoom_fov, u(_WHOLE_HEAD_MM, opts["fov"][1]))
    depth = jnp.abs(normal) @ extent
    in_plane = jnp.stack([jnp.abs(row_dir) @ extent, jnp.abs(col_dir) @ extent])
    wander = jnp.maximum(in_plane - fov, 0.0) / 2 + 0.1 * fov
    offset = u(-1.0, 1.0, (2,)) * wander
    position = u(-opts["slice_range"], opts["slice_range"]) * depth / 2
    origin = jnp.asarray(centre) + offset[0] * row_dir + offset[1] * col_dir + position * normal

    # --- in-plane affine and elastic warp, in mm
    t = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    angle = jnp.deg2rad(u(-opts["max_rotation"], opts["max_rotation"]))
    scale = u(*opts["scale"]) * (1.0 + u(-0.1, 0.1, (2,)) * jnp.array([1.0, -1.0]))
    shear = u(-opts["shear"], opts["shear"])
    affine = _rotation(2, angle)[:2, :2] @ jnp.array([[1.0, shear], [0.0, 1.0]]) @ jnp.diag(1.0 / scale)
    affine = affine * fov  # maps the unit grid (row, col) to mm
    coarse = jax.random.normal(next(keys), (_ELASTIC_GRID, _ELASTIC_GRID, 2)) * (opts["elastic"] / 100 * fov)
    m = jnp.asarray(_cubic_matrix(size, _ELASTIC_GRID))
    disp = [m @ coarse[..., i] @ m.T for i in range(2)]  # separable cubic upsampling to (S, S)
    plane = [affine[i, 0] * t[:, None] + affine[i, 1] * t[None, :] + disp[i] for i in range(2)]  # (row, col) mm
    coords = [origin[a] + plane[0] * row_dir[a] + plane[1] * col_dir[a] for a in range(3)]  # voxel coordinates

    # --- lesions (before blur), drawn inside the brain; keys are drawn in the model's fixed order
    if opts["lesions"]:
        k_where, k_count, k_radius, k_intensity = (next(keys) for _ in range(4))
    family = jax.random.randint(next(keys), (), 0, len(_FAMILY_TABLE))
    jittered = jnp.asarray(_FAMILY_TABLE)[family] + 0.08 * jax.random.normal(next(keys), (4,))
    random_contrast = jax.random.bernoulli(next(keys), opts["p_random"])
    intensity = jnp.clip(jnp.where(random_contrast, u(0.0, 1.0, (4,)), jittered), 0.0, 1.0)
    # image = sum_c f_c I_c (and the brain fraction WM + GM for lesions), in one sampling pass
    weights = intensity[None]
    if opts["lesions"]:
        weights = jnp.concatenate([weights, jnp.array([[1.0, 1.0, 0.0, 0.0]])])
    sampled = _sample(packed, corner0, coords, weights)
    image = sampled[0]

    lesion_mask = jnp.zeros((size, size))
    if opts["lesions"]:
        brain = sampled[1]
        logits = jnp.log(jnp.clip(brain, 1e-6, None)).ravel()
        where = jax.random.categorical(k_where, logits, shape=(opts["lesions"],))
        count = jax.random.randint(k_count, (), 1, opts["lesions"] + 1)
        radius = jax.random.uniform(k_radius, (opts["lesions"],), minval=1.0, maxval=3.0)
        rows, cols = jnp.divmod(where, size)
        r = jnp.arange(size, dtype=jnp.float32)
        d2 = (r[None, :, None] - rows[:, None, None]) ** 2 + (r[None, None, :] - cols[:, None, None]) ** 2
        disks = jnp.clip(radius[:, None, None] + 0.5 - jnp.sqrt(d2), 0.0, 1.0)  # anti-aliased edge
        disks = disks * (jnp.arange(opts["lesions"]) < count)[:, None, None]
        lesion_intensity = jax.random.uniform(k_intensity, (opts["lesions"],), minval=0.0, maxval=1.0)
        lesion_mask = jnp.max(disks, axis=0)
        top = jnp.argmax(disks, axis=0)
        image = image * (1.0 - lesion_mask) + lesion_intensity[top] * lesion_mask

    # --- acquisition: bias field, resolution, noise, normalisation
    bias = jax.random.normal(next(keys), (_BIAS_GRID, _BIAS_GRID)) * opts["bias"]
    m = jnp.asarray(_cubic_matrix(size, _BIAS_GRID))
    image = image * jnp.exp(m @ bias @ m.T)
    fwhm = jnp.exp(u(jnp.log(opts["fwhm_mm"][0]), jnp.log(opts["fwhm_mm"][1]), (2,)))
    sigma_px = fwhm / 2.3548 / (fov / size)
    image = _gaussian_blur(image, sigma_px[0], sigma_px[1])
    image = image / jnp.maximum(jnp.max(image), 1e-6)
    sigma = u(0.0, opts["noise"])
    n1, n2 = _normal_pair(next(keys), size)
    n1, n2 = n1 * sigma, n2 * sigma
    rician = jax.random.bernoulli(next(keys))
    image = jnp.where(rician, jnp.sqrt((image + n1) ** 2 + n2**2), image + n1)
    lo, hi = jnp.min(image), jnp.max(image)
    image = (image - lo) / jnp.maximum(hi - lo, 1e-6)
    info = {
        "orientation": orientation,
        "fov_mm": fov,
        "family": jnp.where(random_contrast, -1, family),
        "intensity": intensity,
        "lesion_mask": lesion_mask > 0.5,
    }
    return image.astype(jnp.float32), info


@functools.partial(jax.jit, static_argnames=("opts",))
def _chunk(keys, packed, corner0, centre, extent, *, opts):
    opts = dict(opts)
    return jax.vmap(lambda k: _one_image(k, packed, corner0, centre, extent, opts))(keys)


def _interval(value, name, lo, hi):
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        and lo <= value[0] <= value[1] <= hi
    )
    if not ok:
        raise ValueError(f"{name}: expected a pair (low, high) with {lo} <= low <= high <= {hi}, got {value!r}")
    return (float(value[0]), float(value[1]))


def _number(value, name, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ValueError(f"{name}: expected a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def synthetic_mri(
    n: int,
    *,
    size: int = 128,
    key,
    fov: tuple[float, float] = (70.0, 250.0),
    p_zoom: float = 0.3,
    slice_range: float = 0.7,
    max_tilt: float = 10.0,
    max_rotation: float = 15.0,
    scale: tuple[float, float] = (0.8, 1.2),
    shear: float = 0.1,
    elastic: float = 1.5,
    bias: float = 0.2,
    fwhm_mm: tuple[float, float] = (1.0, 4.0),
    noise: float = 0.03,
    p_random: float = 0.25,
    lesions: int = 0,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Domain-randomised brain MR slices (see the module docstring for the model).

    Args:
        n: number of images.
        size: side of the square images in pixels (>= 8).
        key: ``jax.random`` key; the output is a pure function of it (and of the options).
        fov: range of the square field of view in mm: with probability ``p_zoom`` a zoomed crop,
            log-uniform on ``[fov[0], 170]``, otherwise the whole brain, uniform on ``[170, fov[1]]``.
        p_zoom: probability of a zoomed crop.
        slice_range: slice positions lie within ``±slice_range`` of the brain's half-depth (0-1).
        max_tilt: largest out-of-plane tilt in degrees about each in-plane axis.
        max_rotation: largest in-plane rotation in degrees.
        scale: range of the in-plane isotropic scale factor.
        shear: largest in-plane shear.
        elastic: RMS of the coarse elastic displacements, in % of the field of view.
        bias: std of the log bias field.
        fwhm_mm: range of the blur's full width at half maximum in mm, drawn per axis.
        noise: largest noise std relative to the image maximum (Gaussian or Rician).
        p_random: probability of fully random tissue intensities instead of a contrast family.
        lesions: largest number of small lesions per image (0: none).

    Returns:
        ``(images, info)``: ``images`` ``(n, size, size)`` float32, each min-max normalised to
        ``[0, 1]``; ``info`` a dict of per-image arrays: ``orientation`` (0 axial, 1 coronal,
        2 sagittal), ``fov_mm``, ``family`` (index into ``CONTRAST_FAMILIES``, -1 for random),
        ``intensity`` ``(n, 4)`` tissue intensities (``TISSUES`` order), and ``lesion_mask``
        ``(n, size, size)`` bool.
    """
    n = check_positive_int(n, "n")
    size = check_size(size)
    key = check_key(key)
    opts = (
        ("size", size),
        ("fov", _interval(fov, "fov", 10.0, 400.0)),
        ("p_zoom", _number(p_zoom, "p_zoom", 0.0, 1.0)),
        ("slice_range", _number(slice_range, "slice_range", 0.0, 1.0)),
        ("max_tilt", _number(max_tilt, "max_tilt", 0.0, 45.0)),
        ("max_rotation", _number(max_rotation, "max_rotation", 0.0, 180.0)),
        ("scale", _interval(scale, "scale", 0.1, 10.0)),
        ("shear", _number(shear, "shear", 0.0, 1.0)),
        ("elastic", _number(elastic, "elastic", 0.0, 10.0)),
        ("bias", _number(bias, "bias", 0.0, 2.0)),
        ("fwhm_mm", _interval(fwhm_mm, "fwhm_mm", 0.0, 20.0)),
        ("noise", _number(noise, "noise", 0.0, 1.0)),
        ("p_random", _number(p_random, "p_random", 0.0, 1.0)),
        ("lesions", check_positive_int(lesions, "lesions", minimum=0)),
    )
    if not opts[1][1][0] <= _WHOLE_HEAD_MM <= opts[1][1][1]:
        raise ValueError(
            f"fov: expected low <= {_WHOLE_HEAD_MM:g} <= high (zoomed crops below, whole brain above), got {fov!r}"
        )
    _, centre, extent = _tissues()
    packed, corner0 = _packed_volume()
    packed = jnp.asarray(packed)
    # fixed-size chunks, the last padded with copies of the first key: one compilation for every n
    keys = jax.random.split(key, n)
    pad = (-n) % _CHUNK
    keys = jnp.concatenate([keys, jnp.broadcast_to(keys[:1], (pad,))]) if pad else keys
    outs = [
        _chunk(keys[i : i + _CHUNK], packed, corner0, centre, extent, opts=opts)
        for i in range(0, keys.shape[0], _CHUNK)
    ]
    images, info = jax.tree.map(lambda *a: jnp.concatenate(a)[:n], *outs)
    return images, info


def mri_training_images(
    n: int, *, size: int = 128, key, split: str = "train", mni_fraction: float = 0.2, **synthetic_kwargs
) -> jax.Array:
    """The MRI generators' training mixture: :func:`synthetic_mri` plus augmented MNI152 slices.

    A fraction ``mni_fraction`` of the images are augmented :func:`manifold.data.mri_slices` of
    ``split`` (all three orientations in equal parts), min-max normalised per image like the
    synthetic ones; the rest are :func:`synthetic_mri` draws. The two parts are interleaved by a
    permutation drawn from ``key``.

    Args:
        n: number of images.
        size: side in pixels.
        key: ``jax.random`` key.
        split: MNI152 split the template slices come from (``"train"`` or ``"test"``).
        mni_fraction: share of template slices, in ``[0, 1]``.
        **synthetic_kwargs: options of :func:`synthetic_mri`.

    Returns:
        ``(n, size, size)`` float32 in ``[0, 1]``.
    """
    from manifold.data.mri import mri_slices

    n = check_positive_int(n, "n")
    mni_fraction = _number(mni_fraction, "mni_fraction", 0.0, 1.0)
    k_syn, k_perm, *k_mni = jax.random.split(check_key(key), 5)
    n_mni = round(n * mni_fraction)
    parts = []
    if n - n_mni:
        parts.append(synthetic_mri(n - n_mni, size=size, key=k_syn, **synthetic_kwargs)[0])
    counts = [n_mni // 3 + (i < n_mni % 3) for i in range(3)]
    for axis, count, k in zip(("axial", "coronal", "sagittal"), counts, k_mni):
        if count:
            x = mri_slices(size=size, split=split, n=count, key=k, augment=True, axis=axis)[0]
            lo, hi = x.min(axis=(1, 2), keepdims=True), x.max(axis=(1, 2), keepdims=True)
            parts.append((x - lo) / jnp.maximum(hi - lo, 1e-6))
    images = jnp.concatenate(parts)
    return images[jax.random.permutation(k_perm, n)]
