"""Tile geometry and Timeloop's delta (fill) counting, in closed form.

Timeloop v3.0.3's nest analysis (`NestAnalysis::ComputeDeltas`) walks the loop nest and, at every
storage boundary, compares the tile a child instance needs now with the tile it held before; the
difference ("delta") is what the parent must send.  Four details decide the numbers, and this
module reproduces each of them exactly, without walking the nest:

1. **Tiles are axis-aligned boxes.**  A tile is the box of operation-space points spanned by the
   loops at and below a level; its footprint in a tensor is the bounding box of the projection
   (sliding windows `R*dil + P*stride` give boxes with holes when stride > 1).
2. **Deltas are AAHR differences** (`AxisAlignedHyperRectangle::Subtract`): an identical box costs
   nothing; a box that moved along exactly one tensor rank by less than its extent costs the new
   slab only; anything else (moved along two ranks, or disjoint) costs the whole box.
3. **Reset on stride change** (`operator-` with `gResetOnStrideChange`): each box remembers the
   direction (rank, sign) of its last slide.  A slide in another direction costs the whole box;
   an unchanged box or a whole-box reload forgets the direction.
4. **Temporal extrapolation** (`gExtrapolateUniformTemporal`, on by default): a temporal loop of
   `n` iterations is simulated at iterations 0, 1 and n-1 only (n = 2: 0 and 1), the middle one
   weighted `n - 2`; so one child instance sees a walk over the temporal loops above it where
   loop `j` steps 0 -> 1 -> n-1 and, at each step, every loop inside it returns from n-1 to 0.
   The loop right above a tile (the parent's innermost loop, when it is temporal) records the
   deltas itself and replaces the delta of its last iteration by that of iteration 1 (weight
   n - 1), while its tile still moves there.  `walk_fills` sums the walk by dynamic programming
   over (loop, direction state): O(loops x states), not O(iterations).  Running iteration 1 but
   not n-1 (the older extrapolation) misses whole-tile reloads and disagrees with 7 golden cases.

Spatial fan-outs: every instance below a fan-out sees the same walk translated, so its deltas are
translates of one another and Timeloop's exact-equality multicast test groups instances by the
projection of their spatial offset (`group_histogram`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from itertools import product

#: A tensor's projection: per rank, (op-dim index, coefficient) terms summed.
Ranks = tuple[tuple[tuple[int, int], ...], ...]


@dataclass(frozen=True)
class Loop:
    """One loop of the global nest (Timeloop's `loop::Descriptor`, plus its stride)."""

    dim: int  # op-space dim index
    bound: int  # iterations (> 1; unit loops are left out)
    stride: int  # op-space step of one iteration: product of the inner loops' bounds on `dim`
    spatial: bool
    level: int  # storage level index, outermost first


def rank_extents(ext: tuple[int, ...], ranks: Ranks) -> tuple[int, ...]:
    """Per-rank extent of the bounding box of a tile whose op-space extents are `ext`."""
    return tuple(sum(c * (ext[d] - 1) for d, c in rank) + 1 for rank in ranks)


def box_size(ext: tuple[int, ...], ranks: Ranks) -> int:
    """Words in the bounding box (Timeloop's tile size / utilized capacity)."""
    return math.prod(rank_extents(ext, ranks))


def _classify(delta_op: dict[int, int], rext: tuple[int, ...], ranks: Ranks) -> tuple[int, int]:
    """A move of the tile by `delta_op` (op dim -> displacement) for one tensor.

    Returns (state, slab): state 0 with slab 0 = unchanged box; state 0 with slab -1 = whole-box
    reload (moved along >1 rank, or disjoint); otherwise state = +-(rank+1), the slide direction,
    and slab = words of the newly covered slab."""
    moved = []
    for k, rank in enumerate(ranks):
        shift = sum(c * delta_op.get(d, 0) for d, c in rank)
        if shift:
            moved.append((k, shift))
    if not moved:
        return 0, 0
    if len(moved) > 1:
        return 0, -1
    k, shift = moved[0]
    if abs(shift) >= rext[k]:
        return 0, -1
    slab = abs(shift) * math.prod(e for i, e in enumerate(rext) if i != k)
    return (k + 1) * (1 if shift > 0 else -1), slab


def walk_fills(ext: tuple[int, ...], outer: list[Loop], ranks: Ranks, first_is_parent: bool) -> int:
    """Words one instance of a level receives over the run: Timeloop's summed temporal deltas.

    `ext` is the tile's op-space extent, `outer` the temporal loops above the tile, innermost
    first (loops of every outer level, §9.3 of the golden README).  `first_is_parent` says that
    `outer[0]` is the loop right above the tile (the parent's innermost loop is temporal): that
    loop records its deltas itself and drops the delta of its last iteration.  See the module
    docstring for the walk; the first tile is always loaded in full."""
    rext = rank_extents(ext, ranks)
    full = math.prod(rext)
    # Per loop: the moves into its visited iterations 1.. (with weights), each as (state, slab).
    plans: list[list[tuple[int, tuple[int, int]]]] = []
    for j, loop in enumerate(outer):
        n = loop.bound
        visits = [0, 1] if n == 2 else [0, 1, n - 1]
        weights = [1, 1] if n == 2 else [1, n - 2, 1]
        if j == 0 and first_is_parent and n > 2:
            weights = [1, n - 1, 0]
        plan = []
        for k in range(1, len(visits)):
            d: dict[int, int] = {loop.dim: (visits[k] - visits[k - 1]) * loop.stride}
            for inner in outer[:j]:  # every inner loop returns from its last iteration to 0
                d[inner.dim] = d.get(inner.dim, 0) - (inner.bound - 1) * inner.stride
            plan.append((weights[k], _classify(d, rext, ranks)))
        plans.append(plan)

    def step(state: int, move: tuple[int, int]) -> tuple[int, int]:
        target, slab = move
        if target == 0:  # unchanged (slab 0) or whole reload (slab -1); both forget the direction
            return (full if slab < 0 else 0), 0
        if state in (0, target):
            return slab, target
        return full, 0  # stride change: reload

    memo: dict[tuple[int, int], tuple[int, int]] = {}

    def walk(j: int, state: int) -> tuple[int, int]:
        """(cost, end state) of the walk over loops 0..j-1 entered in `state`."""
        if j == 0:
            return 0, state
        key = (j, state)
        if key not in memo:
            cost, state_now = walk(j - 1, state)
            for w, move in plans[j - 1]:
                d, s2 = step(state_now, move)
                c2, state_now = walk(j - 1, s2)
                cost += w * (d + c2)
            memo[key] = (cost, state_now)
        return memo[key]

    return full + walk(len(outer), 0)[0]


def group_histogram(loops: list[Loop], ranks: Ranks) -> dict[int, int]:
    """Multicast groups of one spatial fan-out for one tensor: {group size: number of groups}.

    Instances whose spatial offsets project to the same tensor coordinates receive equal deltas
    and share one parent read (Timeloop's `ComputeAccurateMulticastedAccesses`); overlapping but
    unequal windows get no credit."""
    if not loops:
        return {1: 1}
    counts: Counter[tuple[int, ...]] = Counter()
    for idx in product(*(range(lp.bound) for lp in loops)):
        off: dict[int, int] = {}
        for i, lp in zip(idx, loops):
            off[lp.dim] = off.get(lp.dim, 0) + i * lp.stride
        counts[tuple(sum(c * off.get(d, 0) for d, c in rank) for rank in ranks)] += 1
    return dict(Counter(counts.values()))
