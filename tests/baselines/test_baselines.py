import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.baselines import (
    eit_one_step,
    fit_pca,
    haar2,
    ihaar2,
    pca_subspace,
    tikhonov,
    total_variation,
    tv,
    wavelet_l1,
    zero_filled,
)
from manifold.baselines.tv import divergence, gradient
from manifold.operators import LinearOperator, masks
from manifold.operators.mri import MRI
from manifold.operators.simple import GaussianCS


def rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def blocks(size=32):
    """A piecewise-constant test image: two rectangles on a background."""
    x = jnp.full((size, size), 0.2)
    x = x.at[4:20, 6:14].set(1.0)
    return x.at[18:28, 16:30].set(0.6)


@pytest.fixture(scope="module")
def mri():
    return MRI(masks.random((32, 32), 3, acs=6, key=jax.random.key(0)))


def test_haar_is_orthonormal():
    eye = jnp.eye(64).reshape((64, 8, 8))
    W = jax.vmap(lambda e: haar2(e, 2).ravel())(eye)  # rows: transforms of the basis images
    assert jnp.allclose(W @ W.T, jnp.eye(64), atol=1e-5)
    x = jax.random.normal(jax.random.key(1), (8, 8))
    assert jnp.allclose(ihaar2(haar2(x, 3), 3), x, atol=1e-5)
    assert jnp.allclose(haar2(jnp.ones((8, 8)), 3)[0, 0], 8.0)  # all energy in the coarsest LL


