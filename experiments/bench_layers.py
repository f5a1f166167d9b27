"""Which form of the decoder's upsample + 3x3 conv is fastest on XLA:CPU, where the package uses it?

    python experiments/bench_layers.py            # 128x128 mri-vae conv stack and the 64x64 default
    python experiments/bench_layers.py --quick    # fewer rounds

Each stage of :class:`manifold.models.ConvDecoder` is ``conv3x3(upsample2(x))``. Four exact forms
of it, swapped into the same decoder (``manifold.models._layers._upsample2_conv``):

* ``phase matmul`` (shipped): one matmul of the low-resolution 3x3 patches to the four sub-pixel
  phases (``4 cout`` channels), depth to space;
* ``four 2x2 matmuls``: the previous form, one matmul of 2x2 patches per phase;
* ``direct conv``: the same phase kernel as one ``lax.conv_general_dilated``;
* ``conv of upsampled``: the definition, a 3x3 conv of the nearest-upsampled map.

Measured, rounds alternating between the forms (medians): the VAE training step of
``bench_train.py`` (batch 32, images/s) and a CSGM loop (``lax.scan`` of Adam-free gradient steps on
``||G(h) - y||^2``, 10 restarts under ``vmap``; ms per step, and its compile time). Ratios against
the shipped form are reported only on a quiet machine (``configs/quiet.py``).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from bench_train import BenchConfig, jax_step_fn
from configs.quiet import add_force_flag, load_guard
from flax import nnx

from manifold.models import _layers
from manifold.models._layers import ConvDecoder

_SHIPPED = _layers._upsample2_conv
# four_matmuls's taps: for phase a, low-resolution tap t (offset a - 1 + t) gathers 3x3 taps d
_SUBPIXEL = np.array([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], np.float32)


def four_matmuls(conv: nnx.Conv, x: jax.Array) -> jax.Array:
    kernel, bias = conv.kernel[...], conv.bias[...]
    n, h, w, cin = x.shape
    cout = kernel.shape[-1]
    taps = jnp.einsum("aty,bux,yxio->abtuio", _SUBPIXEL, _SUBPIXEL, kernel).reshape(2, 2, 4 * cin, cout)
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    phase = [
        [
            jnp.concatenate([xp[:, a + t : a + t + h, b + u : b + u + w] for t in range(2) for u in range(2)], -1)
            @ taps[a, b]
            for b in range(2)
        ]
        for a in range(2)
    ]
    y = jnp.stack([jnp.stack(row, axis=3) for row in phase], axis=2)  # (n, h, a, w, b, cout)
    return y.reshape(n, 2 * h, 2 * w, cout) + bias.reshape(1, 1, 1, cout)


def direct_conv(conv: nnx.Conv, x: jax.Array) -> jax.Array:
    kernel, bias = conv.kernel[...], conv.bias[...]
    n, h, w, _ = x.shape
    cout = kernel.shape[-1]
    z = jax.lax.conv_general_dilated(
        x, _layers._phase_kernel(kernel), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    z = z.reshape(n, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5)
    return z.reshape(n, 2 * h, 2 * w, cout) + bias.reshape(1, 1, 1, cout)


FORMS = {
    "phase matmul (shipped)": _SHIPPED,
    "four 2x2 matmuls": four_matmuls,
    "direct conv": direct_conv,
    "conv of upsampled": lambda conv, x: conv(_layers._upsample2(x)),
}


def csgm_loop(cfg: BenchConfig, *, restarts: int = 10, steps: int = 50):
    """A compiled ``lax.scan`` of ``steps`` gradient steps on ``||G(h) - y||^2`` for ``restarts`` latents."""
    dec = ConvDecoder(cfg.latent_dim, cfg.image_size, cfg.channels, output="sigmoid", rngs=nnx.Rngs(1))
    graphdef, state = nnx.split(dec)

    def G(h):
        return nnx.merge(graphdef, state)(h[None])[0]

    h0 = jax.random.normal(jax.random.key(2), (restarts, cfg.latent_dim))
    y = jax.vmap(G)(0.5 * h0)

    def step(h, _):
        return h - 1e-3 * jax.grad(lambda u: jnp.sum((jax.vmap(G)(u) - y) ** 2))(h), None

    loop = jax.jit(lambda h: jax.lax.scan(step, h, None, length=steps)[0])
    t = time.perf_counter()
    jax.block_until_ready(loop(h0))
    compile_s = time.perf_counter() - t

    def run():
        jax.block_until_ready(loop(h0))

    return run, compile_s, steps


def measure(cfg: BenchConfig, rounds: int) -> dict:
    """``{form: (training images/s, CSGM ms per step, CSGM compile s)}``, alternating rounds."""
    train, loops, compile_s = {}, {}, {}
    for name, form in FORMS.items():
        _layers._upsample2_conv = form  # the decoder looks it up at trace time
        try:
            train[name] = jax_step_fn(cfg)
            train[name](2)
            loops[name], compile_s[name], steps = csgm_loop(cfg)
        finally:
            _layers._upsample2_conv = _SHIPPED
    t_train = {name: [] for name in FORMS}
    t_loop = {name: [] for name in FORMS}
    for _ in range(rounds):
        for name in FORMS:
            t = time.perf_counter()
            train[name](cfg.steps_per_round)
            t_train[name].append(time.perf_counter() - t)
            t = time.perf_counter()
            loops[name]()
            t_loop[name].append(time.perf_counter() - t)
    return {
        name: (
            cfg.batch_size * cfg.steps_per_round / float(np.median(t_train[name])),
            1e3 * float(np.median(t_loop[name])) / steps,
            compile_s[name],
        )
        for name in FORMS
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7")
    add_force_flag(parser)
    args = parser.parse_args(argv)
    guard = load_guard(args.force)
    configs = {
        "128x128, k = 256, mri-vae conv stack": BenchConfig(128, 256, (32, 32, 32, 16, 16, 8)),
        "64x64, k = 16 (bench_train default)": BenchConfig(),
    }
    for label, cfg in configs.items():
        result = measure(cfg, 3 if args.quick else 7)
        guard.check(f"after {label}")
        train0, loop0, _ = result["phase matmul (shipped)"]
        print(f"{label}, batch {cfg.batch_size}; CSGM loop: 10 restarts")
        print(f"  {'form':<24}{'train images/s':>16}{'CSGM ms/step':>14}{'compile s':>11}")
        for name, (ips, ms, comp) in result.items():
            ratios = guard.ratio(f"  (shipped: {train0 / ips:.2f}x / {ms / loop0:.2f}x faster)")
            print(f"  {name:<24}{ips:>16.1f}{ms:>14.2f}{comp:>11.1f}{ratios}")


if __name__ == "__main__":
    main()
