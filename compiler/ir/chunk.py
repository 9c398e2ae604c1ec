"""A chunk: one hardware engine and the layers it runs.

In the pipeline style (DNNBuilder / Shen et al.) each chunk is a sub-accelerator and the
chunks run concurrently on successive frames; in the multi-cycle style one engine runs every
layer in turn.  A chunk's hardware (PE array and its unrolls, NoC style, buffers, loop order,
datapath width) is fixed when it is built, so it is shared by all its layers: each layer's
mapping must fit it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dnac.compiler.vocab import Dim, MemLevel, NocStyle, Tensor


@dataclass(frozen=True)
class BufferAlloc:
    """Words of one buffer level given to each tensor (DNA/TRIPS: buffer allocation is searched)."""

    W: int  # weight words
    I: int  # input-activation words  # noqa: E741
    O: int  # output / partial-sum words  # noqa: E741

    def words(self, tensor: Tensor) -> int:
        return getattr(self, tensor.value)

    @property
    def total(self) -> int:
        return self.W + self.I + self.O


@dataclass(frozen=True)
class Chunk:
    """One engine; `unroll` is its PE-array parallelism per dim (product = PE count)."""

    id: int
    layers: tuple[str, ...]  # the layers it runs, in execution order
    noc: NocStyle  # which dims the array parallelizes
    unroll: dict[Dim, int]  # spatial parallelism per dim; only `noc.dims` may appear
    pe_array: tuple[int, int]  # (rows, columns); rows x columns == PE count
    loop_order: dict[MemLevel, tuple[Dim, ...]]  # per level, outermost first, shared by its layers
    gb: BufferAlloc  # global-buffer words per tensor (one instance per chunk)
    rf: BufferAlloc  # register-file words per tensor (one instance per PE)
    w_bits: int  # datapath weight width
    a_bits: int  # datapath activation width
    depthwise: bool = False  # a depthwise engine (DNA: depthwise layers get their own chunks)
    attrs: dict[str, int | float | str] = field(default_factory=dict)  # target-specific extras

    @property
    def pes(self) -> int:
        return math.prod(self.unroll.values()) if self.unroll else 1

    def unroll_of(self, dim: Dim) -> int:
        return self.unroll.get(dim, 1)
