"""Clinical phantoms and breathing sequences: ranges, determinism, the healthy twin, and every
pathology's parameters measured back from the image (centroids, areas, angles, levels, phases)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.data import (
    CLINICAL_MIXTURE,
    CLINICAL_PARAM_RANGES,
    LUNG_PARAM_NAMES,
    LUNG_VALUE_RANGE,
    clinical_mixture,
    clinical_param_names,
    clinical_phantom_from_params,
    clinical_phantoms,
    pathology_masks,
    sample_clinical_params,
    ventilation_param_names,
    ventilation_sequence,
    ventilation_sequence_from_params,
)
from manifold.thorax import THORAX_EXPONENT, THORAX_SEMI_AXES, pixel_grid, thorax_mask

SIZE = 64
N = 8
PX = 2.0 / SIZE  # one pixel in [-1, 1] units
OPTIONS = [
    {"anomalies": 3},
    {"collapse": "lung"},
    {"collapse": "lobe"},
    {"pneumothorax": True},
    {"effusion": True},
    {"anomalies": 2, "collapse": "lobe", "pneumothorax": True, "effusion": True},
]


def _grid():
    x, y = pixel_grid(SIZE)
    return np.asarray(x, np.float64), np.asarray(y, np.float64)


def _twin(params, **options):
    """The same patient without pathology: the base 8 columns rendered alone."""
    return np.asarray(clinical_phantom_from_params(params[:, :8], size=SIZE), np.float64)


def _col(params, options, name):
    return np.asarray(params[:, clinical_param_names(**options).index(name)], np.float64)


@pytest.mark.parametrize("options", OPTIONS)
def test_shapes_range_determinism_and_regeneration(options):
    images, params = clinical_phantoms(N, size=SIZE, key=jax.random.key(0), **options)
    again, params2 = clinical_phantoms(N, size=SIZE, key=jax.random.key(0), **options)
    other, _ = clinical_phantoms(N, size=SIZE, key=jax.random.key(1), **options)
    names = clinical_param_names(**options)
    assert images.shape == (N, SIZE, SIZE) and params.shape == (N, len(names))
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(params, params2)
    assert np.abs(np.asarray(images) - np.asarray(other)).max() > 1e-2
    lo, hi = LUNG_VALUE_RANGE
    assert float(images.min()) >= lo and float(images.max()) <= hi
    assert np.all(np.asarray(images)[:, ~np.asarray(thorax_mask(SIZE))] == 0.0)
    np.testing.assert_array_equal(clinical_phantom_from_params(params, size=SIZE, **options), images)
    for j, name in enumerate(names):  # drawn from the documented ranges
        key = "anomaly_" + name.split("_", 1)[1] if name.startswith("anomaly") else name
        low, high, kind = CLINICAL_PARAM_RANGES[key]
        v = np.asarray(params[:, j], np.float64)
        if kind == "side":
            assert set(np.unique(v)) <= {-1.0, 1.0}, name
            continue
        v = {"u": v, "pm": np.abs(v), "lobe": v - np.sign(v) * np.pi / 2, "pneumo": np.abs(v - np.pi / 2)}[kind]
        assert np.all((v >= low - 1e-5) & (v <= high + 1e-5)), name


def test_groups_do_not_change_the_base_columns_or_each_other():
    key = jax.random.key(2)
    full = sample_clinical_params(N, key=key, **OPTIONS[-1])
    names = clinical_param_names(**OPTIONS[-1])
    for options in OPTIONS[:-1]:
        part = sample_clinical_params(N, key=key, **options)
        for j, name in enumerate(clinical_param_names(**options)):
            if name in names and not name.startswith("anomaly3"):
                np.testing.assert_array_equal(part[:, j], full[:, names.index(name)], err_msg=name)
    np.testing.assert_array_equal(full[:, :8], sample_clinical_params(N, key=key)[:, : len(LUNG_PARAM_NAMES)])


def test_anomaly_positions_and_areas_are_measured_back_from_the_image():
    options = {"anomalies": 3}
    images, params = clinical_phantoms(16, size=SIZE, key=jax.random.key(3), **options)
    images = np.asarray(images, np.float64)
    twin = _twin(params)
    masks = pathology_masks(params, size=SIZE, **options)
    x, y = _grid()
    anomaly = [
        [_col(params, options, f"anomaly{j}_{c}")[:, None, None] for c in ("x", "y", "radius", "value")]
        for j in (1, 2, 3)
    ]
    edge_dist = np.stack([np.hypot(x - ax, y - ay) - r for ax, ay, r, _ in anomaly])  # (3, n, S, S)
    for j in (1, 2, 3):
        ax, ay, r, v = anomaly[j - 1]
        # the image alone (with the healthy twin): B_j = (image - twin) / (v - twin) near the anomaly
        near = (edge_dist[j - 1] < 5 * PX) & (edge_dist[j - 1] <= edge_dist.min(axis=0))
        contrast = v - twin
        b = np.where(near & (np.abs(contrast) > 0.05), (images - twin) / np.where(near, contrast, 1.0), 0.0)
        area = b.sum(axis=(1, 2)) * PX**2
        cx = (b * x).sum(axis=(1, 2)) * PX**2 / area
        cy = (b * y).sum(axis=(1, 2)) * PX**2 / area
        np.testing.assert_allclose(cx, ax[:, 0, 0], atol=0.5 * PX)
        np.testing.assert_allclose(cy, ay[:, 0, 0], atol=0.5 * PX)
        # a soft disk sigmoid((r² - d²) / (2 r w)) has area 2π r w softplus(r / 2w), w the edge width
        r0 = r[:, 0, 0]
        np.testing.assert_allclose(area, 2 * np.pi * r0 * PX * np.logaddexp(0.0, r0 / (2 * PX)), rtol=0.03)
        m = np.asarray(masks[f"anomaly{j}"], np.float64)  # the ground-truth mask agrees
        np.testing.assert_allclose((m * x).sum(axis=(1, 2)) / m.sum(axis=(1, 2)), ax[:, 0, 0], atol=0.3 * PX)
    # placed apart (and away from the heart) in nearly every image
    pos = np.stack(
        [np.stack([_col(params, options, f"anomaly{j}_{c}") for c in ("x", "y", "radius")], 1) for j in (1, 2, 3)], 1
    )
    d = np.linalg.norm(pos[:, :, None, :2] - pos[:, None, :, :2], axis=-1)
    gap = d - pos[:, :, None, 2] - pos[:, None, :, 2]
    assert np.mean(gap[:, ~np.eye(3, dtype=bool)].min(axis=1) > 0.0) >= 0.9


def test_whole_lung_collapse_side_and_fraction_are_measured_back():
    options = {"collapse": "lung"}
    images, params = clinical_phantoms(N, size=SIZE, key=jax.random.key(4), **options)
    images, twin = np.asarray(images, np.float64), _twin(params)
    x, _ = _grid()
    side, frac = _col(params, options, "collapse_side"), _col(params, options, "collapse_fraction")
    side_lung = np.asarray(pathology_masks(params, size=SIZE, **options)["collapse"], np.float64)
    for i in range(N):
        changed = np.abs(images[i] - twin[i]) > 1e-4
        assert np.sign(x[changed].mean()) == side[i]  # the side, from the image
        lung = (side_lung[i] > 0.5) & (np.abs(x) > 0.5)  # away from the heart
        ratio = 1.0 - images[i][lung] / twin[i][lung]  # = f L_s: the lost ventilation
        assert frac[i] * 0.9 < ratio.max() <= frac[i] + 1e-5
        np.testing.assert_allclose(ratio / side_lung[i][lung], frac[i], atol=3e-3)  # the heart's soft tail
        other = (np.sign(x) == -side[i]) & (np.abs(x) > 0.5)
        np.testing.assert_allclose(images[i][other], twin[i][other], atol=1e-6)


def test_lobar_collapse_fissure_is_measured_back():
    """The fissure ``u cos φ + v sin φ = o`` (lung coordinates) is fitted from the image: the lost
    ventilation ``1 - image / twin = f L_s C`` over the lung indicator ``L_s`` of that side (the
    whole-lung collapse mask) is ``f C``, and the logit of ``C`` is linear in ``(u, v)``."""
    options = {"collapse": "lobe"}
    images, params = clinical_phantoms(N, size=SIZE, key=jax.random.key(5), **options)
    images, twin = np.asarray(images, np.float64), _twin(params)
    x, y = _grid()
    width, height = (_col(params, options, c) for c in ("lung_width", "lung_height"))
    side, phi, off, frac = (_col(params, options, f"lobe_{c}") for c in ("side", "angle", "offset", "fraction"))
    whole = np.concatenate([np.asarray(params[:, :8]), side[:, None], np.ones((N, 1))], axis=1)
    lung = np.asarray(pathology_masks(whole, size=SIZE, collapse="lung")["collapse"], np.float64)
    for i in range(N):
        ax, ay = 0.30 * width[i], 0.46 * height[i]
        u, v = (x - 0.45 * side[i]) / ax, (y + 0.02) / ay
        inside = (lung[i] > 0.3) & (twin[i] < -0.05) & (np.abs(x) > 0.5)  # away from the heart
        fc = (1.0 - images[i][inside] / twin[i][inside]) / lung[i][inside]
        k = min(ax, ay) / PX  # the indicator's slope: sigmoid((t - o) min(a) / edge)

        def fit(f):  # C = fc / f; its logit / k = u cos φ + v sin φ - o on the lung's pixels
            c = fc / f
            edge = (c > 0.02) & (c < 0.98)
            design = np.stack([u[inside][edge], v[inside][edge], -np.ones(edge.sum())], 1)
            coef, res = np.linalg.lstsq(design, np.log(c[edge] / (1 - c[edge])) / k, rcond=None)[:2]
            return coef, float(res[0]) / edge.sum() if len(res) and edge.sum() > 8 else np.inf

        fs = np.linspace(fc.max() + 1e-4, 1.0, 200)
        f_est = fs[np.argmin([fit(f)[1] for f in fs])]
        cos_p, sin_p, o = fit(f_est)[0]
        assert abs(math.atan2(sin_p, cos_p) - math.atan2(np.sin(phi[i]), np.cos(phi[i]))) < 0.05
        assert abs(o - off[i]) < 0.05
        assert abs(f_est - frac[i]) < 0.02


def test_pneumothorax_angle_and_thickness_are_measured_back():
    options = {"pneumothorax": True}
    images, params = clinical_phantoms(N, size=SIZE, key=jax.random.key(6), **options)
    images, twin = np.asarray(images, np.float64), _twin(params)
    x, y = _grid()
    (a, b), p = THORAX_SEMI_AXES, THORAX_EXPONENT
    rho = (np.abs(x / a) ** p + np.abs(y / b) ** p) ** (1 / p)
    angle, thick, extent, depth = (
        _col(params, options, f"pneumo_{c}") for c in ("angle", "thickness", "extent", "depth")
    )
    inside = np.asarray(thorax_mask(SIZE))
    truth = np.asarray(pathology_masks(params, size=SIZE, **options)["pneumothorax"], np.float64)
    for i in range(N):
        # the depth where the crescent is half air or more (it is ~2 pixels thick at 64 px)
        half = truth[i] > 0.5
        d_est = np.median((twin[i][half] - images[i][half]) / truth[i][half] - twin[i][half])
        assert abs(d_est - depth[i]) < 1e-4
        ok = inside & (np.abs(twin[i] + d_est) > 0.2)
        w = np.where(ok, (twin[i] - images[i]) / np.where(ok, twin[i] + d_est, 1.0), 0.0)  # = P
        theta = np.arctan2(y, x)[w > 0.5]
        assert abs(0.5 * (theta.min() + theta.max()) - angle[i]) < 0.06  # the sector's bisector
        assert abs(0.5 * (theta.max() - theta.min()) - extent[i]) < 0.08  # and half-width
        # thickness: the innermost rho where the crescent's centre line is at least half air
        centre = np.abs(np.arctan2(y, x) - angle[i]) < 0.15
        inner = rho[centre & (w > 0.5)].min()
        assert abs((1.0 - inner) - thick[i]) < 1.5 * PX / b


def test_effusion_side_level_and_value_are_measured_back():
    options = {"effusion": True}
    images, params = clinical_phantoms(N, size=SIZE, key=jax.random.key(7), **options)
    images, twin = np.asarray(images, np.float64), _twin(params)
    x, y = _grid()
    side, level, value = (_col(params, options, f"effusion_{c}") for c in ("side", "level", "value"))
    tb = THORAX_SEMI_AXES[1]
    for i in range(N):
        changed = np.abs(images[i] - twin[i]) > 0.02
        assert np.sign(x[changed].mean()) == side[i]
        x0 = x[0, np.argmin(np.abs(x[0] - 0.5 * side[i]))]
        column = (x == x0) & np.asarray(thorax_mask(SIZE))  # one pixel column through the fluid
        e_est = images[i][column][np.argmin(y[column])]  # the lowest pixel: all fluid
        assert abs(e_est - value[i]) < 0.01
        contrast = e_est - twin[i][column]
        e_mask = np.where(np.abs(contrast) > 0.1, (images[i][column] - twin[i][column]) / contrast, 0.0)
        y_level = y[column][e_mask > 0.5].max()  # the sigmoid is 1/2 at the level
        assert abs(y_level - (-tb + 2 * tb * level[i])) < PX


def test_pathology_masks_match_the_image_change():
    options = OPTIONS[-1]
    images, params = clinical_phantoms(4, size=SIZE, key=jax.random.key(8), **options)
    masks = pathology_masks(params, size=SIZE, **options)
    assert sorted(masks) == ["anomaly1", "anomaly2", "collapse", "effusion", "pneumothorax"]
    union = np.max(np.stack([np.asarray(m) for m in masks.values()]), axis=0)
    diff = np.abs(np.asarray(images) - _twin(params))
    assert diff[union < 1e-4].max() < 1e-3  # no change where no pathology is
    single = pathology_masks(params[0], size=SIZE, **options)
    assert single["effusion"].shape == (SIZE, SIZE)


def test_smooth_full_rank_in_the_continuous_parameters():
    """d image / d params has full rank in every continuous column (the sides are ±1 switches)."""
    options = OPTIONS[-1]
    _, params = clinical_phantoms(2, size=32, key=jax.random.key(9), **options)
    names = clinical_param_names(**options)
    cont = [j for j, n in enumerate(names) if not n.endswith("_side")]
    render = lambda q: clinical_phantom_from_params(q, size=32, **options).reshape(-1)
    jac = np.asarray(jax.jit(jax.vmap(jax.jacfwd(render)))(params))[:, :, cont]
    s = np.linalg.svd(jac, compute_uv=False)
    assert np.all(np.isfinite(jac))
    assert np.all(s[:, -1] > 1e-3 * s[:, 0])


def test_clinical_mixture_holds_every_member_in_equal_parts():
    """20 images over 9 members: counts 3, 3, 2, ...; each image is its member's phantom; shuffled, seeded."""
    n = 20
    images, member = clinical_mixture(n, size=SIZE, key=jax.random.key(3))
    again, member2 = clinical_mixture(n, size=SIZE, key=jax.random.key(3))
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(member, member2)
    assert images.shape == (n, SIZE, SIZE) and images.dtype == jnp.float32 and member.shape == (n,)
    counts = np.bincount(np.asarray(member), minlength=len(CLINICAL_MIXTURE))
    assert counts.tolist() == [3, 3] + [2] * 7
    assert np.any(np.diff(np.asarray(member)) < 0)  # shuffled, not in member order
    lo, hi = LUNG_VALUE_RANGE
    assert float(images.min()) >= lo - 1e-6 and float(images.max()) <= hi + 1e-6
    assert np.all(np.asarray(images)[:, ~np.asarray(thorax_mask(SIZE))] == 0.0)
    # each image is a phantom of its member: member j's images are clinical_phantoms drawn with
    # the j-th of the member keys (the docstring's "each member draws from its own key")
    member_keys = jax.random.split(jax.random.split(jax.random.key(3))[0], len(CLINICAL_MIXTURE))
    for j, options in enumerate(CLINICAL_MIXTURE):
        expected, _ = clinical_phantoms(int(counts[j]), size=SIZE, key=member_keys[j], **options)
        got = np.asarray(images)[np.asarray(member) == j]
        order = lambda a: a[np.argsort(a.reshape(len(a), -1).sum(axis=1))]
        np.testing.assert_array_equal(order(got), order(np.asarray(expected)))
    with pytest.raises(ValueError, match="n"):
        clinical_mixture(0, size=SIZE, key=jax.random.key(0))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: clinical_phantoms(2, size=SIZE, key=jax.random.key(0), anomalies=-1), "anomalies"),
        (lambda: clinical_phantoms(2, size=SIZE, key=jax.random.key(0), anomalies=True), "anomalies"),
        (lambda: clinical_phantoms(2, size=SIZE, key=jax.random.key(0), collapse="lobar"), "collapse"),
        (lambda: clinical_phantoms(0, size=SIZE, key=jax.random.key(0)), "n"),
        (lambda: clinical_phantoms(2, size=4, key=jax.random.key(0)), "size"),
        (lambda: clinical_phantom_from_params(np.zeros((2, 8)), size=SIZE, effusion=True), "params"),
        (lambda: clinical_phantom_from_params(np.zeros(8), size=SIZE, edge=-1.0), "edge"),
        (lambda: ventilation_sequence(1, n_frames=0, size=SIZE, key=jax.random.key(0)), "n_frames"),
        (lambda: ventilation_sequence(1, n_frames=4, frame_rate=0.0, size=SIZE, key=jax.random.key(0)), "frame_rate"),
        (lambda: ventilation_sequence_from_params(np.ones(12), np.zeros(3), size=SIZE), "params"),
        (lambda: ventilation_sequence_from_params(np.zeros(13), np.zeros(3), size=SIZE), "breath_period"),
        (lambda: ventilation_sequence_from_params(np.ones(13), np.array([0.0, np.nan]), size=SIZE), "times"),
    ],
)
def test_bad_arguments_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_bad_key_is_a_type_error():
    with pytest.raises(TypeError, match="key"):
        clinical_phantoms(2, size=SIZE, key=None)


