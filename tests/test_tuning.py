"""``experiments/configs/tuning.py``: the held-out weight choice that the experiment scripts share."""

import importlib.util
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "tuning.py"
_spec = importlib.util.spec_from_file_location("manifold_tests_tuning", _PATH)
_tuning = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tuning)


def test_tune_grows_past_the_edge_until_the_best_is_inside():
    calls = []

    def errors(ws):
        calls.append(ws)
        return [(np.log2(w) - 4.0) ** 2 for w in ws]  # best at 16

    table = _tuning.tune(errors, (1.0, 2.0, 4.0), step=2.0)
    assert calls[0] == (1.0, 2.0, 4.0) and all(len(c) == 1 for c in calls[1:])  # the grid in one call
    assert list(table) == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert min(table, key=table.get) == 16.0
    down = _tuning.tune(lambda ws: [abs(np.log2(w) + 2.0) for w in ws], (1.0, 2.0, 4.0), step=2.0)
    assert list(down) == [0.125, 0.25, 0.5, 1.0, 2.0, 4.0] and min(down, key=down.get) == 0.25


def test_tune_stops_after_extra_weights_and_keeps_an_inside_best():
    table = _tuning.tune(lambda ws: [-w for w in ws], (1.0, 3.0), step=3.0, extra=2)  # always the top edge
    assert list(table) == [1.0, 3.0, 9.0, 27.0]
    inside = _tuning.tune(lambda ws: [abs(w - 3.0) for w in ws], (1.0, 3.0, 10.0), step=3.0)
    assert list(inside) == [1.0, 3.0, 10.0]
