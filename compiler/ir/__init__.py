"""The design IR: layers on chunks with their mappings, in a typed networkx graph."""

from dnac.compiler.ir.chunk import BufferAlloc, Chunk
from dnac.compiler.ir.design import DesignGraph, LayerNode, TensorEdge
from dnac.compiler.ir.mapping import LevelLoops, Mapping

__all__ = ["BufferAlloc", "Chunk", "DesignGraph", "LayerNode", "LevelLoops", "Mapping", "TensorEdge"]
