"""Every invariant of a design, each violation naming the node and the field.

`violations(g)` lists all problems (a user fixing a hand-edited design.yaml wants them all at
once); `check(g)` raises a `DesignError` whose one line names the first and counts the rest.
The rules, from DESIGN.md and DNA Sec. 3.5:

- layer shapes are consistent (output extent from input, kernel, stride, padding; linear is
  R=S=P=Q=1; depthwise is groups == C == K; pools and adds keep the channel count);
- every input names an earlier layer (or the network input) whose output shape it reads;
- every layer with MACs belongs to one chunk, and each chunk lists exactly its layers;
- depthwise layers never share a chunk with other convolutions; in the pipeline style a
  chunk's layers share one precision, and no layer is wider than its chunk's datapath;
- a chunk's unroll uses only its NoC style's dims and fills its PE array;
- a mapping's loop orders are permutations of the 7 dims and equal its chunk's; its spatial
  factors fit the chunk's unroll; for every dim the nest covers the loop bound exactly or with
  padding, without an outer iteration that is all padding;
- every tile fits its level; on an FPGA target the GB tile fits the banks of the engine's
  buffers (`fpga_buffers.bank_need`, as the HLS engine places it), and a grouped layer's K tile
  stays inside one group.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from dnac.compiler.cost import fpga_buffers
from dnac.compiler.errors import DesignError
from dnac.compiler.ir.chunk import Chunk
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.ir.footprint import footprints
from dnac.compiler.vocab import DIMS, TENSORS, ArchStyle, OpKind
from dnac.compiler.workload.builder import MAX_BITS, MIN_BITS
from dnac.compiler.workload.layer import INPUT, Layer, out_extent


@dataclass(frozen=True)
class Violation:
    node: str  # layer name, "chunk <id>", or "design"
    field: str
    reason: str

    def line(self) -> str:
        return f"{self.node}: {self.field}: {self.reason}"


def _layer_shape(layer: Layer) -> list[Violation]:
    v: list[Violation] = []
    name = layer.name

    def bad(field: str, reason: str) -> None:
        v.append(Violation(name, field, reason))

    for d, size in layer.dims.items():
        if size < 1:
            bad(f"dims.{d}", f"must be positive, got {size}")
    if v:
        return v
    for bits, field in ((layer.w_bits, "bits.w"), (layer.a_bits, "bits.a")):
        if not MIN_BITS <= bits <= MAX_BITS:
            bad(field, f"{bits} is outside [{MIN_BITS}, {MAX_BITS}]")
    if layer.C % layer.groups or layer.K % layer.groups:
        bad("groups", f"{layer.groups} does not divide C={layer.C} and K={layer.K}")
    if layer.op is OpKind.LINEAR and (layer.R, layer.S, layer.P, layer.Q) != (1, 1, 1, 1):
        bad("dims", "a linear layer has R = S = P = Q = 1")
    if layer.op is OpKind.DWCONV and not (layer.groups == layer.C == layer.K):
        bad("groups", f"depthwise needs groups == C == K, got groups={layer.groups} C={layer.C} K={layer.K}")
    if layer.op is OpKind.CONV and layer.groups > 1 and layer.groups == layer.C == layer.K:
        bad("op", "groups == C == K is a depthwise conv: op must be dwconv")
    if (layer.op.is_pool or layer.op is OpKind.ADD) and layer.K != layer.C:
        bad("dims.K", f"{layer.op} keeps the channel count: K={layer.K} but C={layer.C}")
    if layer.op.is_pool and (layer.padding[0] > layer.R // 2 or layer.padding[1] > layer.S // 2):
        bad("padding", f"{list(layer.padding)} exceeds half the {[layer.R, layer.S]} window (a window of "
            "padding only has no value)")
    if layer.op is OpKind.ADD:
        if len(layer.inputs) < 2:
            bad("inputs", "an add needs at least two inputs")
        if (layer.H, layer.W) != (layer.P, layer.Q):
            bad("dims", "an add keeps the spatial size (P, Q) == input (H, W)")
    elif layer.op is not OpKind.LINEAR:
        for axis, (size, k, s, p, out, d) in enumerate(
            ((layer.H, layer.R, layer.stride[0], layer.padding[0], layer.P, "P"),
             (layer.W, layer.S, layer.stride[1], layer.padding[1], layer.Q, "Q"))
        ):
            if k > size + 2 * p:
                bad(f"dims.{'RS'[axis]}", f"kernel {k} is larger than its padded input {size + 2 * p}")
            elif out_extent(size, k, s, p) != out:
                bad(f"dims.{d}", f"is {out} but input {size}, kernel {k}, stride {s}, padding {p} give "
                    f"{out_extent(size, k, s, p)}")
    return v


def _edges(g: DesignGraph) -> list[Violation]:
    v: list[Violation] = []
    seen: dict[str, Layer] = {}
    for layer in g.layers():
        shapes = []
        for i, src in enumerate(layer.inputs):
            if src == INPUT:
                shapes.append(tuple(g.input_shape))
            elif src not in seen:
                where = "a later layer" if src in g else "no layer"
                v.append(Violation(layer.name, f"inputs[{i}]", f"{src!r} names {where}; inputs must come first"))
            else:
                shapes.append(seen[src].out_shape)
        if len(shapes) == len(layer.inputs):
            expect = (layer.C, layer.H, layer.W)
            for i, shape in enumerate(shapes):
                flat = math.prod(shape)
                ok = tuple(shape) == expect or (layer.op is OpKind.LINEAR and flat == layer.C)
                if not ok:
                    v.append(Violation(layer.name, f"inputs[{i}]",
                                       f"reads {list(shape)} from {layer.inputs[i]!r} but expects {list(expect)}"))
        seen[layer.name] = layer
    return v


def _chunks(g: DesignGraph) -> list[Violation]:
    v: list[Violation] = []
    members: dict[int, list[LayerNode]] = {cid: [] for cid in g.chunks}
    for n in g.nodes():
        if n.chunk is None:
            if n.layer.has_macs and g.chunks:
                v.append(Violation(n.name, "chunk", "a layer with MACs must be assigned to a chunk"))
            continue
        if n.chunk not in g.chunks:
            v.append(Violation(n.name, "chunk", f"chunk {n.chunk} does not exist"))
            continue
        if not n.layer.has_macs:
            v.append(Violation(n.name, "chunk", f"a {n.layer.op} layer has no MACs and runs on no chunk"))
            continue
        members[n.chunk].append(n)
    for cid, chunk in sorted(g.chunks.items()):
        who = f"chunk {cid}"
        if chunk.id != cid:
            v.append(Violation(who, "id", f"stored under id {cid} but says {chunk.id}"))
        listed, actual = list(chunk.layers), [n.name for n in members[cid]]
        if sorted(listed) != sorted(actual):
            v.append(Violation(who, "layers", f"lists {listed} but the layers assigned to it are {actual}"))
        dw = {n.layer.is_depthwise for n in members[cid]}
        if len(dw) > 1:
            v.append(Violation(who, "layers", "mixes depthwise and other layers (depthwise gets its own chunks)"))
        elif dw and dw != {chunk.depthwise}:
            v.append(Violation(who, "depthwise", f"is {chunk.depthwise} but its layers say otherwise"))
        bits = {(n.layer.w_bits, n.layer.a_bits) for n in members[cid]}
        if g.arch is ArchStyle.PIPELINE and len(bits) > 1:
            v.append(Violation(who, "layers", f"mixes precisions {sorted(bits)}; a pipeline chunk has one"))
        for n in members[cid]:
            if n.layer.w_bits > chunk.w_bits or n.layer.a_bits > chunk.a_bits:
                v.append(Violation(n.name, "bits", f"w{n.layer.w_bits}/a{n.layer.a_bits} is wider than chunk "
                                   f"{cid}'s datapath w{chunk.w_bits}/a{chunk.a_bits}"))
        v += _chunk_hw(g, chunk)
    if g.arch is ArchStyle.MULTI_CYCLE:
        kinds = [c.depthwise for c in g.chunks.values()]
        if kinds.count(True) > 1 or kinds.count(False) > 1:
            v.append(Violation("design", "chunks", "multi-cycle has one shared engine (plus one depthwise engine)"))
    return v


def _chunk_hw(g: DesignGraph, chunk: Chunk) -> list[Violation]:
    v: list[Violation] = []
    who = f"chunk {chunk.id}"
    for d, u in chunk.unroll.items():
        if chunk.noc is not None and d not in chunk.noc.dims:
            v.append(Violation(who, f"unroll.{d}", f"NoC style {chunk.noc} parallelizes only {chunk.noc.value}"))
        if u < 1:
            v.append(Violation(who, f"unroll.{d}", f"must be positive, got {u}"))
    rows, cols = chunk.pe_array
    # dnac's own arrays are exactly their unrolls; an imported array (noc None) may have PEs that
    # no unroll of its dims fills exactly (spatial 3 x 5 on a 4 x 4 mesh)
    if rows * cols != chunk.pes and (chunk.noc is not None or chunk.pes > rows * cols):
        v.append(Violation(who, "pe_array", f"{rows}x{cols} = {rows * cols} PEs but the unrolls give {chunk.pes}"))
    names = chunk.level_names
    if not names or all(level.per_pe for level in chunk.hierarchy):
        v.append(Violation(who, "hierarchy", "needs at least one level above the PE array"))
        return v
    if len(set(names)) != len(names):
        v.append(Violation(who, "hierarchy", f"level names must be unique, got {list(names)}"))
    per_pe = [level.per_pe for level in chunk.hierarchy]
    if per_pe != sorted(per_pe):
        v.append(Violation(who, "hierarchy", "per-PE levels must come after (inside) the shared ones"))
    for i, level in enumerate(chunk.hierarchy):
        if level.partition is not None and level.words is not None and level.partition.total > level.words:
            v.append(Violation(who, f"hierarchy[{i}].partition", f"{level.partition.total} words exceed {level.words}"))
    if tuple(chunk.loop_order) != names:
        v.append(Violation(who, "loop_order", f"must give one order per level, {list(names)}"))
    for name, order in chunk.loop_order.items():
        if sorted(order) != sorted(DIMS):
            v.append(Violation(who, f"loop_order.{name}", "must name each of the 7 dims once"))
    return v


def _mapping(g: DesignGraph, n: LayerNode) -> list[Violation]:
    m = n.mapping
    if m is None:
        return []
    v: list[Violation] = []
    name = n.name
    chunk = g.chunks.get(n.chunk) if n.chunk is not None else None
    if chunk is not None:
        if m.levels != chunk.level_names:
            v.append(Violation(name, "mapping", f"has levels {list(m.levels)} but chunk {chunk.id} has "
                               f"{list(chunk.level_names)}"))
            return v
        if m.fanout != chunk.fanout:
            v.append(Violation(name, "mapping.spatial", f"must follow level {chunk.fanout!r}, not {m.fanout!r}"))
    if m.fanout not in m.temporal:
        v.append(Violation(name, "mapping.spatial", f"follows unknown level {m.fanout!r}"))
        return v
    for lvl, loops in m.temporal.items():
        if sorted(loops.order) != sorted(DIMS):
            v.append(Violation(name, f"mapping.{lvl}.order", "must name each of the 7 dims once"))
        elif chunk is not None and tuple(loops.order) != tuple(chunk.loop_order.get(lvl, ())):
            v.append(Violation(name, f"mapping.{lvl}.order", f"differs from chunk {chunk.id}'s loop order"))
        for d, size in loops.sizes.items():
            if size < 1:
                v.append(Violation(name, f"mapping.{lvl}.sizes.{d}", f"must be positive, got {size}"))
    if v:
        return v
    for d, f in m.spatial.items():
        if chunk is not None and f > chunk.unroll_of(d):
            v.append(Violation(name, f"mapping.spatial.{d}", f"{f} exceeds chunk {chunk.id}'s unroll {chunk.unroll_of(d)}"))
    if chunk is not None:
        v += _capacity(n, chunk, _is_fpga(g.target))
    for d, bound in n.layer.bounds.items():
        covered = m.covered(d)
        if covered < bound:
            v.append(Violation(name, f"mapping.{d}", f"loops cover {covered} of {bound}"))
            continue
        outer = next((f for f in m.chain(d) if f > 1), 1)
        if outer > 1 and covered // outer >= bound:
            v.append(Violation(name, f"mapping.{d}", f"loops cover {covered} for a bound of {bound}: the outermost "
                               f"factor {outer} adds iterations that are all padding"))
    return v


@functools.cache
def _is_fpga(target: str) -> bool:
    from dnac.compiler.targets import FpgaTarget, known_targets, load_target

    return target in known_targets() and isinstance(load_target(target), FpgaTarget)


def _banks(n: LayerNode, chunk: Chunk) -> list[Violation]:
    """The GB tile in the engine's banks (FPGA; see `fpga_buffers`)."""
    m = n.mapping
    assert m is not None
    f_gb, sp, f_rf = (np.array([get(d) for d in DIMS]) for get in (
        lambda d: m.factor("GB", d), m.spatial_factor, lambda d: m.factor("RF", d)))
    unroll = np.array([chunk.unroll_of(d) for d in DIMS])
    need = fpga_buffers.bank_need(f_gb, sp, f_rf, unroll, np.array(n.layer.stride), chunk.depthwise)
    n_banks = fpga_buffers.banks(unroll, chunk.depthwise)
    depth = fpga_buffers.depths(np.array([chunk.gb.W, chunk.gb.I, chunk.gb.O]), n_banks)
    v = [Violation(n.name, "mapping.GB", f"{t} tile of {int(need[i])} words per bank exceeds the "
                   f"{int(depth[i])} words of each of chunk {chunk.id}'s {int(n_banks[i])} {t} banks") for i, t in enumerate(TENSORS) if need[i] > depth[i]]
    lyr = n.layer
    t_k = int(f_gb[1] * sp[1] * f_rf[1])
    if lyr.groups > 1 and not lyr.is_depthwise and (lyr.K // lyr.groups) % t_k:
        v.append(Violation(n.name, "mapping.K", f"a K tile of {t_k} spans groups of {lyr.K // lyr.groups} channels "
                           "(the engine keeps a grouped layer's K tiles inside one group)"))
    return v


def _capacity(n: LayerNode, chunk: Chunk, banked: bool) -> list[Violation]:
    """Every kept tensor's tile fits the words its level gives it (shared levels: together);
    with `banked` (FPGA) the GB tile is checked in the engine's banks instead."""
    m = n.mapping
    assert m is not None
    v: list[Violation] = []
    stride = np.array(n.layer.stride)
    for level in chunk.hierarchy:
        if level.name not in m.temporal:
            continue
        if banked and level.name == "GB":
            v += _banks(n, chunk)
            continue
        tile = np.array([m.tile(level.name, d) for d in DIMS])
        fp = dict(zip(TENSORS, (int(x) for x in footprints(tile, stride, n.layer.is_depthwise))))
        kept = [t for t in level.keeps]
        if level.partition is not None:
            for t in kept:
                if fp[t] > level.partition.words(t):
                    v.append(Violation(n.name, f"mapping.{level.name}", f"{t} tile of {fp[t]} words exceeds the "
                                       f"{level.partition.words(t)} words chunk {chunk.id} gives it"))
        elif level.words is not None and sum(fp[t] for t in kept) > level.words:
            v.append(Violation(n.name, f"mapping.{level.name}", f"tiles of {sum(fp[t] for t in kept)} words exceed "
                               f"its {level.words} words"))
    return v


def violations(g: DesignGraph) -> list[Violation]:
    v: list[Violation] = []
    if g.batch < 1:
        v.append(Violation("design", "batch", f"must be positive, got {g.batch}"))
    for n in g.nodes():
        v += _layer_shape(n.layer)
        if n.layer.N != g.batch:
            v.append(Violation(n.name, "dims.N", f"is {n.layer.N} but the design's batch is {g.batch}"))
    v += _edges(g)
    v += _chunks(g)
    for n in g.nodes():
        if n.mapping is not None and not n.layer.has_macs:
            v.append(Violation(n.name, "mapping", f"a {n.layer.op} layer has no MACs to map"))
        else:
            v += _mapping(g, n)
    return v


def check(g: DesignGraph, file: str = "<design>") -> None:
    """Raise a one-line `DesignError` naming the first violation (and how many more)."""
    v = violations(g)
    if v:
        more = f" (and {len(v) - 1} more)" if len(v) > 1 else ""
        raise DesignError(file, f"{v[0].node}.{v[0].field}", v[0].reason + more)
