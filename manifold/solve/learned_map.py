"""A learned direct map ``b -> h`` from data to latent code (Seo et al. 2019, lung EIT).

Seo, Kim, Jargal, Lee & Harrach ("A learning-based method for solving ill-posed nonlinear inverse
problems: a simulation study of lung EIT", SIAM J. Imaging Sci. 2019) reconstruct by
``x = G(f(b))``: a small network ``f`` trained on simulated pairs ``(A(G(h)) + noise, h)`` with
``h`` drawn from the latent prior, so that inference is one forward pass. Here ``f`` is an MLP
(Flax NNX) on standardised data, trained with Adam on the mean squared latent error

    min_f  E_{h ~ N(0, I), e}  ||f(A(G(h)) + e) - h||^2,    e ~ N(0, (noise * rms(A(G(h))))^2 I).

The result is usable alone (``G(f(b))``) or as the starting point of the latent solver
(``solve_latent(..., init=f)``), which then only polishes a good guess.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from manifold.checks import check_key
from manifold.models import latent_dim_of
from manifold.operators import real_view
from manifold.solve._problem import check_problem

__all__ = ["LearnedMap", "fit_learned_map"]


class _MLP(nnx.Module):
    def __init__(self, sizes: Sequence[int], *, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)])

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = nnx.gelu(layer(x))
        return self.layers[-1](x)


@jax.tree_util.register_pytree_node_class
class LearnedMap:
    """The trained map ``b -> h``; a pytree (weights and standardisation are leaves).

    Call it on data of shape ``out_shape`` or ``(*batch, *out_shape)``.
    """

    def __init__(self, graphdef, params, mean: jax.Array, scale: jax.Array, out_shape: tuple[int, ...]):
        self.graphdef, self.params = graphdef, params
        self.mean, self.scale = mean, scale
        self.out_shape = tuple(out_shape)

    def tree_flatten(self):
        return (self.params, self.mean, self.scale), (self.graphdef, self.out_shape)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(aux[0], *children, aux[1])

    def _features(self, b):
        return (jax.vmap(real_view)(b) - self.mean[None]) / self.scale[None]

    def __call__(self, b: jax.Array) -> jax.Array:
        b = jnp.asarray(b)
        nb = len(self.out_shape)
        if b.ndim < nb or b.shape[b.ndim - nb :] != self.out_shape:
            raise ValueError(f"b: expected shape {self.out_shape} or (batch, *{self.out_shape}), got {b.shape}")
        batch = b.shape[: b.ndim - nb]
        net = nnx.merge(self.graphdef, self.params)
        h = net(self._features(b.reshape((-1, *self.out_shape))))
        return h.reshape((*batch, h.shape[-1]))


def fit_learned_map(
    G: Callable,
    A: Callable,
    *,
    key: jax.Array,
    n_train: int = 4096,
    noise: float = 0.01,
    hidden: Sequence[int] = (256, 256),
    steps: int = 2000,
    batch_size: int = 128,
    lr: float = 1e-3,
    latent_dim: int | None = None,
) -> tuple[LearnedMap, jax.Array]:
    """Train an MLP ``b -> h`` on simulated pairs ``(A(G(h)) + noise, h)``, ``h ~ N(0, I)``.

    Args:
      G: the generator.
      A: the forward map (linear operator or differentiable callable).
      key: PRNG key (latents, noise, initial weights, minibatches).
      n_train: number of simulated pairs.
      noise: relative noise level: standard deviation ``noise * rms(A(G(h)))`` per entry.
      hidden: widths of the hidden layers.
      steps: Adam steps (one compiled ``lax.scan``).
      batch_size: minibatch size.
      lr: Adam learning rate.
      latent_dim: ``k`` when ``G`` has no ``latent_dim``.

    Returns:
      ``(learned_map, loss_history)``: the map and the ``(steps,)`` minibatch losses.
    """
    key = check_key(key)
    for name, value in (("n_train", n_train), ("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if not (float(noise) >= 0.0 and float(lr) > 0.0):
        raise ValueError(f"noise, lr: expected noise >= 0 and lr > 0, got noise={noise!r}, lr={lr!r}")
    k = latent_dim_of(G, latent_dim)
    out = jax.eval_shape(lambda h: A(G(h)), jax.ShapeDtypeStruct((k,), jnp.float32))
    check_problem(G, A, jnp.zeros(out.shape, out.dtype), latent_dim=latent_dim)  # shapes fit together
    out_shape = tuple(out.shape)
    k_h, k_e, k_net, k_batch = jax.random.split(key, 4)
    h = jax.random.normal(k_h, (n_train, k))
    y = jax.lax.map(lambda hi: real_view(A(G(hi))), h, batch_size=64)
    rms = jnp.sqrt(jnp.mean(y * y, axis=1, keepdims=True))
    y = y + noise * rms * jax.random.normal(k_e, y.shape)
    mean, scale = jnp.mean(y, axis=0), jnp.std(y, axis=0) + 1e-6 * jnp.std(y)
    feats = (y - mean[None]) / scale[None]

    net = _MLP([feats.shape[1], *hidden, k], rngs=nnx.Rngs(params=k_net))
    graphdef, params = nnx.split(net)
    opt = optax.adam(lr)

    def loss_fn(p, xb, hb):
        return jnp.mean((nnx.merge(graphdef, p)(xb) - hb) ** 2)

    @jax.jit
    def train(params, feats, h, keys):
        def step(carry, key_i):
            p, s = carry
            idx = jax.random.randint(key_i, (batch_size,), 0, feats.shape[0])
            loss, g = jax.value_and_grad(loss_fn)(p, feats[idx], h[idx])
            updates, s = opt.update(g, s, p)
            return (optax.apply_updates(p, updates), s), loss

        (p, _), losses = jax.lax.scan(step, (params, opt.init(params)), keys)
        return p, losses

    params, losses = train(params, feats, h, jax.random.split(k_batch, steps))
    return LearnedMap(graphdef, params, mean, scale, out_shape), losses

