"""The "Timeloop form": one layer on one storage hierarchy with one mapping, as frozen data.

This is the input of the scalar model (`model.evaluate`) and what `parse.read_case` builds from
a Timeloop v3.0.3 case folder.  It stays close to Timeloop's own vocabulary (dims `C M R S N P Q`
with `M` = dnac's `K`, tensors `Weights`/`Inputs`/`Outputs`, level names as written in the
architecture) so that a case can be checked number for number against `timeloop-model`.

Conventions (dnac's, not Timeloop's):
* storage levels and their mappings are listed **outermost first**;
* every permutation is stored **outermost first** (Timeloop's `permutation:` strings are innermost
  first; the parser reverses them);
* a spatial mapping splits its dims between mesh X and mesh Y: `spatial_split` dims go to X, and
  they are the *innermost* `spatial_split` entries of `spatial_perm` (Timeloop: "the first `split`
  dims of the innermost-first permutation go to X").

`Storage.capacities` is a dnac extension that Timeloop has no syntax for: a level partitioned
among the tensors, each part with its own word capacity (dnac's GB and RF are built that way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

#: Timeloop tensor (data-space) names, in Timeloop's order.
TL_TENSORS: tuple[str, ...] = ("Weights", "Inputs", "Outputs")

#: The read-write tensor (partial sums); the others are read-only.
RW_TENSOR = "Outputs"


class ShapeKind(StrEnum):
    """The two problem shapes the model knows (golden README §4)."""

    CONV = "conv"  # Timeloop's `CNN-Layer`
    DEPTHWISE = "depthwise"  # the `Depthwise-CNN-Layer` with a group dim G

    @property
    def shape_name(self) -> str:
        return {"conv": "CNN-Layer", "depthwise": "Depthwise-CNN-Layer"}[self.value]

    @property
    def dims(self) -> tuple[str, ...]:
        base = ("C", "M", "R", "S", "N", "P", "Q")
        return base if self is ShapeKind.CONV else ("G",) + base


#: The coefficients of both shapes, with their defaults.
COEFFICIENTS: tuple[str, ...] = ("Wstride", "Hstride", "Wdilation", "Hdilation")

#: A projection: per tensor rank, the terms (dim, coefficient name or None for 1) summed.
Projection = tuple[tuple[tuple[str, str | None], ...], ...]


def projections(kind: ShapeKind) -> dict[str, Projection]:
    """Each tensor's projection, exactly as the two shapes of the golden README §4 write them."""
    w = (("R", "Wdilation"), ("P", "Wstride"))
    h = (("S", "Hdilation"), ("Q", "Hstride"))
    if kind is ShapeKind.CONV:
        return {
            "Weights": ((("C", None),), (("M", None),), (("R", None),), (("S", None),)),
            "Inputs": ((("N", None),), (("C", None),), w, h),
            "Outputs": ((("N", None),), (("M", None),), (("Q", None),), (("P", None),)),
        }
    return {
        "Weights": ((("G", None),), (("C", None),), (("M", None),), (("R", None),), (("S", None),)),
        "Inputs": ((("N", None),), (("G", None),), (("C", None),), w, h),
        "Outputs": ((("N", None),), (("G", None),), (("M", None),), (("Q", None),), (("P", None),)),
    }


@dataclass(frozen=True)
class Problem:
    """A layer: the shape kind, every dim's bound and the four coefficients."""

    kind: ShapeKind
    bounds: dict[str, int]  # every dim of `kind.dims`
    wstride: int = 1
    hstride: int = 1
    wdilation: int = 1
    hdilation: int = 1

    @property
    def dims(self) -> tuple[str, ...]:
        return self.kind.dims

    def coefficient(self, name: str | None) -> int:
        if name is None:
            return 1
        return {"Wstride": self.wstride, "Hstride": self.hstride,
                "Wdilation": self.wdilation, "Hdilation": self.hdilation}[name]

    def ranks(self, tensor: str) -> tuple[tuple[tuple[str, int], ...], ...]:
        """`tensor`'s projection with the coefficients resolved: per rank, (dim, coef) terms."""
        return tuple(tuple((d, self.coefficient(c)) for d, c in rank)
                     for rank in projections(self.kind)[tensor])

    @property
    def macs(self) -> int:
        return math.prod(self.bounds[d] for d in self.dims)


