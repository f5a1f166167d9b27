"""``solve_adaptive``: image-adaptive refinement with a held-out stopping rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SIZE, K, mlp_generator, nonlinear_map, rel

from manifold.models import Generator
from manifold.operators import Denoise, Inpaint, gaussian_noise
from manifold.solve import Adam, AdaptiveSolution, data_consistency, solve_adaptive, solve_latent
from manifold.solve.adaptive import ENCODER_LATENT


def _lesioned(G, key):
    """An image off G's manifold: a manifold image plus a 2 x 2 bright lesion."""
    x = G(jax.random.normal(key, (K,)))
    return x.at[5:7, 9:11].add(0.5)


def _noisy(A, x, key, fraction=0.01):
    clean = A(x)
    mask = getattr(A, "mask", None)
    s = fraction * float(jnp.sqrt(jnp.sum(jnp.abs(clean) ** 2) / jnp.sum(clean != 0)))
    return gaussian_noise(key, clean, sigma=s, where=mask), s


def _perturbed(G, key, scale=0.3):
    """``G`` with its first layer perturbed: images near, but off, ``G``'s manifold (model mismatch)."""
    k1, k2 = jax.random.split(key)
    p = dict(G.params)
    p["w1"] = p["w1"] * (1 + scale * jax.random.normal(k1, p["w1"].shape))
    p["b1"] = p["b1"] + scale * jax.random.normal(k2, p["b1"].shape)
    return Generator(G.apply, p, latent_dim=K, image_shape=(SIZE, SIZE))


def test_refinement_recovers_an_image_of_a_perturbed_generator(G, mri4):
    x = _perturbed(G, jax.random.key(5))(jax.random.normal(jax.random.key(7), (K,)))
    b, s = _noisy(mri4, x, jax.random.key(8))
    sol = solve_adaptive(
        G, mri4, b, noise_level=s, key=jax.random.key(9), steps=150, learning_rate=3e-3, restarts=4, data_consistency=False
    )
    assert isinstance(sol, AdaptiveSolution)
    assert rel(sol.manifold_x, x) > 0.05  # the plain latent solution cannot represent it
    assert rel(sol.x, x) < 0.3 * rel(sol.manifold_x, x)
    assert float(sol.off_manifold) > 0.02
    assert int(sol.stop_step) > 0
    assert sol.validation_history.shape == (151,) and sol.fit_history.shape == (151,)
    # the returned iterate is within the held-out misfit's standard error of the lowest one (about 13
    # held-out components here: relative SE 0.39), near the noise level (1 per component)
    v = sol.validation_history
    margin = 1.0 - np.sqrt(2.0 / (0.1 * 2 * float(jnp.sum(mri4.mask))))
    assert float(v[int(sol.stop_step)]) <= 1.05 * float(jnp.min(v)) / margin
    assert float(jnp.min(v)) < 3.0 < float(v[0])


def test_data_consistency_puts_the_samples_back_and_keeps_a_lesion(G, mri4):
    x = _lesioned(G, jax.random.key(7))
    b = mri4(x)  # noiseless, so that a real image can match it exactly
    sol = solve_adaptive(G, mri4, b, noise_level=1e-3, key=jax.random.key(9), steps=30, restarts=4)
    np.testing.assert_allclose(np.asarray(mri4(sol.x)), np.asarray(b), atol=1e-4 * float(jnp.max(jnp.abs(b))))
    lesion = (slice(5, 7), slice(9, 11))
    assert float(jnp.mean(sol.x[lesion] - sol.manifold_x[lesion])) > 0.2  # of the 0.5 contrast
    assert rel(sol.x, x) < 0.8 * rel(sol.manifold_x, x)


def test_on_the_manifold_it_stays_there(G, mri4):
    x = G(jax.random.normal(jax.random.key(3), (K,)))
    b, s = _noisy(mri4, x, jax.random.key(4))
    sol = solve_adaptive(G, mri4, b, noise_level=s, key=jax.random.key(5), steps=60, restarts=4, data_consistency=False)
    assert rel(sol.x, x) <= rel(sol.manifold_x, x) + 0.01
    assert float(sol.off_manifold) < 0.05


