"""Stress test: EIT forwards and latent solves on CPU with default settings never deadlock, in unpinned processes.

jaxlib 0.10's batched LAPACK kernels split their batch over XLA:CPU's intra-op pool from a worker of
that pool and wait; two at once on a 2-thread pool deadlocked the first nonlinear EIT forward and
the nonlinear EIT latent solve in fresh processes unless the process was pinned to one core. The
EIT solves now call LAPACK on one matrix at a time (``manifold/eit/_schur.py``;
``tests/eit/test_lapack_calls.py`` checks the lowered programs). Each run here is a fresh Python
process on two cores (a 2-thread pool), without pinning, under a timeout: the first nonlinear
forward of the README demo (single, vmapped and a JVP), the README tour's EIT latent solve and an
MRI solve.
"""

import os
import subprocess
import sys
import textwrap

import pytest

RUNS = 20
TIMEOUT_S = 300

CHILD = textwrap.dedent(
    """
    import os, sys
    os.sched_setaffinity(0, {0, 1})  # two cores, whatever the parent was pinned to
    import jax
    import jax.numpy as jnp
    from manifold.data import lung_phantoms, mri_slices
    from manifold.eit import EITModel
    from manifold.models import load_generator
    from manifold.operators import MRI, gaussian_noise, masks
    from manifold.solve import solve_latent

    if sys.argv[1] == "eit-forward":  # the demo's first nonlinear forward (it hung 3 of 9 times), batched, a JVP
        model = EITModel(16, image_size=128)
        delta, _ = lung_phantoms(4, size=128, key=jax.random.key(int(sys.argv[2])))
        clean = model.difference(model.conductivity(delta[0]))
        b = EITModel.add_noise(jax.random.key(0), clean, snr_db=40.0)
        A = model.difference_map()
        batch = jax.vmap(A)(delta)
        tangent = jax.jvp(A, (delta[0],), (delta[1],))[1]
        print("ok", float(jnp.linalg.norm(b)), float(jnp.linalg.norm(batch)), float(jnp.linalg.norm(tangent)), flush=True)
        sys.exit(0)
    if sys.argv[1] == "eit":  # the README tour: nonlinear FEM, shipped eit-vae, defaults
        model = EITModel(16, image_size=128)
        delta, _ = lung_phantoms(1, size=128, key=jax.random.key(1))
        A = model.difference_map()
        b = A(delta[0])
        G = load_generator("eit-vae")
    else:
        G = load_generator("mri-vae")
        A = MRI(masks.random(G.image_shape, 4, acs=4, key=jax.random.key(1)))
        x = mri_slices(size=G.image_shape[0], split="test", n=1, key=jax.random.key(2))[0][0]
        b = gaussian_noise(jax.random.key(3), A(x), snr_db=40.0, where=A.mask)
    sol = solve_latent(G, A, b, key=jax.random.key(int(sys.argv[2])))
    print("ok", float(sol.residual), jax.local_devices()[0].platform)
    """
)


def _run(kind: str, seed: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "JAX_DISABLE_MOST_OPTIMIZATIONS"}  # compiled as users get it
    env |= {"MANIFOLD_JAX_CACHE": "0", "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(seed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2, reason="needs 2 CPU cores")
@pytest.mark.parametrize("kind", ["eit-forward", "eit", "mri"])
def test_default_latent_solve_never_hangs_in_fresh_two_core_processes(kind):
    for seed in range(RUNS):
        try:
            done = _run(kind, seed)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{kind} run {seed} did not finish in {TIMEOUT_S} s (deadlock)")
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.startswith("ok"), done.stdout
