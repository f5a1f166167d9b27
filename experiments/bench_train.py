"""VAE training throughput (images/s): manifold's jitted Flax NNX step vs the same network in PyTorch.

Both train the same architecture (conv encoder / upsample+conv decoder, SiLU, Adam with
global-norm clipping, one reparameterised sample, loss ||G(h) - x||^2 + beta KL) on the same
random batch, on the same CPU, after warm-up. Rounds alternate between the two so that load
from other processes affects both alike; the medians are compared.

    python experiments/bench_train.py                 # MRI-VAE size: 64x64, k = 16, batch 32
    python experiments/bench_train.py --image-size 128 --latent-dim 8 --channels 32,32,32,16,8,4

The ratio is reported only on a quiet machine (``configs/quiet.py``: at most 0.5 load per core,
else exit 2; ``--force`` reports it marked ``(FORCED, loaded)``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import jax
import numpy as np

from configs.quiet import add_force_flag, load_guard
from manifold.models import ModelConfig, build_model
from manifold.train import DataConfig, TrainConfig, make_optimizer, make_train_step


@dataclasses.dataclass
class BenchConfig:
    image_size: int = 64
    latent_dim: int = 16
    channels: tuple[int, ...] = (64, 64, 32, 16, 8)
    batch_size: int = 32
    steps_per_round: int = 5
    rounds: int = 5
    beta: float = 0.02


def jax_step_fn(cfg: BenchConfig):
    tcfg = TrainConfig(
        ModelConfig("vae", cfg.latent_dim, cfg.image_size, cfg.channels),
        DataConfig("blobs", size=cfg.image_size),
        steps=1000, batch_size=cfg.batch_size, beta=cfg.beta,
    )  # fmt: skip
    model = build_model(tcfg.model)
    optimizer = make_optimizer(model, tcfg)
    step = make_train_step(tcfg)
    x = jax.numpy.asarray(np.random.default_rng(0).uniform(size=(cfg.batch_size, cfg.image_size, cfg.image_size)), "float32")
    counter = iter(range(10**9))

    def run(n):
        for _ in range(n):
            metrics = step(model, optimizer, x, jax.random.key(next(counter)))
        jax.block_until_ready(metrics)

    return run


def torch_step_fn(cfg: BenchConfig):
    import torch
    from torch import nn

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    ch = list(cfg.channels)
    r0 = cfg.image_size // 2 ** (len(ch) - 1)
    k = cfg.latent_dim

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            rev = ch[::-1]
            enc = [nn.Conv2d(1, rev[0], 3, padding=1), nn.SiLU()]
            for cin, cout in zip(rev[:-1], rev[1:]):
                enc += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.SiLU()]
            self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(r0 * r0 * rev[-1], 2 * k))
            self.dense = nn.Linear(k, r0 * r0 * ch[0])
            dec = []
            for cin, cout in zip(ch[:-1], ch[1:]):
                dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1), nn.SiLU()]
            self.decoder = nn.Sequential(*dec, nn.Conv2d(ch[-1], 1, 3, padding=1), nn.Sigmoid())

        def forward(self, x):
            out = self.encoder(x)
            mu, logvar = out[:, :k], out[:, k:]
            h = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            y = nn.functional.silu(self.dense(h)).view(-1, ch[0], r0, r0)
            return self.decoder(y), mu, logvar

    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(np.random.default_rng(0).uniform(size=(cfg.batch_size, 1, cfg.image_size, cfg.image_size)).astype("float32"))

    def run(n):
        for _ in range(n):
            x_hat, mu, logvar = model(x)
            kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
            loss = (((x_hat - x) ** 2).sum((1, 2, 3)) + cfg.beta * kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

    return run


def measure(runs: dict, cfg: BenchConfig) -> dict[str, float]:
    """Median images/s per implementation over alternating rounds (after one warm-up round)."""
    for run in runs.values():
        run(2)  # compile / warm up
    times = {name: [] for name in runs}
    for _ in range(cfg.rounds):
        for name, run in runs.items():
            t = time.perf_counter()
            run(cfg.steps_per_round)
            times[name].append(time.perf_counter() - t)
    return {name: cfg.batch_size * cfg.steps_per_round / float(np.median(ts)) for name, ts in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, default=BenchConfig.image_size)
    p.add_argument("--latent-dim", type=int, default=BenchConfig.latent_dim)
    p.add_argument("--channels", default=",".join(map(str, BenchConfig.channels)))
    p.add_argument("--batch-size", type=int, default=BenchConfig.batch_size)
    p.add_argument("--rounds", type=int, default=BenchConfig.rounds)
    p.add_argument("--steps-per-round", type=int, default=BenchConfig.steps_per_round)
    add_force_flag(p)
    a = p.parse_args(argv)
    guard = load_guard(a.force)
    cfg = BenchConfig(a.image_size, a.latent_dim, tuple(int(c) for c in a.channels.split(",")), a.batch_size,
                      a.steps_per_round, a.rounds)  # fmt: skip
    runs = {"jax": jax_step_fn(cfg)}
    try:
        runs["torch"] = torch_step_fn(cfg)
    except ImportError:
        print("PyTorch not installed: measuring the JAX step only")
    ips = measure(runs, cfg)
    guard.check("before the report")
    print(f"VAE {cfg.image_size}x{cfg.image_size}, k={cfg.latent_dim}, channels={list(cfg.channels)}, batch {cfg.batch_size}, "
          f"{len(os.sched_getaffinity(0))} CPU threads, {jax.default_backend()}")  # fmt: skip
    for name, v in ips.items():
        print(f"  {name:6s} {v:8.1f} images/s")
    if "torch" in ips:
        print(guard.ratio(f"  ratio jax / torch = {ips['jax'] / ips['torch']:.2f} (target >= 1.0)"))


if __name__ == "__main__":
    main()
