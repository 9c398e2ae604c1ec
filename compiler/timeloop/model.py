"""`evaluate(nest)`: Timeloop v3.0.3 `timeloop-model` counts, cycles and energy, exactly.

The pipeline mirrors Timeloop's, stage by stage, so that every rounding lands where Timeloop's does:

1. *Nest analysis* (`tiles.py`, `links.py`): per storage level and tensor, the tile (bounding
   box), the simulated steps of the walk above it (`walk_steps`: temporal extrapolation, deltas
   that remember their translation vector), and at a spatial fan-out the multicast groups
   (`group_histogram`) and, step by step, the link transfers between mesh neighbours (on by
   default, as in Timeloop; `link_transfers=False` reproduces `TIMELOOP_DISABLE_LINK_TRANSFERS=1`).
   The accesses a level serves are recorded per multicast factor `m` (Timeloop's
   `AccessStatMatrix`): the innermost level serves one access per MAC per cycle; any other level
   serves its child's deltas once per multicast group of the PEs not fed by a neighbour.
2. *Tiling* (`tiling.cpp`, `CollapseTiles`): partition sizes (outermost tile, then scaled by
   tile / fan-out tile at every fan-out, integer division), each level's share of its parent's
   accesses (`sum(accesses x m) / fanout`, a double, before bypass), then **bypass masking**: a
   bypassed level's parent takes over its child's traffic by scaling every multicast bucket by
   `content x fanout / weighted_accesses` in double precision (so a bypassed level keeps the
   parent's multicast credit), and drops its link transfers.  Peer accesses: a level whose
   children took words from neighbours charges them, per child instance, as reads and fills of
   the children (`ComputePeerAccesses`).  Read-write tensors then get first-read elision:
   `reads = content + peer - partition`, `fills = share + peer - partition` (not at the outermost
   keeping level); counts are rounded (`std::round`) or, for read-only fills, truncated where
   Timeloop stores a double into an integer.
3. *Buffer model* (`buffer.cpp`): capacity check; bandwidth slowdown from per-instance demand
   (sum over tensors of count / compute cycles, fills and updates as writes); energy as
   `instances x (ceil(reads/B) E_read + ceil(fills/B) E_write + ceil(updates/B) E_write)`.

Cluster sizes other than 1 (memory_width wider than a block) and imperfect factorizations are not
modelled; dnac pads the problem instead, so every mapping here factorizes exactly.  Link-transfer
energy is 0 in the specs dnac reads and writes (the legacy network has no energy table), so only
the buffers' counts move.
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

from dnac.compiler.errors import DesignError
from dnac.compiler.timeloop.links import fanout_of
from dnac.compiler.timeloop.nest import (
    RW_TENSOR,
    TL_TENSORS,
    LevelStats,
    Nest,
    NestStats,
    TensorStats,
)
from dnac.compiler.timeloop.tiles import Loop, Ranks, Step, box_size, walk_steps


def build_loops(nest: Nest) -> list[Loop]:
    """The global loop nest, innermost first, as Timeloop builds it: per level (innermost level
    first) its spatial loops, then its temporal loops, each in permutation order; unit loops are
    dropped (they change no tile).  Spatial loops remember their mesh axis (X dims are the
    innermost of a spatial permutation)."""
    dims = nest.problem.dims
    idx = {d: i for i, d in enumerate(dims)}
    scale = [1] * len(dims)
    loops: list[Loop] = []
    for lvl in range(len(nest.storage) - 1, -1, -1):
        m = nest.mappings[lvl]
        xs = set(m.spatial_xy()[0])
        for spatial, perm, fac in ((True, m.spatial_perm, m.spatial), (False, m.temporal_perm, m.temporal)):
            for d in reversed(perm):
                f = fac.get(d, 1)
                if f > 1:
                    loops.append(Loop(idx[d], f, scale[idx[d]], spatial, lvl, spatial and d in xs))
                    scale[idx[d]] *= f
    return loops


def _check_mapping(nest: Nest) -> None:
    """Factors must multiply to the (padded) problem and spatial factors fit the fan-out to the next
    inner level (Timeloop rejects anything else)."""
    for d in nest.problem.dims:
        prod = math.prod(m.t(d) * m.s(d) for m in nest.mappings)
        if prod != nest.problem.bounds[d]:
            raise DesignError(nest.source, f"mapping.factors.{d}", f"factors multiply to {prod}, the problem "
                              f"has {d}={nest.problem.bounds[d]}; pad the problem instead")
    inner = [(s.instances, s.mesh_x) for s in nest.storage[1:]] + [(nest.compute.instances, nest.compute.mesh_x)]
    for lvl, (s, m) in enumerate(zip(nest.storage, nest.mappings)):
        n_in, mx_in = inner[lvl]
        if n_in % s.instances or mx_in % s.mesh_x:
            raise DesignError(nest.source, f"arch.{s.name}", "instances/meshX do not divide the next inner level's")
        fx, fy = mx_in // s.mesh_x, (n_in // mx_in) // s.mesh_y
        xs, ys = m.spatial_xy()
        px, py = math.prod(m.s(d) for d in xs), math.prod(m.s(d) for d in ys)
        if px > fx or py > fy:
            raise DesignError(nest.source, f"mapping.{s.name}.spatial",
                              f"spatial factors X={px} Y={py} exceed the fan-out {fx}x{fy}")


def _check_capacity(nest: Nest, sizes: dict[str, list[int]]) -> None:
    """Kept tiles must fit: summed for a shared level, per tensor for a partitioned one."""
    for lvl, (s, m) in enumerate(zip(nest.storage, nest.mappings)):
        kept = [t for t in TL_TENSORS if t in m.keep]
        if s.capacities is not None:
            for t in kept:
                cap = s.capacities.get(t, 0)
                if sizes[t][lvl] > cap:
                    raise DesignError(nest.source, f"{s.name}.{t}",
                                      f"tile of {sizes[t][lvl]} words exceeds its capacity of {cap} words")
        cap = s.effective_size
        total = sum(sizes[t][lvl] for t in kept)
        if cap is not None and total > cap:
            parts = ", ".join(f"{t} {sizes[t][lvl]}" for t in kept)
            raise DesignError(nest.source, f"{s.name}",
                              f"mapped tile size {total} ({parts}) exceeds buffer capacity {cap}")


def _mesh_fanout(nest: Nest, lvl: int) -> tuple[int, int]:
    """Physical fan-out (X, Y) from storage level `lvl` to the next inner level (or the MACs)."""
    s = nest.storage[lvl]
    inner = nest.storage[lvl + 1] if lvl + 1 < len(nest.storage) else nest.compute
    return inner.mesh_x // s.mesh_x, inner.mesh_y // s.mesh_y


def _point_steps(outer: list[Loop], ranks: Ranks, ndims: int) -> list[Step]:
    """The MACs' view of the walk: each MAC's delta is its one operand, never differenced, so
    every simulated step delivers one word of the same shape (`FillSpatialDeltas`, level 0)."""
    steps = walk_steps(tuple(1 for _ in range(ndims)), outer, ranks)
    return [Step(st.weight, 1, st.move, i > 0) for i, st in enumerate(steps)]


def _extents(nest: Nest) -> list[tuple[int, ...]]:
    """Per level (and one past the innermost): the op-space extent of its tile, per dim."""
    dims = nest.problem.dims
    out = [tuple(1 for _ in dims)]
    for m in reversed(nest.mappings):
        out.append(tuple(e * m.t(d) * m.s(d) for e, d in zip(out[-1], dims)))
    return out[::-1]


def _tensor_counts(nest: Nest, loops: list[Loop], ranks: Ranks, tensor: str, cycles: int,
                   sizes: list[int], link: bool, exts: list[tuple[int, ...]],
                   ) -> list[tuple[int, int, int, int, int, int, int]]:
    """(size, partition, utilized instances, reads, fills, updates, link transfers) per level,
    outermost first; a level's link transfers are those among its children."""
    n = len(nest.storage)
    dims = nest.problem.dims
    maps = nest.mappings
    sp_loops = [[lp for lp in loops if lp.spatial and lp.level == lvl] for lvl in range(n)]
    fanout = [math.prod(lp.bound for lp in sp) for sp in sp_loops]
    rep = [math.prod(fanout[:lvl]) for lvl in range(n)]

    # 1. Accesses each level serves, per multicast factor (AccessStatMatrix, per instance), and
    #    the link transfers among its children.
    stats: list[dict[int, int]] = []
    links = [0] * n
    for lvl in range(n):
        fan = fanout_of(tuple(sp_loops[lvl]), ranks, *_mesh_fanout(nest, lvl))
        outer = [lp for lp in loops if not lp.spatial and lp.level <= lvl]
        if lvl == n - 1:  # served to the MACs: one access per MAC per cycle
            steps = _point_steps(outer, ranks, len(dims)) if sp_loops[lvl] else [Step(cycles, 1, (), False)]
        else:
            steps = walk_steps(exts[lvl + 1], outer, ranks)
        acc: Counter[int] = Counter()
        plain = 0  # words served to the usual multicast groups (summed, then spread once)
        for st in steps:
            served = st.weight * st.words
            if link and st.linked and served and fanout[lvl] > 1:
                matched, rest = fan.link(st.move)
                if matched and sum(rest.values()) < fan.groups:
                    acc.update({m: served * g for m, g in rest.items()})
                    links[lvl] += matched * served
                    continue
            plain += served
        if plain:
            acc.update({m: plain * g for m, g in fan.hist.items()})
        stats.append(dict(acc))
    content = [sum(s.values()) for s in stats]

    # 2. Partition sizes (outermost tile, scaled at each fan-out; integer division).
    size = list(sizes)
    part = [0] * n
    part[0] = size[0]
    for lvl in range(1, n):
        if sp_loops[lvl - 1]:
            denom = box_size(tuple(e * maps[lvl - 1].s(d) for e, d in zip(exts[lvl], dims)), ranks)
        else:
            denom = size[lvl]
        part[lvl] = part[lvl - 1] * size[lvl] // denom

    # 3. Share of the parent's accesses, computed before bypass masking (Timeloop: a double sum of
    #    accesses x multicast / fan-out, truncated when stored as a count).
    share: list[Fraction] = [Fraction(0)] * n
    for lvl in range(1, n):
        share[lvl] = Fraction(sum(acc * m for m, acc in stats[lvl - 1].items()), fanout[lvl - 1])

    # 4. Bypass masking, innermost level first (tiling.cpp MaskTiles).
    keep = [tensor in m.keep for m in maps]
    for cur in range(n - 1, -1, -1):
        if size[cur] == 0 or keep[cur]:
            continue
        outer_lvl = next((o for o in range(cur - 1, -1, -1) if size[o] != 0), None)
        if outer_lvl is None:
            size[cur] = part[cur] = content[cur] = 0
            share[cur] = Fraction(0)
            break
        weighted = sum(acc * m for m, acc in stats[outer_lvl].items())
        factor = float(content[cur] * fanout[outer_lvl]) / float(weighted)
        stats[outer_lvl] = {m: acc * factor for m, acc in sorted(stats[outer_lvl].items())}  # doubles, as Timeloop
        content[outer_lvl] = sum(stats[outer_lvl].values())
        links[outer_lvl] = 0  # its children are gone: they all read the parent directly
        size[cur] = part[cur] = content[cur] = 0
        share[cur] = Fraction(0)
    for lvl in range(n):  # outermost bypassing levels vanish altogether (ProcessOuterMaskedLevels)
        if keep[lvl]:
            share[lvl] = Fraction(0)
            break
        size[lvl] = part[lvl] = content[lvl] = rep[lvl] = 0
        share[lvl] = Fraction(0)

    # 5. Peer accesses: a child that takes words from a neighbour reads them there and fills them
    #    (ComputePeerAccesses, per child instance).
    peer = [Fraction(0)] * n
    for lvl in range(n - 1):
        if links[lvl] and size[lvl + 1]:
            peer[lvl + 1] += Fraction(links[lvl], rep[lvl + 1])

    # 6. Reads, fills, updates (ComputeReadUpdateReductionAccesses_Legacy, first-read elision on).
    out = []
    for lvl in range(n):
        if size[lvl] == 0:
            out.append((0, 0, rep[lvl], 0, 0, 0, links[lvl]))
            continue
        if tensor == RW_TENSOR:
            outermost = all(size[o] == 0 for o in range(lvl))
            fills = share[lvl] + peer[lvl] - (0 if outermost else part[lvl])
            out.append((size[lvl], part[lvl], rep[lvl], _round(content[lvl] + peer[lvl] - part[lvl]),
                        _round(fills), _round(content[lvl]), links[lvl]))
        else:
            out.append((size[lvl], part[lvl], rep[lvl], _round(content[lvl] + peer[lvl]),
                        math.floor(share[lvl] + peer[lvl]), 0, links[lvl]))
    return out