def test_ventilation_delays_are_the_phase_of_each_region():
    """Over one whole period, the first harmonic of a pixel's time series has phase ``-2π τ / T``."""
    _, params = ventilation_sequence(3, n_frames=2, size=SIZE, key=jax.random.key(10))
    names = ventilation_param_names()
    params = np.asarray(params).copy()
    params[:, names.index("breath_period")] = 4.0
    times = np.arange(100) / 25.0  # 25 frames/s, exactly one 4 s breath
    frames = np.asarray(ventilation_sequence_from_params(params, times, size=SIZE), np.float64)
    assert frames.shape == (3, 100, SIZE, SIZE) and frames.max() <= 0.0 and frames.min() >= -1.0
    x, y = _grid()
    harmonic = np.exp(-2j * np.pi * times / 4.0)
    centres = {
        "ventral_right": (-0.45, 0.25),
        "ventral_left": (0.45, 0.25),
        "dorsal_right": (-0.45, -0.3),
        "dorsal_left": (0.45, -0.3),
    }
    for region, (cx, cy) in centres.items():
        pixel = np.unravel_index(np.argmin(np.hypot(x - cx, y - cy)), x.shape)
        series = frames[:, :, pixel[0], pixel[1]]  # (3, 100): -A (1 - cos(ω(t - τ))) / 2
        c1 = (series * harmonic).sum(axis=1)  # = A N e^{-iωτ} / 4
        tau = np.mod(-np.angle(c1) * 4.0 / (2 * np.pi), 4.0)
        np.testing.assert_allclose(tau, params[:, names.index(f"delay_{region}")], atol=0.02)


