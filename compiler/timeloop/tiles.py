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
3. **Reset on stride change** (`OperationSpace::SaveAndSubtractIfSameStride`, on for every
   shape without flattening): each box remembers the raw translation *vector* of the first move
   after a reset.  A move by exactly that vector costs the difference; a move by any other
   vector (a tile that stayed put and then slides, a slide of another length) costs the whole
   box and forgets the vector, so the next move is differenced again and becomes the new one.
4. **Temporal extrapolation** (`gExtrapolateUniformTemporal`, on by default): a temporal loop of
   `n` iterations is simulated at iterations 0 and 1 only, the second weighted `n - 1`
   (`num_epochs_`).  So one child instance sees the walk of a binary counter over the temporal
   loops above it: the move of loop `j` steps it 0 -> 1 while every loop inside it returns
   1 -> 0 (`moves`).

Closed form (`walk_steps`).  Moves strictly alternate: every second move is the innermost loop's
(`M0`), and the others (`Mk`, k >= 1) come right after one.  A box's remembered vector is
therefore always `M0` when an `Mk` move comes, and `None` or `M0` when an `M0` move comes: `M0`
costs its AAHR difference every time, `Mk` costs the same when it equals `M0` and the whole box
otherwise.  The move of loop `k` happens `(n_k - 1) x prod_{i>k} n_i` times in all.

Link transfers (`NestAnalysis::ComputeNetworkLinkTransfers`, on by default) compare each
instance's delta with a mesh neighbour's delta of the previous simulated step; `walk_steps`
keeps, per step, the tile's move and whether its delta has the previous step's shape, which is
what `model.py` needs to count them.

Spatial fan-outs: every instance below a fan-out sees the same walk translated, so its deltas are
translates of one another and Timeloop's exact-equality multicast test groups instances by the
projection of their spatial offset (`group_histogram`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
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
    x: bool = False  # a spatial loop along mesh X (else Y)


@dataclass(frozen=True)
class Step:
    """A group of simulated steps of one walk that Timeloop treats alike.

    `weight` steps (epochs) each deliver `words` words; the tile moved by `move` (tensor
    coordinates, per rank) since the previous simulated step, and `linked` says the delta has
    the previous simulated step's shape (so a neighbour's previous delta can equal it)."""

    weight: int
    words: int
    move: tuple[int, ...]
    linked: bool


def rank_extents(ext: tuple[int, ...], ranks: Ranks) -> tuple[int, ...]:
    """Per-rank extent of the bounding box of a tile whose op-space extents are `ext`."""
    return tuple(sum(c * (ext[d] - 1) for d, c in rank) + 1 for rank in ranks)


def box_size(ext: tuple[int, ...], ranks: Ranks) -> int:
    """Words in the bounding box (Timeloop's tile size / utilized capacity)."""
    return math.prod(rank_extents(ext, ranks))


def project(offset: dict[int, int], ranks: Ranks) -> tuple[int, ...]:
    """An op-space displacement in tensor coordinates."""
    return tuple(sum(c * offset.get(d, 0) for d, c in rank) for rank in ranks)


def moves(outer: list[Loop], ranks: Ranks) -> list[tuple[int, ...]]:
    """Per loop (innermost first): the tile's translation when that loop steps 0 -> 1 and every
    loop inside it returns 1 -> 0."""
    out = []
    for j, loop in enumerate(outer):
        d = {loop.dim: loop.stride}
        for inner in outer[:j]:
            d[inner.dim] = d.get(inner.dim, 0) - inner.stride
        out.append(project(d, ranks))
    return out


def delta_words(move: tuple[int, ...], rext: tuple[int, ...]) -> tuple[int, tuple[int, int] | None]:
    """(words, shape key) of the AAHR difference after `move`: 0 words for an unmoved box, a
    slab for a move along one rank by less than its extent, else the whole box (key None)."""
    moved = [k for k, s in enumerate(move) if s]
    full = math.prod(rext)
    if not moved:
        return 0, (-1, 0)
    if len(moved) > 1 or abs(move[moved[0]]) >= rext[moved[0]]:
        return full, None
    k = moved[0]
    return abs(move[k]) * full // rext[k], (k, move[k])


def walk_steps(ext: tuple[int, ...], outer: list[Loop], ranks: Ranks) -> list[Step]:
    """The simulated steps of one instance's walk over `outer` (the temporal loops above its
    tile, innermost first), the first full load included; see the module docstring.  Memoized:
    a mapper prices many nests that share a level's tile and the loops above it."""
    return _walk_steps(ext, tuple(outer), ranks)


@lru_cache(maxsize=1 << 16)
def _walk_steps(ext: tuple[int, ...], outer: tuple[Loop, ...], ranks: Ranks) -> list[Step]:
    rext = rank_extents(ext, ranks)
    full = math.prod(rext)
    zero = tuple(0 for _ in ranks)
    steps = [Step(1, full, zero, False)]
    if not outer:
        return steps
    mv = moves(outer, ranks)
    w0, key0 = delta_words(mv[0], rext)
    steps.append(Step(outer[0].bound - 1, w0, mv[0], key0 is None and w0 > 0))
    after = 1
    for k in range(len(outer) - 1, 0, -1):
        weight = (outer[k].bound - 1) * after
        after *= outer[k].bound
        same = mv[k] == mv[0]
        wk, keyk = (w0, key0) if same else (full, None)
        linked = keyk == key0 and wk > 0
        steps.append(Step(weight, wk, mv[k], linked))
        steps.append(Step((outer[0].bound - 1) * weight, w0, mv[0], keyk == key0 and w0 > 0))
    return steps


def walk_fills(ext: tuple[int, ...], outer: list[Loop], ranks: Ranks) -> int:
    """Words one instance of a level receives over the run: Timeloop's summed temporal deltas."""
    return sum(s.weight * s.words for s in walk_steps(ext, outer, ranks))


def group_histogram(loops: list[Loop], ranks: Ranks) -> dict[int, int]:
    """Multicast groups of one spatial fan-out for one tensor: {group size: number of groups}.

    Instances whose spatial offsets project to the same tensor coordinates receive equal deltas
    and share one parent read (Timeloop's `ComputeAccurateMulticastedAccesses`); overlapping but
    unequal windows get no credit.  Every dim feeds at most one rank, so the groups are the
    product of each rank's own groups, times the instances along dims no rank sees."""
    if not loops:
        return {1: 1}
    hist: dict[int, int] = {1: 1}
    seen: set[int] = set()
    for rank in ranks:
        dims = {d: c for d, c in rank}
        mine = [lp for lp in loops if lp.dim in dims]
        seen.update(dims)
        if not mine:
            continue
        counts: Counter[int] = Counter()
        for idx in product(*(range(lp.bound) for lp in mine)):
            counts[sum(i * lp.stride * dims[lp.dim] for i, lp in zip(idx, mine))] += 1
        per_rank = Counter(counts.values())
        merged: Counter[int] = Counter()
        for m1, g1 in hist.items():
            for m2, g2 in per_rank.items():
                merged[m1 * m2] += g1 * g2
        hist = dict(merged)
    blind = math.prod(lp.bound for lp in loops if lp.dim not in seen)
    return {m * blind: g for m, g in hist.items()}
