"""The shape of a mapping, stated once.

A layer's loop nest on a chunk is, from the outside in, one set of temporal loops per storage
level of the chunk's hierarchy, with the spatial loops (unrolled over the PE array) right
below the fan-out level.  On dnac's canonical hierarchy:

    DRAM temporal loops      (`temporal["DRAM"]`)
      GB temporal loops      (`temporal["GB"]`; the GB is the fan-out level)
        spatial loops        (`spatial`: one iteration per PE)
          RF temporal loops  (`temporal["RF"]`, per PE)
            MAC

Every `LevelLoops.order` lists the 7 dims **outermost first** (Timeloop's `permutation` is
innermost first; the Timeloop back-end reverses it).  A dim missing from `sizes` has size 1.
For each dim the product of its sizes over all levels times its spatial factor covers the
layer's loop bound (`Layer.bounds`); it may exceed it, and the padded work is charged.
`temporal` is ordered outermost level first; its keys are the chunk's level names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dnac.compiler.vocab import DIMS, MEM_LEVELS, Dim, MemLevel

#: Level names of the canonical hierarchy, outermost first, and its fan-out level.
CANONICAL_LEVELS: tuple[str, ...] = tuple(lvl.value for lvl in MEM_LEVELS)
CANONICAL_FANOUT = MemLevel.GB.value


@dataclass(frozen=True)
class LevelLoops:
    """The temporal loops of one memory level."""

    order: tuple[Dim, ...]  # all 7 dims, outermost first
    sizes: dict[Dim, int] = field(default_factory=dict)  # loop trip counts; missing = 1

    def size(self, dim: Dim) -> int:
        return self.sizes.get(dim, 1)

    def normalized(self) -> LevelLoops:
        """Drop unit sizes so that equal nests compare equal."""
        return LevelLoops(tuple(self.order), {d: v for d, v in self.sizes.items() if v != 1})


@dataclass(frozen=True)
class Mapping:
    """A layer's full loop nest: temporal loops per level and the spatial unroll."""

    temporal: dict[str, LevelLoops]  # outermost level first
    spatial: dict[Dim, int] = field(default_factory=dict)  # missing = 1
    fanout: str = CANONICAL_FANOUT  # the level right above the spatial loops
    # (X dims, Y dims) of the spatial loops, each outermost first, as Timeloop nests them; None =
    # the Timeloop lowering's own split.  Counts depend on it only through link transfers (which
    # PEs are mesh neighbours), so imported Timeloop mappings keep theirs.
    mesh: tuple[tuple[Dim, ...], tuple[Dim, ...]] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "temporal", {str(k): v.normalized() for k, v in self.temporal.items()})
        object.__setattr__(self, "spatial", {d: v for d, v in self.spatial.items() if v != 1})

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.temporal)

    def factor(self, level: str, dim: Dim) -> int:
        loops = self.temporal.get(level)
        return loops.size(dim) if loops else 1

    def spatial_factor(self, dim: Dim) -> int:
        return self.spatial.get(dim, 1)

    def chain(self, dim: Dim) -> list[int]:
        """`dim`'s factors from the outside in, the spatial factor in its place."""
        out: list[int] = []
        for level in self.levels:
            out.append(self.factor(level, dim))
            if level == self.fanout:
                out.append(self.spatial_factor(dim))
        return out

    def covered(self, dim: Dim) -> int:
        """The padded loop bound this nest iterates for `dim`."""
        return math.prod(self.chain(dim))

    def tile(self, level: str, dim: Dim) -> int:
        """Extent of `dim` held by one instance of `level`, as Timeloop counts it: the loops at
        that level and inside it (the fan-out level's tile spans the spatial loops of all PEs)."""
        levels = self.levels
        i = levels.index(level)
        t = math.prod(self.factor(lvl, dim) for lvl in levels[i:])
        if i <= levels.index(self.fanout):
            t *= self.spatial_factor(dim)
        return t

    @property
    def pes_used(self) -> int:
        return math.prod(self.spatial.values()) if self.spatial else 1

    @staticmethod
    def trivial(bounds: dict[Dim, int], order: tuple[Dim, ...] = DIMS) -> Mapping:
        """Every loop at DRAM on one PE of the canonical hierarchy: always valid, never fast."""
        first, *rest = CANONICAL_LEVELS
        temporal = {first: LevelLoops(order, dict(bounds))}
        temporal.update({lvl: LevelLoops(order, {}) for lvl in rest})
        return Mapping(temporal, {})
