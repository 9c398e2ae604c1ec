"""ZigZag's LOMA mapper as a baseline for `dnac bench map`.

`loma_map(problem, hw, keeps)` describes dnac's frozen Timeloop-style hardware and one layer to
ZigZag (PyPI `zigzag-dse`, an optional benchmark dependency: `pip install zigzag-dse six`), runs
LOMA (ZigZag's loop-order-based memory allocation search) and turns LOMA's best mapping back into a
dnac `Nest`, so that dnac's exact Timeloop v3.0.3 model prices LOMA's mapping and dnac's own on the
same hardware.  ZigZag is imported lazily, inside the functions; this module imports without it.

How the hardware is described to ZigZag (what is identical, what is not):

* **Words.**  ZigZag counts bits; every operand is given a 16-bit precision (`_WORD`) and every
  size and bandwidth is written as words x 16, so ZigZag reasons in words like Timeloop.  The
  level's own `word_bits` play no role (Timeloop's capacities and access counts are in words).
  Partial sums have the same precision as final outputs (Timeloop has one word per tensor).
* **Operational array.**  One ZigZag array dimension per mesh axis of every fan-out of the chain,
  innermost fan-out first, X before Y.  With a single fan-out (two_level, three_level,
  eyeriss_like) that is D1 = mesh X (`compute.mesh_x`) and D2 = mesh Y; simba_like's two
  fan-outs (PE buffers -> weight buffers -> registers inside each of 4x4 PEs) become D1..D4.
  `unit_energy` = `mac_pJ`.
* **Memories.**  One ZigZag memory per dnac storage level, innermost first, holding the level's
  kept tensors (Weights -> I2, Inputs -> I1, Outputs -> O); a level keeping nothing gets no
  memory.  A level partitioned per tensor (`Storage.capacities`) or priced per tensor
  (`tensor_pJ`) becomes one memory per tensor.  `served_dimensions` are the array dims of every
  fan-out at or below the level (one instance of the level feeds them), so a per-PE level serves
  [] and a single-instance level above the array serves all dims.  Sizes are the level's
  effective size (after multiple buffering); DRAM is 2**50 bits.
* **Energy.**  Timeloop prices a vector access of `block_size` words (`read_pJ`, `write_pJ`) and
  rounds each count up to whole vectors.  ZigZag prices an access of `bandwidth_max` bits and
  counts `ceil(bits / bandwidth_min) * bandwidth_min / bandwidth_max` accesses per transfer
  period.  With `bandwidth_min` = one block and `r_cost` = `read_pJ x bandwidth_max / block`,
  ZigZag charges exactly `read_pJ` per started block, like Timeloop (ZigZag rounds per transfer
  period, Timeloop over the whole run, and ZigZag truncates the access count of a wide port to an
  integer: a loss below one `bandwidth_max` access per level, operand and direction).
* **Bandwidth.**  Timeloop's `read_bw` / `write_bw` (words/cycle/instance) become the
  `bandwidth_max` of one read and one write port shared by the level's tensors (`shared_bw`: one
  read-write port).  Where Timeloop has no limit it never stalls, so ZigZag must not either: each
  tensor and direction gets its own port (ZigZag rounds every transfer on a port up to whole cycles
  and would serialize the three tensors' one-word-per-MAC traffic), as wide as a word of each
  tensor for every MAC below the instance, plus the capacity of the instances it feeds, plus its
  own capacity from/to its parent (ZigZag lets a buffer that is not double-buffered be refilled
  only in a short window).  DRAM's ports stay at the per-MAC width, since ZigZag truncates each
  access count to whole full-width accesses and DRAM accesses cost the most (see `_widths`).
  Where Timeloop does limit bandwidth the latency models differ: Timeloop slows the whole run by
  the level's average demand / bandwidth; ZigZag models per-port transfer windows, double
  buffering and on/off-loading (`latency_total2`).  LOMA's choices follow ZigZag's latency.
* **Access counting.**  Timeloop's innermost level serves one word per MAC per cycle even when the
  word does not change; ZigZag's `access_same_data_considered_as_no_access` (on in ZigZag's API)
  would charge a stationary word once, so it is turned off here.  The two models still count some
  traffic differently (e.g. partial sums that leave and re-enter the innermost level), so on the
  same nest ZigZag's energy and dnac's differ by a few percent (more on some layers).
* **Chains versus parallel memories.**  Timeloop's levels form one chain and each loop belongs to
  one level, so it lies outside the tiles of every level below that one, for every tensor, even a
  bypassed one; with eyeriss_like's ifmap_spad -> weights_spad -> psum_spad the loops of
  ifmap_spad sit above the weight and psum scratchpads' tiles.  ZigZag cuts one global loop order
  per operand: a weight scratchpad may keep its tile across loops that are above the input
  scratchpad's, or even above the global buffer's tile for the inputs.  LOMA fills each memory as
  far as it can, so on a bypass chain many of its mappings are outside Timeloop's space.
* **Input tiles.**  ZigZag counts the distinct input words a strided window touches; Timeloop the
  bounding box.  They differ whenever a tile holds fewer filter taps than the stride along a
  strided axis (e.g. a register tile of 7 output columns and one tap at stride 2: ZigZag 7 words,
  Timeloop 13), so LOMA can fill a small buffer beyond what Timeloop allows.
* **Not described:** Timeloop's link transfers between mesh neighbours (priced by dnac, unknown to
  ZigZag) and mapspace constraints other than keep/bypass (the caller's `keeps` are honoured;
  fixed factors or permutations in a constraints file are not passed to LOMA).

The search:

* **Spatial mappings.**  LOMA needs a spatial mapping.  ZigZag's generator proposes the best
  `spatial_mappings` candidates by utilization (mixing several dims on one array dim when
  `mix=True`, ZigZag's `enable_mix_spatial_mapping_generation`); but it unrolls divisors of
  min(layer dim, array dim), which need not divide the layer dim, and ZigZag then silently uses a
  fractional unrolling that no Timeloop nest can express.  When any of its candidates has such a
  factor (or puts one dim on both mesh axes of one fan-out, which a Timeloop level cannot), the
  candidates are instead dnac's: the assignments of divisor factors to the array dims (at most
  two dims per array dim) with the highest utilization, ties broken by ZigZag's own diversity
  indicator.  LOMA runs on each candidate.
* **Temporal mappings.**  LOMA with `lpf_limit` and the "even" temporal mapping type (a memory
  shared by several operands gets one cut for all of them, as one Timeloop level does).  LOMA runs
  single-process; ZigZag's logging and progress bars are silenced and it writes no files.
* **The pick.**  ZigZag's own cost for `objective` ranks every mapping LOMA priced, over all
  spatial candidates.  With `prefer_exact` (the default) the result is the best-ranked mapping
  that is exactly a Timeloop nest on this hardware (`rank` = how many better-ranked mappings were
  not); only when none is, LOMA's best is converted as closely as possible (`exact` False).

Back to a Nest: LOMA's mapping is one global temporal loop order (innermost first) and, per operand,
its cut points (memory i of an operand holds the tile of every loop below its cut, plus the
spatial unrolling below it).  A Timeloop nest is the same loop order cut once per dnac level, every
level's cut at or above the next inner level's.  The mapping is exact when every kept tensor at
every level can get exactly LOMA's tile (tiles are compared in words, so a loop irrelevant to a
tensor may cross its cut freely) with monotone cuts, no dim split over two places in one level's
slice, and every tile fitting by Timeloop's (bounding-box) count.  Otherwise a small dynamic
program over the levels picks the cuts minimising the summed |log(tile / LOMA's tile)|, subject to
every buffer's capacity (ties: the larger tile), and a repeated dim in one level's slice is merged
into one Timeloop loop at its outermost occurrence.  Spatial unrollings go to the level of their
fan-out, X dims innermost in the spatial permutation (mixed dims in ZigZag's order, first =
outermost).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnac.compiler.errors import DesignError
from dnac.compiler.timeloop.mapper import Hardware
from dnac.compiler.timeloop.model import evaluate
from dnac.compiler.timeloop.nest import TL_TENSORS, LevelMapping, Nest, Problem, ShapeKind
from dnac.compiler.timeloop.tiles import box_size

#: Bits per word as ZigZag is told (all operands share it; sizes and bandwidths are words x _WORD).
_WORD = 16
#: DRAM's size in bits ("unbounded").
_DRAM_BITS = 1 << 50
#: Timeloop dim -> ZigZag loop dim (R pairs with P on the input's W axis, S with Q on H).
ZZ_DIMS = {"N": "B", "M": "K", "C": "C", "G": "G", "R": "FX", "S": "FY", "P": "OX", "Q": "OY"}
_TL_DIMS = {v: k for k, v in ZZ_DIMS.items()}
#: Timeloop tensor -> ZigZag layer operand / memory operand.
_LAYER_OP = {"Weights": "W", "Inputs": "I", "Outputs": "O"}
_MEM_OP = {"Weights": "I2", "Inputs": "I1", "Outputs": "O"}
_EQUATIONS = {
    ShapeKind.CONV: "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
    ShapeKind.DEPTHWISE: "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
}
#: Penalty of merging a repeated dim inside one level's slice (well below any tile mismatch, log 2).
_MERGE_PENALTY = 1e-3
#: Relative extra cost of shrinking a tile rather than growing it by the same ratio (a tie-break).
_SHRINK_TIE = 1e-6
_INSTALL = "ZigZag (LOMA) is not installed: pip install zigzag-dse six  (dnac's optional `bench` extra)"


@dataclass
class LomaResult:
    """LOMA's mapping of one layer, as a dnac Nest."""

    nest: Nest | None  # the mapping (see `rank`); None if LOMA found none, none converts, or unsupported
    seconds: float  # wall time of ZigZag itself (its parsing, spatial candidates, LOMA, its cost model)
    orderings: int  # loop orderings LOMA allocated and ZigZag priced, over all spatial candidates
    exact: bool  # the Nest is exactly that LOMA mapping; False: the closest legal nest (see `note`)
    note: str  # how the mapping was found and, if not exact, how it was adjusted
    zigzag_cost: dict[str, float] = field(default_factory=dict)  # ZigZag's energy_pJ, latency_cycles, edp
    spatial: dict[str, dict[str, int]] = field(default_factory=dict)  # array dim -> {Timeloop dim: factor}
    rank: int = 0  # its place in ZigZag's ranking of every mapping LOMA priced (0 = LOMA's best)


