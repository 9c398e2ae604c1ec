"""A batch of designs as arrays: what decoding produces and what the batched cost models read.

Search evaluates thousands of designs per second, so a batch holds its designs as int64 arrays
([B, ...]) over one workload's compute layers.  `DesignBatch.to_design` turns one of them into
an IR graph (for reports and back-ends); `encode` does the reverse for an IR design on dnac's
canonical hierarchy, so that a design read from design.yaml is costed by the same code as the
designs DAS samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dnac.compiler.cost.fpga_buffers import acc_bits
from dnac.compiler.errors import DesignError
from dnac.compiler.ir.chunk import BufferAlloc, Chunk, canonical_hierarchy
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.ir.mapping import CANONICAL_FANOUT, CANONICAL_LEVELS, LevelLoops, Mapping
from dnac.compiler.vocab import DIMS, MEM_LEVELS, ArchStyle, NocStyle
from dnac.compiler.workload.layer import Layer, Workload

#: Factor axis of `DesignBatch.factors`: the loop sizes of one dim from the outside in.
F_DRAM, F_GB, F_SPATIAL, F_RF = 0, 1, 2, 3
NOCS = tuple(NocStyle)
ARCHS = tuple(ArchStyle)


@dataclass(frozen=True)
class LayerTable:
    """The compute layers of a workload as arrays, in workload order."""

    layers: tuple[Layer, ...]
    bounds: np.ndarray  # [L, 7] loop bounds (C per group)
    stride: np.ndarray  # [L, 2]
    depthwise: np.ndarray  # [L] bool
    bits: np.ndarray  # [L, 2] (weight, activation) bits
    macs: np.ndarray  # [L]
    k_per_group: np.ndarray  # [L] output channels per group (K for ungrouped layers)
    grouped: np.ndarray  # [L] bool: grouped but not depthwise (its K tiles stay in one group)
    acc_bits: np.ndarray  # [L] accumulator width (`fpga_buffers.acc_bits`)

    @classmethod
    def of(cls, layers: tuple[Layer, ...]) -> LayerTable:
        return cls(
            layers=layers,
            bounds=np.array([[layer.bounds[d] for d in DIMS] for layer in layers], dtype=np.int64).reshape(-1, 7),
            stride=np.array([layer.stride for layer in layers], dtype=np.int64).reshape(-1, 2),
            depthwise=np.array([layer.is_depthwise for layer in layers], dtype=bool),
            bits=np.array([(layer.w_bits, layer.a_bits) for layer in layers], dtype=np.int64).reshape(-1, 2),
            macs=np.array([layer.macs for layer in layers], dtype=np.int64),
            k_per_group=np.array([layer.K // layer.groups for layer in layers], dtype=np.int64),
            grouped=np.array([layer.groups > 1 and not layer.is_depthwise for layer in layers], dtype=bool),
            acc_bits=np.array([acc_bits(layer) for layer in layers], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.layers)


@dataclass
class DesignBatch:
    """B designs of one workload, as arrays (S chunk slots, L compute layers)."""

    table: LayerTable
    workload: Workload
    arch: np.ndarray  # [B] index into ArchStyle (0 pipeline, 1 multi-cycle)
    slot: np.ndarray  # [B, L] chunk slot of each compute layer
    noc: np.ndarray  # [B, S] index into NocStyle
    unroll: np.ndarray  # [B, S, 7] PE-array parallelism per dim (1 outside the NoC style)
    order: np.ndarray  # [B, S, 3, 7] dim indices, outermost first, per level DRAM/GB/RF
    gb: np.ndarray  # [B, S, 3] global-buffer words for W, I, O
    rf: np.ndarray  # [B, S, 3] register-file words per PE for W, I, O
    bits: np.ndarray  # [S, 2] datapath (weight, activation) bits of each slot
    factors: np.ndarray  # [B, L, 4, 7] loop sizes (DRAM, GB, spatial, RF) per dim
    fits: np.ndarray  # [B] every tile fits its buffers

    @property
    def size(self) -> int:
        return int(self.arch.shape[0])

    @property
    def n_slots(self) -> int:
        return int(self.noc.shape[1])

    def used_slots(self) -> np.ndarray:
        """[B, S] slots that run at least one layer."""
        used = np.zeros(self.noc.shape, dtype=bool)
        np.put_along_axis(used, self.slot, True, axis=1)
        return used

    def layer_order(self) -> np.ndarray:
        """[B, L, 3, 7] each layer's loop orders (its chunk's)."""
        return np.take_along_axis(self.order, self.slot[:, :, None, None], axis=1)

    def per_layer(self, chunk_array: np.ndarray) -> np.ndarray:
        """Gather a [B, S, ...] chunk array to [B, L, ...] by each layer's slot."""
        idx = self.slot.reshape(self.slot.shape + (1,) * (chunk_array.ndim - 2))
        return np.take_along_axis(chunk_array, idx, axis=1)

    def select(self, keep: np.ndarray) -> DesignBatch:
        """The designs at indices (or mask) `keep`."""
        return DesignBatch(
            self.table, self.workload, self.arch[keep], self.slot[keep], self.noc[keep], self.unroll[keep],
            self.order[keep], self.gb[keep], self.rf[keep], self.bits, self.factors[keep], self.fits[keep],
        )

    def to_design(self, b: int, target_name: str) -> DesignGraph:
        """Design `b` as an IR graph; chunks are numbered in order of first use."""
        g = DesignGraph.from_workload(self.workload, target_name, ARCHS[int(self.arch[b])])
        slots = [int(s) for s in self.slot[b]]
        ids = {s: i for i, s in enumerate(dict.fromkeys(slots))}
        names = [layer.name for layer in self.table.layers]
        for s, cid in ids.items():
            unroll = {DIMS[j]: int(self.unroll[b, s, j]) for j in range(len(DIMS)) if self.unroll[b, s, j] > 1}
            pes = math.prod(unroll.values()) if unroll else 1
            noc = NOCS[int(self.noc[b, s])]
            rows = unroll.get(noc.dims[0], 1)
            order = {name: tuple(DIMS[int(j)] for j in self.order[b, s, li]) for li, name in enumerate(CANONICAL_LEVELS)}
            g.chunks[cid] = Chunk(
                id=cid,
                layers=tuple(n for n, x in zip(names, slots) if x == s),
                noc=noc,
                unroll=unroll,
                pe_array=(rows, pes // rows),
                hierarchy=canonical_hierarchy(BufferAlloc(*map(int, self.gb[b, s])), BufferAlloc(*map(int, self.rf[b, s]))),
                loop_order=order,
                w_bits=int(self.bits[s, 0]),
                a_bits=int(self.bits[s, 1]),
                depthwise=bool(self.table.depthwise[slots.index(s)]),
            )
        for li, layer in enumerate(self.table.layers):
            cid = ids[slots[li]]
            f = self.factors[b, li]
            order = g.chunks[cid].loop_order
            temporal = {
                name: LevelLoops(order[name], {d: int(f[fi, j]) for j, d in enumerate(DIMS)})
                for name, fi in zip(CANONICAL_LEVELS, (F_DRAM, F_GB, F_RF))
            }
            spatial = {d: int(f[F_SPATIAL, j]) for j, d in enumerate(DIMS)}
            g.set_node(LayerNode(layer, cid, Mapping(temporal, spatial)))
        return g


def is_canonical(chunk: Chunk) -> bool:
    return chunk.level_names == CANONICAL_LEVELS and chunk.fanout == CANONICAL_FANOUT and all(
        level.keeps == ("W", "I", "O") for level in chunk.hierarchy
    )


def encode(g: DesignGraph) -> DesignBatch:
    """A mapped IR design on the canonical hierarchy as a batch of one."""
    if not g.is_mapped:
        raise DesignError(g.name, "layers", "the design has layers without a chunk or mapping; run a search first")
    nodes = [n for n in g.nodes() if n.layer.has_macs]
    table = LayerTable.of(tuple(n.layer for n in nodes))
    cids = sorted(g.chunks)
    for cid in cids:
        if not is_canonical(g.chunks[cid]):
            raise DesignError(g.name, f"chunks[{cid}].hierarchy", "the batched cost models need dnac's DRAM/GB/RF "
                              "hierarchy; imported hierarchies are costed by the scalar Timeloop model")
    slot_of = {cid: i for i, cid in enumerate(cids)}
    S, L = len(cids), len(nodes)
    unroll = np.ones((1, S, 7), dtype=np.int64)
    order = np.zeros((1, S, 3, 7), dtype=np.int64)
    gb = np.zeros((1, S, 3), dtype=np.int64)
    rf = np.zeros((1, S, 3), dtype=np.int64)
    bits = np.zeros((S, 2), dtype=np.int64)
    noc = np.zeros((1, S), dtype=np.int64)
    for cid, s in slot_of.items():
        c = g.chunks[cid]
        unroll[0, s] = [c.unroll_of(d) for d in DIMS]
        order[0, s] = [[DIMS.index(d) for d in c.loop_order[lvl]] for lvl in CANONICAL_LEVELS]
        gb[0, s] = [c.gb.W, c.gb.I, c.gb.O]
        rf[0, s] = [c.rf.W, c.rf.I, c.rf.O]
        bits[s] = (c.w_bits, c.a_bits)
        noc[0, s] = NOCS.index(c.noc) if c.noc is not None else 0
    factors = np.zeros((1, L, 4, 7), dtype=np.int64)
    slot = np.zeros((1, L), dtype=np.int64)
    for li, n in enumerate(nodes):
        m = n.mapping
        assert m is not None and n.chunk is not None
        slot[0, li] = slot_of[n.chunk]
        for j, d in enumerate(DIMS):
            factors[0, li, :, j] = [m.factor(MEM_LEVELS[0], d), m.factor(MEM_LEVELS[1], d), m.spatial_factor(d),
                                    m.factor(MEM_LEVELS[2], d)]
    return DesignBatch(
        table, g.workload(), np.array([ARCHS.index(g.arch)]), slot, noc, unroll, order, gb, rf, bits, factors,
        np.array([True]),
    )