def test_ventilation_without_delays_at_mid_breath_is_the_lung_phantom():
    from manifold.data import lung_phantom_from_params

    _, params = ventilation_sequence(2, n_frames=1, size=SIZE, key=jax.random.key(11))
    params = np.asarray(params).copy()
    params[:, 9:] = 0.0
    frames = ventilation_sequence_from_params(params, jnp.array([0.5 * params[0, 8]]), size=SIZE)[:, 0]
    static = lung_phantom_from_params(params[:, :8], size=SIZE)
    x, _ = _grid()
    far = np.abs(x) > 0.55  # away from the heart, which carries no ventilation in a sequence
    np.testing.assert_allclose(np.asarray(frames[0])[far], np.asarray(static[0])[far], atol=1e-5)


def test_ventilation_params_are_drawn_independently_from_their_ranges():
    from manifold.data import LUNG_PARAM_RANGES, VENTILATION_PARAM_RANGES, sample_ventilation_params

    params = np.asarray(sample_ventilation_params(64, key=jax.random.key(12)), np.float64)
    names = ventilation_param_names()
    assert params.shape == (64, 13)
    for j, name in enumerate(names):
        lo, hi, *mirrored = LUNG_PARAM_RANGES.get(name) or VENTILATION_PARAM_RANGES[name]
        v = np.abs(params[:, j]) if mirrored and mirrored[0] else params[:, j]
        assert np.all((v >= lo - 1e-6) & (v <= hi + 1e-6)), name
    # no two columns are the same draw (e.g. the four delays differ within a patient)
    corr = np.corrcoef(params.T)
    assert np.abs(corr[~np.eye(13, dtype=bool)]).max() < 0.6
    np.testing.assert_array_equal(params, np.asarray(sample_ventilation_params(64, key=jax.random.key(12))))
