"""A static check that an emitted HLS project is synthesizable in the usual sense.

g++ accepts what Vivado HLS refuses: arrays of any size, loops of unknown length, recursion,
`new`.  This reads the C++ of `<out>/hls/src/` as Vivado would size it and returns what breaks
these rules (an empty list when nothing does):

- every array has constant extents, and each engine's GB buffers are exactly the chunk's
  (`fpga_buffers`: [2][banks][depth] from the chunk's PE array and GB words), so nothing is
  sized by a maximum over the layers;
- every loop has a constant bound or a LOOP_TRIPCOUNT whose max is the true largest trip count
  over the layers that run it;
- no dynamic allocation, no recursion;
- every unrolled loop is bounded by the chunk's unroll of its dim;
- every ARRAY_PARTITION names a declared dim, and a cyclic or block factor divides it.

The tests run it on every project they emit; `dnac build` does not (it is the tests' proof, not
a user-facing step).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import networkx as nx

from dnac.compiler.backends.hls import chunk_buffers
from dnac.compiler.cost.fpga_buffers import COPIES
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.vocab import DIMS, Dim

_CONST = re.compile(r"(?:static\s+const\s+int|const\s+int)\s+([^;()]+);")
_ASSIGN = re.compile(r"(\w+)\s*=\s*([\w\s*+()]+)")
_ENUM = re.compile(r"\b(DNAC_\w+)\s*=\s*(\d+)")
_DEFINE = re.compile(r"#define\s+(\w+)\s+(\d+)\s*$", re.MULTILINE)
_ARRAY = re.compile(r"^\s*(?:static\s+)?(?:const\s+)?[\w:<>]+\s+(\w+)((?:\[[^\]]+\])+)\s*(?:=|;)", re.MULTILINE)
_FOR = re.compile(r"for \(int (\w+) = [^;]+; \1 < ([^;]+); [^)]+\) \{\n((?:[ \t]*#pragma[^\n]*\n)*)")
_PARTITION = re.compile(r"#pragma HLS ARRAY_PARTITION variable=(\w+) (complete|cyclic factor=(\d+)|block factor=(\d+)) dim=(\d+)")
_FUNC = re.compile(r"^(?:template <[^>]*>\s*)?(?:static\s+|inline\s+)*[\w:<>]+\s+(\w+)\(", re.MULTILINE)
_ALLOC = re.compile(r"\b(new|malloc|calloc|realloc|alloca|free)\b\s*[\[(]?|std::vector")


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def _constants(text: str) -> dict[str, int]:
    """Integer constants a file defines: `static const int`, enum members, #defines, struct
    members `static const int x = N` (as `Struct::x` too)."""
    out: dict[str, int] = {}
    for m in _DEFINE.finditer(text):
        out[m[1]] = int(m[2])
    for m in _ENUM.finditer(text):
        out[m[1]] = int(m[2])
    for struct in re.finditer(r"struct (\w+) \{([^}]*)\};", text):
        for m in _CONST.finditer(struct[2]):
            for a in _ASSIGN.finditer(m[1]):
                if a[2].strip().isdigit():
                    out[f"{struct[1]}::{a[1]}"] = int(a[2])
    for m in _CONST.finditer(text):
        for a in _ASSIGN.finditer(m[1]):
            value = _value(a[2], out)
            if value is not None:
                out.setdefault(a[1], value)
    return out


def _value(expr: str, consts: dict[str, int]) -> int | None:
    """The integer value of a constant expression of literals, constants, `*` and `+`."""
    expr = expr.strip()
    if not re.fullmatch(r"[\w\s*+():]+", expr):
        return None
    names = re.findall(r"[A-Za-z_][\w:]*", expr)
    if any(n not in consts for n in names):
        return None
    return int(eval(re.sub(r"[A-Za-z_][\w:]*", lambda m: str(consts[m[0]]), expr), {"__builtins__": {}}))


def _functions(text: str) -> dict[str, str]:
    """Function name -> body, by brace matching from each definition."""
    out: dict[str, str] = {}
    for m in _FUNC.finditer(text):
        start = text.find("{", m.end())
        semi = text.find(";", m.end())
        if start < 0 or 0 <= semi < start:
            continue  # a declaration
        depth, i = 0, start
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        out[m[1]] = text[start:i + 1]
    return out


def _tripcounts(nodes: list[LayerNode], chunk_depthwise: bool) -> dict[str, int]:
    """The true largest trip count of each engine loop variable over the chunk's layers."""
    def most(f) -> int:  # type: ignore[no-untyped-def]
        return max(f(n) for n in nodes)

    def tile(n: LayerNode, d: Dim) -> int:
        m = n.mapping
        assert m is not None
        return m.factor("GB", d) * m.spatial_factor(d) * m.factor("RF", d)

    out: dict[str, int] = {}
    for d in DIMS:
        out[f"g{d.value}"] = most(lambda n, d=d: n.mapping.factor("GB", d))
        out[f"r{d.value}"] = most(lambda n, d=d: n.mapping.factor("RF", d))
        out[f"tile_{d.value}"] = most(lambda n, d=d: tile(n, d))
    out["t"] = most(lambda n: math.prod(n.mapping.factor("DRAM", d) for d in DIMS))
    out["h"] = most(lambda n: (tile(n, Dim.P) - 1) * n.layer.stride[0] + tile(n, Dim.R))
    out["w"] = most(lambda n: (tile(n, Dim.Q) - 1) * n.layer.stride[1] + tile(n, Dim.S))
    out["ch"] = out["tile_K" if chunk_depthwise else "tile_C"]
    return out


