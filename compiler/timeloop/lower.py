"""Lower one mapped layer of an IR design to the Timeloop form (`Nest`) the scalar model evaluates.

This is the bridge that lets one exact model check the other: `model.evaluate(lower(g, layer, t))`
must give the cycles and energy that the batched ASIC cost model (`cost/asic.py`) charges for the
same layer, and for an imported Timeloop case (`to_ir.import_case`) the numbers `timeloop-model`
printed.  So every choice here follows one of those two, never a third opinion:

* **Problem.**  dnac's K is Timeloop's M.  A depthwise layer becomes the `Depthwise-CNN-Layer`
  shape with G = K and C = M = 1 (the batched evaluator's convention: the input channel *is* the
  output channel, so no input reuse across output channels is credited).  The bounds are the
  *padded* ones, the product of the mapping's factors per dim: Timeloop needs exact products, and
  dnac charges the padded work.  dnac's stride[0] (rows, R/P) is Timeloop's Wstride, stride[1]
  (columns, S/Q) its Hstride, the pairing of the two projections.
* **Storage.**  One Timeloop level per `StorageLevel`, outermost first, with its keep set,
  capacity (`words` shared by the kept tensors; a `partition` becomes per-tensor capacities),
  block size and bandwidths.  Per-PE levels have one instance per PE of `chunk.pe_array`
  (rows x columns) with meshX = columns; shared levels have one instance.
* **Energies.**  A level with explicit `read_pJ`/`write_pJ` (imported designs) is taken as fully
  specified: its energies, its block size and its own bandwidths (None = unlimited).  Any other
  level is priced exactly as `cost/asic.py` prices the canonical hierarchy, through the same
  `_components` lookup: DRAM one 64-bit access (the table's read and write energies),
  GB a 64-bit SRAM of `gb_depth(words)` rows, both with blocks of 64 / word-bits words; RF the
  register file of its words, one word per access; the target's DRAM bandwidth (shared, in
  words per cycle) on the DRAM level.  The MAC costs `chunk.attrs["mac_pJ"]` when given, else
  the target's MAC of the datapath width (the wider of the chunk's weight and activation bits).
* **Spatial split.**  Which spatial dims run along mesh X, and in which order, decides which PEs
  are mesh neighbours, so it changes link transfers (and whether Timeloop accepts the fan-out),
  nothing else.  A mapping that states its `mesh` (imported Timeloop mappings, `dnac map`) keeps
  it.  Otherwise all dims go to X when their product fits the columns; else the first subset
  (fewest dims, then dnac's dim order) whose product fits the rows goes to Y and the rest to X,
  each in dnac's dim order.  dnac's canonical chunks always have one (the first NoC dim's unroll
  is the row count).
"""

from __future__ import annotations

import math
from itertools import combinations

from dnac.compiler.errors import DesignError
from dnac.compiler.ir.chunk import Chunk, StorageLevel
from dnac.compiler.ir.design import DesignGraph
from dnac.compiler.ir.mapping import LevelLoops, Mapping
from dnac.compiler.targets import AsicTarget
from dnac.compiler.timeloop.nest import Compute, LevelMapping, Nest, Problem, ShapeKind, Storage
from dnac.compiler.vocab import DIMS, Dim, MemLevel, Tensor
from dnac.compiler.workload.layer import Layer

#: Timeloop's name of each dnac dim (conv shape) and tensor.
TL_DIM: dict[Dim, str] = {Dim.N: "N", Dim.K: "M", Dim.C: "C", Dim.R: "R", Dim.S: "S", Dim.P: "P", Dim.Q: "Q"}
#: The depthwise shape: dnac's K is the group dim G; Timeloop's M (one output per group) stays 1.
TL_DIM_DW: dict[Dim, str] = {**TL_DIM, Dim.K: "G"}
TL_TENSOR: dict[Tensor, str] = {Tensor.W: "Weights", Tensor.I: "Inputs", Tensor.O: "Outputs"}

#: Level attribute read for Timeloop's `multiple-buffering` (tiles get floor(size / it) words).
MULTIPLE_BUFFERING = "multiple-buffering"


def tl_dims(depthwise: bool) -> dict[Dim, str]:
    """dnac dim -> Timeloop dim name for the shape a layer lowers to."""
    return TL_DIM_DW if depthwise else TL_DIM


