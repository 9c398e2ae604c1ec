"""A chunk: one hardware engine and the layers it runs.

In the pipeline style (DNNBuilder / Shen et al.) each chunk is a sub-accelerator and the
chunks run concurrently on successive frames; in the multi-cycle style one engine runs every
layer in turn.  A chunk's hardware (storage hierarchy and buffer sizes, PE array and its
unrolls, NoC style, loop order, datapath width) is fixed when it is built, so it is shared by
all its layers: each layer's mapping must fit it.

The storage hierarchy is explicit, outermost first.  dnac's own designs use the canonical
hierarchy of DNA Tab. 1 (`canonical_hierarchy`: DRAM -> global buffer -> PE array -> per-PE
register file, the buffers partitioned among weights, inputs and outputs); designs imported
from Timeloop keep whatever hierarchy they had (e.g. Eyeriss's three scratchpads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dnac.compiler.vocab import TENSORS, Dim, MemLevel, NocStyle, Tensor


@dataclass(frozen=True)
class BufferAlloc:
    """Words of one buffer level given to each tensor (DNA/TRIPS: buffer allocation is searched)."""

    W: int  # weight words
    I: int  # input-activation words
    O: int  # output / partial-sum words

    def words(self, tensor: Tensor) -> int:
        return getattr(self, tensor.value)

    @property
    def total(self) -> int:
        return self.W + self.I + self.O


@dataclass(frozen=True)
class StorageLevel:
    """One level of a chunk's storage hierarchy."""

    name: str  # unique in the hierarchy; the key of this level's loops in a mapping
    role: MemLevel  # the level of DNA's template it plays: DRAM, GB or RF
    keeps: tuple[Tensor, ...] = TENSORS  # tensors stored here; the others bypass it
    words: int | None = None  # capacity shared by the kept tensors; None = unbounded
    partition: BufferAlloc | None = None  # per-tensor capacities instead of a shared one
    per_pe: bool = False  # one instance per PE (below the spatial fan-out)
    block_size: int = 1  # words per access (vector width)
    read_bw: float | None = None  # words per cycle per instance; None = unlimited
    write_bw: float | None = None
    shared_bw: float | None = None
    read_pJ: float | None = None  # per vector access; None = priced from the target's tables
    write_pJ: float | None = None
    component: str = ""  # Timeloop / Accelergy class (DRAM, smartbuffer_SRAM, ...)
    attrs: dict[str, int | float | str] = field(default_factory=dict)  # e.g. n_banks, memory_width

    def capacity(self, tensor: Tensor) -> int | None:
        """Words available to `tensor` (shared levels give every kept tensor the whole level)."""
        if tensor not in self.keeps:
            return 0
        if self.partition is not None:
            return self.partition.words(tensor)
        return self.words


def canonical_hierarchy(gb: BufferAlloc, rf: BufferAlloc) -> tuple[StorageLevel, ...]:
    """DNA's generic template: DRAM -> GB (partitioned) -> PE array -> RF per PE (partitioned)."""
    return (
        StorageLevel("DRAM", MemLevel.DRAM, component="DRAM"),
        StorageLevel("GB", MemLevel.GB, words=gb.total, partition=gb, component="SRAM"),
        StorageLevel("RF", MemLevel.RF, words=rf.total, partition=rf, per_pe=True, component="regfile"),
    )


@dataclass(frozen=True)
class Chunk:
    """One engine; `unroll` is its PE-array parallelism per dim (product = PE count)."""

    id: int
    layers: tuple[str, ...]  # the layers it runs, in execution order
    noc: NocStyle | None  # which dims the array parallelizes; None = any (imported designs)
    unroll: dict[Dim, int]  # spatial parallelism per dim
    pe_array: tuple[int, int]  # (rows, columns); rows x columns == PE count
    hierarchy: tuple[StorageLevel, ...]  # outermost first
    loop_order: dict[str, tuple[Dim, ...]]  # per storage level, outermost first, shared by its layers
    w_bits: int  # datapath weight width
    a_bits: int  # datapath activation width
    depthwise: bool = False  # a depthwise engine (DNA: depthwise layers get their own chunks)
    attrs: dict[str, int | float | str] = field(default_factory=dict)  # target-specific extras

    @property
    def pes(self) -> int:
        return math.prod(self.unroll.values()) if self.unroll else 1

    def unroll_of(self, dim: Dim) -> int:
        return self.unroll.get(dim, 1)

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.hierarchy)

    @property
    def fanout(self) -> str:
        """The level whose children are spread over the PE array: the innermost shared level."""
        shared = [level.name for level in self.hierarchy if not level.per_pe]
        return shared[-1]

    def level(self, role: MemLevel) -> StorageLevel | None:
        """The (innermost) level playing `role`, if any."""
        found = [level for level in self.hierarchy if level.role is role]
        return found[-1] if found else None

    @property
    def gb(self) -> BufferAlloc:
        """Global-buffer words per tensor (zero for tensors it does not keep)."""
        return _alloc(self.level(MemLevel.GB))

    @property
    def rf(self) -> BufferAlloc:
        """Per-PE register-file words per tensor."""
        return _alloc(self.level(MemLevel.RF))


def _alloc(level: StorageLevel | None) -> BufferAlloc:
    if level is None:
        return BufferAlloc(0, 0, 0)
    if level.partition is not None:
        return level.partition
    words = [level.capacity(t) or 0 for t in TENSORS]
    return BufferAlloc(*words)
