"""(b) EIT with 8 latents: 208 measurements, 104 independent, 16 384 pixels.

    python experiments/lecture/b_eit.py --quick     # 2 held-out + 2 test phantoms, small weight grids
    python experiments/lecture/b_eit.py             # 6 held-out + 12 test phantoms

1. The singular values of the linearised map J (208 x 16 384 pixels, at the homogeneous
   reference, complete electrode model, adjacent protocol): how fast they decay and the
   numerical rank at several relative thresholds (reciprocity leaves at most 104).
2. Difference reconstructions of held-out lung phantoms from data simulated on a **finer mesh**
   than the reconstruction mesh (h_max 0.05 vs 0.08), 1 % noise: the latent LM through the
   nonlinear FEM on the shipped ``eit-vae`` (k = 8) vs one-step NOSER and Tikhonov on our J, and
   pyEIT's JAC and GREIT on the same reconstruction mesh (point electrodes, pyEIT's own Jacobian).
   Every linear method's weight and a global scale (pyEIT's point-electrode model has another
   scale than the CEM data) are chosen on the held-out phantoms, never on the test phantoms.

Writes ``out/lecture/b_eit.{json,png}``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from common import parse, plt, write

from manifold.data import LUNG_VALUE_RANGE, lung_phantoms
from manifold.eit import FEM, EITModel, Protocol, one_step_tikhonov
from manifold.metrics import psnr, relative_error
from manifold.models import load_generator
from manifold.solve import solve_latent

NOISE = 0.01


def spectrum(model: EITModel) -> dict:
    """Singular values of J: on the mesh elements in float64, and on the pixels (float32, as used)."""
    with jax.enable_x64(True):
        fem = FEM(model.mesh, Protocol.adjacent(16), model="cem")
        j_el = np.asarray(fem.jacobian(jnp.ones(model.mesh.n_elements, jnp.float64)))
    s_el = np.linalg.svd(j_el, compute_uv=False)
    J = np.asarray(model.linearized().matrix(), np.float64).reshape(model.n_meas, -1)
    s = np.linalg.svd(J, compute_uv=False)
    out = {"pixels_shape": list(J.shape), "elements_shape": list(j_el.shape)}
    for name, sv in (("elements_float64", s_el), ("pixels_float32", s)):
        ranks = {f"rtol {t:g}": int(np.sum(sv > t * sv[0])) for t in (1e-2, 1e-3, 1e-4, 1e-6, 1e-9)}
        out[name] = {"singular_values": sv, "ranks": ranks, "sigma_104_rel": sv[103] / sv[0],
                     "sigma_105_rel": sv[104] / sv[0]}
        print(f"  J {name}: sigma_104 / sigma_1 {sv[103] / sv[0]:.2e}, sigma_105 / sigma_1 {sv[104] / sv[0]:.2e}; "
              f"ranks {ranks}")
    return out


def pyeit_solvers(model: EITModel):
    """Functions ``lam -> (dv -> image)`` for pyEIT's JAC and GREIT on ``model``'s mesh (point electrodes)."""
    from configs.pyeit_sim import PyEITReconstructor  # pyEIT: a test/bench dependency, never the library's

    def jac(lam):
        return PyEITReconstructor(model, jac_lamb=lam, kinds=("jac",)).solve_jac

    def greit(lam):
        return PyEITReconstructor(model, greit_lamb=lam, greit_n=64, kinds=("greit",)).solve_greit

    return jac, greit


def tuned(make, lams, dv_held, x_held):
    """The weight (and global least-squares scale) with the smallest held-out error, and its map."""
    best = None
    for lam in lams:
        recon = make(lam)
        r = np.stack([recon(dv) for dv in dv_held])
        scale = float(np.sum(r * x_held) / max(np.sum(r * r), 1e-30))
        err = float(np.linalg.norm(scale * r - x_held) / np.linalg.norm(x_held))
        if best is None or err < best[0]:
            best = (err, lam, scale, recon)
    err, lam, scale, recon = best
    return {"lam": lam, "scale": scale, "heldout_error": err}, lambda dv: scale * recon(dv)


def main(argv=None) -> dict:
    args = parse(__doc__, argv)
    q = args.quick
    n_held, n_test = (2, 2) if q else (6, 12)
    k_held, k_test, k_noise, k_solve = jax.random.split(jax.random.key(args.seed + 100), 4)
    model = EITModel(16, image_size=128)  # reconstruction mesh (the eit-vae's, h_max 0.08)
    fine = EITModel(16, image_size=128, h_max=0.05)  # data mesh: finer, so the inverse crime is avoided
    print(f"reconstruction mesh {model.mesh}, data mesh {fine.mesh}")
    result = {"spectrum": spectrum(model), "meshes": {"reconstruction": repr(model.mesh), "data": repr(fine.mesh)}}

    def data(key, n):
        x, _ = lung_phantoms(n, size=128, key=key)
        clean = fine.difference_map()(x)
        noisy = EITModel.add_noise(k_noise, clean, snr_db=-20 * np.log10(NOISE))
        return np.asarray(x), np.asarray(noisy), np.sqrt(np.mean(np.asarray(clean) ** 2, axis=-1)) * NOISE

    x_held, dv_held, _ = data(k_held, n_held)
    x_test, dv_test, std_test = data(k_test, n_test)
    lam_grid = (1e-3, 1e-2, 1e-1, 1.0) if q else (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
    jac, greit = pyeit_solvers(model)
    def noser(lam):
        return lambda dv: np.asarray(one_step_tikhonov(model, jnp.asarray(dv), lam=lam))

    def tikhonov(lam):
        return lambda dv: np.asarray(one_step_tikhonov(model, jnp.asarray(dv), lam=lam, prior="tikhonov"))

    makers = {
        "NOSER (one step)": (noser, lam_grid),
        "Tikhonov (one step)": (tikhonov, tuple(1e-4 * g for g in lam_grid)),  # scales like J^2
        "pyEIT JAC": (jac, lam_grid),
        "pyEIT GREIT": (greit, lam_grid),
    }
    recons, chosen = {}, {}
    for name, (make, lams) in makers.items():
        chosen[name], recon = tuned(make, lams, dv_held, x_held)
        recons[name] = np.stack([recon(dv) for dv in dv_test])
        print(f"  {name:<20} chosen on held-out: {chosen[name]}", flush=True)
    G = load_generator("eit-vae")
    forward = model.difference_map()
    sols = [solve_latent(G, forward, jnp.asarray(dv), noise_level=float(s), key=k)
            for dv, s, k in zip(dv_test, std_test, jax.random.split(k_solve, n_test))]
    recons = {"latent LM (eit-vae, k = 8)": np.stack([np.asarray(s.x) for s in sols]), **recons}
    span = LUNG_VALUE_RANGE[1] - LUNG_VALUE_RANGE[0]
    table = {}
    for name, r in recons.items():
        err = [float(relative_error(a, b)) for a, b in zip(r, x_test)]
        ps = [float(psnr(a, b, data_range=span)) for a, b in zip(r, x_test)]
        table[name] = {"rel_error_mean": float(np.mean(err)), "psnr_mean": float(np.mean(ps)), "rel_errors": err}
        print(f"  {name:<28} rel. error {np.mean(err):.3f}  PSNR {np.mean(ps):.1f} dB")
    result.update({"noise": NOISE, "n_heldout": n_held, "n_test": n_test, "chosen": chosen, "table": table})

    fig, axes = plt.subplots(1, 2 + len(recons), figsize=(3 * (2 + len(recons)), 3.4))
    for name, sp in result["spectrum"].items():
        if isinstance(sp, dict):
            sv = np.asarray(sp["singular_values"])
            axes[0].semilogy(sv / sv[0], label=name)
    axes[0].legend(fontsize=7)
    axes[0].axvline(104, color="r", ls="--", lw=0.8)
    axes[0].set_title("singular values of J / sigma_1\n(red: 104)", fontsize=8)
    for ax, (title, im) in zip(axes[1:], [("truth", x_test[0])] + [(n, r[0]) for n, r in recons.items()]):
        ax.imshow(im, cmap="RdBu_r", vmin=-1, vmax=1)
        extra = f"\nrel. err {table[title]['rel_error_mean']:.3f}" if title in table else ""
        ax.set_title(title + extra, fontsize=8)
        ax.axis("off")
    return write(args, "b_eit", result, fig)


if __name__ == "__main__":
    main()
