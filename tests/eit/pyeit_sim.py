"""The tests' handle on ``experiments/configs/pyeit_sim.py`` (pyEIT-simulated peer data, pyEIT JAC / GREIT).

One implementation serves the tests and the experiment scripts; it lives with the experiments (the
bench extra installs pyEIT there) and is loaded here by path, so the tests need no ``sys.path`` edits.
"""

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "pyeit_sim.py"
_spec = importlib.util.spec_from_file_location("manifold_tests_pyeit_sim", _PATH)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

PeerSimulator = _module.PeerSimulator
PyEITReconstructor = _module.PyEITReconstructor
simulate_with_pyeit = _module.simulate_with_pyeit
thorax_pyeit_mesh = _module.thorax_pyeit_mesh

__all__ = ["PeerSimulator", "PyEITReconstructor", "simulate_with_pyeit", "thorax_pyeit_mesh"]