def _haar_reference(x, levels):
    """The documented bands by explicit loops over the 2 x 2 blocks ``[[a, b], [c, d]]`` (NumPy)."""
    y = np.array(x, np.float64)
    h, w = y.shape
    for _ in range(levels):
        out = np.zeros((h, w))
        for i in range(h // 2):
            for j in range(w // 2):
                a, b, c, d = y[2 * i, 2 * j], y[2 * i, 2 * j + 1], y[2 * i + 1, 2 * j], y[2 * i + 1, 2 * j + 1]
                out[i, j] = (a + b + c + d) / 2  # LL, top left
                out[i, j + w // 2] = (a - b + c - d) / 2  # LH, top right
                out[i + h // 2, j] = (a + b - c - d) / 2  # HL, bottom left
                out[i + h // 2, j + w // 2] = (a - b - c + d) / 2  # HH, bottom right
        y[:h, :w] = out
        h, w = h // 2, w // 2
    return y


@pytest.mark.parametrize(("shape", "levels"), [((8, 8), 3), ((8, 16), 2), ((4, 12), 1)])
def test_haar_matches_the_documented_bands(shape, levels):
    """The band layout itself (orthonormality alone would not notice swapped quadrants)."""
    x = np.asarray(jax.random.normal(jax.random.key(3), shape))
    reference = _haar_reference(x, levels)
    np.testing.assert_allclose(np.asarray(haar2(jnp.asarray(x), levels)), reference, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ihaar2(jnp.asarray(reference, jnp.float32), levels)), x, atol=1e-5)


def test_haar_rejects_sizes_not_divisible_by_two_to_the_levels():
    with pytest.raises(ValueError, match="levels"):
        haar2(jnp.ones((12, 12)), 3)


def test_divergence_is_minus_the_adjoint_of_the_gradient():
    kx, kp = jax.random.split(jax.random.key(2))
    x = jax.random.normal(kx, (7, 9))
    p = jax.random.normal(kp, (2, 7, 9))
    assert jnp.vdot(gradient(x), p) == pytest.approx(-float(jnp.vdot(x, divergence(p))), rel=1e-5)
    step = jnp.zeros((7, 9)).at[:, 5:].set(2.0)  # one vertical edge of height 2 across 7 rows
    assert float(total_variation(step)) == pytest.approx(14.0)


@pytest.mark.parametrize("kind", ["real", "complex"])
def test_tikhonov_matches_the_normal_equations(kind):
    if kind == "real":
        A = GaussianCS(20, (8, 8), key=jax.random.key(3))
    else:
        A = MRI(masks.random((8, 8), 2, acs=2, key=jax.random.key(3)))
    x = jax.random.normal(jax.random.key(4), (8, 8))
    b = A(x)
    M = A.matrix()
    lam = 0.05
    expected = jnp.linalg.solve(jnp.real(M.conj().T @ M) + lam * jnp.eye(64), jnp.real(M.conj().T @ b.ravel()))
    got = tikhonov(A, b, lam=lam, tol=1e-7)
    assert jnp.allclose(got.ravel(), expected, atol=1e-4)
    batched = tikhonov(A, jnp.stack([b, 2 * b]), lam=lam, tol=1e-7)
    assert batched.shape == (2, 8, 8)
    assert jnp.allclose(batched[1], 2 * got, atol=1e-4)


def test_zero_filled_is_the_real_pseudo_inverse(mri):
    x = blocks()
    assert jnp.allclose(zero_filled(mri, mri(x)), jnp.real(mri.pinv(mri(x))), atol=1e-6)


def test_tv_and_wavelet_beat_zero_filled_on_piecewise_constant_images(mri):
    x = blocks()
    b = mri(x)
    err_zf = rel(zero_filled(mri, b), x)
    err_tv = rel(tv(mri, b, lam=1e-3, steps=300, norm=1.0), x)
    err_wav = rel(wavelet_l1(mri, b, lam=2e-3, steps=300, norm=1.0), x)
    assert err_tv < 0.5 * err_zf
    assert err_wav < 0.8 * err_zf


def test_tv_knows_the_mri_norm_and_estimates_others(mri):
    b = mri(blocks())
    assert jnp.array_equal(tv(mri, b, lam=1e-3, steps=20), tv(mri, b, lam=1e-3, steps=20, norm=1.0))  # closed form
    A = GaussianCS(300, (32, 32), key=jax.random.key(9))
    true_norm = float(jnp.linalg.norm(A.matrix(), ord=2))
    y = A(blocks())
    assert jnp.allclose(tv(A, y, lam=1e-3, steps=20), tv(A, y, lam=1e-3, steps=20, norm=1.01 * true_norm), atol=1e-3)


class Scaled(LinearOperator):
    """``c A`` for a scalar ``c``."""

    def __init__(self, A, c):
        self.A, self.c = A, float(c)
        self.in_shape, self.out_shape, self.dtype = A.in_shape, A.out_shape, A.dtype

    def _forward(self, x):
        return self.c * self.A(x)

    def _adjoint(self, y):
        return self.c * self.A.adjoint(y)


@pytest.mark.parametrize("c", [50.0, 0.02])
def test_tv_iterates_do_not_depend_on_the_operator_scale(c):
    """``(c A, c b, c^2 lam)`` is the same problem (objective times ``c^2``), and ``tv`` runs it
    rescaled to ``||A|| = 1``: the same iterates, so a Radon transform (norm 45-124) converges as
    fast as MRI (norm 1). Equal steps ``~1/||A||`` left the TV dual nearly frozen for large ``c``."""
    A = GaussianCS(300, (32, 32), key=jax.random.key(9))
    b = A(blocks())
    reference = tv(A, b, lam=1e-3, tol=0.0, steps=300)
    assert rel(tv(Scaled(A, c), c * b, lam=c**2 * 1e-3, tol=0.0, steps=300), reference) < 1e-4


def test_tv_runs_to_convergence_by_default(mri):
    x = blocks()
    b = mri(x) + 0.01 * jnp.where(mri.mask, jax.random.normal(jax.random.key(10), x.shape), 0)
    lam = 3e-4  # small weights converge slowest
    converged = tv(mri, b, lam=lam, tol=0.0, steps=20_000)
    default = tv(mri, b, lam=lam)
    assert rel(default, converged) < 1e-3
    assert rel(tv(mri, b, lam=lam, tol=0.0, steps=300), converged) > 10 * rel(default, converged)  # the old default
    with pytest.raises(ValueError, match="tol"):
        tv(mri, b, tol=-1.0)


def test_tv_batched_matches_one_at_a_time(mri):
    """A batch of data is solved per item, each to its own convergence (the stop is per image)."""
    x = blocks()
    b = jnp.stack([mri(x), mri(0.5 * x.T)])
    batched = tv(mri, b, lam=1e-3)
    assert batched.shape == (2, *x.shape)
    for i in range(2):
        assert rel(batched[i], tv(mri, b[i], lam=1e-3)) < 1e-4


def test_pca_subspace_is_exact_on_in_span_data():
    k = 3
    key_b, key_c, key_a, _ = jax.random.split(jax.random.key(5), 4)
    q, _ = jnp.linalg.qr(jax.random.normal(key_b, (64, k)))
    mean = jnp.linspace(0.0, 1.0, 64).reshape(8, 8)
    coeffs = jax.random.normal(key_c, (50, k)) * jnp.array([3.0, 2.0, 1.0])[None]
    train = mean[None] + (coeffs @ q.T).reshape(50, 8, 8)
    basis, mu = fit_pca(train, k)
    assert basis.shape == (k, 8, 8) and jnp.allclose(mu, jnp.mean(train, axis=0), atol=1e-5)
    A = GaussianCS(10, (8, 8), key=key_a)  # 10 measurements of 64 pixels: hopeless without the prior
    x = mean + (jnp.array([1.0, -2.0, 0.5]) @ q.T).reshape(8, 8)
    assert jnp.allclose(pca_subspace(A, A(x), basis, mu), x, atol=1e-3)
    with pytest.raises(ValueError, match="basis"):
        pca_subspace(A, A(x), basis[:, :4], mu)


def test_randomized_pca_matches_the_full_svd():
    """With a key, fit_pca's randomized range finder spans the full SVD's leading subspace."""
    key_u, key_v, key_n = jax.random.split(jax.random.key(11), 3)
    n, d, k = 300, 16 * 16, 12
    u = jax.random.normal(key_u, (n, 40))
    v, _ = jnp.linalg.qr(jax.random.normal(key_v, (d, 40)))
    spectrum = 0.8 ** jnp.arange(40)  # a decaying spectrum, as image data have, plus noise
    train = ((u * spectrum[None]) @ v.T + 1e-3 * jax.random.normal(key_n, (n, d))).reshape(n, 16, 16)
    exact, mean = fit_pca(train, k)
    fast, mean_fast = fit_pca(train, k, key=jax.random.key(0))
    assert fast.shape == (k, 16, 16) and jnp.allclose(mean, mean_fast)
    e, f = exact.reshape(k, -1), fast.reshape(k, -1)
    assert jnp.allclose(f @ f.T, jnp.eye(k), atol=1e-4)  # orthonormal
    assert jnp.allclose(jnp.abs(jnp.sum(e * f, axis=1)), 1.0, atol=1e-3)  # the same components, up to sign
    with pytest.raises(ValueError, match="power_iterations"):
        fit_pca(train, k, key=jax.random.key(0), power_iterations=-1)
    with pytest.raises(TypeError, match="key: expected a single jax.random key"):
        fit_pca(train, k, key=0)


def test_eit_one_step_matches_the_dense_noser_solution():
    A = GaussianCS(20, (8, 8), key=jax.random.key(6))
    b = A(jax.random.normal(jax.random.key(7), (8, 8)))
    J = A.matrix()
    R = jnp.sum(J * J, axis=0)
    lam = 0.1
    ridge = lam * jnp.trace((J / R[None]) @ J.T) / 20
    expected = jnp.linalg.solve(J.T @ J + ridge * jnp.diag(R), J.T @ b)
    assert jnp.allclose(eit_one_step(A, b, lam=lam).ravel(), expected, atol=1e-4)


def test_bad_input():
    A = GaussianCS(10, (8, 8), key=jax.random.key(8))
    with pytest.raises(ValueError, match="b: contains NaN"):
        tikhonov(A, jnp.full((10,), jnp.nan))
    with pytest.raises(ValueError, match=r"b: expected shape \(10,\)"):
        zero_filled(A, jnp.zeros((11,)))
    with pytest.raises(TypeError, match="A: expected a manifold.operators.LinearOperator"):
        tv(lambda x: x, jnp.zeros((8, 8)))
    with pytest.raises(ValueError, match="lam"):
        tikhonov(A, jnp.zeros((10,)), lam=-1.0)
    with pytest.raises(ValueError, match="A: tv needs 2-D images"):
        tv(GaussianCS(10, (64,), key=jax.random.key(0)), jnp.zeros((10,)))
