"""The decoder's sub-pixel upsample+conv equals the reference conv of the upsampled map."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from manifold.models import SHIPPED, checkpoints_dir, load_generator
from manifold.models._layers import ConvDecoder, _upsample2, _upsample2_conv
from manifold.models._subspace import SubspaceDecoder


def _reference_decode(dec: ConvDecoder, h: jax.Array) -> jax.Array:
    """The decoder as defined: nearest 2x upsampling (jnp.repeat), then a 3x3 lax conv."""
    x = nnx.silu(dec.dense(h)).reshape(h.shape[0], dec.r0, dec.r0, dec.c0)
    for conv in dec.convs:
        x = nnx.silu(conv(_upsample2(x)))
    x = dec.head(x)[..., 0]
    return jax.nn.sigmoid(x) if dec.output == "sigmoid" else x


@pytest.mark.parametrize(("cin", "cout", "size"), [(1, 1, 2), (3, 5, 4), (8, 4, 5), (16, 8, 8)])
def test_upsample2_conv_matches_conv_of_upsampled(cin, cout, size):
    conv = nnx.Conv(cin, cout, (3, 3), rngs=nnx.Rngs(0))
    conv.bias[...] = jax.random.normal(jax.random.key(1), (cout,))
    x = jax.random.normal(jax.random.key(2), (2, size, size + 1, cin))
    ref = conv(_upsample2(x))
    fast = _upsample2_conv(conv, x)
    assert fast.shape == ref.shape == (2, 2 * size, 2 * size + 2, cout)
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)
    # the gradient (what the latent solvers use) matches as well
    ct = jax.random.normal(jax.random.key(3), ref.shape)
    g_ref = jax.grad(lambda x: jnp.sum(conv(_upsample2(x)) * ct))(x)
    g_fast = jax.grad(lambda x: jnp.sum(_upsample2_conv(conv, x) * ct))(x)
    np.testing.assert_allclose(g_fast, g_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("output", ["sigmoid", "linear"])
def test_decoder_matches_reference(output):
    dec = ConvDecoder(3, 16, (8, 6, 4), output=output, rngs=nnx.Rngs(4))
    h = jax.random.normal(jax.random.key(5), (3, 3))
    np.testing.assert_allclose(dec(h), _reference_decode(dec, h), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.jit(lambda h: dec(h))(h), _reference_decode(dec, h), rtol=1e-5, atol=1e-5)


def test_decoder_gradients_match_reference():
    """The gradients that training (weights) and the solvers (latent) take, against the definition's."""
    dec = ConvDecoder(3, 16, (8, 6, 4), output="linear", rngs=nnx.Rngs(4))
    h = jax.random.normal(jax.random.key(5), (3, 3))
    ct = jax.random.normal(jax.random.key(6), (3, 16, 16))
    fast = nnx.grad(lambda m, h: jnp.sum(m(h) * ct), argnums=(0, 1))(dec, h)
    ref = nnx.grad(lambda m, h: jnp.sum(_reference_decode(m, h) * ct), argnums=(0, 1))(dec, h)
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_decoder_matches_reference(name):
    """Every shipped decoder, or the convolutional residual of a subspace decoder, against the definition."""
    if not (checkpoints_dir() / name).is_dir():
        pytest.skip(f"checkpoints/{name} not present")
    G = load_generator(name)
    module = nnx.merge(G.apply.graphdef, G.params)
    dec = module if isinstance(module, ConvDecoder) else getattr(module, "decoder", None)
    conv = dec.residual if isinstance(dec, SubspaceDecoder) else dec  # m + h W + R(h): compare R
    assert isinstance(conv, ConvDecoder), f"{name}: found no ConvDecoder in {type(module).__name__}"
    h = jax.random.normal(jax.random.key(6), (4, G.latent_dim))
    out = G(h) if conv is dec else conv(h)
    np.testing.assert_allclose(out, _reference_decode(conv, h), rtol=1e-5, atol=1e-5)
