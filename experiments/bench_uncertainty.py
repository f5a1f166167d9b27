"""Benchmark the posterior sampler: NUTS (``sample_posterior``) vs random-walk Metropolis, ESS per second.

    python experiments/bench_uncertainty.py            # k = 16, 64x64 MRI 4x, 1000 draws x 4 chains
    python experiments/bench_uncertainty.py --quick    # 100 draws, 2000 RWM steps
    python experiments/bench_uncertainty.py --force    # report the ratio on a loaded machine (marked FORCED)

One problem: the shipped 64x64 ``mri-gan-64`` (k = 16; ``--generator random`` for a randomly
initialised 64x64 VAE decoder with k = 16), MRI 4x random lines (4 calibration lines), an
in-range truth ``G(h*)`` with ``h* ~ N(0, I)``, 1 % complex noise.

* **NUTS**: ``sample_posterior`` with its defaults (4 chains warm-started at ``solve_latent``'s
  restarts, window adaptation, dense mass matrix), timed after a compiling call with the same
  shapes; the time includes the warm-start solve and the adaptation.
* **Random-walk Metropolis** (``blackjax.additive_step_random_walk`` with a Gaussian step), the same
  log density, 4 chains started at NUTS's last draws (no burn-in needed), timed after compiling,
  in two versions:

  - *plain* (the issue's baseline): an isotropic step ``c I``, with ``c`` tuned as NUTS's step is,
    by acceptance rate: short pilot runs on a grid of ``c`` (half decades), keeping the one whose
    acceptance is nearest the optimal 0.234 (Roberts, Gelman and Gilks 1997); the pilots are not timed;
  - *preconditioned*: covariance ``(2.38^2 / k) Sigma`` with ``Sigma`` the posterior covariance
    estimated from the NUTS draws (Roberts and Rosenthal's optimal scaling): the best proposal RWM
    can have, which in practice it would not know.

ESS is the bulk ESS (``blackjax.diagnostics.ess_bulk``), the minimum over the k latents, all
chains together. Reported: ESS/s of each, their ratio, and the seconds NUTS needs per 1000
effective draws. Ratios only on a quiet machine (``configs/quiet.py``) or with ``--force``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time

import blackjax
import jax
import jax.numpy as jnp
from configs.quiet import add_force_flag, load_guard

from manifold.models import ModelConfig, build_model, load_generator
from manifold.operators import MRI, gaussian_noise, masks, real_view
from manifold.uncertainty import sample_posterior


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    generator: str = "mri-gan-64"  # "mri-gan-64" | "random"
    accel: float = 4.0
    acs: int = 4
    noise_percent: float = 1.0
    n_chains: int = 4
    n_samples: int = 1000
    n_warmup: int = 500
    rwm_steps: int = 40000
    pilot_steps: int = 1000
    seed: int = 0


def problem(cfg: BenchConfig):
    """``(G, A, b, s, label)``: generator, MRI operator, noisy in-range data and its noise level."""
    if cfg.generator == "mri-gan-64":
        G = load_generator("mri-gan-64")
    else:
        G = build_model(ModelConfig("vae", latent_dim=16, image_size=64)).as_generator(name="random-vae")
    k_h, k_m, k_n = jax.random.split(jax.random.key(cfg.seed), 3)
    A = MRI(masks.random(G.image_shape, cfg.accel, acs=cfg.acs, key=k_m))
    y = A(G(jax.random.normal(k_h, (G.latent_dim,))))
    power = jnp.abs(y) ** 2
    s = cfg.noise_percent / 100 * float(jnp.sqrt(jnp.sum(power) / jnp.sum(power > 0)))
    b = gaussian_noise(k_n, y, sigma=s, where=A.mask)
    return (
        G,
        A,
        b,
        s,
        f"{cfg.generator}, k={G.latent_dim}, {G.image_shape}, MRI {cfg.accel:g}x, {cfg.noise_percent:g} % noise",
    )


@functools.partial(jax.jit, static_argnames=("n_steps",))
def rwm(G, A, b, sigma2, h0, step_sqrt, key, *, n_steps):
    """Random-walk Metropolis chains from ``h0`` ``(C, k)``; returns draws ``(C, n_steps, k)`` and acceptance."""

    def logp(h):
        r = real_view(A(G(h)) - b)
        return -0.5 * jnp.sum(r * r) / sigma2 - 0.5 * jnp.sum(h * h)

    kernel = blackjax.additive_step_random_walk(logp, blackjax.mcmc.random_walk.normal(step_sqrt))

    def chain(key, h):
        def step(state, k):
            state, info = kernel.step(k, state)
            return state, (state.position, info.is_accepted)

        _, (hs, accepted) = jax.lax.scan(step, kernel.init(h), jax.random.split(key, n_steps))
        return hs, accepted.mean()

    return jax.vmap(chain)(jax.random.split(key, h0.shape[0]), h0)


def ess_min(hs) -> float:
    with jax.numpy_rank_promotion("allow"):  # blackjax's diagnostics broadcast implicitly
        return float(jnp.min(blackjax.diagnostics.ess_bulk(hs, chain_axis=0, sample_axis=1)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", choices=["mri-gan-64", "random"], default=BenchConfig.generator)
    parser.add_argument("--quick", action="store_true", help="100 draws after 100 warm-up steps, 2000 RWM steps")
    add_force_flag(parser)
    args = parser.parse_args(argv)
    guard = load_guard(args.force)
    cfg = BenchConfig(generator=args.generator)
    if args.quick:
        cfg = dataclasses.replace(cfg, n_samples=100, n_warmup=100, rwm_steps=2000, pilot_steps=300)
    G, A, b, s, label = problem(cfg)
    print(f"problem: {label}; backend {jax.default_backend()}", flush=True)

    def nuts(seed):
        post = sample_posterior(
            G,
            A,
            b,
            noise_level=s,
            key=jax.random.key(seed),
            n_chains=cfg.n_chains,
            n_samples=cfg.n_samples,
            n_warmup=cfg.n_warmup,
        )
        return jax.block_until_ready(post)

    print("compiling NUTS ...", flush=True)
    nuts(100)
    t0 = time.perf_counter()
    post = nuts(101)
    t_nuts = time.perf_counter() - t0
    e_nuts = ess_min(post.h)
    grads = float(post.grad_evals.mean()) / cfg.n_samples
    print(
        f"NUTS: {cfg.n_chains} chains x ({cfg.n_warmup} warm-up + {cfg.n_samples}) draws in {t_nuts:.1f} s "
        f"(incl. warm-start solve and adaptation), {grads:.1f} gradients per draw, R-hat max "
        f"{float(post.rhat.max()):.3f}, min ESS {e_nuts:.0f}: {e_nuts / t_nuts:.1f} ESS/s, "
        f"{1000 * t_nuts / e_nuts:.1f} s per 1000 effective draws (target <= 30 s)",
        flush=True,
    )

    flat = post.h.reshape((-1, post.h.shape[-1]))
    k = flat.shape[-1]
    h0 = post.h[:, -1]
    sigma2 = post.noise_var
    eye = jnp.eye(k)
    pilots = {}
    for c in (2.38 / k**0.5) * 10.0 ** (-0.5 * jnp.arange(11)):
        _, accepted = rwm(G, A, b, sigma2, h0, float(c) * eye, jax.random.key(199), n_steps=cfg.pilot_steps)
        pilots[float(c)] = float(accepted.mean())
    c_plain = min(pilots, key=lambda c: abs(jnp.log(max(pilots[c], 1e-6) / 0.234)))
    print("plain RWM pilots (step: acceptance): " + ", ".join(f"{c:.1e}: {a:.2f}" for c, a in pilots.items()))
    cov = jnp.cov(flat.T) + 1e-12 * eye
    proposals = {
        f"plain RWM (isotropic step {c_plain:.1e})": c_plain * eye,
        "preconditioned RWM (NUTS's posterior covariance)": (2.38 / k**0.5) * jnp.linalg.cholesky(cov),
    }
    rates = {}
    for name, step_sqrt in proposals.items():
        jax.block_until_ready(rwm(G, A, b, sigma2, h0, step_sqrt, jax.random.key(200), n_steps=cfg.rwm_steps))
        t0 = time.perf_counter()
        hs, accepted = jax.block_until_ready(
            rwm(G, A, b, sigma2, h0, step_sqrt, jax.random.key(201), n_steps=cfg.rwm_steps)
        )
        t_rwm = time.perf_counter() - t0
        e_rwm = ess_min(hs)
        rates[name] = e_rwm / t_rwm
        print(
            f"{name}: {cfg.n_chains} chains x {cfg.rwm_steps} steps in {t_rwm:.1f} s, acceptance "
            f"{float(accepted.mean()):.2f}, min ESS {e_rwm:.0f}: {rates[name]:.2f} ESS/s",
            flush=True,
        )
    guard.check("before the report")
    for name, rate in rates.items():
        target = " (target >= 20x)" if name.startswith("plain") else ""
        print(guard.ratio(f"ESS per second, NUTS / {name}: {(e_nuts / t_nuts) / rate:.1f}x{target}"))


if __name__ == "__main__":
    main()
