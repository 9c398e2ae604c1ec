"""Import a Timeloop case as a one-layer, one-chunk IR design (the inverse of `lower`).

A published Timeloop setup (Eyeriss, a simple weight-stationary array, ...) becomes a `DesignGraph`
that passes the validator, round-trips through design.yaml, and lowers back (`lower.lower`) to a
nest that the scalar model evaluates to exactly the numbers `timeloop-model` printed.  So the IR
keeps everything Timeloop reads and nothing is re-derived:

* each storage level becomes a `StorageLevel` with the level's own name, role DRAM (outermost),
  GB (other shared levels) or RF (per-PE levels, i.e. those below the spatial fan-out), the keep
  set from the bypass directives, `words` = depth x block-size, block size, bandwidths, the ERT's
  read/write energies (so `lower` never re-prices it), the class as `component`, and the
  attributes that have no field of their own (`word-bits`, `memory_width`, `n_banks`, DRAM
  `type`, `multiple-buffering`, ...) in `attrs`;
* the MAC energy, name and class go in `chunk.attrs` (`mac_pJ`, `mac_name`, `mac_class`); the mesh
  is `pe_array` = (meshY, meshX), so per-PE levels lower to meshX columns again;
* `noc` is None (an imported array parallelizes any dims); `unroll` gives every spatial dim at
  least its spatial factor with product = the PE count, aligned with the mapping's own X/Y split
  where that is possible (see `_unroll`); the split and its loop order are kept as the mapping's
  `mesh` (link transfers depend on both);
* the layer: conv (M -> K) or depthwise (G -> K = C = groups, Timeloop's C = M = 1), input size
  (P - 1) x stride + R without padding, Wstride -> stride[0] (rows), Hstride -> stride[1];
* the mapping: temporal loops keyed by the level names, orders outermost first over all 7 dnac
  dims (a dim the permutation lacks goes innermost; `parse` already lists omitted dims), the
  spatial factors after the innermost shared level; `chunk.loop_order` is the layer's orders.

Unsupported (raises `DesignError`): dilation, grouped shapes with C or M > 1 per group, spatial
fan-outs at more than one level or below a per-PE level, per-PE levels whose instances or meshX
differ from the MAC array's, per-tensor energies (no IR field).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dnac.compiler.errors import DesignError
from dnac.compiler.ir.chunk import BufferAlloc, Chunk, StorageLevel
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.ir.mapping import LevelLoops, Mapping
from dnac.compiler.timeloop.lower import MULTIPLE_BUFFERING, TL_TENSOR, tl_dims
from dnac.compiler.timeloop.nest import Nest, ShapeKind, Storage
from dnac.compiler.timeloop.parse import parse_arch, read_case
from dnac.compiler.vocab import DIMS, TENSORS, ArchStyle, Dim, MemLevel, OpKind
from dnac.compiler.workload.layer import Layer

#: Architecture attributes that become `StorageLevel` fields (or `pe_array`), not `attrs`.
_FIELD_ATTRS = frozenset({"depth", "memory_depth", "entries", "block-size", "n_words", "read_bandwidth",
                          "write_bandwidth", "shared_bandwidth", "meshX", "meshY"})


def import_case(folder: str | Path, *, target: str = "asic") -> DesignGraph:
    """A Timeloop case folder (arch/problem/mapping/ERT, as `parse.read_case` reads it) -> design.

    The design and its layer are named after the folder; the architecture's component classes and
    extra attributes are kept (see the module docstring)."""
    folder = Path(folder)
    nest = read_case(folder)
    storages, compute = parse_arch(folder / "arch.yaml")
    attrs = [{k: v for k, v in s["attrs"].items() if k not in _FIELD_ATTRS and isinstance(v, (int, float, str))}
             for s in storages]
    return nest_to_design(nest, folder.name, target=target, components=[s["class"] for s in storages],
                          level_attrs=attrs, mac_class=str(compute["class"]), meta={"source": f"timeloop:{folder.name}"})


def _cover(spatial: dict[Dim, int], total: int) -> dict[Dim, int] | None:
    """Unrolls u[d] >= spatial[d] over the dims of `spatial` whose product is `total`, or None.
    Earlier dims (dnac order) take the smallest divisor that works, the last dim the rest."""
    dims = [d for d in DIMS if d in spatial]
    if not dims:
        return {} if total == 1 else None

    def go(i: int, rest: int) -> list[int] | None:
        if i == len(dims) - 1:
            return [rest] if rest >= spatial[dims[i]] else None
        for u in range(spatial[dims[i]], rest + 1):
            if rest % u == 0:
                tail = go(i + 1, rest // u)
                if tail is not None:
                    return [u] + tail
        return None

    got = go(0, total)
    return None if got is None else dict(zip(dims, got))


def _unroll(spatial: dict[Dim, int], xs: Sequence[Dim], ys: Sequence[Dim], mesh_x: int, mesh_y: int) -> dict[Dim, int]:
    """The chunk's unroll: each spatial dim at least its factor, product = mesh_x x mesh_y PEs.

    Preferably the X dims cover meshX and the Y dims meshY (so the unroll reads as the array);
    else any cover of all PEs; with no spatial dim the whole array unrolls K.  When no cover
    exists (e.g. factors 3 and 5 on 16 PEs), the unroll is the spatial factors themselves and the
    validator reports that `pe_array` does not equal the unroll's product."""
    ux = _cover({d: spatial[d] for d in xs}, mesh_x)
    uy = _cover({d: spatial[d] for d in ys}, mesh_y)
    if ux is not None and uy is not None:
        return {d: {**ux, **uy}[d] for d in DIMS if d in ux or d in uy}
    pes = mesh_x * mesh_y
    if not spatial:
        return {Dim.K: pes} if pes > 1 else {}
    got = _cover(spatial, pes)
    return got if got is not None else dict(spatial)