def _round(x: Fraction | int) -> int:
    """std::round: halves away from zero."""
    f = Fraction(x)
    return math.floor(abs(f) + Fraction(1, 2)) * (1 if f >= 0 else -1)


def evaluate(nest: Nest, *, link_transfers: bool = True) -> NestStats:
    """Timeloop's per-level, per-tensor counts, cycles and energy for `nest`, with link transfers
    as Timeloop runs by default or, with `link_transfers=False`, as it runs with
    `TIMELOOP_DISABLE_LINK_TRANSFERS=1`."""
    _check_mapping(nest)
    prob = nest.problem
    dims = prob.dims
    idx = {d: i for i, d in enumerate(dims)}
    loops = build_loops(nest)
    n = len(nest.storage)
    cycles = math.prod(lp.bound for lp in loops if not lp.spatial)
    macs_used = math.prod(lp.bound for lp in loops if lp.spatial)
    computes = prob.macs

    ranks = {t: tuple(tuple((idx[d], c) for d, c in rank) for rank in prob.ranks(t)) for t in TL_TENSORS}
    exts = _extents(nest)
    sizes = {t: [box_size(exts[lvl], ranks[t]) for lvl in range(n)] for t in TL_TENSORS}
    _check_capacity(nest, sizes)

    per_tensor = {t: _tensor_counts(nest, loops, ranks[t], t, cycles, sizes[t], link_transfers, exts)
                  for t in TL_TENSORS}

    levels: list[LevelStats] = []
    total_cycles = cycles
    storage_energy = 0.0
    for lvl, s in enumerate(nest.storage):
        tstats: dict[str, TensorStats] = {}
        energy = 0.0
        rd = wr = 0.0
        for t in TL_TENSORS:
            size, part, inst, reads, fills, updates, links = per_tensor[t][lvl]
            kept = t in nest.mappings[lvl].keep
            tstats[t] = TensorStats(kept, part, size, inst, reads, fills, updates, links)
            b = s.block_size
            e_read, e_write = s.energies(t)
            vec = -(-reads // b) * e_read + -(-fills // b) * e_write + -(-updates // b) * e_write
            energy += vec * inst
            rd += reads / cycles
            wr += (fills + updates) / cycles
        slowdown = 1.0
        if s.read_bw is not None and s.read_bw < rd:
            slowdown = min(slowdown, s.read_bw / rd)
        if s.write_bw is not None and s.write_bw < wr:
            slowdown = min(slowdown, s.write_bw / wr)
        if s.shared_bw is not None and s.shared_bw < rd + wr:
            slowdown = min(slowdown, s.shared_bw / (rd + wr))
        lvl_cycles = math.ceil(cycles / slowdown)
        total_cycles = max(total_cycles, lvl_cycles)
        storage_energy += energy
        levels.append(LevelStats(s.name, tstats, lvl_cycles, slowdown, energy))

    mac_energy = computes * nest.compute.mac_pJ
    return NestStats(tuple(levels), computes, cycles, total_cycles,
                     computes / (nest.compute.instances * total_cycles),
                     mac_energy + storage_energy, mac_energy, macs_used)
