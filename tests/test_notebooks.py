"""The three notebooks of ``experiments/notebooks/`` open in Jupyter and run top to bottom.

Each notebook is stored as a Jupytext percent-format ``.py`` file. The test converts it with
jupytext to an ``.ipynb`` (what ``jupytext --to ipynb`` writes), checks that the conversion keeps
every cell, and executes the notebook in a fresh Jupyter kernel with nbclient, in quick mode
(``MANIFOLD_NOTEBOOK_QUICK=1``) and with its outputs under a temporary directory. Any error in
any cell fails the test, naming the cell.
"""

from __future__ import annotations

from pathlib import Path

import jupytext  # the test extra: jupytext, nbclient, ipykernel
import nbclient
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "experiments" / "notebooks").glob("[0-9][0-9]_*.py"))


def test_the_three_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_train_a_generator",
        "02_solve_inverse_problems",
        "03_manifold_geometry",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    # jupytext round trip: .py (percent) -> .ipynb on disk -> read back, same cells
    notebook = jupytext.read(path)
    ipynb = tmp_path / f"{path.stem}.ipynb"
    jupytext.write(notebook, ipynb)
    opened = jupytext.read(ipynb)
    assert [c.cell_type for c in opened.cells] == [c.cell_type for c in notebook.cells]
    assert sum(c.cell_type == "code" for c in opened.cells) >= 3
    assert sum(c.cell_type == "markdown" for c in opened.cells) >= 3

    # execute in a Jupyter kernel (it inherits this environment: quick mode, outputs in tmp_path)
    monkeypatch.setenv("MANIFOLD_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("MANIFOLD_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    client = nbclient.NotebookClient(
        opened, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:  # names the cell and the traceback
        pytest.fail(f"{path.name}: {error}")
    errors = [o for c in opened.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert any((tmp_path / "out").rglob("*.png")), "the notebook wrote no figure"
