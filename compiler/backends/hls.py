"""The Vivado HLS back-end: a mapped design -> a C++ project for an FPGA target (ZC706).

Writes `<out>/hls/`:

    Makefile                `make csim`: g++ against the ap_types headers, runs the testbench
    run_hls.tcl             Vivado HLS 2019.2/2020.1: csim, csynth, cosim, export switches
    src/dnac_top.h, .cpp    top function: AXI master ports per chunk, AXI-lite control, the
                            layer schedule (DATAFLOW across chunks in the pipeline style)
    src/engine_c<i>.cpp     one engine per chunk: the IR's loop nest, tile buffers, pragmas
    src/dnac_layers.h       every layer's shape, loop factors, tensor offsets and output stage
    src/dnac_types.h        ap_int<W> types
    src/dnac_ops.h          fixed library code (output stage, pools, adds), copied verbatim
    tb/testbench.cpp        C-simulation testbench: compares every output with the golden data
    data/*.bin              golden data from the integer reference model (`refmodel`), little-endian words

This module only gathers the template context from the IR (and writes the data files); all C++,
Tcl and make text lives in `templates/hls/`.  Engines follow dnac's canonical hierarchy (DRAM ->
GB -> PE array -> RF); a design imported with another hierarchy is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dnac.compiler import refmodel
from dnac.compiler.backends.base import Backend, write_files
from dnac.compiler.backends.render import read_static, render
from dnac.compiler.errors import DesignError
from dnac.compiler.ir.chunk import Chunk
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.ir.mapping import CANONICAL_FANOUT, CANONICAL_LEVELS
from dnac.compiler.naming import cpp_ident, unique
from dnac.compiler.targets import FpgaTarget, Target
from dnac.compiler.vocab import DIMS, ArchStyle, Dim, OpKind
from dnac.compiler.workload.layer import INPUT

#: Output dims first, then reduction dims: the engines' spatial (unrolled) loop order, so that
#: each output's reduction over the PE array is one adder tree.
_SPATIAL_ORDER = (Dim.N, Dim.K, Dim.P, Dim.Q, Dim.C, Dim.R, Dim.S)
_REDUCTION = (Dim.C, Dim.R, Dim.S)
_OP_CODE = {"conv": "DNAC_OP_CONV", OpKind.MAXPOOL: "DNAC_OP_MAXPOOL", OpKind.AVGPOOL: "DNAC_OP_AVGPOOL",
            OpKind.ADD: "DNAC_OP_ADD"}
_STATIC = ("dnac_ops.h",)


@dataclass
class _Tensor:
    """A feature-map tensor in DRAM."""

    offset: int
    size: int
    slots: int = 1


@dataclass
class _Schedule:
    """Where each layer runs and when (pipeline stage)."""

    host: dict[str, int] = field(default_factory=dict)  # layer -> chunk id
    stage: dict[str, int] = field(default_factory=dict)


def _check_canonical(design: DesignGraph) -> None:
    for chunk in design.chunks.values():
        if chunk.level_names != CANONICAL_LEVELS or chunk.fanout != CANONICAL_FANOUT:
            raise DesignError(design.name, f"chunks[{chunk.id}].hierarchy", f"levels {list(chunk.level_names)}: "
                              f"the HLS back-end builds dnac's canonical hierarchy {list(CANONICAL_LEVELS)}")
    if not design.is_mapped:
        raise DesignError(design.name, "layers", "some layer has no chunk or mapping; run a search first")


def _schedule(design: DesignGraph) -> _Schedule:
    """Host chunks (pools and adds run after their first operand's producer) and pipeline stages."""
    sch = _Schedule()
    first = min(n.chunk for n in design.nodes() if n.chunk is not None)
    for n in design.nodes():
        src = n.layer.inputs[0]
        sch.host[n.name] = n.chunk if n.chunk is not None else (sch.host[src] if src != INPUT else first)
    for n in design.nodes():
        stage = 0
        if design.arch is ArchStyle.PIPELINE:
            for src in n.layer.inputs:
                if src != INPUT:
                    stage = max(stage, sch.stage[src] + (sch.host[src] != sch.host[n.name]))
        sch.stage[n.name] = stage
    return sch


def _tiles(node: LayerNode) -> dict[Dim, int]:
    m = node.mapping
    assert m is not None
    return {d: m.factor("GB", d) * m.spatial_factor(d) * m.factor("RF", d) for d in DIMS}


def _tile_channels(node: LayerNode, tiles: dict[Dim, int]) -> int:
    """The most input channels one DRAM tile touches (`dnac_tile_channels` in dnac_ops.h)."""
    layer, m = node.layer, node.mapping
    assert m is not None
    if layer.groups == 1:
        return tiles[Dim.C]
    kg = layer.K // layer.groups
    most = tiles[Dim.C]
    for i in range(m.factor("DRAM", Dim.K)):
        b = i * tiles[Dim.K]
        hi = min(b + tiles[Dim.K], layer.K) - 1
        if hi >= b:
            most = max(most, (hi // kg - b // kg + 1) * tiles[Dim.C])
    return most


def _partition(var: str, dim: int, factor: int, extent: int) -> dict[str, Any] | None:
    if factor <= 1 or extent <= 1:
        return None
    return {"var": var, "dim": dim, "factor": "complete" if factor >= extent else factor}


def _acc_bits(nodes: list[LayerNode]) -> int:
    """Accumulator width: no sum of products (plus bias) of any layer of the chunk overflows."""
    most = 0
    for n in nodes:
        lyr = n.layer
        bound = lyr.c_per_group * lyr.R * lyr.S * (1 << (lyr.w_bits - 1)) * (1 << (lyr.a_bits - 1))
        bound += (1 << (lyr.w_bits + lyr.a_bits - 3)) if lyr.bias else 0
        most = max(most, bound)
    bits = most.bit_length() + 1
    if bits > 62:
        raise DesignError("<hls>", "bits", f"accumulators of {bits} bits exceed the 62 bits the output stage allows")
    return bits


def _engine(chunk: Chunk, nodes: list[LayerNode], hosted: list[dict[str, Any]]) -> dict[str, Any]:
    """The template context of one chunk's engine."""
    p = f"c{chunk.id}_"
    tiles = {n.name: _tiles(n) for n in nodes}
    maps = {n.name: n.mapping for n in nodes}

    def most(f: Any) -> int:
        return max(f(n) for n in nodes)

    loops: dict[str, list[str]] = {}
    trip: dict[str, dict[str, int]] = {}
    for lvl in CANONICAL_LEVELS:
        loops[lvl] = [d.value for d in chunk.loop_order[lvl]
                      if most(lambda n, d=d, lvl=lvl: maps[n.name].factor(lvl, d)) > 1]
        trip[lvl] = {d: most(lambda n, d=d, lvl=lvl: maps[n.name].factor(lvl, Dim(d))) for d in loops[lvl]}
    unrolled = [d for d in _SPATIAL_ORDER if chunk.unroll_of(d) > 1]
    t = {d: most(lambda n, d=d: tiles[n.name][d]) for d in DIMS}
    ih = most(lambda n: (tiles[n.name][Dim.P] - 1) * n.layer.stride[0] + tiles[n.name][Dim.R])
    iw = most(lambda n: (tiles[n.name][Dim.Q] - 1) * n.layer.stride[1] + tiles[n.name][Dim.S])
    ich = most(lambda n: _tile_channels(n, tiles[n.name]))
    wbuf = [t[Dim.K], t[Dim.C], t[Dim.R], t[Dim.S]]
    ibuf = [t[Dim.N], ich, ih, iw]
    obuf = [t[Dim.N], t[Dim.K], t[Dim.P], t[Dim.Q]]
    u = chunk.unroll_of
    ch_par = u(Dim.C) * (u(Dim.K) if any(n.layer.groups > 1 for n in nodes) else 1)
    parts = [
        _partition("w_buf", 1, u(Dim.K), wbuf[0]), _partition("w_buf", 2, u(Dim.C), wbuf[1]),
        _partition("w_buf", 3, u(Dim.R), wbuf[2]), _partition("w_buf", 4, u(Dim.S), wbuf[3]),
        _partition("i_buf", 1, u(Dim.N), ibuf[0]), _partition("i_buf", 2, ch_par, ibuf[1]),
        _partition("i_buf", 3, u(Dim.P) * u(Dim.R), ibuf[2]), _partition("i_buf", 4, u(Dim.Q) * u(Dim.S), ibuf[3]),
        _partition("o_buf", 1, u(Dim.N), obuf[0]), _partition("o_buf", 2, u(Dim.K), obuf[1]),
        _partition("o_buf", 3, u(Dim.P), obuf[2]), _partition("o_buf", 4, u(Dim.Q), obuf[3]),
    ]
    inner = [[lvl, d] for lvl in ("GB", "RF") for d in loops[lvl]]
    gb, rf = chunk.gb, chunk.rf
    return {
        "id": chunk.id, "p": p, "tag": f"c{chunk.id}", "noc": chunk.noc.value if chunk.noc else "any", "pe_array": list(chunk.pe_array),
        "pes": chunk.pes, "layer_names": [n.name for n in nodes],
        "unroll": [{"dim": d.value, "size": u(d)} for d in unrolled],
        "unrolled": [d.value for d in unrolled],
        "out_unrolled": [d.value for d in unrolled if d not in _REDUCTION],
        "red_unrolled": [d.value for d in unrolled if d in _REDUCTION],
        "loops": loops, "trip": trip, "innermost": inner[-1] if inner else None,
        "order": {lvl: "".join(d.value for d in chunk.loop_order[lvl]) for lvl in CANONICAL_LEVELS},
        "prev_dims": [d.value for d in DIMS if d.value in loops["DRAM"] or d not in _REDUCTION],
        "all_dims": [d.value for d in DIMS],
        "wbuf": wbuf, "ibuf": ibuf, "obuf": obuf, "partitions": [x for x in parts if x is not None],
        "bits": {"w": chunk.w_bits, "a": chunk.a_bits, "acc": _acc_bits(nodes)},
        "gb": [gb.W, gb.I, gb.O], "rf": [rf.W, rf.I, rf.O],
        "buffer_words": math.prod(wbuf) + math.prod(ibuf) + math.prod(obuf),
        "hosted": hosted,
    }


def _words(parts: list[np.ndarray], bits: int) -> tuple[bytes, int]:
    """Little-endian signed words of the narrowest of 16 / 32 bits that holds `bits`: the
    testbench reads them with fread (a VGG16's weights are 276 MB this way, not a GB of text)."""
    width = 2 if bits <= 16 else 4
    flat = np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1) for p in parts]) if parts else np.zeros(0)
    return flat.astype(f"<i{width}").tobytes(), width


