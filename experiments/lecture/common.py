"""Plumbing shared by the lecture scripts: the command line, the output files, the figure backend.

Each script in ``experiments/lecture/`` reproduces one claim of the lecture. It parses
``--quick`` (small sizes, < 2 minutes on 2 CPU cores), ``--seed`` and ``--out`` with
:func:`parse`, and writes ``<out>/<name>.json`` (its numbers) and ``<out>/<name>.png`` (its
figure) with :func:`write`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["parse", "plt", "write"]

# experiments/ on the path, so that the scripts share experiments/configs/ with the other experiments
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))


def parse(doc: str, argv=None) -> argparse.Namespace:
    """``--quick``, ``--seed`` and ``--out`` (default ``out/lecture``) of a lecture script."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: < 2 minutes on 2 CPU cores")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/lecture", help="output directory")
    args = parser.parse_args(argv)
    args.start = time.perf_counter()
    return args


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy and jax arrays, numpy scalars
        return _plain(np.asarray(value).tolist())
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def write(args: argparse.Namespace, name: str, result: dict, fig) -> dict:
    """Write ``result`` (plus mode and seconds) as ``<out>/<name>.json`` and ``fig`` as ``<name>.png``."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"mode": "quick" if args.quick else "full", "seed": args.seed, **result}
    result["seconds"] = round(time.perf_counter() - args.start, 1)
    (out / f"{name}.json").write_text(json.dumps(_plain(result), indent=1))
    fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out / name}.json and .png ({result['seconds']:.0f} s)")
    return result

