"""Losses, optimizers and the ``@nnx.jit`` training steps (model and optimizer state donated).

Each step takes ``(model, optimizer, batch, key)``, updates model and optimizer in place and
returns a dict of scalar metrics. ``key`` is derived from ``(seed, step)`` by the caller, so
steps are reproducible and a resumed run repeats them exactly.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from manifold.metrics import spectral_peak_excess
from manifold.models import GAN, VAE, VAEGAN, AutoEncoder
from manifold.train._config import TrainConfig

__all__ = [
    "GANOptimizers",
    "autoencoder_loss",
    "gan_losses",
    "make_optimizer",
    "make_train_step",
    "vae_loss",
    "vaegan_losses",
]


def autoencoder_loss(model: AutoEncoder, x: jax.Array) -> tuple[jax.Array, dict]:
    """Mean over the batch of ``||D(E(x)) - x||^2`` (summed over pixels)."""
    sq = jnp.sum((model(x) - x) ** 2, axis=(1, 2))
    return jnp.mean(sq), {"mse": jnp.mean(sq) / (x.shape[1] * x.shape[2])}


def vae_loss(model: VAE, x: jax.Array, key: jax.Array, *, beta: float) -> tuple[jax.Array, dict]:
    """Negative ELBO (up to constants), mean over the batch::

        ||G(h) - x||^2 + beta * KL(N(mu, diag(exp(logvar))) || N(0, I)),
        KL = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j),

    one reparameterised sample ``h`` per image. With a Gaussian likelihood of std ``sigma`` the
    exact negative ELBO is this divided by ``2 sigma^2``, i.e. ``beta = 2 sigma^2``.
    """
    loss, aux, _ = _vae_terms(model, x, key, beta)
    return loss, aux


def _vae_terms(model, x, key, beta):
    x_hat, mu, logvar = model(x, key=key)
    sq = jnp.sum((x_hat - x) ** 2, axis=(1, 2))
    kl = 0.5 * jnp.sum(mu**2 + jnp.exp(logvar) - 1.0 - logvar, axis=1)
    loss = jnp.mean(sq + beta * kl)
    return loss, {"mse": jnp.mean(sq) / (x.shape[1] * x.shape[2]), "kl": jnp.mean(kl)}, x_hat


def _r1_discriminator_loss(disc, real, fake, r1_gamma):
    """``E softplus(-D(x)) + E softplus(D(fake)) + gamma/2 E ||grad_x D(x)||^2`` over real ``x``."""
    graphdef, state = nnx.split(disc)

    def d_sum(x):
        return jnp.sum(nnx.merge(graphdef, state)(x))

    real_logits = disc(real)[:, 0]
    fake_logits = disc(fake)[:, 0]
    grad_real = jax.grad(d_sum)(real)
    r1 = jnp.mean(jnp.sum(grad_real**2, axis=(1, 2)))
    adv = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
    return adv + 0.5 * r1_gamma * r1, {"d_loss": adv, "r1": r1, "d_real": jnp.mean(real_logits)}


def gan_losses(model: GAN, real: jax.Array, z: jax.Array, *, r1_gamma: float):
    """Discriminator and generator losses of the non-saturating GAN with R1 regularisation.

    ``L_D = E softplus(-D(x)) + E softplus(D(G(z))) + gamma/2 E ||grad_x D(x)||^2`` (x real) and
    ``L_G = E softplus(-D(G(z)))``.

    Why this loss: the non-saturating loss gives the generator strong gradients early on, and the
    R1 penalty (Mescheder et al., 2018) makes the simultaneous gradient dynamics locally
    convergent without normalisation layers, so one D step per G step suffices. WGAN-GP would
    need several critic steps per generator step (about 5x the cost), which a CPU budget cannot
    afford. Returned as two functions of the discriminator / generator sub-modules.
    """

    def d_loss(disc):
        return _r1_discriminator_loss(disc, real, jax.lax.stop_gradient(model.generator(z)), r1_gamma)

    def g_loss(gen):
        logits = model.discriminator(gen(z))[:, 0]
        return jnp.mean(jax.nn.softplus(-logits)), {"d_fake": jnp.mean(logits)}

    return d_loss, g_loss


def vaegan_losses(
    model: VAEGAN,
    real: jax.Array,
    key: jax.Array,
    *,
    beta: float,
    adversarial_weight: float,
    r1_gamma: float,
    spectral_weight: float = 0.0,
):
    """Generator (VAE) and discriminator losses of the VAE-GAN.

    With ``x_hat = G(h), h ~ q(h|x)`` the reconstructions and ``x_z = G(z), z ~ N(0, I)`` prior
    samples (one of each per real image), ``f`` both,
    ``L_adv = E softplus(-D(f)) + s spectral_peak_excess(f, x)``::

        L_G = vae_loss(x) + lambda L_adv,
        lambda = w ||dL_rec/dx_hat|| / ||dL_adv/df||          (not differentiated),
        L_D = E softplus(-D(x)) + E softplus(D(f)) + gamma/2 E ||grad_x D(x)||^2,

    ``w = adversarial_weight``, ``s = spectral_weight``, ``gamma = r1_gamma``: :func:`vae_loss`, and the non-saturating
    GAN loss with R1 as in :func:`gan_losses` (the discriminator anti-aliased, see
    :class:`~manifold.models.VAEGAN` for why). The adaptive ``lambda`` (as VQGAN's, Esser et al.,
    2021, but measured on the decoded images rather than the last layer) makes the adversarial pull
    on the images ``w`` times the reconstruction's, whatever the images' scale and however sharp
    the discriminator has become: ``w`` needs no tuning to the data. The reconstruction term
    keeps every training image on the manifold; the adversarial term on ``x_z`` pushes the prior's
    samples towards the data. The anti-aliased discriminator cannot see the Nyquist frequency, so
    without ``s`` nothing holds what the decoder draws there (measured on ``mri-vae`` in
    ``experiments/configs/train.py``: a Nyquist line grew on the prior samples); the spectral term
    (:func:`manifold.metrics.spectral_peak_excess`, zero until the fakes' spectrum, relative to
    the batch's, spikes at high frequency) is part of ``L_adv``, weighted by the same ``lambda``.

    Returns:
      ``(g_loss, d_loss)``: ``g_loss(vae) -> (loss, (aux, fakes))``, whose fakes go to
      ``d_loss(disc, fakes) -> (loss, aux)``, so that one step decodes once.
    """
    k_post, k_prior = jax.random.split(key)
    z = jax.random.normal(k_prior, (real.shape[0], model.config.latent_dim), real.dtype)
    d_graphdef, d_state = nnx.split(model.discriminator)

    def adversarial(fakes):
        d_term = jnp.mean(jax.nn.softplus(-nnx.merge(d_graphdef, d_state)(fakes)[:, 0]))
        spectral = spectral_peak_excess(fakes, real)
        return d_term + spectral_weight * spectral, spectral

    def g_loss(vae):
        loss, aux, x_hat = _vae_terms(vae, real, k_post, beta)
        fakes = jnp.concatenate([x_hat, vae.decode(z)])
        (adv, spectral), pull = jax.value_and_grad(adversarial, has_aux=True)(jax.lax.stop_gradient(fakes))
        rec_pull = 2.0 * jax.lax.stop_gradient(x_hat - real) / real.shape[0]
        lam = adversarial_weight * jnp.linalg.norm(rec_pull) / (jnp.linalg.norm(pull) + 1e-12)
        # value lam * L_adv, gradient with respect to the fakes lam * dL_adv/df (one pass through D)
        surrogate = jnp.sum(jax.lax.stop_gradient(lam * pull) * fakes)
        adversarial_term = surrogate - jax.lax.stop_gradient(surrogate) + lam * adv
        return loss + adversarial_term, ({**aux, "g_adv": adv, "g_spectral": spectral, "adv_lambda": lam}, fakes)

    def d_loss(disc, fakes):
        return _r1_discriminator_loss(disc, real, jax.lax.stop_gradient(fakes), r1_gamma)

    return g_loss, d_loss


class GANOptimizers(nnx.Module):
    """The two optimizers of a GAN or VAE-GAN: ``g`` over the generator part (the VAE's encoder
    and decoder for a VAE-GAN), ``d`` over the discriminator."""

    def __init__(self, model: GAN | VAEGAN, tx_g: optax.GradientTransformation, tx_d: optax.GradientTransformation):
        self.g = nnx.Optimizer(model.generator_part(), tx_g, wrt=nnx.Param)
        self.d = nnx.Optimizer(model.discriminator, tx_d, wrt=nnx.Param)


def _schedule(cfg: TrainConfig) -> optax.Schedule:
    total = max(cfg.total_schedule_steps, cfg.warmup_steps + 1)
    return optax.warmup_cosine_decay_schedule(
        0.0, cfg.learning_rate, cfg.warmup_steps, total, end_value=0.1 * cfg.learning_rate
    )


def make_optimizer(model, cfg: TrainConfig):
    """Adam with linear warm-up and cosine decay, gradients clipped to global norm 1.

    The GAN and the VAE-GAN use Adam(b1=0.5, b2=0.99) for both networks (the usual GAN setting).
    """
    if isinstance(model, (GAN, VAEGAN)):

        def tx():
            return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(_schedule(cfg), b1=0.5, b2=0.99))

        return GANOptimizers(model, tx(), tx())
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(_schedule(cfg)))
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


@functools.partial(nnx.jit, donate_argnums=(0, 1))
def _ae_step(model, optimizer, batch, key):
    del key
    (loss, aux), grads = nnx.value_and_grad(autoencoder_loss, has_aux=True)(model, batch)
    optimizer.update(model, grads)
    return {"loss": loss, **aux}


@functools.partial(nnx.jit, donate_argnums=(0, 1))
def _vae_step(model, optimizer, batch, key, beta):
    loss_fn = functools.partial(vae_loss, key=key, beta=beta)
    (loss, aux), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, batch)
    optimizer.update(model, grads)
    return {"loss": loss, **aux}


@functools.partial(nnx.jit, donate_argnums=(0, 1))
def _gan_step(model, optimizers, batch, key, r1_gamma):
    k_d, k_g = jax.random.split(key)
    z_d = jax.random.normal(k_d, (batch.shape[0], model.config.latent_dim), batch.dtype)
    d_loss, _ = gan_losses(model, batch, z_d, r1_gamma=r1_gamma)
    (_, d_aux), grads = nnx.value_and_grad(d_loss, has_aux=True)(model.discriminator)
    optimizers.d.update(model.discriminator, grads)
    z_g = jax.random.normal(k_g, z_d.shape, batch.dtype)
    _, g_loss = gan_losses(model, batch, z_g, r1_gamma=r1_gamma)
    (loss, g_aux), grads = nnx.value_and_grad(g_loss, has_aux=True)(model.generator)
    optimizers.g.update(model.generator, grads)
    return {"loss": loss, **d_aux, **g_aux}


@functools.partial(nnx.jit, donate_argnums=(0, 1))
def _vaegan_step(model, optimizers, batch, key, beta, adversarial_weight, r1_gamma, spectral_weight):
    g_loss, d_loss = vaegan_losses(
        model,
        batch,
        key,
        beta=beta,
        adversarial_weight=adversarial_weight,
        r1_gamma=r1_gamma,
        spectral_weight=spectral_weight,
    )
    (loss, (g_aux, fakes)), grads = nnx.value_and_grad(g_loss, has_aux=True)(model.vae)
    optimizers.g.update(model.vae, grads)
    (_, d_aux), grads = nnx.value_and_grad(d_loss, has_aux=True)(model.discriminator, fakes)
    optimizers.d.update(model.discriminator, grads)
    return {"loss": loss, **g_aux, **d_aux}


def make_train_step(cfg: TrainConfig):
    """The jitted step ``step(model, optimizer, batch, key) -> metrics`` for ``cfg.model``."""
    arch = cfg.model.architecture
    if arch == "autoencoder":
        return _ae_step
    if arch == "vae":
        return lambda m, o, b, k: _vae_step(m, o, b, k, jnp.float32(cfg.beta))
    if arch == "vaegan":
        weights = tuple(jnp.float32(w) for w in (cfg.beta, cfg.adversarial_weight, cfg.r1_gamma, cfg.spectral_weight))
        return lambda m, o, b, k: _vaegan_step(m, o, b, k, *weights)
    return lambda m, o, b, k: _gan_step(m, o, b, k, jnp.float32(cfg.r1_gamma))
