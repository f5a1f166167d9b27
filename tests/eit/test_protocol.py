import numpy as np
import pytest

from manifold.eit import Protocol

pyeit_protocol = pytest.importorskip("pyeit.eit.protocol")


@pytest.mark.parametrize("dist_exc", [1, 8])
def test_matches_pyeit_std_protocol(dist_exc):
    ours = Protocol.create(16, dist_exc=dist_exc, step_meas=1)
    ref = pyeit_protocol.create(16, dist_exc=dist_exc, step_meas=1, parser_meas="std")
    np.testing.assert_array_equal(ours.excitations, ref.ex_mat)
    n_per = ref.meas_mat.shape[1]
    np.testing.assert_array_equal(ours.meas_pairs.reshape(16, n_per, 2), ref.meas_mat)
    np.testing.assert_array_equal(ours.meas_excitation, np.repeat(np.arange(16), n_per))


def test_counts_and_patterns():
    adj = Protocol.adjacent(16)
    assert adj.n_meas == 16 * 13 == 208
    assert Protocol.opposite(16).n_meas == 16 * 12
    assert Protocol.create(16, drop_current_carrying=False).n_meas == 256
    # no measurement touches a current-carrying electrode
    exc = adj.excitations[adj.meas_excitation]
    assert not np.any(adj.meas_pairs[:, :, None] == exc[:, None, :])
    np.testing.assert_array_equal(adj.currents.sum(1), 0)
    np.testing.assert_array_equal(adj.patterns.sum(1), 0)


def test_bad_protocols_raise():
    with pytest.raises(ValueError, match="dist_exc"):
        Protocol.create(16, dist_exc=16)
    with pytest.raises(ValueError, match="n_electrodes"):
        Protocol.opposite(15)
    with pytest.raises(ValueError, match="excitations"):
        Protocol(4, np.array([[0, 4]]), np.array([0]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match="meas_pairs"):
        Protocol(4, np.array([[0, 1]]), np.array([0]), np.array([[2, 2]]))
