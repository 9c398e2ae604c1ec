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

Each engine's buffers are `fpga_buffers.chunk_buffers` of its chunk, the arrays the cost model
counts; `HlsBackend.report["hls_resources"]` counts what was emitted (report.json's section).
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
from dnac.compiler.cost import fpga_buffers
from dnac.compiler.errors import DesignError, ModelError
from dnac.compiler.ir.chunk import Chunk
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.ir.mapping import CANONICAL_FANOUT, CANONICAL_LEVELS
from dnac.compiler.naming import cpp_ident, unique
from dnac.compiler.targets import FpgaTarget, Target
from dnac.compiler.vocab import DIMS, ArchStyle, Dim, OpKind
from dnac.compiler.workload.layer import INPUT, Workload

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


def _acc_bits(nodes: list[LayerNode]) -> int:
    """Accumulator width of a chunk: no sum of products (plus bias) of any of its layers overflows
    (`check_workload` has bounded it by `MAX_ACC_BITS`)."""
    return max(fpga_buffers.acc_bits(n.layer) for n in nodes)


def _axis(chunk: Chunk, out: Dim, red: Dim) -> tuple[str, str | None]:
    """How the engine banks input rows (P/R) or columns (Q/S): `dnac_geometry`'s mode and the
    unrolled dim whose lane picks the bank."""
    u_out, u_red = chunk.unroll_of(out), chunk.unroll_of(red)
    if u_out > 1 and u_red > 1:
        raise DesignError("<hls>", f"chunks[{chunk.id}].unroll", f"unrolls both {out} and {red}: no NoC style of "
                          "dnac's does, and the engine's input banks serve one of them along an axis")
    if u_out > 1:
        return "DNAC_AXIS_OUT", out.value
    if u_red > 1:
        return "DNAC_AXIS_RED", red.value
    return "DNAC_AXIS_NONE", None


def chunk_buffers(chunk: Chunk, nodes: list[LayerNode]) -> list[fpga_buffers.Buffer]:
    """The W / I / O buffers the engine of `chunk` declares (`fpga_buffers`, as the cost model)."""
    gb = chunk.gb
    return fpga_buffers.chunk_buffers(chunk.unroll, (gb.W, gb.I, gb.O), (chunk.w_bits, chunk.a_bits, _acc_bits(nodes)),
                                      chunk.depthwise)


def _engine(chunk: Chunk, nodes: list[LayerNode], hosted: list[dict[str, Any]], target: FpgaTarget) -> dict[str, Any]:
    """The template context of one chunk's engine."""
    if chunk.unroll_of(Dim.N) > 1:
        raise DesignError("<hls>", f"chunks[{chunk.id}].unroll.N", "the engine does not unroll the batch")
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
    rows, row_dim = _axis(chunk, Dim.P, Dim.R)
    cols, col_dim = _axis(chunk, Dim.Q, Dim.S)
    bufs = chunk_buffers(chunk, nodes)
    inner = [[lvl, d] for lvl in ("GB", "RF") for d in loops[lvl]]
    u = chunk.unroll_of
    return {
        "id": chunk.id, "p": p, "tag": f"c{chunk.id}", "noc": chunk.noc.value if chunk.noc else "any", "pe_array": list(chunk.pe_array),
        "pes": chunk.pes, "layer_names": [n.name for n in nodes],
        "unroll": [{"dim": d.value, "size": u(d)} for d in unrolled],
        "U": {d.value: u(d) for d in DIMS},
        "unrolled": [d.value for d in unrolled],
        "out_unrolled": [d.value for d in unrolled if d not in _REDUCTION],
        "red_unrolled": [d.value for d in unrolled if d in _REDUCTION],
        "loops": loops, "trip": trip, "innermost": inner[-1] if inner else None,
        "red_dram": [d for d in ("C", "R", "S") if d in loops["DRAM"]],
        "order": {lvl: "".join(d.value for d in chunk.loop_order[lvl]) for lvl in CANONICAL_LEVELS},
        "all_dims": [d.value for d in DIMS],
        "dw": chunk.depthwise, "ch_dim": "K" if chunk.depthwise else "C",
        "rows": rows, "row_dim": row_dim, "cols": cols, "col_dim": col_dim,
        "tmax": {d.value: most(lambda n, d=d: tiles[n.name][d]) for d in DIMS},
        "ihmax": most(lambda n: (tiles[n.name][Dim.P] - 1) * n.layer.stride[0] + tiles[n.name][Dim.R]),
        "iwmax": most(lambda n: (tiles[n.name][Dim.Q] - 1) * n.layer.stride[1] + tiles[n.name][Dim.S]),
        "tiles_max": most(lambda n: math.prod(maps[n.name].factor("DRAM", d) for d in DIMS)),
        "buffers": [{"var": f"{b.tensor.lower()}_buf", "tensor": b.tensor, "banks": b.banks, "depth": b.depth,
                     "width": b.width, "words": b.words, "lutram": b.lutram, "bram18k": b.bram18k(target),
                     "luts": b.luts()} for b in bufs],
        "bits": {"w": chunk.w_bits, "a": chunk.a_bits, "acc": bufs[2].width},
        "dsp": fpga_buffers.dsp_count(chunk.unroll, chunk.w_bits, chunk.a_bits, chunk.depthwise, target),
        "mac": "packed" if fpga_buffers.packs(chunk.w_bits, chunk.a_bits, chunk.depthwise, target) else (
            "lut" if not target.uses_dsp(chunk.w_bits, chunk.a_bits) else "dsp"),
        "gb": [chunk.gb.W, chunk.gb.I, chunk.gb.O],
        "hosted": hosted,
    }


def hls_resources(engines: list[dict[str, Any]]) -> dict[str, Any]:
    """What the emitted project declares, counted from the engines' arrays and PE arrays:
    report.json's `hls_resources` (to equal the cost model's `resources`)."""
    arrays = [{"array": f"{e['p']}{b['var']}", "shape": [fpga_buffers.COPIES, b["banks"], b["depth"]],
               "width": b["width"], "storage": "lutram" if b["lutram"] else "bram18k",
               "bram18k": b["bram18k"], "lutram_luts": b["luts"]} for e in engines for b in e["buffers"]]
    return {
        "dsp": sum(e["dsp"] for e in engines),
        "bram18k": sum(a["bram18k"] for a in arrays),
        "lutram_luts": sum(a["lutram_luts"] for a in arrays),
        "engines": [{"chunk": e["id"], "pes": e["pes"], "mac_bits": [e["bits"]["w"], e["bits"]["a"]], "dsp": e["dsp"]}
                    for e in engines],
        "arrays": arrays,
    }


def _aux_tripcounts(design: DesignGraph) -> dict[str, int]:
    """The largest trip count of each loop of `dnac_pool` / `dnac_add` over the design's layers."""
    aux = [n.layer for n in design.nodes() if not n.layer.has_macs]
    pools = [x for x in aux if x.op is not OpKind.ADD]

    def most(values: list[int]) -> int:
        return max(values, default=1)

    return {"n": most([x.N for x in pools]), "k": most([x.K for x in pools]), "p": most([x.P for x in pools]),
            "q": most([x.Q for x in pools]), "r": most([x.R for x in pools]), "s": most([x.S for x in pools]),
            "elements": most([x.N * x.K * x.P * x.Q for x in aux if x.op is OpKind.ADD])}


def _words(parts: list[np.ndarray], bits: int) -> tuple[bytes, int]:
    """Little-endian signed words of the narrowest of 16 / 32 / 64 bits that holds `bits`: the
    testbench reads them with fread (a VGG16's weights are 276 MB this way, not a GB of text)."""
    width = _word_bytes(bits)
    flat = np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1) for p in parts]) if parts else np.zeros(0)
    return flat.astype(f"<i{width}").tobytes(), width