def _per_pe(nest: Nest, fan: int | None) -> list[bool]:
    """Which levels sit below the PE fan-out, checking that the nest has dnac's one fan-out."""
    src = nest.source
    n_pe = nest.compute.instances
    per_pe = [s.instances > 1 or (fan is not None and i > fan) for i, s in enumerate(nest.storage)]
    if per_pe[0]:
        raise DesignError(src, f"arch.{nest.storage[0].name}", "the outermost level must be a single shared instance")
    if per_pe != sorted(per_pe):
        raise DesignError(src, "arch", "per-PE levels must all sit below the shared ones")
    inner = max((i for i, p in enumerate(per_pe) if not p))
    if fan is not None and fan != inner:
        raise DesignError(src, f"mapping.{nest.storage[fan].name}.spatial",
                          f"only the innermost shared level ({nest.storage[inner].name}) may fan out to the PEs")
    for s, p in zip(nest.storage, per_pe):
        if p and (s.instances, s.mesh_x) != (n_pe, nest.compute.mesh_x):
            raise DesignError(src, f"arch.{s.name}", f"{s.instances} instances (meshX {s.mesh_x}); a per-PE level "
                              f"needs the MAC array's {n_pe} (meshX {nest.compute.mesh_x})")
        if not p and s.instances != 1:
            raise DesignError(src, f"arch.{s.name}", f"a shared level has one instance, not {s.instances}")
    return per_pe


def _level(s: Storage, i: int, per_pe: bool, component: str, attrs: dict[str, Any], keep: frozenset[str],
           src: str) -> StorageLevel:
    if s.tensor_pJ is not None and any(v != (s.read_pJ, s.write_pJ) for v in s.tensor_pJ.values()):
        raise DesignError(src, f"arch.{s.name}", "per-tensor energies have no IR field")
    attrs = {"word-bits": s.word_bits, **attrs}
    if s.multiple_buffering != 1.0:
        attrs[MULTIPLE_BUFFERING] = s.multiple_buffering
    caps = s.capacities
    return StorageLevel(
        name=s.name,
        role=MemLevel.DRAM if i == 0 else MemLevel.RF if per_pe else MemLevel.GB,
        keeps=tuple(t for t in TENSORS if TL_TENSOR[t] in keep),
        words=s.size,
        partition=None if caps is None else BufferAlloc(*(caps.get(TL_TENSOR[t], 0) for t in TENSORS)),
        per_pe=per_pe,
        block_size=s.block_size,
        read_bw=s.read_bw, write_bw=s.write_bw, shared_bw=s.shared_bw,
        read_pJ=s.read_pJ, write_pJ=s.write_pJ,
        component=component,
        attrs=attrs,
    )


