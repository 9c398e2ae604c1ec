"""Link transfers between neighbouring instances of a spatial fan-out (Timeloop v3.0.3's default).

`NestAnalysis::ComputeNetworkLinkTransfers`: at every simulated step of the walk above a fan-out,
an instance whose delta equals the delta its up/down/left/right neighbour (non-toroidal mesh)
received one simulated step earlier takes it from that neighbour instead of the parent.  The
parent then serves only the unmatched instances (multicast among themselves), and Timeloop keeps
that choice only where it serves fewer accesses than without link transfers
(`ComputeSpatialWorkingSet`).  The receiving level pays the transfers as extra reads and fills
(`tiling.cpp`, `ComputePeerAccesses`).

Every instance's delta is the reference instance's translated by its projected spatial offset,
and consecutive deltas of one shape differ by the tile's move, so an instance is matched exactly
when a neighbour's projected offset minus its own equals the move (`Fanout.link`).  The mesh is
Timeloop's: instances numbered by the spatial loops (innermost fastest, X loops inside Y loops),
laid out row-major on `max(physical, logical)` columns and rows.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import cached_property, lru_cache

import numpy as np

from dnac.compiler.timeloop.tiles import Loop, Ranks, group_histogram


class Fanout:
    """One spatial fan-out (its loops innermost first) as one tensor sees it."""

    def __init__(self, loops: list[Loop], ranks: Ranks, phys_x: int, phys_y: int) -> None:
        self.loops = loops
        self.ranks = ranks
        self.phys_x = phys_x
        self.phys_y = phys_y
        self.hist = group_histogram(loops, ranks)
        self.groups = sum(self.hist.values())
        self._memo: dict[tuple[int, ...], tuple[int, dict[int, int]]] = {}

    @cached_property
    def _mesh(self) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Projected offsets [instances, ranks] and, per mesh direction, (valid, neighbour)."""
        lx = math.prod(lp.bound for lp in self.loops if lp.x)
        ly = math.prod(lp.bound for lp in self.loops if not lp.x)
        n = lx * ly
        lin = np.arange(n, dtype=np.int64)
        rem = lin.copy()
        off: dict[int, np.ndarray] = {}
        for lp in self.loops:  # innermost first = least significant digit
            off[lp.dim] = off.get(lp.dim, 0) + (rem % lp.bound) * lp.stride
            rem //= lp.bound
        zero = np.zeros(n, dtype=np.int64)
        proj = np.stack([sum((c * off.get(d, zero) for d, c in rank), zero) for rank in self.ranks], 1)
        h, v = max(self.phys_x, lx), max(self.phys_y, ly)
        hid, vid = lin % h, lin // h
        dirs = []
        for dh, dv in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            nh, nv = hid + dh, vid + dv
            nb = nv * h + nh
            ok = (nh >= 0) & (nh < h) & (nv >= 0) & (nv < v) & (nb < n)
            dirs.append((ok, np.where(ok, nb, 0)))
        return proj, dirs

    def link(self, move: tuple[int, ...]) -> tuple[int, dict[int, int]]:
        """(instances fed by a neighbour, multicast histogram of the others) for a delta that
        moved by `move` since the previous simulated step."""
        if move not in self._memo:
            proj, dirs = self._mesh
            want = np.asarray(move, dtype=np.int64)
            hit = np.zeros(len(proj), dtype=bool)
            for ok, nb in dirs:
                hit |= ok & (proj[nb] - proj == want).all(1)
            rest = Counter(map(tuple, proj[~hit].tolist()))
            self._memo[move] = (int(hit.sum()), dict(Counter(rest.values())))
        return self._memo[move]


@lru_cache(maxsize=4096)
def fanout_of(loops: tuple[Loop, ...], ranks: Ranks, phys_x: int, phys_y: int) -> Fanout:
    """A shared `Fanout` per (loops, tensor, mesh): a mapper prices many nests with the same spatial
    loops, and the groups, the mesh and its matches stay valid across them."""
    return Fanout(list(loops), ranks, phys_x, phys_y)