@dataclass(frozen=True)
class Storage:
    """One storage level (all its instances alike)."""

    name: str
    instances: int
    mesh_x: int
    size: int | None  # words per instance shared by the kept tensors; None = unbounded
    block_size: int = 1  # words per vector access (the ERT prices one vector access)
    word_bits: int = 16
    read_bw: float | None = None  # words / cycle / instance; None = unlimited
    write_bw: float | None = None
    shared_bw: float | None = None
    read_pJ: float = 0.0  # per vector access
    write_pJ: float = 0.0  # per vector access; fills and updates both use it
    capacities: dict[str, int] | None = None  # dnac extension: per-tensor word capacities
    multiple_buffering: float = 1.0
    tensor_pJ: dict[str, tuple[float, float]] | None = None  # dnac extension: (read, write) per tensor

    def energies(self, tensor: str) -> tuple[float, float]:
        """(read, write) pJ per vector access of `tensor` here (a partitioned level may price its
        parts differently; Timeloop has one table per level)."""
        if self.tensor_pJ is not None and tensor in self.tensor_pJ:
            return self.tensor_pJ[tensor]
        return self.read_pJ, self.write_pJ

    @property
    def mesh_y(self) -> int:
        return self.instances // self.mesh_x

    @property
    def effective_size(self) -> int | None:
        """Words usable by tiles (Timeloop: floor(size / multiple-buffering))."""
        return None if self.size is None else math.floor(self.size / self.multiple_buffering)


@dataclass(frozen=True)
class Compute:
    """The arithmetic level."""

    name: str
    instances: int
    mesh_x: int
    mac_pJ: float  # per MAC (ERT `mac_random`)

    @property
    def mesh_y(self) -> int:
        return self.instances // self.mesh_x


@dataclass(frozen=True)
class LevelMapping:
    """One storage level's part of the loop nest, and which tensors it keeps.

    `spatial_*` describe the fan-out from this level to the instances of the next inner level
    (Timeloop puts the spatial directive on the level above the fan-out)."""

    temporal: dict[str, int]  # factor per dim; missing = 1
    temporal_perm: tuple[str, ...]  # outermost first
    spatial: dict[str, int] = field(default_factory=dict)
    spatial_perm: tuple[str, ...] = ()  # outermost first
    spatial_split: int = 0  # the innermost `spatial_split` dims of spatial_perm go to mesh X
    keep: frozenset[str] = frozenset(TL_TENSORS)

    def t(self, dim: str) -> int:
        return self.temporal.get(dim, 1)

    def s(self, dim: str) -> int:
        return self.spatial.get(dim, 1)

    def spatial_xy(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(X dims, Y dims), each outermost first."""
        n = len(self.spatial_perm)
        cut = n - self.spatial_split
        return self.spatial_perm[cut:], self.spatial_perm[:cut]


@dataclass(frozen=True)
class Nest:
    """A layer on a hierarchy with a mapping: `storage[i]` is mapped by `mappings[i]`."""

    problem: Problem
    storage: tuple[Storage, ...]  # outermost first
    compute: Compute
    mappings: tuple[LevelMapping, ...]  # parallel to `storage`
    source: str = "<python>"  # for error messages


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TensorStats:
    """One tensor at one storage level; counts are per instance (Timeloop's convention)."""

    kept: bool
    partition_size: int
    utilized_capacity: int
    utilized_instances: int
    reads: int
    fills: int
    updates: int
    link_transfers: int = 0  # words this level's children took from a mesh neighbour (per instance)


@dataclass(frozen=True)
class LevelStats:
    """One storage level: its tensors, its bandwidth-limited cycles and its energy."""

    name: str
    tensors: dict[str, TensorStats]
    cycles: int
    slowdown: float
    energy_pJ: float  # all instances, all tensors


@dataclass(frozen=True)
class NestStats:
    """What `timeloop-model` reports for a nest (the subset dnac uses)."""

    levels: tuple[LevelStats, ...]  # outermost first, like `Nest.storage`
    computes: int
    compute_cycles: int
    cycles: int
    utilization: float
    energy_pJ: float  # MACs + all storage levels
    mac_energy_pJ: float
    utilized_macs: int

    def level(self, name: str) -> LevelStats:
        for lvl in self.levels:
            if lvl.name == name:
                return lvl
        raise KeyError(name)
