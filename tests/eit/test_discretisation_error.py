"""EIT's discretisation error, the reason for the approximation error model: a coarse image grid and mesh
explain data of finer physics only to far above 1 % noise, and the error model accounts for it."""

import jax
import jax.numpy as jnp
import numpy as np

from manifold.data import clinical_mixture
from manifold.eit import EITModel
from manifold.operators import approximation_error, gaussian_noise, whiten


def test_the_error_model_makes_the_coarse_truth_consistent_with_fine_data():
    coarse = EITModel(16, image_size=16, model="point", h_max=0.15, h_electrode=0.05)
    fine = EITModel(16, image_size=32, model="point", h_max=0.1, h_electrode=0.03)
    n, n_test = 300, 20  # the same phantoms at both sizes; the last n_test are the test cases
    x_fine, x_coarse = (clinical_mixture(n + n_test, size=s, key=jax.random.key(0))[0] for s in (32, 16))
    b_fine, b_coarse = (np.asarray(m.difference_map()(x)) for m, x in ((fine, x_fine), (coarse, x_coarse)))
    std = 0.01 * float(np.sqrt(np.mean(b_fine[n:] ** 2)))
    b = gaussian_noise(jax.random.key(1), jnp.asarray(b_fine[n:]), sigma=std)

    def misfit(error):  # mean square whitened residual of the coarse truth, per case: ~1 when consistent
        Fw, bw = whiten(coarse.difference_map(), b, noise_level=std, error=error)
        return np.mean(np.asarray(Fw(x_coarse[n:]) - bw) ** 2, axis=1)

    assert np.median(misfit(None)) > 20  # noise alone: the coarse model's own error dominates
    for conditional in (False, True):
        chi2 = misfit(approximation_error(b_fine[:n], b_coarse[:n], conditional=conditional))
        assert 0.3 < np.median(chi2) < 3.0, (conditional, chi2)
