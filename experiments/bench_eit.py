"""Benchmark the JAX EIT forward solver against pyEIT on the same mesh, and the rank of J.

Prints, for one mesh (default: the thorax mesh of ``manifold.eit``, ~1k nodes) and the adjacent
protocol (208 measurements):

* the forward time of a batch of 32 conductivities: ours (point-electrode model, jit, vmap,
  after compilation; the CEM for reference) vs pyEIT ``EITForward.solve_eit`` in a loop;
* the Jacobian time: ours (adjoint formula) vs pyEIT ``EITForward.compute_jac``;
* the singular values of the CEM Jacobian at the homogeneous body (float64), and its numerical
  rank against the 104 = 16 * 13 / 2 independent measurements (reciprocity).

Timings are medians (and minima) of ``--repeats`` interleaved runs after a warm-up, with
``block_until_ready``; the CPU-time ratio is printed too, as it is robust to other load.

    python experiments/bench_eit.py [--batch 32] [--repeats 5] [--mesh thorax|disk]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from configs.quiet import add_force_flag, load_guard

from manifold.eit import FEM, Protocol, disk_mesh, thorax_mesh


@dataclasses.dataclass
class BenchConfig:
    mesh: str = "thorax"
    batch: int = 32
    repeats: int = 7
    seed: int = 0
    out: str = "out/bench_eit.json"


def interleaved_times(fns: dict, repeats: int) -> dict:
    """``(median wall, min wall, median CPU)`` time (s) of each ``fn()`` after a warm-up call.

    The candidates run in turn within every repeat, so that load from other processes on a
    shared machine affects all of them alike.
    """
    for fn in fns.values():
        jax.block_until_ready(fn())
    times = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {
        name: (float(np.median(times[name])), float(np.min(times[name])), float(np.median(cpu[name]))) for name in fns
    }


def singular_values(mesh) -> np.ndarray:
    """Singular values of the CEM Jacobian (208 x n_elements) at σ = 1, in float64."""
    with jax.enable_x64(True):
        fem = FEM(mesh, Protocol.adjacent(mesh.n_electrodes))
        jac = fem.jacobian(jnp.ones(mesh.n_elements, jnp.float64))
        return np.linalg.svd(np.asarray(jac), compute_uv=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for field in dataclasses.fields(BenchConfig):
        parser.add_argument(f"--{field.name}", type=type(field.default), default=field.default)
    add_force_flag(parser)
    args = vars(parser.parse_args())
    guard = load_guard(args.pop("force"))
    cfg = BenchConfig(**args)

    from pyeit.eit.fem import EITForward  # test/bench dependency only
    from pyeit.eit.protocol import create as pyeit_protocol
    from pyeit.mesh import PyEITMesh

    mesh = {"thorax": thorax_mesh, "disk": disk_mesh}[cfg.mesh](16)
    protocol = Protocol.adjacent(16)
    ours = FEM(mesh, protocol, model="point")
    ours_cem = FEM(mesh, protocol, model="cem")
    theirs = EITForward(
        PyEITMesh(node=mesh.nodes, element=mesh.triangles, el_pos=mesh.electrode_centres, ref_node=ours.ref_node),
        pyeit_protocol(16, dist_exc=1, step_meas=1, parser_meas="std"),
    )
    print(f"mesh: {mesh}, protocol: {protocol}, solver: {ours._schur}")
    print(f"JAX backend: {jax.default_backend()}, CPUs: {os.cpu_count()}")

    rng = np.random.default_rng(cfg.seed)
    sigmas = np.exp(0.3 * rng.standard_normal((cfg.batch, mesh.n_elements)))
    sigmas_j = jnp.asarray(sigmas, jnp.float32)

    # same physics: the point-electrode voltages agree
    v_ours = np.asarray(ours.forward(sigmas_j[0]))
    v_theirs = theirs.solve_eit(sigmas[0])
    agree = float(np.linalg.norm(v_ours - v_theirs) / np.linalg.norm(v_theirs))

    fwd = interleaved_times(
        {
            "ours": lambda: ours.forward(sigmas_j),
            "ours_cem": lambda: ours_cem.forward(sigmas_j),
            "pyeit": lambda: [theirs.solve_eit(s) for s in sigmas],
        },
        cfg.repeats,
    )
    jac = interleaved_times(
        {"ours": lambda: ours.jacobian(sigmas_j[0]), "pyeit": lambda: theirs.compute_jac(sigmas[0])}, cfg.repeats
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    print(
        f"load average during the run: {load:.1f}; times are median (min) wall time of {cfg.repeats} interleaved runs"
    )
    print(f"point-model voltages, ours (float32) vs pyEIT: relative difference {agree:.2e}")

    def row(label, t, ref):
        o, p = t["ours"], t[ref]
        return (
            f"{label}: ours {o[0] * 1e3:.1f} ({o[1] * 1e3:.1f}) ms, pyEIT {p[0] * 1e3:.1f} ({p[1] * 1e3:.1f}) ms, "
            f"speed-up {p[0] / o[0]:.1f}x ({p[1] / o[1]:.1f}x); CPU time speed-up {p[2] / o[2]:.1f}x"
        )

    guard.check("before the report")
    print(
        guard.ratio(
            row(f"forward, batch of {cfg.batch}", fwd, "pyeit")
            + f"   [ours CEM: {fwd['ours_cem'][0] * 1e3:.1f} ({fwd['ours_cem'][1] * 1e3:.1f}) ms]"
        )
    )
    print("(the ratios are pyEIT time / our time)")
    print(guard.ratio(row(f"Jacobian (208 x {mesh.n_elements})", jac, "pyeit")))

    s = singular_values(mesh)
    ranks = {f"{tol:g}": int(np.sum(s > tol * s[0])) for tol in (1e-4, 1e-6, 1e-8, 1e-10, 1e-12)}
    print(
        f"singular values of J (CEM, σ = 1): s_1 = {s[0]:.3e}, s_104 = {s[103]:.3e}, s_105 = {s[104]:.3e}, "
        f"s_104 / s_105 = {s[103] / s[104]:.1e}"
    )
    print(f"numerical rank (s > tol * s_1) vs 104 independent measurements: {ranks}")

    os.makedirs(os.path.dirname(cfg.out), exist_ok=True)
    with open(cfg.out, "w") as f:
        json.dump(
            {
                "config": dataclasses.asdict(cfg),
                "n_nodes": mesh.n_nodes,
                "n_elements": mesh.n_elements,
                "forward_s_median_min": fwd,
                "jacobian_s_median_min": jac,
                "singular_values": s.tolist(),
                "ranks": ranks,
                "agreement": agree,
                "load_average": load,
            },
            f,
            indent=1,
        )
    print(f"wrote {cfg.out}")


if __name__ == "__main__":
    main()