@dataclass
class HlsProject:
    """Everything the templates need, and the golden data (kept for tests and tools)."""

    context: dict[str, Any]
    golden: refmodel.Golden
    data: dict[str, bytes]  # data/<name>.bin: little-endian signed words (context["data_bytes"] wide)


def project(design: DesignGraph, target: FpgaTarget, *, seed: int) -> HlsProject:
    """The template context and data files of `design` (see the module docstring)."""
    _check_canonical(design)
    w = design.workload()
    golden = refmodel.generate(w, seed)
    bits = refmodel.tensor_bits(w)
    sch = _schedule(design)
    idents = unique([n.name for n in design.nodes()], cpp_ident)

    # DRAM layout: weights and biases per MAC layer; the input and every layer's output tensor.
    stages_of_readers: dict[str, list[int]] = {}
    for n in design.nodes():
        for src in n.layer.inputs:
            stages_of_readers.setdefault(src, []).append(sch.stage[n.name])
    tensors: dict[str, _Tensor] = {}
    off = 0
    for name, size, stage in [(INPUT, design.batch * math.prod(design.input_shape), 0)] + [
            (n.name, n.layer.output_size, sch.stage[n.name]) for n in design.nodes()]:
        slots = 1 + max((s - stage for s in stages_of_readers.get(name, [])), default=0)
        tensors[name] = _Tensor(off, size, slots)
        off += size * slots
    fmap_words = off
    w_off = b_off = 0
    weights, biases = [], []
    psum_words = {cid: 0 for cid in design.chunks}
    layers: list[dict[str, Any]] = []
    for i, n in enumerate(design.nodes()):
        lyr, m = n.layer, n.mapping
        kind = "conv" if lyr.has_macs else lyr.op.value
        q = golden.quant[n.name]
        ins = [tensors[src] for src in lyr.inputs]
        pad = 4 - len(ins)
        ctx: dict[str, Any] = {
            "index": i, "name": n.name, "ident": idents[n.name], "op": lyr.op.value, "kind": kind,
            "op_code": _OP_CODE[kind if kind == "conv" else lyr.op], "chunk": sch.host[n.name],
            "stage": sch.stage[n.name], "w_bits": lyr.w_bits, "out_bits": bits[n.name],
            "shape": [lyr.N, lyr.K, lyr.C, lyr.R, lyr.S, lyr.P, lyr.Q], "hw": [lyr.H, lyr.W], "groups": lyr.groups,
            "stride": list(lyr.stride), "padding": list(lyr.padding),
            "f_dram": [1] * 7, "f_gb": [1] * 7, "sp": [1] * 7, "f_rf": [1] * 7,
            "w_off": 0, "b_off": -1, "n_in": len(ins),
            "in_off": [t.offset for t in ins] + [0] * pad, "in_slots": [t.slots for t in ins] + [1] * pad,
            "in_size": [t.size for t in ins] + [0] * pad,
            "out_off": tensors[n.name].offset, "out_slots": tensors[n.name].slots, "out_size": tensors[n.name].size,
            "ps_off": 0, "mult": q.mult, "shift": q.shift, "lo": q.lo, "hi": q.hi,
        }
        if m is not None and lyr.has_macs:
            ctx.update(f_dram=[m.factor("DRAM", d) for d in DIMS], f_gb=[m.factor("GB", d) for d in DIMS],
                       sp=[m.spatial_factor(d) for d in DIMS], f_rf=[m.factor("RF", d) for d in DIMS])
            wt = golden.weights[n.name]
            ctx["w_off"] = w_off
            weights.append(wt)
            w_off += wt.size
            if n.name in golden.biases:
                ctx["b_off"] = b_off
                biases.append(golden.biases[n.name])
                b_off += golden.biases[n.name].size
            psum_words[n.chunk] = max(psum_words[n.chunk], lyr.output_size)  # type: ignore[index]
        layers.append(ctx)
    ps_base, ps = {}, 0
    for cid in sorted(design.chunks):
        ps_base[cid] = ps
        ps += psum_words[cid]
    for ctx, n in zip(layers, design.nodes()):
        ctx["ps_off"] = ps_base[ctx["chunk"]] if n.layer.has_macs else 0

    engines = []
    for cid in sorted(design.chunks):
        nodes = [n for n in design.nodes() if n.chunk == cid]
        if nodes:
            hosted = [ctx for ctx in layers if ctx["chunk"] == cid]
            engines.append(_engine(design.chunks[cid], nodes, hosted))
    engine_of = {e["id"]: e for e in engines}
    outputs = [{"name": name, "offset": tensors[name].offset, "words": tensors[name].size} for name in w.outputs]
    w_bits = max([n.layer.w_bits for n in design.nodes() if n.layer.has_macs])
    context = {
        "model": design.name, "project": f"{cpp_ident(design.name)}_hls",
        "arch": design.arch.value, "board": target.board, "part": target.part, "clock_mhz": target.clock_mhz,
        "period_ns": f"{1000.0 / target.clock_mhz:g}",
        "layers": layers, "engines": engines, "engine_of": engine_of, "outputs": outputs,
        "stages": 1 + max(sch.stage.values()),
        "mem": {"weights": w_off, "biases": b_off, "fmaps": fmap_words, "psums": ps,
                "input_off": tensors[INPUT].offset, "input_words": tensors[INPUT].size},
        "types": {"wgt_bits": w_bits, "fmap_bits": max(bits.values())},
        "expected_words": sum(o["words"] for o in outputs),
    }
    fmap_bits = max(bits.values())
    files = {
        "input": _words([golden.input], fmap_bits),
        "weights": _words(weights, w_bits),
        "biases": _words(biases, 32),
        "expected": _words([golden.tensors[name] for name in w.outputs], fmap_bits),
    }
    context["data_bytes"] = {name: width for name, (_, width) in files.items()}
    data = {f"data/{name}.bin": raw for name, (raw, _) in files.items()}
    return HlsProject(context, golden, data)


