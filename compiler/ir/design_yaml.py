"""design.yaml: the versioned, human-readable serialization of a `DesignGraph`.

`load(dump(g)) == g` holds for every design (tested over the zoo and random mappings), so a
design can be searched once, edited by hand, and re-costed or re-emitted by `dnac build
design.yaml` without searching.  Structure errors name the field path; semantic invariants
are left to `validate`, which names the node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dnac.compiler.errors import DesignError
from dnac.compiler.ir.chunk import BufferAlloc, Chunk
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.ir.mapping import LevelLoops, Mapping
from dnac.compiler.vocab import DIMS, MEM_LEVELS, Activation, ArchStyle, Dim, MemLevel, NocStyle, OpKind
from dnac.compiler.workload.layer import Layer
from dnac.compiler.yamlio import Fields, dump_yaml, int_list, parse_yaml, read_yaml

#: Key that marks a design.yaml and its schema version.
VERSION_KEY = "dnac_design"
VERSION = 1


# ---------------------------------------------------------------------------- dump
def _order(order: tuple[Dim, ...]) -> str:
    return "".join(d.value for d in order)


def _dims(d: dict[Dim, int]) -> dict[str, int]:
    return {k.value: int(v) for k, v in sorted(d.items(), key=lambda kv: DIMS.index(kv[0]))}


def _mapping_dict(m: Mapping) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lvl in MEM_LEVELS:
        loops = m.temporal[lvl]
        out[lvl.value] = {"order": _order(loops.order), "sizes": _dims(loops.sizes)}
        if lvl is MemLevel.GB:
            out["spatial"] = _dims(m.spatial)
    return out


def _chunk_dict(c: Chunk) -> dict[str, Any]:
    return {
        "id": c.id,
        "layers": list(c.layers),
        "depthwise": c.depthwise,
        "noc": c.noc.value,
        "unroll": _dims(c.unroll),
        "pe_array": list(c.pe_array),
        "loop_order": {lvl.value: _order(c.loop_order[lvl]) for lvl in MEM_LEVELS},
        "buffers": {
            "GB": {"W": c.gb.W, "I": c.gb.I, "O": c.gb.O},
            "RF": {"W": c.rf.W, "I": c.rf.I, "O": c.rf.O},
        },
        "bits": {"w": c.w_bits, "a": c.a_bits},
        "attrs": dict(c.attrs),
    }


def _layer_dict(n: LayerNode) -> dict[str, Any]:
    layer = n.layer
    d: dict[str, Any] = {
        "name": layer.name,
        "op": layer.op.value,
        "dims": _dims(layer.dims),
        "input_hw": [layer.H, layer.W],
        "stride": list(layer.stride),
        "padding": list(layer.padding),
        "groups": layer.groups,
        "bias": layer.bias,
        "activation": layer.activation.value,
        "bits": {"w": layer.w_bits, "a": layer.a_bits},
        "inputs": list(layer.inputs),
        "chunk": n.chunk,
    }
    if layer.source:
        d["source"] = layer.source
    if n.mapping is not None:
        d["mapping"] = _mapping_dict(n.mapping)
    return d


def to_dict(g: DesignGraph) -> dict[str, Any]:
    return {
        VERSION_KEY: VERSION,
        "model": g.name,
        "target": g.target,
        "arch": g.arch.value,
        "input_shape": list(g.input_shape),
        "batch": g.batch,
        "target_overrides": dict(g.target_overrides),
        "meta": dict(g.meta),
        "chunks": [_chunk_dict(c) for c in sorted(g.chunks.values(), key=lambda c: c.id)],
        "layers": [_layer_dict(n) for n in g.nodes()],
    }


def dump(g: DesignGraph) -> str:
    header = "# dnac design: a network mapped onto an accelerator. Loop orders are outermost first.\n"
    return header + dump_yaml(to_dict(g))


# ---------------------------------------------------------------------------- load
def _enum(f: Fields, key: str, enum: type, default: Any = None) -> Any:
    v = f.raw(key) if default is None else f.raw(key, default)
    try:
        return enum(v)
    except ValueError:
        f.fail(key, f"unknown value {v!r} (known: {', '.join(e.value for e in enum)})")


def _parse_order(f: Fields, key: str) -> tuple[Dim, ...]:
    s = f.str_(key)
    try:
        order = tuple(Dim(ch) for ch in s)
    except ValueError:
        f.fail(key, f"loop order {s!r} must be letters of {''.join(DIMS)}")
    if sorted(order) != sorted(DIMS):
        f.fail(key, f"loop order {s!r} must name each of {''.join(DIMS)} exactly once")
    return order


def _parse_dims(f: Fields, key: str, *, required: bool = False) -> dict[Dim, int]:
    m = f.map_(key) if (required or f.has(key)) else Fields({}, f.file, f.sub(key), f.error)
    m.only([d.value for d in DIMS])
    return {Dim(k): m.int_(k) for k in m.data}


def _parse_mapping(f: Fields) -> Mapping:
    f.only([lvl.value for lvl in MEM_LEVELS] + ["spatial"])
    temporal = {}
    for lvl in MEM_LEVELS:
        lf = f.map_(lvl.value)
        lf.only({"order", "sizes"})
        temporal[lvl] = LevelLoops(_parse_order(lf, "order"), _parse_dims(lf, "sizes"))
    return Mapping(temporal, _parse_dims(f, "spatial"))


def _parse_buf(f: Fields, key: str) -> BufferAlloc:
    b = f.map_(key)
    b.only({"W", "I", "O"})
    return BufferAlloc(b.int_("W", min=0), b.int_("I", min=0), b.int_("O", min=0))


def _parse_chunk(f: Fields) -> Chunk:
    f.only({"id", "layers", "depthwise", "noc", "unroll", "pe_array", "loop_order", "buffers", "bits", "attrs"})
    lo = f.map_("loop_order")
    lo.only([lvl.value for lvl in MEM_LEVELS])
    bufs = f.map_("buffers")
    bufs.only({"GB", "RF"})
    bits = f.map_("bits")
    bits.only({"w", "a"})
    layers = f.list_("layers")
    for i, name in enumerate(layers):
        if not isinstance(name, str):
            f.fail(f"layers[{i}]", f"must be a layer name, got {name!r}")
    rows, cols = int_list(f, "pe_array", 2)
    return Chunk(
        id=f.int_("id", min=0),
        layers=tuple(layers),
        noc=_enum(f, "noc", NocStyle),
        unroll=_parse_dims(f, "unroll"),
        pe_array=(rows, cols),
        loop_order={lvl: _parse_order(lo, lvl.value) for lvl in MEM_LEVELS},
        gb=_parse_buf(bufs, "GB"),
        rf=_parse_buf(bufs, "RF"),
        w_bits=bits.int_("w", max=64),
        a_bits=bits.int_("a", max=64),
        depthwise=f.bool_("depthwise", False),
        attrs=dict(f.map_("attrs", {}).data),
    )


def _parse_layer(f: Fields) -> LayerNode:
    f.only({"name", "op", "dims", "input_hw", "stride", "padding", "groups", "bias", "activation", "bits",
            "inputs", "chunk", "mapping", "source"})
    dims = _parse_dims(f, "dims", required=True)
    missing = [d.value for d in DIMS if d not in dims]
    if missing:
        f.fail("dims", f"missing dims {', '.join(missing)}")
    h, w = int_list(f, "input_hw", 2)
    bits = f.map_("bits")
    bits.only({"w", "a"})
    inputs = f.list_("inputs")
    for i, name in enumerate(inputs):
        if not isinstance(name, str):
            f.fail(f"inputs[{i}]", f"must be a layer name, got {name!r}")
    chunk = f.raw("chunk", None)
    if chunk is not None:
        chunk = f.int_("chunk", min=0)
    layer = Layer(
        name=f.str_("name"),
        op=_enum(f, "op", OpKind),
        H=h,
        W=w,
        stride=tuple(int_list(f, "stride", 2)),  # type: ignore[arg-type]
        padding=tuple(int_list(f, "padding", 2, min=0)),  # type: ignore[arg-type]
        groups=f.int_("groups"),
        bias=f.bool_("bias", False),
        activation=_enum(f, "activation", Activation, "none"),
        w_bits=bits.int_("w", max=64),
        a_bits=bits.int_("a", max=64),
        inputs=tuple(inputs),
        source=f.str_("source", ""),
        **{d.value: v for d, v in dims.items()},
    )
    mapping = _parse_mapping(f.map_("mapping")) if f.has("mapping") else None
    return LayerNode(layer, chunk, mapping)


def from_dict(data: Any, file: str) -> DesignGraph:
    top = Fields(data, file, error=DesignError)
    if top.raw(VERSION_KEY, None) != VERSION:
        top.fail(VERSION_KEY, f"not a dnac design of schema version {VERSION} (got {top.raw(VERSION_KEY, None)!r})")
    top.only({VERSION_KEY, "model", "target", "arch", "input_shape", "batch", "target_overrides", "meta", "chunks",
              "layers"})
    c, h, w = int_list(top, "input_shape", 3)
    g = DesignGraph(
        name=top.str_("model"),
        target=top.str_("target"),
        arch=_enum(top, "arch", ArchStyle),
        input_shape=(c, h, w),
        batch=top.int_("batch", 1),
        target_overrides=dict(top.map_("target_overrides", {}).data),
        meta=dict(top.map_("meta", {}).data),
    )
    for cf in top.items("chunks"):
        chunk = _parse_chunk(cf)
        if chunk.id in g.chunks:
            cf.fail("id", f"duplicate chunk id {chunk.id}")
        g.chunks[chunk.id] = chunk
    if not top.list_("layers"):
        top.fail("layers", "the layer list is empty")
    for lf in top.items("layers"):
        node = _parse_layer(lf)
        if node.name in g:
            lf.fail("name", f"duplicate layer name {node.name!r}")
        g.add_layer(node)
    return g


def loads(text: str, file: str = "<string>") -> DesignGraph:
    return from_dict(parse_yaml(text, file, DesignError), file)


def load(path: str | Path) -> DesignGraph:
    return from_dict(read_yaml(path, DesignError), str(path))


def is_design(data: Any) -> bool:
    return isinstance(data, dict) and VERSION_KEY in data
