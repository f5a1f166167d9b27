"""Benchmarks report speed ratios only from a quiet machine.

A ratio measured while other processes compete for the cores says little (the README's earlier
ratios varied 2x between runs on the shared 2-core machine). Every benchmark script therefore:

* prints the 1-minute load average and the core count when it starts (:func:`load_guard`);
* refuses, with exit code 2, to run on more than ``MAX_LOAD_PER_CORE`` (0.5) load per core, and
  checks again before it prints its ratios (the load may rise during the run);
* with ``--force`` runs anyway and marks every ratio line ``(FORCED, loaded)``
  (:meth:`LoadGuard.ratio`).

    parser = argparse.ArgumentParser(...)
    add_force_flag(parser)
    args = parser.parse_args()
    guard = load_guard(args.force)
    ...  # the measurements
    guard.check("before the report")
    print(guard.ratio(f"speed-up {t_ref / t_ours:.1f}x"))
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

MAX_LOAD_PER_CORE = 0.5


def add_force_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--force``: report ratios even on a loaded machine, marked ``(FORCED, loaded)``."""
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"report ratios even above {MAX_LOAD_PER_CORE} load per core (each ratio line is marked FORCED)",
    )


def load_per_core() -> tuple[float, int, float]:
    """``(1-minute load average, cores, load per core)``; the load is machine-wide, so all cores count."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cores = os.cpu_count() or 1
    return load, cores, load / cores


def _own_cpu_seconds() -> float:
    """CPU seconds used by this process and its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class LoadGuard:
    """Refuses (exit 2) or marks ratios measured above ``MAX_LOAD_PER_CORE``; see the module docstring.

    The load average counts the benchmark's own threads too, so from the second check on, the
    benchmark's own average CPU use since the previous check (CPU seconds / wall seconds, children
    included) is subtracted: what is left is the load of *other* processes.
    """

    force: bool
    loaded: bool = False
    _last: tuple[float, float] | None = None

    def check(self, when: str) -> None:
        """Print the load; exit 2 when other processes' load is too high and not forced, remember it when forced."""
        import time

        load, cores, _ = load_per_core()
        now, cpu = time.monotonic(), _own_cpu_seconds()
        own = 0.0 if self._last is None else (cpu - self._last[1]) / max(now - self._last[0], 1e-9)
        self._last = (now, cpu)
        other = max(load - own, 0.0)
        per_core = other / cores
        print(
            f"load average (1 min) {when}: {load:.2f} on {cores} cores, of which this benchmark {own:.2f}: "
            f"others {per_core:.2f} per core",
            flush=True,
        )
        if per_core > MAX_LOAD_PER_CORE:
            if not self.force:
                print(
                    f"refusing to report speed ratios: {per_core:.2f} load per core > {MAX_LOAD_PER_CORE} "
                    "(other processes compete for the cores); run on a quiet machine, or pass --force to "
                    "report them marked (FORCED, loaded)",
                    file=sys.stderr,
                )
                sys.exit(2)
            self.loaded = True

    def ratio(self, line: str) -> str:
        """``line`` (a reported ratio), marked when any check found the machine loaded."""
        return f"{line}  (FORCED, loaded)" if self.loaded else line


def load_guard(force: bool) -> LoadGuard:
    """Print the load and core count; exit 2 above ``MAX_LOAD_PER_CORE`` unless ``force``."""
    guard = LoadGuard(force)
    guard.check("at the start")
    return guard
