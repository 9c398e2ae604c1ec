"""The shape of a mapping, stated once.

A layer's loop nest on the generic accelerator (DNA Tab. 1) is, from the outside in:

    DRAM temporal loops      (order and sizes: `temporal[DRAM]`)
      GB temporal loops      (`temporal[GB]`)
        spatial loops        (`spatial`: unrolled over the PE array, the GB fans out to PEs)
          RF temporal loops  (`temporal[RF]`, per PE)
            MAC

Every `LevelLoops.order` lists the 7 dims **outermost first** (Timeloop's `permutation` is
innermost first; the Timeloop back-end reverses it).  A dim missing from `sizes` has size 1.
For each dim the product of its sizes over all levels times its spatial factor covers the
layer's loop bound (`Layer.bounds`); it may exceed it, and the padded work is charged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dnac.compiler.vocab import DIMS, MEM_LEVELS, Dim, MemLevel


@dataclass(frozen=True)
class LevelLoops:
    """The temporal loops of one memory level."""

    order: tuple[Dim, ...]  # all 7 dims, outermost first
    sizes: dict[Dim, int] = field(default_factory=dict)  # loop trip counts; missing = 1

    def size(self, dim: Dim) -> int:
        return self.sizes.get(dim, 1)

    def normalized(self) -> "LevelLoops":
        """Drop unit sizes so that equal nests compare equal."""
        return LevelLoops(tuple(self.order), {d: v for d, v in self.sizes.items() if v != 1})


@dataclass(frozen=True)
class Mapping:
    """A layer's full loop nest: temporal loops per level and the spatial unroll."""

    temporal: dict[MemLevel, LevelLoops]
    spatial: dict[Dim, int] = field(default_factory=dict)  # missing = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "temporal", {lvl: self.temporal[lvl].normalized() for lvl in self.temporal})
        object.__setattr__(self, "spatial", {d: v for d, v in self.spatial.items() if v != 1})

    def factor(self, level: MemLevel, dim: Dim) -> int:
        loops = self.temporal.get(level)
        return loops.size(dim) if loops else 1

    def spatial_factor(self, dim: Dim) -> int:
        return self.spatial.get(dim, 1)

    def covered(self, dim: Dim) -> int:
        """The padded loop bound this nest iterates for `dim`."""
        return math.prod(self.factor(lvl, dim) for lvl in MEM_LEVELS) * self.spatial_factor(dim)

    def tile(self, level: MemLevel, dim: Dim) -> int:
        """Extent of `dim` held by one instance of `level`, as Timeloop counts it: the loops at
        that level and inside it (the GB's tile spans the spatial loops of all its PEs)."""
        levels = MEM_LEVELS[MEM_LEVELS.index(level) :]
        t = math.prod(self.factor(lvl, dim) for lvl in levels)
        if level is not MemLevel.RF:
            t *= self.spatial_factor(dim)
        return t

    @property
    def pes_used(self) -> int:
        return math.prod(self.spatial.values()) if self.spatial else 1

    @staticmethod
    def trivial(bounds: dict[Dim, int], order: tuple[Dim, ...] = DIMS) -> "Mapping":
        """Every loop at DRAM on one PE: always valid, never fast; the starting point a search
        improves on and what an unsearched design is costed with."""
        return Mapping(
            {
                MemLevel.DRAM: LevelLoops(order, dict(bounds)),
                MemLevel.GB: LevelLoops(order, {}),
                MemLevel.RF: LevelLoops(order, {}),
            },
            {},
        )
