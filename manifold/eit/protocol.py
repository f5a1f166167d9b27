"""Current-injection and voltage-measurement protocols.

A protocol is a list of excitations (a current +1 into electrode ``a``, out of electrode ``b``)
and, per excitation, the measured differences ``V[plus] - V[minus]``. The measurement vector is
excitation-major: all measurements of excitation 0, then excitation 1, and so on, the ordering of
pyEIT's ``EITForward.solve_eit``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Protocol"]


@dataclasses.dataclass(frozen=True, eq=False)
class Protocol:
    """An EIT protocol.

    Attributes:
      n_electrodes: number of electrodes ``L``.
      excitations: ``(n_exc, 2)`` int: current ``+1`` into ``excitations[i, 0]`` and out of
        ``excitations[i, 1]``.
      meas_excitation: ``(n_meas,)`` int: the excitation each measurement belongs to
        (non-decreasing).
      meas_pairs: ``(n_meas, 2)`` int: measurement ``k`` is ``V[meas_pairs[k, 0]] - V[meas_pairs[k, 1]]``.
    """

    n_electrodes: int
    excitations: np.ndarray
    meas_excitation: np.ndarray
    meas_pairs: np.ndarray

    def __post_init__(self):
        exc = np.asarray(self.excitations)
        idx = np.asarray(self.meas_excitation)
        pairs = np.asarray(self.meas_pairs)
        L = self.n_electrodes
        if not isinstance(L, (int, np.integer)) or L < 2:
            raise ValueError(f"n_electrodes: expected an integer >= 2, got {L!r}")
        if exc.ndim != 2 or exc.shape[1] != 2 or len(exc) == 0:
            raise ValueError(f"excitations: expected shape (n_exc, 2), got {exc.shape}")
        if pairs.ndim != 2 or pairs.shape[1] != 2 or idx.shape != (len(pairs),):
            raise ValueError(
                f"meas_pairs: expected shape (n_meas, 2) matching meas_excitation {idx.shape}, got {pairs.shape}"
            )
        for name, arr in (("excitations", exc), ("meas_pairs", pairs)):
            if arr.min() < 0 or arr.max() >= L:
                raise ValueError(f"{name}: electrode index out of range [0, {L})")
            if np.any(arr[:, 0] == arr[:, 1]):
                raise ValueError(f"{name}: a pair uses the same electrode twice")
        if idx.min() < 0 or idx.max() >= len(exc) or np.any(np.diff(idx) < 0):
            raise ValueError("meas_excitation: expected non-decreasing excitation indices")
        object.__setattr__(self, "n_electrodes", int(L))
        object.__setattr__(self, "excitations", exc.astype(np.int32))
        object.__setattr__(self, "meas_excitation", idx.astype(np.int32))
        object.__setattr__(self, "meas_pairs", pairs.astype(np.int32))

    @property
    def n_excitations(self) -> int:
        return len(self.excitations)

    @property
    def n_meas(self) -> int:
        return len(self.meas_pairs)

    @property
    def currents(self) -> np.ndarray:
        """``(n_exc, L)`` injected electrode currents of each excitation."""
        return _pair_rows(self.excitations, self.n_electrodes)

    @property
    def patterns(self) -> np.ndarray:
        """``(n_meas, L)`` measurement patterns: ``v_k = patterns[k] @ V``."""
        return _pair_rows(self.meas_pairs, self.n_electrodes)

    @classmethod
    def create(
        cls,
        n_electrodes: int = 16,
        *,
        dist_exc: int = 1,
        step_meas: int = 1,
        drop_current_carrying: bool = True,
    ) -> Protocol:
        """Excitation ``(i, i + dist_exc)`` for every ``i``; measurements ``V[m + step_meas] - V[m]``.

        With ``drop_current_carrying`` the measurements that touch either current-carrying
        electrode are left out. ``create(16)`` equals pyEIT's
        ``protocol.create(16, dist_exc=1, step_meas=1, parser_meas="std")`` (16 x 13 = 208).

        Raises:
          ValueError: when the distances are not in ``[1, n_electrodes)``.
        """
        if not isinstance(n_electrodes, (int, np.integer)) or n_electrodes < 4:
            raise ValueError(f"n_electrodes: expected an integer >= 4, got {n_electrodes!r}")
        for name, d in (("dist_exc", dist_exc), ("step_meas", step_meas)):
            if not isinstance(d, (int, np.integer)) or not 1 <= d < n_electrodes:
                raise ValueError(f"{name}: expected an integer in [1, {n_electrodes}), got {d!r}")
        a = np.arange(n_electrodes)
        excitations = np.stack([a, (a + dist_exc) % n_electrodes], axis=1)
        m = np.broadcast_to(a, (n_electrodes, n_electrodes))
        n = (m + step_meas) % n_electrodes
        keep = np.ones(m.shape, dtype=bool)
        if drop_current_carrying:
            src, snk = excitations[:, :1], excitations[:, 1:]
            keep = (m != src) & (m != snk) & (n != src) & (n != snk)
        exc_idx = np.broadcast_to(a[:, None], m.shape)[keep]
        pairs = np.stack([n[keep], m[keep]], axis=1)
        return cls(int(n_electrodes), excitations, exc_idx, pairs)

    @classmethod
    def adjacent(cls, n_electrodes: int = 16) -> Protocol:
        """Adjacent injection, adjacent measurement, current-carrying electrodes dropped."""
        return cls.create(n_electrodes, dist_exc=1, step_meas=1)

    @classmethod
    def opposite(cls, n_electrodes: int = 16) -> Protocol:
        """Opposite injection ``(i, i + L/2)``, adjacent measurement, current-carrying dropped."""
        if not isinstance(n_electrodes, (int, np.integer)) or n_electrodes < 4 or n_electrodes % 2:
            raise ValueError(f"n_electrodes: expected an even integer >= 4, got {n_electrodes!r}")
        return cls.create(n_electrodes, dist_exc=n_electrodes // 2, step_meas=1)

    def __repr__(self) -> str:
        return f"Protocol(n_electrodes={self.n_electrodes}, n_excitations={self.n_excitations}, n_meas={self.n_meas})"


def _pair_rows(pairs: np.ndarray, n_electrodes: int) -> np.ndarray:
    """``(len(pairs), L)``: row ``i`` is ``+1`` at electrode ``pairs[i, 0]`` and ``-1`` at ``pairs[i, 1]``."""
    out = np.zeros((len(pairs), n_electrodes))
    rows = np.arange(len(pairs))
    out[rows, pairs[:, 0]] += 1.0
    out[rows, pairs[:, 1]] -= 1.0
    return out