def nest_to_design(nest: Nest, name: str, *, target: str = "asic", layer: str | None = None,
                   components: Sequence[str] | None = None, level_attrs: Sequence[dict[str, Any]] | None = None,
                   mac_class: str | None = None, meta: dict[str, object] | None = None) -> DesignGraph:
    """A `Nest` as a one-layer, one-chunk design named `name` (its layer `layer`, default `name`).

    `components`/`level_attrs` (one per storage level) and `mac_class` carry what a `Nest` does not
    hold (the architecture's classes and extra attributes); `import_case` passes them."""
    src = nest.source
    prob = nest.problem
    if (prob.wdilation, prob.hdilation) != (1, 1):
        raise DesignError(src, "problem.instance", "dilation has no dnac layer field")
    dw = prob.kind is ShapeKind.DEPTHWISE
    if dw and (prob.bounds["C"], prob.bounds["M"]) != (1, 1):
        raise DesignError(src, "problem.instance", "only depthwise groups (C = M = 1) map to a dnac layer")
    to_dnac = {tl: d for d, tl in tl_dims(dw).items()}
    fans = [i for i, m in enumerate(nest.mappings) if m.spatial]
    if len(fans) > 1:
        raise DesignError(src, "mapping", "spatial fan-outs at more than one level")
    per_pe = _per_pe(nest, fans[0] if fans else None)
    fanout = nest.storage[max(i for i, p in enumerate(per_pe) if not p)].name

    # The mapping: every level's loops over the 7 dnac dims, outermost first.
    temporal: dict[str, LevelLoops] = {}
    spatial: dict[Dim, int] = {}
    xs: tuple[Dim, ...] = ()
    ys: tuple[Dim, ...] = ()
    for s, m in zip(nest.storage, nest.mappings):
        order = [to_dnac[tl] for tl in m.temporal_perm if tl in to_dnac]
        order += [d for d in DIMS if d not in order]
        temporal[s.name] = LevelLoops(tuple(order), {to_dnac[tl]: f for tl, f in m.temporal.items() if f > 1})
        if m.spatial:
            spatial = {to_dnac[tl]: f for tl, f in m.spatial.items() if f > 1}
            x_tl, y_tl = m.spatial_xy()
            xs = tuple(to_dnac[tl] for tl in x_tl if tl in to_dnac and m.s(tl) > 1)
            ys = tuple(to_dnac[tl] for tl in y_tl if tl in to_dnac and m.s(tl) > 1)
    mapping = Mapping(temporal, spatial, fanout, (xs, ys) if spatial else None)

    # The layer (no padding: the input is exactly what the windows read).
    b = prob.bounds
    kdim = "G" if dw else "M"
    word = max(s.word_bits for s in nest.storage)
    layer_name = layer or name
    lyr = Layer(
        name=layer_name, op=OpKind.DWCONV if dw else OpKind.CONV, N=b["N"], K=b[kdim],
        C=b[kdim] if dw else b["C"], R=b["R"], S=b["S"], P=b["P"], Q=b["Q"],
        H=(b["P"] - 1) * prob.wstride + b["R"], W=(b["Q"] - 1) * prob.hstride + b["S"],
        stride=(prob.wstride, prob.hstride), groups=b[kdim] if dw else 1, w_bits=word, a_bits=word,
        source=src,
    )

    # The chunk.
    mesh_x = nest.compute.mesh_x
    mesh_y = nest.compute.instances // mesh_x
    comps = list(components) if components is not None else [""] * len(nest.storage)
    extras = list(level_attrs) if level_attrs is not None else [{}] * len(nest.storage)
    hierarchy = tuple(_level(s, i, p, c, dict(a), m.keep, src)
                      for i, (s, p, c, a, m) in enumerate(zip(nest.storage, per_pe, comps, extras, nest.mappings)))
    attrs: dict[str, int | float | str] = {"mac_pJ": nest.compute.mac_pJ, "mac_name": nest.compute.name}
    if mac_class is not None:
        attrs["mac_class"] = mac_class
    chunk = Chunk(
        id=0, layers=(layer_name,), noc=None, unroll=_unroll(spatial, xs, ys, mesh_x, mesh_y),
        pe_array=(mesh_y, mesh_x), hierarchy=hierarchy,
        loop_order={lvl: loops.order for lvl, loops in mapping.temporal.items()},
        w_bits=word, a_bits=word, depthwise=dw, attrs=attrs,
    )
    assert math.prod(chunk.pe_array) == nest.compute.instances
    g = DesignGraph(name=name, target=target, arch=ArchStyle.PIPELINE, input_shape=lyr.in_shape, batch=lyr.N,
                    chunks={0: chunk}, meta=dict(meta or {"source": f"timeloop:{src}"}))
    g.add_layer(LayerNode(lyr, 0, mapping))
    return g