def test_batched_and_nonlinear_forward_map():
    G = mlp_generator(jax.random.key(0))
    F = nonlinear_map(jax.random.key(1))
    xs = jnp.stack([_lesioned(G, jax.random.key(i)) for i in range(3)])
    b = jax.vmap(F)(xs)
    b = b + 0.01 * jnp.std(b) * jax.random.normal(jax.random.key(2), b.shape)
    sol = solve_adaptive(G, F, b, noise_level=float(0.01 * jnp.std(b)), key=jax.random.key(3), steps=40, restarts=2)
    assert sol.x.shape == (3, SIZE, SIZE) and sol.stop_step.shape == (3,)
    assert bool(jnp.all(jnp.isfinite(sol.x)))
    # one b of the batch alone gives the same answer (the held-out split follows the key per row)
    assert bool(jnp.all(sol.residual <= sol.latent_residual + 1e-6))


def test_refine_selects_weights_and_pixel_space_tensors_stay_fixed(G, mri4):
    x = _lesioned(G, jax.random.key(7))
    b, s = _noisy(mri4, x, jax.random.key(8))
    only_first = solve_adaptive(
        G, mri4, b, noise_level=s, key=jax.random.key(9), steps=20, restarts=2, refine=lambda path, leaf: "w1" in path
    )
    assert only_first.x.shape == (SIZE, SIZE)
    # a generator whose only weight is pixel-space (a linear basis (k, n_pixels)) has nothing to refine
    basis = Generator(lambda p, h: (h @ p).reshape(-1, SIZE, SIZE), jnp.ones((K, SIZE * SIZE)), latent_dim=K,
                      image_shape=(SIZE, SIZE))
    with pytest.raises(TypeError, match="G: solve_adaptive refines"):
        solve_adaptive(basis, mri4, b, noise_level=s, key=jax.random.key(0))
    with pytest.raises(TypeError, match="refine selected none"):
        solve_adaptive(G, mri4, b, noise_level=s, key=jax.random.key(0), refine=lambda p, leaf: False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"noise_level": 0.0}, "noise_level"),
        ({"noise_level": -1.0}, "noise_level"),
        ({"noise_level": float("nan")}, "noise_level"),
        ({"lam": 0.0}, "lam"),
        ({"steps": 0}, "steps"),
        ({"holdout": 0.0}, "holdout"),
        ({"holdout": 0.7}, "holdout"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"pull": -1.0}, "pull"),
    ],
)
def test_bad_options_raise(G, mri4, kwargs, match):
    b = mri4(G(jnp.zeros(K)))
    with pytest.raises(ValueError, match=match):
        solve_adaptive(G, mri4, b, key=jax.random.key(0), **kwargs)


def test_the_generators_card_sets_the_refinement_defaults(G, mri4):
    b, s = _noisy(mri4, _lesioned(G, jax.random.key(3)), jax.random.key(4))

    def run(G_, **kwargs):
        return solve_adaptive(
            G_, mri4, b, noise_level=s, key=jax.random.key(5), restarts=2, data_consistency=False, **kwargs
        )

    carded = G.replace(adaptive_options={"steps": 20, "learning_rate": 3e-3})
    from_card = run(carded)
    assert from_card.validation_history.shape == (21,)
    # the whole trajectory (the held-out misfit per iterate) is the one of the same options passed in the call
    history = lambda sol: np.asarray(sol.validation_history)
    np.testing.assert_allclose(history(from_card), history(run(G, steps=20, learning_rate=3e-3)), rtol=1e-5)
    overridden = run(carded, learning_rate=1e-4)  # the call wins over the card
    np.testing.assert_allclose(history(overridden), history(run(G, steps=20, learning_rate=1e-4)), rtol=1e-5)
    assert np.max(np.abs(history(from_card) - history(overridden)) / history(overridden)) > 0.01
    with pytest.raises(ValueError, match=r"G.adaptive_options: unknown option\(s\) \['lr'\]"):
        run(G.replace(adaptive_options={"lr": 1e-3}))
    with pytest.raises(ValueError, match="learning_rate"):
        run(G.replace(adaptive_options={"learning_rate": -1.0}))


def test_bad_generator_and_consistency_raise(G, mri4):
    b = mri4(G(jnp.zeros(K)))
    with pytest.raises(TypeError, match="G"):
        solve_adaptive(lambda h: jnp.zeros((SIZE, SIZE)), mri4, b, key=jax.random.key(0), noise_level=0.1)
    F = nonlinear_map(jax.random.key(1))
    with pytest.raises(ValueError, match="data_consistency"):
        solve_adaptive(G, F, F(G(jnp.zeros(K))), key=jax.random.key(0), noise_level=0.1, data_consistency=True)
    with pytest.raises(ValueError, match="b"):
        solve_adaptive(G, Denoise((SIZE, SIZE)), jnp.full((SIZE, SIZE), jnp.nan), key=jax.random.key(0), noise_level=0.1)


