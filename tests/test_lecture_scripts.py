"""Every lecture script of ``experiments/lecture/`` runs with ``--quick`` and writes its figure and JSON.

Slow (each script takes one to several minutes on 2 CPU cores): ``python -m pytest -m slow
tests/test_lecture_scripts.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LECTURE = Path(__file__).resolve().parents[1] / "experiments" / "lecture"
SCRIPTS = sorted(p for p in LECTURE.glob("[a-h]_*.py"))


def test_one_script_per_claim():
    assert [p.name[0] for p in SCRIPTS] == list("abcdefgh")


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_lecture_script_quick(script, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path)],
        cwd=LECTURE.parents[1], capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / f"{script.stem}.json").read_text())
    assert result["mode"] == "quick" and result["seconds"] > 0
    assert (tmp_path / f"{script.stem}.png").stat().st_size > 10_000
