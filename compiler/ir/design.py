"""The design IR: a typed wrapper around `networkx.DiGraph`.

Nodes are layers, each carrying one `LayerNode` under the key "node" (never loose string
attributes); edges are tensors carrying a `TensorEdge` under "tensor".  Graph-level facts
(target, architecture style, chunks) live in typed fields of `DesignGraph`.  The IR holds a
design; it never costs, searches or emits anything: that lives in cost/, das/ and backends/.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import networkx as nx

from dnac.compiler.ir.chunk import Chunk
from dnac.compiler.ir.mapping import Mapping
from dnac.compiler.vocab import ArchStyle
from dnac.compiler.workload.layer import INPUT, Layer, Workload

NODE = "node"
TENSOR = "tensor"


@dataclass(frozen=True)
class LayerNode:
    """A layer of the design: its workload, its chunk and its mapping on that chunk."""

    layer: Layer
    chunk: int | None = None  # chunk id; None for layers without MACs (pool, add) or unmapped
    mapping: Mapping | None = None  # None until a search (or design.yaml) gives one

    @property
    def name(self) -> str:
        return self.layer.name


@dataclass(frozen=True)
class TensorEdge:
    """An activation tensor passed from producer to consumer."""

    shape: tuple[int, ...]  # (N, C, H, W) as produced
    bits: int  # width the consumer reads it at


@dataclass
class DesignGraph:
    """A network mapped (or to be mapped) onto an accelerator for one target."""

    name: str  # model name
    target: str  # registered target name (zc706, asic, ...)
    arch: ArchStyle
    input_shape: tuple[int, int, int]
    batch: int = 1
    chunks: dict[int, Chunk] = field(default_factory=dict)
    target_overrides: dict[str, dict[str, float]] = field(default_factory=dict)  # per target name
    meta: dict[str, object] = field(default_factory=dict)  # provenance (search method, seed, ...)
    graph: nx.DiGraph = field(default_factory=nx.DiGraph, repr=False)

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_workload(cls, workload: Workload, target: str, arch: ArchStyle = ArchStyle.PIPELINE) -> DesignGraph:
        """An unmapped design: every layer, no chunks or mappings yet."""
        g = cls(
            name=workload.name,
            target=target,
            arch=arch,
            input_shape=workload.input_shape,
            batch=workload.batch,
            target_overrides=dict(workload.target_overrides),
        )
        for layer in workload.layers:
            g.add_layer(LayerNode(layer))
        return g

    def add_layer(self, node: LayerNode) -> None:
        """Add a node and the edges from its producers (which must already be present)."""
        self.graph.add_node(node.name, **{NODE: node})
        for src in node.layer.inputs:
            if src == INPUT or src not in self.graph:  # a dangling name: the validator reports it
                continue
            producer = self.node(src).layer
            edge = TensorEdge((producer.N, *producer.out_shape), node.layer.a_bits)
            self.graph.add_edge(src, node.name, **{TENSOR: edge})

    def set_node(self, node: LayerNode) -> None:
        """Replace a node's payload (chunk, mapping, bits); its edges stay."""
        self.graph.nodes[node.name][NODE] = node

    def workload(self) -> Workload:
        return Workload(
            name=self.name,
            input_shape=self.input_shape,
            batch=self.batch,
            layers=tuple(n.layer for n in self.nodes()),
            target_overrides=dict(self.target_overrides),
        )

    def copy(self) -> DesignGraph:
        return replace(self, chunks=dict(self.chunks), meta=dict(self.meta), graph=self.graph.copy())

    # ----------------------------------------------------------------- typed views
    def node(self, name: str) -> LayerNode:
        return self.graph.nodes[name][NODE]

    def nodes(self) -> Iterator[LayerNode]:
        """Layers in insertion order, which is a topological order."""
        for name in self.graph.nodes:
            yield self.graph.nodes[name][NODE]

    def layers(self) -> Iterator[Layer]:
        for n in self.nodes():
            yield n.layer

    def edges(self) -> Iterator[tuple[str, str, TensorEdge]]:
        for u, v, data in self.graph.edges(data=True):
            yield u, v, data[TENSOR]

    def predecessors(self, name: str) -> list[str]:
        return list(self.graph.predecessors(name))

    def successors(self, name: str) -> list[str]:
        return list(self.graph.successors(name))

    def chunk_of(self, name: str) -> Chunk | None:
        cid = self.node(name).chunk
        return None if cid is None else self.chunks.get(cid)

    def chunk_layers(self, cid: int) -> list[LayerNode]:
        return [n for n in self.nodes() if n.chunk == cid]

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def __contains__(self, name: object) -> bool:
        return name in self.graph

    @property
    def is_mapped(self) -> bool:
        """Every layer with MACs has a chunk and a mapping."""
        return all(n.chunk is not None and n.mapping is not None for n in self.nodes() if n.layer.has_macs)

    @property
    def total_macs(self) -> int:
        return sum(n.layer.macs for n in self.nodes())

    @property
    def total_pes(self) -> int:
        if self.arch is ArchStyle.MULTI_CYCLE:
            return max((c.pes for c in self.chunks.values()), default=0)
        return sum(c.pes for c in self.chunks.values())

    # ----------------------------------------------------------------- comparison
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DesignGraph):
            return NotImplemented
        return (
            (self.name, self.target, self.arch, tuple(self.input_shape), self.batch)
            == (other.name, other.target, other.arch, tuple(other.input_shape), other.batch)
            and self.chunks == other.chunks
            and self.target_overrides == other.target_overrides
            and self.meta == other.meta
            and list(self.nodes()) == list(other.nodes())
            and sorted(self.edges(), key=_edge_key) == sorted(other.edges(), key=_edge_key)
        )

    __hash__ = None  # type: ignore[assignment]  (mutable)


def _edge_key(e: tuple[str, str, TensorEdge]) -> tuple[str, str]:
    return (e[0], e[1])


def padded_macs(node: LayerNode) -> int:
    """MACs the hardware executes for this layer, padding included."""
    if node.mapping is None:
        return node.layer.macs
    return math.prod(node.mapping.covered(d) for d in node.layer.bounds)