class HlsBackend(Backend):
    """Vivado HLS C++ for FPGA targets (see the module docstring)."""

    name: ClassVar[str] = "hls"
    template_dir: ClassVar[str] = "hls"

    def write(self, design: DesignGraph, target: Target, out_dir: Path, *, seed: int) -> list[Path]:
        if not isinstance(target, FpgaTarget):
            raise DesignError(design.name, "target", f"the HLS back-end needs an FPGA target, not {target.name!r}")
        proj = project(design, target, seed=seed)
        ctx = proj.context
        engine_files = {f"src/engine_c{e['id']}.cpp": e for e in ctx["engines"]}
        hls_sources = ["src/dnac_top.cpp", *engine_files]
        sources = [*hls_sources, "tb/testbench.cpp"]
        files: dict[str, str | bytes] = {
            "Makefile": render("hls/Makefile.j2", sources=sources, **ctx),
            "run_hls.tcl": render("hls/run_hls.tcl.j2", hls_sources=hls_sources, **ctx),
            "src/dnac_top.h": render("hls/top.h.j2", **ctx),
            "src/dnac_top.cpp": render("hls/top.cpp.j2", **ctx),
            "src/dnac_types.h": render("hls/types.h.j2", **ctx),
            "src/dnac_layers.h": render("hls/layers.h.j2", **ctx),
            "tb/testbench.cpp": render("hls/testbench.cpp.j2", **ctx),
            **{path: render("hls/engine.cpp.j2", e=e, **ctx) for path, e in engine_files.items()},
            **{f"src/{h}": read_static(f"hls/lib/{h}") for h in _STATIC},
            **proj.data,
        }
        return write_files(out_dir / self.name, files)