def test_latent_stage_matches_solve_latent(G, mri4):
    x = _lesioned(G, jax.random.key(7))
    b, s = _noisy(mri4, x, jax.random.key(8))
    key = jax.random.key(9)
    sol = solve_adaptive(G, mri4, b, noise_level=s, key=key, steps=5, restarts=4)
    latent = solve_latent(G, mri4, b, noise_level=s, key=key, restarts=4, warn=False)
    np.testing.assert_allclose(np.asarray(sol.manifold_x), np.asarray(latent.x), atol=1e-6)


def _with_encoder(G):
    """``G`` with a (crude, fixed linear) encoder."""
    E = jax.random.normal(jax.random.key(21), (SIZE * SIZE, K)) / SIZE
    return G.replace(encode=lambda p, x: x.reshape((x.shape[0], -1)) @ E)


def test_with_an_encoder_the_default_latent_stage_is_one_adam_run_from_the_encoded_pinv(G, mri4):
    Ge = _with_encoder(G)
    x = _lesioned(G, jax.random.key(7))
    b, s = _noisy(mri4, x, jax.random.key(8))
    key = jax.random.key(9)
    sol = solve_adaptive(Ge, mri4, b, noise_level=s, key=key, steps=5)
    # run inside the refinement's compiled step (all measured data, the latent prior weight): the same
    # iterates as solve_latent's Adam from the same start, whose objective differs by a constant factor
    latent = solve_latent(Ge, mri4, b, noise_level=s, solver=ENCODER_LATENT, restarts=1, init="encoder", warn=False)
    np.testing.assert_allclose(np.asarray(sol.manifold_x), np.asarray(latent.x), atol=1e-4)
    start = solve_latent(Ge, mri4, b, noise_level=s, solver=Adam(steps=1), restarts=1, init="encoder", warn=False)
    assert rel(sol.manifold_x, latent.x) < 1e-4 < rel(sol.manifold_x, start.x)  # it moved from the start
    # the stopping rule and the histories count the refinement's iterates only
    assert sol.validation_history.shape == (6,) and 0 <= int(sol.stop_step) <= 5
    # an explicit choice of the latent solve (here solve_latent's LM with random restarts) is kept
    lm = solve_adaptive(Ge, mri4, b, noise_level=s, key=key, steps=5, restarts=4)
    reference = solve_latent(Ge, mri4, b, noise_level=s, key=key, restarts=4, warn=False)
    np.testing.assert_allclose(np.asarray(lm.manifold_x), np.asarray(reference.x), atol=1e-6)


def test_a_latent_stage_without_an_encoder_runs_fused_from_other_starts(G, mri4):
    b, s = _noisy(mri4, _lesioned(G, jax.random.key(7)), jax.random.key(8))
    adam = Adam(steps=40, learning_rate=0.05)
    sol = solve_adaptive(G, mri4, b, noise_level=s, key=jax.random.key(9), steps=3, solver=adam, restarts=1, init="zeros")
    latent = solve_latent(G, mri4, b, noise_level=s, solver=adam, restarts=1, init="zeros", warn=False)
    np.testing.assert_allclose(np.asarray(sol.manifold_x), np.asarray(latent.x), atol=1e-4)


def test_a_latent_stage_that_fails_raises(G, mri4):
    bad = G.replace(encode=lambda p, x: jnp.full((x.shape[0], K), jnp.nan))
    b = mri4(G(jnp.zeros(K)))
    with pytest.raises(ValueError, match="G, A: the latent solve produced NaN"):
        solve_adaptive(bad, mri4, b, noise_level=0.1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="restarts"):
        solve_adaptive(G, mri4, b, noise_level=0.1, key=jax.random.key(0), restarts=0)


def test_the_sparse_deviation_explains_what_the_generator_misses(G, mri4):
    x = _lesioned(G, jax.random.key(7))
    b, s = _noisy(mri4, x, jax.random.key(8))
    run = lambda **kw: solve_adaptive(G, mri4, b, noise_level=s, key=jax.random.key(9), steps=30, restarts=4, **kw)
    none, haar = run(data_consistency=False, deviation="none"), run(data_consistency=False, deviation="haar")
    assert float(haar.residual) < 0.8 * float(none.residual)
    lesion = (slice(5, 7), slice(9, 11))
    contrast = lambda sol: float(jnp.mean(sol.x[lesion] - none.manifold_x[lesion]))
    assert contrast(haar) > contrast(none)
    # by default the deviation comes with data consistency (MRI here), and then it is the Haar one
    np.testing.assert_allclose(np.asarray(run().x), np.asarray(run(deviation="haar").x), atol=1e-6)
    assert not np.allclose(np.asarray(run().x), np.asarray(run(deviation="none").x), atol=1e-4)


