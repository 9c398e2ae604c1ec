"""design.yaml: the versioned, human-readable serialization of a `DesignGraph`.

`load(dump(g)) == g` holds for every design (tested over the zoo and random mappings), so a
design can be searched once, edited by hand, and re-costed or re-emitted by `dnac build
design.yaml` without searching.  Structure errors name the field path; semantic invariants
are left to `validate`, which names the node.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dnac.compiler.errors import DesignError
from dnac.compiler.ir.chunk import BufferAlloc, Chunk, StorageLevel
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.ir.mapping import LevelLoops, Mapping
from dnac.compiler.vocab import DIMS, TENSORS, Activation, ArchStyle, Dim, MemLevel, NocStyle, OpKind, Tensor
from dnac.compiler.workload.builder import MAX_BITS
from dnac.compiler.workload.layer import MAX_BIAS, Layer
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
    for level, loops in m.temporal.items():
        out[level] = {"order": _order(loops.order), "sizes": _dims(loops.sizes)}
        if level == m.fanout:
            out["spatial"] = _dims(m.spatial)
            if m.mesh is not None:
                out["spatial_mesh"] = {"x": _order(m.mesh[0]), "y": _order(m.mesh[1])}
    return out


def _buf(b: BufferAlloc) -> dict[str, int]:
    return {"W": b.W, "I": b.I, "O": b.O}


_LEVEL_DEFAULTS = StorageLevel("", MemLevel.DRAM)


def _level_dict(level: StorageLevel) -> dict[str, Any]:
    """Only the fields that differ from the defaults, so canonical levels stay one line."""
    d: dict[str, Any] = {"name": level.name, "role": level.role.value}
    if level.keeps != _LEVEL_DEFAULTS.keeps:
        d["keeps"] = [t.value for t in level.keeps]
    for key in ("words", "per_pe", "block_size", "read_bw", "write_bw", "shared_bw", "read_pJ", "write_pJ",
                "component"):
        value = getattr(level, key)
        if value != getattr(_LEVEL_DEFAULTS, key):
            d[key] = value
    if level.partition is not None:
        d["partition"] = _buf(level.partition)
    if level.attrs:
        d["attrs"] = dict(level.attrs)
    return d


def _chunk_dict(c: Chunk) -> dict[str, Any]:
    return {
        "id": c.id,
        "layers": list(c.layers),
        "depthwise": c.depthwise,
        "noc": c.noc.value if c.noc is not None else None,
        "unroll": _dims(c.unroll),
        "pe_array": list(c.pe_array),
        "bits": {"w": c.w_bits, "a": c.a_bits},
        "hierarchy": [_level_dict(level) for level in c.hierarchy],
        "loop_order": {name: _order(order) for name, order in c.loop_order.items()},
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
    if layer.bias_bound:  # a trained network's largest bias: it sizes the accumulators
        d["bias_bound"] = layer.bias_bound
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
    temporal: dict[str, LevelLoops] = {}
    fanout = None
    spatial: dict[Dim, int] = {}
    mesh = None
    for key in f.data:
        if key == "spatial":
            if not temporal:
                f.fail("spatial", "must follow the level that fans out to the PE array")
            fanout = list(temporal)[-1]
            spatial = _parse_dims(f, "spatial")
            continue
        if key == "spatial_mesh":
            mf = f.map_(key)
            mf.only({"x", "y"})
            mesh = (_parse_dim_list(mf, "x"), _parse_dim_list(mf, "y"))
            want = sorted(d for d, v in spatial.items() if v > 1)
            if sorted(mesh[0] + mesh[1]) != want:
                f.fail(key, f"x and y must list the spatial dims with factors > 1 ({''.join(want) or 'none'}) once each")
            continue
        lf = f.map_(str(key))
        lf.only({"order", "sizes"})
        temporal[str(key)] = LevelLoops(_parse_order(lf, "order"), _parse_dims(lf, "sizes"))
    if not temporal:
        f.fail("", "a mapping needs the loops of at least one level")
    return Mapping(temporal, spatial, fanout if fanout is not None else list(temporal)[-1], mesh)


def _parse_dim_list(f: Fields, key: str) -> tuple[Dim, ...]:
    s = f.raw(key, "")
    if not isinstance(s, str):
        f.fail(key, f"must be a string of dim letters, got {type(s).__name__}")
    try:
        dims = tuple(Dim(ch) for ch in s)
    except ValueError:
        f.fail(key, f"{s!r} must be letters of {''.join(DIMS)}")
    if len(set(dims)) != len(dims):
        f.fail(key, f"{s!r} names a dim twice")
    return dims


def _parse_buf(f: Fields, key: str) -> BufferAlloc:
    b = f.map_(key)
    b.only({"W", "I", "O"})
    return BufferAlloc(b.int_("W", min=0), b.int_("I", min=0), b.int_("O", min=0))


def _opt_float(f: Fields, key: str) -> float | None:
    v = f.raw(key, None)
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf):
        f.fail(key, f"must be a positive finite number, got {v!r}")
    return v


#: The largest storage level a design may declare (words): 2^40, a TiB of 8-bit words, beyond any
#: on-chip buffer or DRAM a Timeloop or HLS flow prices.
MAX_WORDS = 1 << 40
#: `attrs` values dnac reads, with their ranges; other keys (a Timeloop import's extras) pass
#: through to the emitted specs and need only be finite numbers or short printable strings.
_KNOWN_ATTRS: dict[str, tuple[float, float]] = {
    "word-bits": (1, 64), "multiple-buffering": (1, 64), "mac_pJ": (0, 1e6), "n_banks": (1, 1 << 20),
    "memory_width": (1, 1 << 16),
}


def _parse_attrs(f: Fields, key: str) -> dict[str, int | float | str]:
    out: dict[str, int | float | str] = {}
    a = f.map_(key, {})
    for k, v in a.data.items():
        name = str(k)
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            a.fail(name, f"must be a number or a string, got {v!r}")
        if name in _KNOWN_ATTRS:
            lo, hi = _KNOWN_ATTRS[name]
            if isinstance(v, str) or not (lo < v <= hi if lo == 0 else lo <= v <= hi):
                a.fail(name, f"must be a number in {'(' if lo == 0 else '['}{lo:g}, {hi:g}], got {v!r}")
        elif isinstance(v, str) and (len(v) > 200 or not v.isprintable()):
            a.fail(name, "must be a printable string of at most 200 characters")
        elif not isinstance(v, str) and not math.isfinite(v):
            a.fail(name, f"must be a finite number, got {v!r}")
        out[name] = v
    return out


def _parse_level(f: Fields) -> StorageLevel:
    f.only({"name", "role", "keeps", "words", "per_pe", "block_size", "read_bw", "write_bw", "shared_bw",
            "read_pJ", "write_pJ", "component", "partition", "attrs"})
    keeps = f.list_("keeps", [t.value for t in TENSORS])
    try:
        kept = tuple(Tensor(k) for k in keeps)
    except ValueError:
        f.fail("keeps", f"must list tensors of {', '.join(t.value for t in TENSORS)}, got {keeps!r}")
    words = f.raw("words", None)
    return StorageLevel(
        name=f.str_("name"),
        role=_enum(f, "role", MemLevel),
        keeps=kept,
        words=None if words is None else f.int_("words", max=MAX_WORDS),
        partition=_parse_buf(f, "partition") if f.has("partition") else None,
        per_pe=f.bool_("per_pe", False),
        block_size=f.int_("block_size", 1, max=1 << 16),
        read_bw=_opt_float(f, "read_bw"),
        write_bw=_opt_float(f, "write_bw"),
        shared_bw=_opt_float(f, "shared_bw"),
        read_pJ=_opt_float(f, "read_pJ"),
        write_pJ=_opt_float(f, "write_pJ"),
        component=f.str_("component", ""),
        attrs=_parse_attrs(f, "attrs"),
    )


def _parse_chunk(f: Fields) -> Chunk:
    f.only({"id", "layers", "depthwise", "noc", "unroll", "pe_array", "hierarchy", "loop_order", "bits", "attrs"})
    bits = f.map_("bits")
    bits.only({"w", "a"})
    layers = f.list_("layers")
    for i, name in enumerate(layers):
        if not isinstance(name, str):
            f.fail(f"layers[{i}]", f"must be a layer name, got {name!r}")
    rows, cols = int_list(f, "pe_array", 2)
    hierarchy = tuple(_parse_level(lf) for lf in f.items("hierarchy"))
    lo = f.map_("loop_order")
    return Chunk(
        id=f.int_("id", min=0),
        layers=tuple(layers),
        noc=None if f.raw("noc", None) is None else _enum(f, "noc", NocStyle),
        unroll=_parse_dims(f, "unroll"),
        pe_array=(rows, cols),
        hierarchy=hierarchy,
        loop_order={str(name): _parse_order(lo, str(name)) for name in lo.data},
        w_bits=bits.int_("w", max=MAX_BITS),
        a_bits=bits.int_("a", max=MAX_BITS),
        depthwise=f.bool_("depthwise", False),
        attrs=_parse_attrs(f, "attrs"),
    )


def _parse_layer(f: Fields) -> LayerNode:
    f.only({"name", "op", "dims", "input_hw", "stride", "padding", "groups", "bias", "bias_bound", "activation",
            "bits", "inputs", "chunk", "mapping", "source"})
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
        bias_bound=f.int_("bias_bound", 0, min=0, max=MAX_BIAS),
        activation=_enum(f, "activation", Activation, "none"),
        w_bits=bits.int_("w", max=MAX_BITS),
        a_bits=bits.int_("a", max=MAX_BITS),
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