def word_bits(chunk: Chunk) -> int:
    """The datapath width a chunk's storage and MACs are priced at (as `cost/asic.py`)."""
    return max(chunk.w_bits, chunk.a_bits)


def problem_of(layer: Layer, mapping: Mapping, where: str = "<design>") -> Problem:
    """The padded Timeloop problem of `layer` under `mapping` (see the module docstring)."""
    padded = {d: mapping.covered(d) for d in DIMS}
    names = tl_dims(layer.is_depthwise)
    bounds = {names[d]: padded[d] for d in DIMS}
    if layer.is_depthwise:
        if padded[Dim.C] != 1:
            raise DesignError(where, "mapping.C", f"a depthwise layer has one input channel per group; its loops "
                              f"cover C = {padded[Dim.C]}")
        bounds["M"] = 1
    kind = ShapeKind.DEPTHWISE if layer.is_depthwise else ShapeKind.CONV
    return Problem(kind, bounds, wstride=layer.stride[0], hstride=layer.stride[1])


def split_spatial(spatial: dict[Dim, int], mesh_x: int, mesh_y: int) -> tuple[tuple[Dim, ...], tuple[Dim, ...]] | None:
    """(X dims, Y dims) of the spatial factors > 1 fitting a mesh_x x mesh_y array, or None."""
    dims = [d for d in DIMS if spatial.get(d, 1) > 1]
    for n_y in range(len(dims) + 1):
        for ys in combinations(dims, n_y):
            xs = tuple(d for d in dims if d not in ys)
            if math.prod(spatial[d] for d in xs) <= mesh_x and math.prod(spatial[d] for d in ys) <= mesh_y:
                return xs, ys
    return None


def _level_words(level: StorageLevel) -> int | None:
    """The words a level is built with (a partition's total, as `das.batch.encode` reads it)."""
    return level.partition.total if level.partition is not None else level.words


def _chunk_components(chunk: Chunk, target: AsicTarget, bits: int, level: StorageLevel | None = None,
                      where: str = "<design>") -> tuple[float, ...]:
    """`cost/asic.py`'s component tuple for `chunk` (its GB and RF sizes), with `level`'s own size in
    place of its role's when given (a hierarchy may have several GB- or RF-role levels)."""
    # Imported here: cost.asic -> cost.canonical -> timeloop.batched loads this package, which
    # re-exports `lower`; a module-level import would close that cycle.
    from dnac.compiler.cost.asic import _components, gb_depth

    gb, rf = chunk.level(MemLevel.GB), chunk.level(MemLevel.RF)
    gb_words = (_level_words(gb) if gb is not None else 0) or 0
    rf_words = (_level_words(rf) if rf is not None else 0) or 0
    if level is not None and level.role is not MemLevel.DRAM:
        own = _level_words(level)
        if own is None:
            raise DesignError(where, f"hierarchy.{level.name}", "an unbounded on-chip level cannot be priced; give "
                              "it words or explicit read_pJ/write_pJ")
        if level.role is MemLevel.GB:
            gb_words = own
        else:
            rf_words = own
    return _components(target, gb_depth(gb_words, bits), rf_words, bits)