#: Loader loop variables -> the tile extent they run over (`_tripcounts` keys).
_LOADER_VARS = {"k": "tile_K", "c": "tile_C", "r": "tile_R", "s": "tile_S", "n": "tile_N", "p": "tile_P",
                "q": "tile_Q"}


def check_project(hls: Path, design: DesignGraph) -> list[str]:
    """Problems of the project in `hls` (the `hls/` folder written for `design`)."""
    problems: list[str] = []
    src = {p.name: _strip_comments(p.read_text(encoding="utf-8")) for p in sorted((hls / "src").glob("*"))}
    common = _constants("\n".join(src.values()))
    calls = nx.DiGraph()
    bodies: dict[str, str] = {}
    for text in src.values():
        bodies.update(_functions(text))
    for name, body in bodies.items():
        calls.add_node(name)
        for other in bodies:
            if re.search(rf"\b{other}\s*(<[^;()]*>)?\s*\(", body):
                calls.add_edge(name, other)
    for cycle in nx.simple_cycles(calls):
        problems.append(f"recursion: {' -> '.join(cycle)}")
    for fname, text in src.items():
        if m := _ALLOC.search(text):
            problems.append(f"{fname}: dynamic allocation ({m[0].strip()})")
        consts = {**common, **_constants(text)}
        decls: dict[str, list[int | None]] = {}
        for m in _ARRAY.finditer(text):
            dims = [_value(x, consts) for x in re.findall(r"\[([^\]]+)\]", m[2])]
            if any(d is None for d in dims) and not m[0].lstrip().startswith(("const", "static const")):
                problems.append(f"{fname}: array {m[1]}{m[2]} has a non-constant extent")
            decls[m[1]] = dims
        for m in _PARTITION.finditer(text):
            dims = decls.get(m[1])
            dim, factor = int(m[5]), int(m[3] or m[4] or 0)
            if dims is None or dim > len(dims):
                problems.append(f"{fname}: ARRAY_PARTITION of {m[1]} dim={dim}: no such array dim")
            elif factor and (dims[dim - 1] or 0) % factor:
                problems.append(f"{fname}: ARRAY_PARTITION factor {factor} does not divide {m[1]}'s dim {dim} "
                                f"({dims[dim - 1]})")
        cid_m = re.fullmatch(r"engine_c(\d+)\.cpp", fname)
        chunk = design.chunks.get(int(cid_m[1])) if cid_m else None
        nodes = [n for n in design.nodes() if chunk is not None and n.chunk == chunk.id]
        if chunk is not None:
            for buf in chunk_buffers(chunk, nodes):
                var = f"{buf.tensor.lower()}_buf"
                want = [COPIES, buf.banks, buf.depth]
                if decls.get(var) != want:
                    problems.append(f"{fname}: {var} is {decls.get(var)}, chunk {chunk.id}'s buffer is {want}")
        true_max = _tripcounts(nodes, chunk.depthwise) if chunk is not None else {}
        for m in _FOR.finditer(text):
            var, bound, pragmas = m[1], m[2], m[3]
            if "UNROLL" in pragmas:
                u = re.fullmatch(r"c\d+_U_(\w+)", bound.strip())
                if chunk is None or u is None:
                    problems.append(f"{fname}: unrolled loop over {var} < {bound} is not bounded by a chunk's unroll")
                else:
                    limit = {"ROW": max(chunk.unroll_of(Dim.P), chunk.unroll_of(Dim.R)),
                             "COL": max(chunk.unroll_of(Dim.Q), chunk.unroll_of(Dim.S)),
                             "CH": chunk.unroll_of(Dim.K if chunk.depthwise else Dim.C),
                             "K2": -(-chunk.unroll_of(Dim.K) // 2)}.get(u[1])
                    if limit is None:
                        limit = chunk.unroll_of(Dim(u[1]))
                    if (consts.get(bound.strip()) or 0) > limit:
                        problems.append(f"{fname}: unrolled loop {var} < {bound} exceeds the chunk's unroll {limit}")
                continue
            if _value(bound, consts) is not None:
                continue
            tc = re.search(r"LOOP_TRIPCOUNT min=\d+ max=([\w:]+)", pragmas)
            if tc is None:
                problems.append(f"{fname}: loop {var} < {bound} has neither a constant bound nor a LOOP_TRIPCOUNT")
                continue
            if chunk is None:
                if _value(tc[1], consts) is None and not tc[1].startswith("TC::"):
                    problems.append(f"{fname}: LOOP_TRIPCOUNT max={tc[1]} is not a constant")
                continue
            key = var if var in ("t", "h", "w", "ch") or var[0] in "gr" and len(var) == 2 else _LOADER_VARS.get(var)
            want = true_max.get(key or "")
            if want is None or int(tc[1]) != want:
                problems.append(f"{fname}: loop {var} < {bound}: LOOP_TRIPCOUNT max={tc[1]}, true maximum {want}")
    return problems