def _word_bytes(bits: int) -> int:
    return 2 if bits <= 16 else 4 if bits <= 32 else 8  # as `_words` stores them


#: The widest accumulator the engines' output stage takes: `acc * mult` is computed in
#: ap_int<64> (`dnac_ops.h`), and the multiplier keeps at least one bit and the sign one more.
MAX_ACC_BITS = 62


def check_workload(w: Workload, target: FpgaTarget, *, fmap_words: int | None = None, psum_words: int = 0) -> None:
    """Raise `ModelError` for a network these engines cannot run on `target`, before anything is
    generated: a layer whose accumulator exceeds `MAX_ACC_BITS` (wide layers over many products,
    e.g. 32-bit x 32-bit), or a DRAM image (weights, biases, feature maps, partial sums) over the
    board's DRAM.  Without `fmap_words` (before a schedule exists) feature maps count once each: a
    lower bound that `project` makes exact."""
    file = w.source or w.name
    for lyr in w.layers:
        if (lyr.has_macs or lyr.op is OpKind.ADD) and fpga_buffers.acc_bits(lyr) > MAX_ACC_BITS:
            terms = lyr.c_per_group * lyr.R * lyr.S if lyr.has_macs else len(lyr.inputs)  # products or addends
            raise ModelError(file, lyr.source or f"layers.{lyr.name}",
                             f"'{lyr.name}' ({lyr.w_bits}-bit x {lyr.a_bits}-bit, {terms:,} products per output) "
                             f"needs a {fpga_buffers.acc_bits(lyr)}-bit accumulator; the HLS engines take at most "
                             f"{MAX_ACC_BITS} bits (narrow its w_bits / a_bits)")
    bits = refmodel.tensor_bits(w)
    macs = [lyr for lyr in w.layers if lyr.has_macs]
    if fmap_words is None:
        fmap_words = w.batch * math.prod(w.input_shape) + sum(lyr.output_size for lyr in w.layers)
    need = (sum(lyr.weight_count for lyr in macs) * _word_bytes(max((lyr.w_bits for lyr in macs), default=8))
            + 8 * sum(lyr.K * (lyr.bias + 2 * (lyr.has_macs or lyr.op is OpKind.ADD)) for lyr in w.layers)
            + fmap_words * _word_bytes(max(bits.values()))
            + 8 * psum_words)
    if need > target.dram_bytes:
        raise ModelError(w.source or w.name, "batch" if w.batch > 1 else "layers",
                         f"the HLS project's DRAM image needs {need / 2**20:,.0f} MiB but {target.name}'s "
                         f"{target.dram_interface} holds {target.dram_bytes / 2**20:,.0f} MiB "
                         "(a smaller batch or network fits)")


