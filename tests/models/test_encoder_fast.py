"""The encoder's im2col convolutions equal the reference ``lax`` convolutions they replace."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from manifold.models._layers import ConvEncoder, _conv3x3_patches


def _reference_encode(enc: ConvEncoder, x: jax.Array) -> jax.Array:
    """The encoder as defined: the flax convolutions themselves."""
    x = enc._act(enc.stem(x[..., None]))
    for conv in enc.convs:
        x = enc._act(conv(x))
    return enc.dense(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize(
    ("cin", "cout", "stride", "shape"),
    [(1, 8, 1, (16, 16)), (3, 5, 1, (7, 9)), (4, 6, 2, (16, 16)), (3, 5, 2, (7, 10)), (2, 3, 2, (2, 2))],
)
def test_conv3x3_patches_matches_conv(cin, cout, stride, shape):
    conv = nnx.Conv(cin, cout, (3, 3), strides=stride if stride == 1 else (stride, stride), rngs=nnx.Rngs(0))
    conv.bias[...] = jax.random.normal(jax.random.key(1), (cout,))
    x = jax.random.normal(jax.random.key(2), (2, *shape, cin))
    ref, fast = conv(x), _conv3x3_patches(conv, x)
    assert fast.shape == ref.shape
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)
    ct = jax.random.normal(jax.random.key(3), ref.shape)  # the gradients (what training uses) as well
    g_ref = jax.grad(lambda x: jnp.sum(conv(x) * ct))(x)
    g_fast = jax.grad(lambda x: jnp.sum(_conv3x3_patches(conv, x) * ct))(x)
    np.testing.assert_allclose(g_fast, g_ref, rtol=1e-4, atol=1e-4)
    w_ref = nnx.grad(lambda m: jnp.sum(m(x) * ct))(conv)
    w_fast = nnx.grad(lambda m: jnp.sum(_conv3x3_patches(m, x) * ct))(conv)
    for name in ("kernel", "bias"):
        np.testing.assert_allclose(w_fast[name][...], w_ref[name][...], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("negative_slope", [0.0, 0.2])
def test_encoder_matches_reference(negative_slope):
    enc = ConvEncoder(16, (8, 6, 4), 5, negative_slope=negative_slope, rngs=nnx.Rngs(4))
    x = jax.random.uniform(jax.random.key(5), (3, 16, 16))
    np.testing.assert_allclose(enc(x), _reference_encode(enc, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.jit(lambda x: enc(x))(x), _reference_encode(enc, x), rtol=1e-5, atol=1e-5)