def _priced(level: StorageLevel, chunk: Chunk, target: AsicTarget, bits: int, where: str) -> tuple[float, float, int]:
    """(read pJ, write pJ, block words) of a level without explicit energies, as `cost/asic.py`."""
    from dnac.compiler.cost.asic import GB_WIDTH  # see _chunk_components

    comp = _chunk_components(chunk, target, bits, level, where)
    vec = max(1, GB_WIDTH // bits)
    if level.role is MemLevel.DRAM:
        return comp[0], comp[9], vec
    if level.role is MemLevel.GB:
        return comp[1], comp[2], vec
    return comp[3], comp[4], 1


def _storage(level: StorageLevel, chunk: Chunk, target: AsicTarget, bits: int, where: str) -> Storage:
    rows, cols = chunk.pe_array
    explicit = level.read_pJ is not None or level.write_pJ is not None
    bws: tuple[float | None, float | None, float | None] = (level.read_bw, level.write_bw, level.shared_bw)
    if explicit:
        read = level.read_pJ if level.read_pJ is not None else level.write_pJ
        write = level.write_pJ if level.write_pJ is not None else level.read_pJ
        block = level.block_size
    else:
        read, write, block = _priced(level, chunk, target, bits, where)
        if level.role is MemLevel.DRAM and bws == (None, None, None):
            bws = (None, None, target.dram_bytes_per_cycle * 8 / bits)
    assert read is not None and write is not None
    caps = None
    if level.partition is not None:
        caps = {TL_TENSOR[t]: level.partition.words(t) for t in Tensor}
    return Storage(
        name=level.name,
        instances=rows * cols if level.per_pe else 1,
        mesh_x=cols if level.per_pe else 1,
        size=level.words,
        block_size=block,
        word_bits=int(level.attrs.get("word-bits", bits)),
        read_bw=bws[0], write_bw=bws[1], shared_bw=bws[2],
        read_pJ=float(read), write_pJ=float(write),
        capacities=caps,
        multiple_buffering=float(level.attrs.get(MULTIPLE_BUFFERING, 1.0)),
    )


def _level_mapping(level: StorageLevel, loops: LevelLoops, mapping: Mapping, names: dict[Dim, str],
                   xy: tuple[tuple[Dim, ...], tuple[Dim, ...]]) -> LevelMapping:
    extra = tuple(d for d in ("M",) if d not in names.values())  # the depthwise shape's unit M, innermost
    temporal = {names[d]: loops.size(d) for d in DIMS if loops.size(d) > 1}
    perm = tuple(names[d] for d in loops.order) + extra
    keep = frozenset(TL_TENSOR[t] for t in level.keeps)
    if level.name != mapping.fanout or not mapping.spatial:
        return LevelMapping(temporal, perm, keep=keep)
    xs, ys = xy
    units = tuple(names[d] for d in DIMS if d not in xs and d not in ys) + extra
    spatial = {names[d]: f for d, f in mapping.spatial.items() if f > 1}
    s_perm = units + tuple(names[d] for d in ys) + tuple(names[d] for d in xs)
    return LevelMapping(temporal, perm, spatial, s_perm, len(xs), keep)


def lower(design: DesignGraph, layer: str, target: AsicTarget) -> Nest:
    """The Timeloop form of `layer` as mapped on its chunk of `design` (see the module docstring).

    Raises `DesignError` for an unmapped layer, a mapping that does not follow its chunk's
    hierarchy, or spatial factors that no X/Y split fits into the chunk's PE array."""
    where = f"{design.name}:{layer}"
    if layer not in design:
        raise DesignError(where, "layer", f"no layer {layer!r} in the design")
    node = design.node(layer)
    chunk = design.chunk_of(layer)
    m = node.mapping
    if chunk is None or m is None:
        raise DesignError(where, "mapping", "the layer has no chunk or no mapping; run a search first")
    if m.levels != chunk.level_names or m.fanout != chunk.fanout:
        raise DesignError(where, "mapping", f"levels {list(m.levels)} (fan-out {m.fanout!r}) do not follow chunk "
                          f"{chunk.id}'s hierarchy {list(chunk.level_names)} (fan-out {chunk.fanout!r})")
    bits = word_bits(chunk)
    rows, cols = chunk.pe_array
    xy = m.mesh if m.mesh is not None else split_spatial(m.spatial, cols, rows)
    if xy is not None and m.mesh is not None and (math.prod(m.spatial_factor(d) for d in xy[0]) > cols
                                                  or math.prod(m.spatial_factor(d) for d in xy[1]) > rows):
        raise DesignError(where, "mapping.spatial_mesh", f"X {''.join(xy[0])} / Y {''.join(xy[1])} do not fit chunk "
                          f"{chunk.id}'s {rows}x{cols} PE array")
    if xy is None:
        raise DesignError(where, "mapping.spatial", f"factors {dict(m.spatial)} fit no split over chunk {chunk.id}'s "
                          f"{rows}x{cols} PE array")
    names = tl_dims(node.layer.is_depthwise)
    storage = tuple(_storage(level, chunk, target, bits, where) for level in chunk.hierarchy)
    mappings = tuple(_level_mapping(level, m.temporal[level.name], m, names, xy) for level in chunk.hierarchy)
    mac_pJ = chunk.attrs.get("mac_pJ")
    if mac_pJ is None:
        mac_pJ = _chunk_components(chunk, target, bits)[5]
    compute = Compute(str(chunk.attrs.get("mac_name", "mac")), rows * cols, cols, float(mac_pJ))
    return Nest(problem_of(node.layer, m, where), storage, compute, mappings, source=where)