@dataclass
class HlsProject:
    """Everything the templates need, and the golden data (kept for tests and tools)."""

    context: dict[str, Any]
    golden: refmodel.Golden
    data: dict[str, bytes]  # data/<name>.bin: little-endian signed words (context["data_bytes"] wide)


def project(design: DesignGraph, target: FpgaTarget, *, seed: int, golden: refmodel.Golden | None = None,
            labels: np.ndarray | None = None) -> HlsProject:
    """The template context and data files of `design` (see the module docstring).  With
    `golden` (a trained network's integer parameters run on N images, `labels` their classes) the
    testbench runs those N images one after another and reports bit-exactness and top-1; without,
    it checks one run on `refmodel.generate`'s random data."""
    _check_canonical(design)
    w = design.workload()
    check_workload(w, target)
    bits = refmodel.tensor_bits(w)
    sch = _schedule(design)
    idents = unique([n.name for n in design.nodes()], cpp_ident)

    # DRAM layout: weights and biases per MAC layer, (mult, shift) per output channel of every MAC or add
    # layer (on the biases port); the input and every layer's output tensor.
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
    psum_words = {cid: max((n.layer.output_size for n in design.nodes() if n.chunk == cid and n.layer.has_macs),
                           default=0) for cid in design.chunks}  # each chunk spills its largest output
    check_workload(w, target, fmap_words=fmap_words, psum_words=sum(psum_words.values()))
    images = 0 if golden is None else len(golden.input)
    if golden is None:
        golden = refmodel.generate(w, seed)
    w_off = b_off = 0
    weights, biases = [], []
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
            "ps_off": 0, "q_off": -1, "lo": q.lo, "hi": q.hi,
        }
        if lyr.has_macs or lyr.op is OpKind.ADD:  # its K (mult, shift) pairs follow the biases
            ctx["q_off"] = b_off
            mult, shift = q.channels(lyr.K)
            biases.append(np.stack([mult, shift], axis=1))
            b_off += 2 * lyr.K
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
            engines.append(_engine(design.chunks[cid], nodes, hosted, target))
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
        "images": images,
        "hls_resources": hls_resources(engines),
        "aux_tc": _aux_tripcounts(design),
    }
    fmap_bits = max(bits.values())
    files = {
        "input": _words([golden.input], fmap_bits),
        "weights": _words(weights, w_bits),
        "biases": _words(biases, 64),  # acc_mem_t: a bias is in accumulator units
        "expected": _words([golden.tensors[name][i] for i in range(max(images, 1)) for name in w.outputs]
                           if images else [golden.tensors[name] for name in w.outputs], fmap_bits),
    }
    if images:
        files["labels"] = _words([np.asarray(labels, dtype=np.int64)], 32)
    context["data_bytes"] = {name: width for name, (_, width) in files.items()}
    data = {f"data/{name}.bin": raw for name, (raw, _) in files.items()}
    return HlsProject(context, golden, data)


class HlsBackend(Backend):
    """Vivado HLS C++ for FPGA targets (see the module docstring)."""

    name: ClassVar[str] = "hls"
    template_dir: ClassVar[str] = "hls"

    def write(self, design: DesignGraph, target: Target, out_dir: Path, *, seed: int,
              golden: refmodel.Golden | None = None, labels: np.ndarray | None = None) -> list[Path]:
        if not isinstance(target, FpgaTarget):
            raise DesignError(design.name, "target", f"the HLS back-end needs an FPGA target, not {target.name!r}")
        proj = project(design, target, seed=seed, golden=golden, labels=labels)
        ctx = proj.context
        self.report = {"hls_resources": ctx["hls_resources"]}
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