# ----------------------------------------------------------------------------------- hardware


@dataclass(frozen=True)
class _Axis:
    """One ZigZag array dimension: a mesh axis of one fan-out."""

    name: str  # D1, D2, ...
    level: int  # the dnac level whose spatial loops it carries
    x: bool  # mesh X (else Y)
    size: int


def _axes(hw: Hardware) -> list[_Axis] | str:
    """The array dims, innermost fan-out first, X before Y; or why the hardware cannot be described."""
    st = hw.storage
    if not st:
        return "the architecture has no storage level"
    if st[0].instances != 1:
        return f"the outermost level {st[0].name} has {st[0].instances} instances (ZigZag needs one top memory)"
    levels = [(s.name, s.instances, s.mesh_x) for s in st] + [(hw.compute.name, hw.compute.instances,
                                                               hw.compute.mesh_x)]
    for name, inst, mx in levels:
        if mx < 1 or inst % mx:
            return f"{name}: {inst} instances do not fill a mesh {mx} wide"
    for (oname, oinst, omx), (iname, iinst, imx) in itertools.pairwise(levels):
        if iinst % oinst or imx % omx or (iinst // imx) % (oinst // omx):
            return f"{iname}'s mesh ({imx}x{iinst // imx}) is not a whole fan-out of {oname}'s ({omx}x{oinst // omx})"
    out: list[_Axis] = []
    for lvl in range(len(st) - 1, -1, -1):
        fx, fy = hw.fanout(lvl)
        for size, x in ((fx, True), (fy, False)):
            if size > 1:
                out.append(_Axis(f"D{len(out) + 1}", lvl, x, size))
    if len(out) > 9:
        return f"{len(out)} fan-out axes (ZigZag names array dims D1..D9)"
    return out


def supported(hw: Hardware) -> str | None:
    """None if the hardware can be described to ZigZag, else a one-line reason."""
    axes = _axes(hw)
    return axes if isinstance(axes, str) else None


def _problem_reason(problem: Problem) -> str | None:
    if problem.kind not in _EQUATIONS:
        return f"problem shape {problem.kind} has no ZigZag equation"
    return None


def _served(axes: list[_Axis], lvl: int) -> list[str]:
    return [a.name for a in axes if a.level >= lvl]


def _bits(words: float) -> int:
    return max(1, math.ceil(words * _WORD - 1e-9))


def _widths(hw: Hardware) -> list[tuple[float, float]]:
    """Per level, the (read, write) port widths in words/cycle ZigZag is given.

    Timeloop's limits where the architecture states them.  Where it states none, Timeloop never
    stalls on the level, so neither should ZigZag, whose latency model lets a buffer that is not
    double-buffered be refilled or drained only in a short window: the port gets room, in one cycle,
    for a word of each of the three tensors for every MAC below the instance, plus the whole
    capacity of the instances it feeds, plus its own capacity to or from its parent (as far as the
    parent's ports carry it).  DRAM's ports stay at the per-MAC width: ZigZag truncates each access
    count to whole accesses of the port's full width, and DRAM's accesses cost the most."""
    out: list[tuple[float, float]] = []
    n = len(hw.storage)
    for lvl, s in enumerate(hw.storage):
        base = float(3 * (hw.compute.instances // s.instances))
        rd = wr = base
        if s.size is not None:
            child = hw.storage[lvl + 1] if lvl + 1 < n else None
            if child is not None and child.effective_size is not None:
                rd += (child.instances // s.instances) * child.effective_size
            if out:
                own = float(s.effective_size or 0)
                rd += min(own, out[-1][1])
                wr += min(own, out[-1][0])
        rd, wr = max(rd, s.block_size), max(wr, s.block_size)
        if s.shared_bw is not None:
            rd = wr = s.shared_bw
        out.append((float(s.read_bw if s.read_bw is not None else rd),
                    float(s.write_bw if s.write_bw is not None else wr)))
    return out


def _ports(s: Any, widths: tuple[float, float], tensors: list[str], read_pJ: float, write_pJ: float
           ) -> tuple[list[dict[str, Any]], float, float]:
    """(ports, r_cost, w_cost) such that one vector access of `block_size` words costs read_pJ /
    write_pJ: `bandwidth_min` is one block, `bandwidth_max` the port width, and the cost per
    `bandwidth_max` access is scaled by the number of blocks in it."""
    blk = _bits(s.block_size)

    def width(words: float) -> tuple[int, int, float]:
        bmax = _bits(words)
        bmin = min(blk, bmax)
        return bmin, bmax, bmax / blk

    reads, writes = [], []
    for t in tensors:
        op = _MEM_OP[t]
        reads.append(f"{op}, tl")
        writes.append(f"{op}, fh")
        if t == "Outputs":
            reads.append(f"{op}, th")
            writes.append(f"{op}, fl")
    if s.shared_bw is not None and s.read_bw is None and s.write_bw is None:
        bmin, bmax, scale = width(s.shared_bw)
        ports = [{"name": "rw_port_1", "type": "read_write", "bandwidth_min": bmin, "bandwidth_max": bmax,
                  "allocation": reads + writes}]
        return ports, read_pJ * scale, write_pJ * scale
    rmin, rmax, rscale = width(widths[0])
    wmin, wmax, wscale = width(widths[1])
    # A limited direction shares one port (Timeloop's limit is per level); an unlimited one gets a port
    # per operand and direction, since ZigZag rounds every transfer on a port up to whole cycles and
    # would otherwise serialize the three tensors' one-word-per-MAC traffic.
    r_groups = [reads] if s.read_bw is not None or s.shared_bw is not None else [[a] for a in reads]
    w_groups = [writes] if s.write_bw is not None or s.shared_bw is not None else [[a] for a in writes]
    ports = [{"name": f"r_port_{i + 1}", "type": "read", "bandwidth_min": rmin, "bandwidth_max": rmax,
              "allocation": g} for i, g in enumerate(r_groups)]
    ports += [{"name": f"w_port_{i + 1}", "type": "write", "bandwidth_min": wmin, "bandwidth_max": wmax,
               "allocation": g} for i, g in enumerate(w_groups)]
    return ports, read_pJ * rscale, write_pJ * wscale


def accelerator_dict(hw: Hardware, keeps: tuple[frozenset[str], ...]) -> tuple[dict[str, Any], dict[str, int]]:
    """ZigZag's accelerator description (3.x YAML as a dict) and, per memory name, its dnac level."""
    axes = _axes(hw)
    if isinstance(axes, str):
        raise ValueError(f"ZigZag cannot describe {hw.name}: {axes}")  # noqa: TRY004 - a str is the reason
    memories: dict[str, Any] = {}
    level_of: dict[str, int] = {}
    widths = _widths(hw)
    for lvl in range(len(hw.storage) - 1, -1, -1):
        s = hw.storage[lvl]
        kept = [t for t in TL_TENSORS if t in keeps[lvl]]
        if not kept:
            continue
        split = s.capacities is not None or (s.tensor_pJ is not None and len(kept) > 1)
        groups = [[t] for t in kept] if split else [kept]
        for group in groups:
            if s.size is None:
                bits = _DRAM_BITS
            elif s.capacities is not None:
                words = min(s.capacities.get(group[0], 0), s.effective_size or 0)
                bits = max(1, words) * _WORD
            else:
                bits = max(1, s.effective_size or 0) * _WORD
            r_pJ, w_pJ = s.energies(group[0])
            ports, r_cost, w_cost = _ports(s, widths[lvl], group, r_pJ, w_pJ)
            name = f"L{lvl}_{s.name}" + (f"_{_LAYER_OP[group[0]]}" if split else "")
            memories[name] = {
                "size": int(bits), "r_cost": float(r_cost), "w_cost": float(w_cost), "area": 0.0, "latency": 1,
                "operands": [_MEM_OP[t] for t in group], "ports": ports, "served_dimensions": _served(axes, lvl),
            }
            level_of[name] = lvl
    arr = {"unit_energy": float(hw.compute.mac_pJ), "unit_area": 1.0,
           "dimensions": [a.name for a in axes] or ["D1"], "sizes": [a.size for a in axes] or [1]}
    return {"name": f"dnac_{hw.name}", "memories": memories, "operational_array": arr}, level_of


def workload_list(problem: Problem, name: str = "layer") -> list[dict[str, Any]]:
    """ZigZag's workload description of one layer (Timeloop dims renamed by `ZZ_DIMS`)."""
    dims = list(problem.dims)
    return [{
        "id": 0, "name": name, "operator_type": "Conv", "equation": _EQUATIONS[problem.kind],
        "dimension_relations": [f"ix={problem.wstride}*ox+{problem.wdilation}*fx",
                                f"iy={problem.hstride}*oy+{problem.hdilation}*fy"],
        "loop_dims": [ZZ_DIMS[d] for d in dims], "loop_sizes": [int(problem.bounds[d]) for d in dims],
        "operand_precision": {"W": _WORD, "I": _WORD, "O": _WORD, "O_final": _WORD},
        "operand_source": {"W": 0, "I": 0},
    }]


def mapping_list() -> list[dict[str, Any]]:
    """ZigZag's mapping description: operand links only (spatial mappings are set per candidate)."""
    return [{"name": "default", "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}]


# ------------------------------------------------------------------------- spatial mappings

SpatialChoice = dict[str, dict[str, int]]  # array dim -> {Timeloop dim: factor}


def _indicator(choice: SpatialChoice) -> tuple[int, float]:
    """(utilization, ZigZag's diversity term): ZigZag's performance indicator of a spatial mapping."""
    per_dim: dict[str, int] = {}
    for m in choice.values():
        for d, f in m.items():
            per_dim[d] = per_dim.get(d, 1) * f
    util = math.prod(per_dim.values()) if per_dim else 1
    return util, util / max(per_dim.values(), default=1) - 1


def _legal(problem: Problem, axes: list[_Axis], choice: SpatialChoice) -> str | None:
    """Why a spatial choice is not a Timeloop nest's (None if it is)."""
    total: dict[str, int] = {}
    for a in axes:
        m = choice.get(a.name, {})
        if math.prod(m.values()) > a.size:
            return f"{a.name} unrolls {math.prod(m.values())} > {a.size}"
        for d, f in m.items():
            if f != int(f) or f < 1:
                return f"{d} unrolled by a fractional {f}"
            total[d] = total.get(d, 1) * int(f)
    for d, f in total.items():
        if problem.bounds.get(d, 1) % f:
            return f"{d}={problem.bounds.get(d, 1)} is not a multiple of its unrolling {f}"
    for lvl in {a.level for a in axes}:
        x = {d for a in axes if a.level == lvl and a.x for d in choice.get(a.name, {})}
        y = {d for a in axes if a.level == lvl and not a.x for d in choice.get(a.name, {})}
        if x & y:
            return f"{sorted(x & y)} on both mesh axes of one fan-out"
    return None


def dnac_spatial_candidates(problem: Problem, axes: list[_Axis], count: int = 3, mix: bool = True
                            ) -> list[SpatialChoice]:
    """The `count` divisor-only spatial mappings with the highest utilization (then ZigZag's diversity
    indicator): each array dim gets one dim (two with `mix`), every dim's total unrolling divides
    its bound, and no dim sits on both mesh axes of one fan-out."""
    dims = [d for d in problem.dims if problem.bounds[d] > 1]
    options: list[list[dict[str, int]]] = []
    for a in axes:
        opts: list[dict[str, int]] = [{}]
        singles = [(d, f) for d in dims for f in range(2, min(a.size, problem.bounds[d]) + 1)
                   if problem.bounds[d] % f == 0]
        opts += [{d: f} for d, f in singles]
        if mix:
            for (d1, f1), (d2, f2) in itertools.combinations(singles, 2):
                if d1 != d2 and f1 * f2 <= a.size:
                    opts.append({d1: f1, d2: f2})
        opts.sort(key=lambda m: -math.prod(m.values()))
        options.append(opts)
    best_rest = [math.prod(math.prod(o[0].values()) for o in options[i:]) for i in range(len(options))] + [1]
    kept: list[tuple[tuple, SpatialChoice]] = []

    def visit(i: int, util: int, used: dict[str, int], chosen: SpatialChoice) -> None:
        if i == len(axes):
            if _legal(problem, axes, chosen) is None:
                u, div = _indicator(chosen)
                key = (-u, -div, tuple(sorted((k, tuple(sorted(v.items()))) for k, v in chosen.items())))
                kept.append((key, {k: dict(v) for k, v in chosen.items()}))
                kept.sort(key=lambda kv: kv[0])
                del kept[count:]
            return
        for m in options[i]:
            u = util * math.prod(m.values())
            if len(kept) >= count and u * best_rest[i + 1] < -kept[-1][0][0]:
                break
            new = dict(used)
            ok = True
            for d, f in m.items():
                new[d] = new.get(d, 1) * f
                if problem.bounds[d] % new[d]:
                    ok = False
            if ok:
                visit(i + 1, u, new, {**chosen, axes[i].name: m})

    visit(0, 1, {}, {})
    return [c for _, c in kept]


# ----------------------------------------------------------------------------- conversion


@dataclass
class _Converted:
    nest: Nest | None
    exact: bool
    note: str


def _segment_merges(loops: list[tuple[str, int]], lo: int, hi: int) -> int:
    """Dims appearing in more than one run of the slice loops[lo:hi] (Timeloop has one loop per dim)."""
    runs: list[str] = []
    for d, _ in loops[lo:hi]:
        if not runs or runs[-1] != d:
            runs.append(d)
    return len(runs) - len(set(runs))


def _level_loops(loops: list[tuple[str, int]], lo: int, hi: int, dims: tuple[str, ...]
                 ) -> tuple[dict[str, int], tuple[str, ...]]:
    """Temporal factors and permutation (outermost first) of the slice loops[lo:hi] (innermost first)."""
    fac: dict[str, int] = {}
    outer_first: list[str] = []
    for d, f in reversed(loops[lo:hi]):
        fac[d] = fac.get(d, 1) * f
        if d not in outer_first:
            outer_first.append(d)
    live = [d for d in outer_first if fac[d] > 1]
    return {d: f for d, f in fac.items() if f > 1}, tuple(d for d in dims if d not in live) + tuple(live)


def convert(problem: Problem, hw: Hardware, keeps: tuple[frozenset[str], ...], axes: list[_Axis],
            spatial: SpatialChoice, loops: list[tuple[str, int]], cuts: dict[tuple[int, str], int], *,
            exact_only: bool = False) -> _Converted | None:
    """A dnac Nest from LOMA's global loop order `loops` (Timeloop dims, innermost first), its
    per-(level, tensor) cut points `cuts` (loops below the cut) and the spatial choice (see the
    module docstring).  Every kept tile fits its buffer; the nest is not otherwise evaluated.
    With `exact_only`, None unless the nest is exactly LOMA's mapping (a quick test, no search)."""
    n = len(hw.storage)
    dims = problem.dims
    idx = {d: i for i, d in enumerate(dims)}
    ranks = {t: tuple(tuple((idx[d], c) for d, c in rank) for rank in problem.ranks(t)) for t in TL_TENSORS}
    T = len(loops)
    # spatial factors per level, and cumulated from each level inwards
    sp: list[dict[str, int]] = [{} for _ in range(n)]
    xs: list[list[str]] = [[] for _ in range(n)]
    ys: list[list[str]] = [[] for _ in range(n)]
    for a in axes:
        for d, f in spatial.get(a.name, {}).items():
            sp[a.level][d] = sp[a.level].get(d, 1) * f
            (xs if a.x else ys)[a.level].append(d)
    sp_from = [[1] * len(dims) for _ in range(n + 1)]
    for lvl in range(n - 1, -1, -1):
        sp_from[lvl] = [sp_from[lvl + 1][i] * sp[lvl].get(d, 1) for i, d in enumerate(dims)]
    pref = [[1] * len(dims)]
    for d, f in loops:
        row = list(pref[-1])
        row[idx[d]] *= f
        pref.append(row)

    memo: dict[tuple[str, int, int], int] = {}

    def tile(t: str, lvl: int, p: int) -> int:
        key = (t, lvl, p)
        if key not in memo:
            memo[key] = box_size(tuple(a * b for a, b in zip(pref[p], sp_from[lvl])), ranks[t])
        return memo[key]

    def level_cost(lvl: int, p: int) -> float:
        s = hw.storage[lvl]
        kept = [t for t in TL_TENSORS if t in keeps[lvl]]
        words = {t: tile(t, lvl, p) for t in kept}
        cap = s.effective_size
        if cap is not None and sum(words.values()) > cap:
            return math.inf
        if s.capacities is not None and any(words[t] > s.capacities.get(t, 0) for t in kept):
            return math.inf
        cost = 0.0
        for t in kept:
            c = cuts.get((lvl, t))
            if c is not None:
                diff = math.log(words[t]) - math.log(tile(t, lvl, c))
                # ties go to the larger tile (it keeps LOMA's reuse and adds some), capacity permitting
                cost += diff if diff >= 0 else -diff * (1 + _SHRINK_TIE)
        return cost

    # Exactly LOMA's tiles: each level's cut within the positions that leave every kept tile as LOMA
    # cut it (tiles only grow with the cut), at or above the next inner level's: the lowest such cut.
    p: dict[int, int] = {n: 0, 0: T}
    for lvl in range(n - 1, 0, -1):
        lo, hi = p[lvl + 1], T
        for t in TL_TENSORS:
            c = cuts.get((lvl, t))
            if t not in keeps[lvl] or c is None:
                continue
            want = tile(t, lvl, c)
            lo_t = hi_t = c
            while lo_t > 0 and tile(t, lvl, lo_t - 1) == want:
                lo_t -= 1
            while hi_t < T and tile(t, lvl, hi_t + 1) == want:
                hi_t += 1
            lo, hi = max(lo, lo_t), min(hi, hi_t)
        if lo > hi:
            break
        p[lvl] = lo
    else:
        if (all(math.isfinite(level_cost(lvl, p[lvl])) for lvl in range(n))
                and not any(_segment_merges(loops, p[lvl + 1], p[lvl]) for lvl in range(n))):
            return _build(problem, hw, keeps, loops, sp, xs, ys, p, [])
    if exact_only:
        return None

    # Otherwise a DP over levels, innermost first: best[p] = cheapest cuts of levels lvl.. inner with
    # level lvl cut at p (tile mismatches, then merged dims; capacities are hard).
    best = {0: (0.0, ())}  # below the innermost level: cut 0
    for lvl in range(n - 1, 0, -1):
        nxt: dict[int, tuple[float, tuple[int, ...]]] = {}
        for cut in range(T + 1):
            own = level_cost(lvl, cut)
            if not math.isfinite(own):
                continue
            cand = [(c + own + _MERGE_PENALTY * _segment_merges(loops, q, cut), path + (cut,))
                    for q, (c, path) in best.items() if q <= cut]
            if cand:
                nxt[cut] = min(cand)
        best = nxt
        if not best:
            return _Converted(None, False, f"no cut of the loop order fits {hw.storage[lvl].name}")
    top = level_cost(0, T)
    final = [(c + top + _MERGE_PENALTY * _segment_merges(loops, q, T), path + (T,)) for q, (c, path) in best.items()]
    if not final or not math.isfinite(min(final)[0]):
        return _Converted(None, False, f"no cut of the loop order fits {hw.storage[0].name}")
    _, path = min(final)
    # path = cuts of levels n-1 .. 0 (innermost first); p[lvl] = cut above level lvl's loops
    p = {n - 1 - i: c for i, c in enumerate(path)}
    p[n] = 0
    notes: list[str] = []
    for lvl in range(n):
        if _segment_merges(loops, p[lvl + 1], p[lvl]):
            notes.append(f"{hw.storage[lvl].name}: a repeated dim merged into one loop")
        for t in TL_TENSORS:
            c = cuts.get((lvl, t))
            if t in keeps[lvl] and c is not None and tile(t, lvl, p[lvl]) != tile(t, lvl, c):
                notes.append(f"{hw.storage[lvl].name}.{t}: tile {tile(t, lvl, p[lvl])} words, LOMA's {tile(t, lvl, c)}")
    return _build(problem, hw, keeps, loops, sp, xs, ys, p, notes)


def _build(problem: Problem, hw: Hardware, keeps: tuple[frozenset[str], ...], loops: list[tuple[str, int]],
           sp: list[dict[str, int]], xs: list[list[str]], ys: list[list[str]], p: dict[int, int],
           notes: list[str]) -> _Converted:
    """The Nest whose level `lvl` runs loops[p[lvl + 1]:p[lvl]] and the spatial factors `sp[lvl]`
    (mesh X dims `xs[lvl]`, Y dims `ys[lvl]`)."""
    dims = problem.dims
    maps = []
    for lvl in range(len(hw.storage)):
        fac, perm = _level_loops(loops, p[lvl + 1], p[lvl], dims)
        x, y = tuple(xs[lvl]), tuple(ys[lvl])
        units = tuple(d for d in dims if d not in sp[lvl])
        maps.append(LevelMapping(fac, perm, dict(sp[lvl]), units + y + x, len(x), keeps[lvl]))
    nest = Nest(problem, hw.storage, hw.compute, tuple(maps), source="loma")
    return _Converted(nest, not notes, "exact" if not notes else "adjusted: " + "; ".join(notes))


# ---------------------------------------------------------------------------------- ZigZag


def _import() -> dict[str, Any]:
    try:
        from zigzag.datatypes import LayerDim, OADimension
        from zigzag.mapping.spatial_mapping import MappingSingleOADim, SpatialMapping
        from zigzag.mapping.temporal_mapping import TemporalMappingType
        from zigzag.opt.loma.engine import LomaEngine
        from zigzag.parser.accelerator_factory import AcceleratorFactory
        from zigzag.parser.accelerator_validator import AcceleratorValidator
        from zigzag.parser.mapping_validator import MappingValidator
        from zigzag.parser.workload_factory import WorkloadFactory
        from zigzag.parser.workload_validator import WorkloadValidator
        from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
        from zigzag.stages.main import MainStage
        from zigzag.stages.mapping.spatial_mapping_conversion import SpatialMappingConversionStage
        from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
        from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
        from zigzag.stages.results.reduce_stages import MinimalEDPStage, MinimalEnergyStage, MinimalLatencyStage
    except ImportError as e:
        raise ImportError(f"{_INSTALL} ({e})") from e
    return {
        "LayerDim": LayerDim, "OADimension": OADimension, "MappingSingleOADim": MappingSingleOADim,
        "SpatialMapping": SpatialMapping, "TemporalMappingType": TemporalMappingType, "LomaEngine": LomaEngine,
        "AcceleratorFactory": AcceleratorFactory, "AcceleratorValidator": AcceleratorValidator,
        "MappingValidator": MappingValidator, "WorkloadFactory": WorkloadFactory,
        "WorkloadValidator": WorkloadValidator, "CostModelStage": CostModelStage, "MainStage": MainStage,
        "SpatialMappingConversionStage": SpatialMappingConversionStage,
        "SpatialMappingGeneratorStage": SpatialMappingGeneratorStage,
        "TemporalMappingGeneratorStage": TemporalMappingGeneratorStage, "MinimalEDPStage": MinimalEDPStage,
        "MinimalEnergyStage": MinimalEnergyStage, "MinimalLatencyStage": MinimalLatencyStage,
    }


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ZigZag logs (and warns) freely: silence its loggers for the duration, then restore them."""
    log = logging.getLogger("zigzag")
    old, old_prop = log.level, log.propagate
    log.setLevel(logging.CRITICAL + 1)
    log.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(old)
        log.propagate = old_prop


def _zz_cost(cme: Any, objective: str) -> tuple[float, ...]:
    """ZigZag's own ranking key (its reduce stages' order: the objective, then the other one)."""
    if objective == "energy":
        return (cme.energy_total, cme.latency_total2)
    if objective == "latency":
        return (cme.latency_total2, cme.energy_total)
    return (cme.energy_total * cme.latency_total2,)


@dataclass
class _Record:
    """One mapping LOMA priced: ZigZag's key and costs, its spatial choice, loop order and cuts."""

    key: tuple[float, ...]
    energy: float
    latency: float
    choice: int  # index into the spatial candidates
    order: int  # evaluation order
    loops: list[tuple[str, int]] | None
    cuts: dict[tuple[int, str], int]
    why: str = ""  # why loops is None


def _summary(cme: Any, level_of: dict[str, int]) -> tuple[list[tuple[str, int]] | None, dict[tuple[int, str], int], str]:
    """LOMA's global loop order (Timeloop dims, innermost first, unit loops dropped) and, per
    (dnac level, tensor), the number of loops below that memory's cut."""
    tm = cme.temporal_mapping.mapping_dic_origin
    links = cme.layer.memory_operand_links
    hier = cme.accelerator.memory_hierarchy
    orders = []
    cuts: dict[tuple[int, str], int] = {}
    for t in TL_TENSORS:
        layer_op = next(op for op in tm if op.name == _LAYER_OP[t])
        mems = hier.get_memory_levels(links.layer_to_mem_op(layer_op))
        flat: list[tuple[str, int]] = []
        for mem, lvl_loops in zip(mems, tm[layer_op]):
            for ld, f in lvl_loops:
                if f != int(f):
                    return None, {}, f"LOMA used a fractional loop {ld.name}={f}"
                if int(f) > 1:
                    flat.append((_TL_DIMS[ld.name], int(f)))
            cuts[(level_of[mem.memory_instance.name], t)] = len(flat)
        orders.append(flat)
    if any(o != orders[0] for o in orders):
        return None, {}, "LOMA's operands disagree on the loop order"
    return orders[0], cuts, ""


def _fmt(choice: SpatialChoice) -> str:
    return " ".join(f"{a}:" + ",".join(f"{d}{f}" for d, f in m.items()) for a, m in choice.items() if m) or "none"


def loma_map(problem: Problem, hw: Hardware, keeps: tuple[frozenset[str], ...], *, objective: str = "edp",
             lpf_limit: int = 6, workdir: Path | None = None, spatial_mappings: int = 3, mix: bool = True,
             prefer_exact: bool = True) -> LomaResult:
    """LOMA's best mapping of `problem` on `hw` with the keep sets `keeps` (per level, outermost
    first), as a dnac Nest (see the module docstring).

    LOMA runs on `spatial_mappings` spatial candidates (`mix`: several dims may share an array dim)
    with `lpf_limit`; ZigZag's own cost for `objective` ranks every mapping it priced.  With
    `prefer_exact` the result is the best-ranked of them that is exactly a Timeloop nest on this
    hardware (`rank` says how many better-ranked ones were not); only when none is does the result
    fall back to the closest legal nest to LOMA's best (`exact` False).  Without it, LOMA's best is
    converted as closely as it can be.  `workdir`, if given, receives ZigZag's inputs as YAML
    (accelerator.yaml, workload.yaml, mapping.yaml); ZigZag itself writes no file."""
    if objective not in ("edp", "energy", "latency"):
        raise ValueError(f"objective must be edp, energy or latency, not {objective!r}")
    if len(keeps) != len(hw.storage):
        raise ValueError(f"{len(keeps)} keep sets for {len(hw.storage)} storage levels")
    reason = supported(hw) or _problem_reason(problem)
    if reason is None:
        missing = [t for t in TL_TENSORS if not any(t in k for k in keeps)]
        if missing:
            reason = f"no level keeps {', '.join(missing)}"
    if reason is not None:
        return LomaResult(None, 0.0, 0, False, f"unsupported: {reason}")
    zz = _import()
    axes = _axes(hw)
    assert not isinstance(axes, str)
    acc_data, level_of = accelerator_dict(hw, keeps)
    wl_data = workload_list(problem)
    map_data = mapping_list()
    if workdir is not None:
        import yaml

        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        for fname, obj in (("accelerator.yaml", acc_data), ("workload.yaml", wl_data), ("mapping.yaml", map_data)):
            (workdir / fname).write_text(yaml.safe_dump(obj, sort_keys=False), encoding="utf-8")

    records: list[_Record] = []
    state = {"choice": 0, "permutations": 0}

    class _Loma(zz["TemporalMappingGeneratorStage"]):  # type: ignore[misc, valid-type]
        """ZigZag's LOMA stage, recording how many orderings LOMA generated."""

        def generate_temporal_mappings(self):  # type: ignore[no-untyped-def]
            engine = zz["LomaEngine"](accelerator=self.accelerator, layer=self.layer,
                                      spatial_mapping=self.spatial_mapping, mapping_type=self.mapping_type,
                                      **self.kwargs)
            try:
                yield from engine.run()
            finally:
                state["permutations"] += getattr(engine, "nb_permutations", 0)

    class _Cost(zz["CostModelStage"]):  # type: ignore[misc, valid-type]
        """ZigZag's cost model, recording every mapping it prices."""

        def run(self):  # type: ignore[no-untyped-def]
            for cme, extra in super().run():
                loops, cuts, why = _summary(cme, level_of)
                records.append(_Record(_zz_cost(cme, objective), cme.energy_total, cme.latency_total2,
                                       state["choice"], len(records), loops, cuts, why))
                yield cme, extra

    reduce_stage = {"edp": zz["MinimalEDPStage"], "energy": zz["MinimalEnergyStage"],
                    "latency": zz["MinimalLatencyStage"]}[objective]
    notes: list[str] = []
    t0 = time.perf_counter()
    with _quiet():
        v = zz["AcceleratorValidator"](acc_data)
        if not v.validate():
            raise ValueError(f"ZigZag rejects the accelerator description: {v.validator.errors}")
        accelerator = zz["AcceleratorFactory"](v.normalized_data).create()
        wv = zz["WorkloadValidator"](wl_data)
        if not wv.validate():
            raise ValueError("ZigZag rejects the workload description")
        mv = zz["MappingValidator"](map_data)
        if not mv.validate():
            raise ValueError("ZigZag rejects the mapping description")
        workload = zz["WorkloadFactory"](wv.normalized_data, mv.normalized_data).create()
        layer = next(n for n in workload.topological_sort() if hasattr(n, "layer_dim_sizes"))
        oa_sizes = accelerator.operational_array.dimension_sizes

        # Spatial candidates: ZigZag's generator, unless it proposes what a Timeloop nest cannot express.
        gen = zz["SpatialMappingGeneratorStage"]([zz["CostModelStage"]], accelerator=accelerator, layer=layer,
                                                 enable_mix_spatial_mapping_generation=mix,
                                                 nb_mappings_generated=spatial_mappings)
        proposed: list[SpatialChoice] = []
        bad = None
        try:
            for sm in gen.generate_spatial_mappings():
                # (MappingSingleOADim has items() but no __iter__)
                choice = {str(oa.name): {_TL_DIMS[ld.name]: int(f) if f == int(f) else float(f)
                                         for ld, f in m.items() if f != 1} for oa, m in sm.items()}
                bad = bad or _legal(problem, axes, choice)
                proposed.append(choice)
        except Exception as e:  # noqa: BLE001 - ZigZag's generator asserts freely
            bad = f"its generator failed: {type(e).__name__}: {e}"
        if bad is None and proposed:
            choices = proposed
            notes.append("spatial candidates: ZigZag's generator")
        else:
            choices = dnac_spatial_candidates(problem, axes, spatial_mappings, mix)
            notes.append(f"spatial candidates: dnac's divisor-only ones (ZigZag's generator proposed "
                         f"{bad or 'none'})")

        for i, choice in enumerate(choices):
            sm = zz["SpatialMapping"]({
                zz["OADimension"](a.name): zz["MappingSingleOADim"](
                    {zz["LayerDim"](ZZ_DIMS[d]): f for d, f in choice.get(a.name, {}).items()})
                for a in axes})
            sm.initialize_oa_dims(oa_sizes)
            layer.spatial_mapping = sm
            state["choice"] = i
            try:
                zz["MainStage"]([zz["SpatialMappingConversionStage"], reduce_stage, _Loma, _Cost],
                                accelerator=accelerator, layer=layer, loma_lpf_limit=lpf_limit,
                                loma_show_progress_bar=False, access_same_data_considered_as_no_access=False,
                                temporal_mapping_type=zz["TemporalMappingType"]("even")).run()
            except Exception as e:  # noqa: BLE001 - one candidate failing must not lose the others
                notes.append(f"LOMA found no mapping for spatial {_fmt(choice)} ({type(e).__name__})")
    seconds = time.perf_counter() - t0
    orderings = len(records)
    notes.append(f"{orderings} mappings priced by ZigZag ({state['permutations']} orderings generated)")
    if not records:
        return LomaResult(None, seconds, 0, False, "; ".join(["LOMA found no mapping"] + notes))

    ranked = sorted(records, key=lambda r: (r.key, r.choice, r.order))

    def conv(r: _Record, exact_only: bool = False) -> _Converted | None:
        """The record's nest (evaluated for legality); with `exact_only`, None unless it is exact."""
        if r.loops is None:
            return None if exact_only else _Converted(None, False, r.why)
        c = convert(problem, hw, keeps, axes, choices[r.choice], r.loops, r.cuts, exact_only=exact_only)
        if c is not None and c.nest is not None:
            try:
                evaluate(c.nest)
            except DesignError as e:
                c = None if exact_only else _Converted(None, False, f"the converted nest is not legal: {e}")
        return c

    def result(rank: int, r: _Record, c: _Converted, extra: list[str]) -> LomaResult:
        cost = {"energy_pJ": r.energy, "latency_cycles": r.latency, "edp": r.energy * r.latency}
        note = "; ".join([c.note, *extra, *notes])
        return LomaResult(c.nest, seconds, orderings, c.exact, note, cost, choices[r.choice], rank)

    best = conv(ranked[0])
    assert best is not None
    if best.nest is not None and (best.exact or not prefer_exact):
        return result(0, ranked[0], best, [])
    if prefer_exact:
        for rank, r in enumerate(ranked[1:], start=1):
            c = conv(r, exact_only=True)
            if c is not None and c.nest is not None:
                why = (f"LOMA's best (ZigZag {objective} {ranked[0].key[0]:.4g}, spatial "
                       f"{_fmt(choices[ranked[0].choice])}) is not a Timeloop nest here ({best.note}); this is "
                       f"its best that is, #{rank + 1} of {orderings} (ZigZag {objective} {r.key[0]:.4g})")
                return result(rank, r, c, [why])
        notes.insert(0, "none of LOMA's mappings is exactly a Timeloop nest here")
    for rank, r in enumerate(ranked):
        c = best if rank == 0 else conv(r)
        if c is not None and c.nest is not None:
            extra = [] if rank == 0 else [f"LOMA's best {rank} mapping(s) could not be converted ({best.note})"]
            return result(rank, r, c, extra)
    return LomaResult(None, seconds, orderings, False, "; ".join([f"no mapping converts: {best.note}"] + notes))