def test_a_pure_noise_residual_adds_no_deviation(G, mri4):
    """On the manifold, the misfit after the refinement is noise: the universal threshold keeps it out."""
    x = G(jax.random.normal(jax.random.key(3), (K,)))
    b, s = _noisy(mri4, x, jax.random.key(4))
    kw = dict(noise_level=s, key=jax.random.key(9), steps=20, restarts=4, data_consistency=False)
    np.testing.assert_allclose(
        np.asarray(solve_adaptive(G, mri4, b, deviation="haar", **kw).x),
        np.asarray(solve_adaptive(G, mri4, b, deviation="none", **kw).x),
        atol=1e-6,
    )


@pytest.mark.parametrize(("deviation", "size"), [("wavelet", SIZE), ("haar", SIZE + 1)])
def test_a_deviation_that_does_not_fit_raises(deviation, size):
    G = mlp_generator(jax.random.key(0), size=size)
    A = Inpaint(jnp.ones((size, size), bool).at[0, 0].set(False))
    b = A(G(jnp.zeros(K)))
    with pytest.raises(ValueError, match="deviation"):
        solve_adaptive(G, A, b, noise_level=0.1, key=jax.random.key(0), deviation=deviation)


def test_error_bars_are_off_by_default_and_equal_the_noise_where_data_are_put_back(G):
    """Inpainting with data consistency: measured pixels are the data, so their std is the noise level."""
    mask = jax.random.uniform(jax.random.key(3), (SIZE, SIZE)) < 0.5
    A = Inpaint(mask)
    x = G(jax.random.normal(jax.random.key(7), (K,)))
    b, s = _noisy(A, x, jax.random.key(8))
    assert solve_adaptive(G, A, b, noise_level=s, key=jax.random.key(9), steps=20, restarts=2).x_std is None
    sol = solve_adaptive(G, A, b, noise_level=s, key=jax.random.key(9), steps=20, restarts=2, uncertainty=True)
    std = np.asarray(sol.x_std)
    assert std.shape == (SIZE, SIZE) and np.all(np.isfinite(std))
    ratio = np.median(std[np.asarray(mask)]) / s
    assert 0.85 < ratio < 1.15  # 64 noise draws: relative error about 9 %
    # unmeasured pixels: only the latent's uncertainty, which 1 % noise on half the pixels pins down
    assert 0.0 < np.median(std[~np.asarray(mask)]) < s


def test_error_bars_for_a_batch(G, mri4):
    xs = jax.vmap(G)(jax.random.normal(jax.random.key(7), (2, K)))
    b, s = _noisy(mri4, xs, jax.random.key(8))
    opts = dict(noise_level=s, key=jax.random.key(9), steps=10, restarts=2, uncertainty=True)
    batched = solve_adaptive(G, mri4, b, **opts).x_std
    assert batched.shape == (2, SIZE, SIZE)
    assert float(jnp.min(batched)) > 0.0


def test_data_consistency_puts_a_batch_of_samples_back_on_real_images(mri4):
    x = jax.random.uniform(jax.random.key(1), (3, SIZE, SIZE))
    start = jax.random.uniform(jax.random.key(2), (3, SIZE, SIZE))
    z = data_consistency(mri4, mri4(x), start)
    assert z.shape == x.shape and z.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(mri4(z)), np.asarray(mri4(x)), atol=1e-5)
    # what was not measured stays as it was: z - start lies in the null space of A
    np.testing.assert_allclose(np.asarray(mri4(z - start)), np.asarray(mri4(x - start)), atol=1e-5)
    one_step = jnp.real(start + mri4.pinv(mri4(x) - mri4(start)))  # the single complex step is not enough
    assert float(jnp.max(jnp.abs(mri4(one_step) - mri4(x)))) > 1e-2


def test_data_consistency_refuses_bad_input(mri4):
    x = jnp.zeros((SIZE, SIZE))
    with pytest.raises(ValueError, match="A: data_consistency needs"):
        data_consistency(Denoise((SIZE, SIZE)), x, x)
    with pytest.raises(ValueError, match="iterations"):
        data_consistency(mri4, mri4(x), x, iterations=0)
    with pytest.raises(ValueError, match="b: expected the batch axes"):
        data_consistency(mri4, mri4(jnp.zeros((2, SIZE, SIZE))), x)
    with pytest.raises(ValueError, match="b:"):
        data_consistency(mri4, jnp.abs(mri4(x)), x)  # |k-space| is not complex data
