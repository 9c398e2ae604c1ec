"""Decode choice vectors into designs, a whole batch at a time.

DAS samples thousands of designs per second, so decoding works on arrays of shape
[B, ...] (numpy, int64) and only `DesignBatch.to_design` builds an IR graph, for the one
design a report or back-end needs.  Decoding is total: every choice vector gives a design.
Picks that repeat a dim in a loop order move to the next free dim; loop sizes larger than
what remains are clamped; tiles that overflow the chunk's buffers are moved outward one
halving at a time (`_fit`), and a design whose smallest tiles still overflow is marked
infeasible.
"""

from __future__ import annotations

import functools

import numpy as np

from dnac.compiler.cost import fpga_buffers
from dnac.compiler.das.batch import F_DRAM, F_GB, F_RF, F_SPATIAL, NOCS, DesignBatch, LayerTable
from dnac.compiler.das.space import UNROLL_CHOICES, UNROLL_DIMS, DesignSpace
from dnac.compiler.ir.footprint import RELEVANT, footprints
from dnac.compiler.vocab import DIMS, Dim

#: NOC_MASK[n, j]: UNROLL_DIMS[j] is parallel in NoC style NOCS[n].
NOC_MASK = np.array([[d in noc.dims for d in UNROLL_DIMS] for noc in NOCS], dtype=bool)
_UNROLL_VALUES = [np.asarray(UNROLL_CHOICES[d], dtype=np.int64) for d in UNROLL_DIMS]
_UNROLL_AXIS = np.array([DIMS.index(d) for d in UNROLL_DIMS])
_RELEVANT = np.array([[d in RELEVANT[t] for d in DIMS] for t in "WIO"], dtype=bool)  # [3, 7]
_MAX_FIT_STEPS = 96


def _orders(picks: np.ndarray) -> np.ndarray:
    """n picks without replacement: a repeated pick moves on to the next free dim."""
    n = picks.shape[-1]
    taken = np.zeros(picks.shape[:-1] + (n,), dtype=bool)
    out = np.empty_like(picks)
    for j in range(n):
        c = picks[..., j] % n
        for _ in range(n):
            hit = np.take_along_axis(taken, c[..., None], axis=-1)[..., 0]
            c = np.where(hit, (c + 1) % n, c)
        out[..., j] = c
        np.put_along_axis(taken, c[..., None], True, axis=-1)
    return out


def _clamp_candidate(cand: np.ndarray, idx: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """cand[idx], or the largest candidate <= limit if that is smaller (cand sorted ascending)."""
    chosen = np.take_along_axis(cand, idx[..., None], axis=-1)[..., 0]
    fits = (cand <= limit[..., None]).sum(-1) - 1
    best = np.take_along_axis(cand, np.maximum(fits, 0)[..., None], axis=-1)[..., 0]
    return np.minimum(chosen, best)


def slots(space: DesignSpace, ch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([B] arch, [B, L] chunk slot of every compute layer) of choice vectors `ch`."""
    arch = ch[:, space.i_arch]
    n_chunks = ch[:, space.i_nchunks] + 1  # [B, G]
    first = np.array([g.first_slot for g in space.groups], dtype=np.int64)
    grp = space.layer_group
    slot = first[grp][None, :] + ch[:, space.i_assign] % n_chunks[:, grp]
    return arch, np.where(arch[:, None] == 1, space.multi_slot[None, :], slot)


def unrolls(space: DesignSpace, ch: np.ndarray) -> np.ndarray:
    """[B, S, 7] PE-array parallelism of every slot (1 for dims outside its NoC style)."""
    noc = ch[:, space.i_noc]
    unroll = np.ones((ch.shape[0], space.n_slots, len(DIMS)), dtype=np.int64)
    for j, values in enumerate(_UNROLL_VALUES):
        u = values[ch[:, space.i_unroll[:, j]]]
        unroll[:, :, _UNROLL_AXIS[j]] = np.where(NOC_MASK[noc, j], u, 1)
    return unroll


@functools.cache
def _divisors(m: int) -> np.ndarray:
    return np.array([d for d in range(1, m + 1) if m % d == 0], dtype=np.int64)


def _largest_divisor(m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Elementwise the largest divisor of `m` that is at most `x` (x >= 1)."""
    out = np.ones_like(x)
    for mi in np.unique(m):
        at = m == mi
        div = _divisors(int(mi))
        out[at] = div[np.searchsorted(div, x[at], side="right") - 1]
    return out


def _align_groups(f: np.ndarray, layer: np.ndarray, table: LayerTable) -> None:
    """Shrink the K loop sizes of grouped (not depthwise) layers, rows `f` [N, 4, 7], so that a
    GB tile's K extent divides K / groups: no tile spans two groups, so all K lanes of the PE
    array read one group's input channels (`fpga_buffers`).  In place; only shrinks."""
    rows = np.nonzero(table.grouped[layer])[0]
    if rows.size == 0:
        return
    kg = table.k_per_group[layer[rows]]
    k = DIMS.index(Dim.K)
    left = kg
    for axis in (F_SPATIAL, F_RF, F_GB):
        f[rows, axis, k] = _largest_divisor(left, f[rows, axis, k])
        left = left // f[rows, axis, k]


def remaining(space: DesignSpace, slot: np.ndarray, unroll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([B, L, 7] spatial loop sizes, [B, L, 7] what remains of each bound for the temporal
    loops): a layer uses as much of its chunk's array as its bounds allow (a grouped layer's
    K lanes as many as divide its group, see `_align_groups`)."""
    bounds = space.table.bounds[None]
    sp = np.minimum(np.take_along_axis(unroll, slot[:, :, None], axis=1), bounds)
    if space.banked and space.table.grouped.any():
        k = DIMS.index(Dim.K)
        g = np.broadcast_to(space.table.grouped[None], sp.shape[:2])
        sp[:, :, k] = np.where(g, _largest_divisor(np.broadcast_to(space.table.k_per_group[None], g.shape).copy(),
                                                   sp[:, :, k].copy()), sp[:, :, k])
    return sp, -(-bounds // sp)


def decode(space: DesignSpace, choices: np.ndarray) -> DesignBatch:
    """Decode a [B, n_knobs] array of choice indices (taken modulo each knob's choice count)."""
    ch = np.asarray(choices, dtype=np.int64) % space.n_choices
    B = ch.shape[0]
    arch, slot = slots(space, ch)
    noc = ch[:, space.i_noc]
    unroll = unrolls(space, ch)
    order = _orders(ch[:, space.i_order])
    bits = space.slot_bits
    word_bits = bits.max(axis=1)  # [S] one word holds the widest operand
    gb_total = np.asarray(space.gb_kib, dtype=np.int64)[ch[:, space.i_buf[:, 0]]] * 8192 // word_bits[None, :]
    gb = DesignSpace.split_words(gb_total, ch[:, space.i_buf[:, 1]])
    rf = DesignSpace.split_words(np.asarray(space.rf_words, dtype=np.int64)[ch[:, space.i_buf[:, 2]]], ch[:, space.i_buf[:, 3]])
    # per-layer loop sizes: spatial as the chunk allows, then RF and GB among what remains
    sp, rem = remaining(space, slot, unroll)
    cand = np.broadcast_to(space.cand[None], (B,) + space.cand.shape)
    rf_f = _clamp_candidate(cand, ch[:, space.i_rf], rem)
    gb_f = _clamp_candidate(cand, ch[:, space.i_gb], -(-rem // rf_f))
    factors = np.stack([np.ones_like(sp), gb_f, sp, rf_f], axis=2)  # DRAM filled in by _fit
    gb_cap = np.take_along_axis(gb, slot[:, :, None], axis=1)
    banked = None
    if space.banked:  # FPGA: tiles go into the banks of `fpga_buffers`, capacities per bank
        lay_unroll = np.take_along_axis(unroll, slot[:, :, None], axis=1)
        gb_cap = fpga_buffers.depths(gb_cap, fpga_buffers.banks(lay_unroll, space.table.depthwise[None]))
        banked = lay_unroll.reshape(-1, len(DIMS))
    fits = _fit(
        factors, space.table.bounds[None], gb_cap, np.take_along_axis(rf, slot[:, :, None], axis=1),
        space.table, banked,
    )
    dram_order = np.take_along_axis(order[:, :, 0], slot[:, :, None], axis=1)  # [B, L, 7]
    _grow(factors, dram_order, space.table.bounds[None], gb_cap, space, fits, banked)
    return DesignBatch(space.table, space.workload, arch, slot, noc, unroll, order, gb, rf, bits, factors, fits)


def _fit(factors: np.ndarray, bounds: np.ndarray, gb_cap: np.ndarray, rf_cap: np.ndarray,
         table: LayerTable, banked: np.ndarray | None) -> np.ndarray:
    """Move loop sizes outward until every tile fits its buffer; set the DRAM sizes. In place.

    Each step takes one action per overflowing layer, the first that applies: divide the largest
    RF loop size among the dims of a tensor that overflows the RF; else the largest GB, then RF,
    then spatial loop size among the dims of a tensor that overflows the GB.  The divisor is
    the worst overflow ratio (at least 2), and shrinking an RF size hands its share to the GB,
    so tiles shrink about as much as needed.  Only the layers still overflowing are revisited.
    With `banked` ([B * L, 7] PE arrays, FPGA) the GB capacities are words per bank and tiles are
    measured as `fpga_buffers.bank_need`.  Returns [B] whether every layer of each design fits.
    """
    stride, depthwise = table.stride, table.depthwise
    B, L = factors.shape[:2]
    f = np.ascontiguousarray(factors).reshape(B * L, 4, len(DIMS)).copy()  # rows: (design, layer) pairs
    layer = np.tile(np.arange(L), B)
    gb_c, rf_c = gb_cap.reshape(B * L, 3), rf_cap.reshape(B * L, 3)
    rel = np.broadcast_to(_RELEVANT, (L, 3, len(DIMS))).copy()
    rel[depthwise, 1, DIMS.index(Dim.K)] = True  # depthwise inputs follow the output channel
    actions = ((F_RF, "rf"), (F_GB, "gb"), (F_RF, "gb"), (F_SPATIAL, "gb"))
    rows = np.arange(B * L)
    for _ in range(_MAX_FIT_STEPS):
        rf_ratio, gb_ratio = _overflow(f[rows], layer[rows], gb_c[rows], rf_c[rows], stride, depthwise,
                                       None if banked is None else banked[rows])
        rf_over, gb_over = rf_ratio > 1, gb_ratio > 1
        bad = rf_over.any(-1) | gb_over.any(-1)
        rows, rf_over, gb_over = rows[bad], rf_over[bad], gb_over[bad]
        if rows.size == 0:
            break
        rf_bad = rf_over.any(-1)
        # how much the worst tile must shrink, at the level being fixed
        shrink = np.ceil(np.where(rf_bad, rf_ratio[bad].max(-1), gb_ratio[bad].max(-1))).astype(np.int64)
        over = {"rf": rf_over, "gb": gb_over & ~rf_bad[:, None]}
        r_rel = rel[layer[rows]]  # [N, 3, 7]
        pending = np.ones(rows.size, dtype=bool)
        for axis, level in actions:
            dims = (over[level][:, :, None] & r_rel).any(1)  # [N, 7]
            sizes = f[rows, axis]
            score = np.where(dims & (sizes > 1), sizes, 0)
            act = pending & (score.max(-1) > 0)
            if not act.any():
                continue
            pending &= ~act
            r, d = rows[act], score[act].argmax(-1)
            old = f[r, axis, d]
            new = -(-old // np.clip(shrink[act], 2, old))
            f[r, axis, d] = new
            if axis == F_RF:  # the RF's share moves up to the GB
                rem = -(-bounds[0, layer[r], d] // f[r, F_SPATIAL, d])
                f[r, F_GB, d] = np.minimum(f[r, F_GB, d] * -(-old // new), -(-rem // new))
        rows = rows[~pending]  # layers with nothing left to shrink stay as they are
    if banked is not None:
        _align_groups(f, layer, table)
    factors[...] = f.reshape(factors.shape)
    rem = -(-bounds // factors[:, :, F_SPATIAL])
    factors[:, :, F_GB] = np.minimum(factors[:, :, F_GB], -(-rem // factors[:, :, F_RF]))
    factors[:, :, F_DRAM] = -(-rem // (factors[:, :, F_RF] * factors[:, :, F_GB]))
    f = factors.reshape(B * L, 4, len(DIMS))
    rf_ratio, gb_ratio = _overflow(f, layer, gb_c, rf_c, stride, depthwise, banked)
    return ~((rf_ratio > 1).any(-1) | (gb_ratio > 1).any(-1)).reshape(B, L).any(-1)


def _overflow(f: np.ndarray, layer: np.ndarray, gb_cap: np.ndarray, rf_cap: np.ndarray, stride: np.ndarray,
              depthwise: np.ndarray, banked: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """[N, 3] ratios of each tensor's tile (rows `f` [N, 4, 7]) to its RF / GB words (per bank
    when `banked` gives the rows' PE arrays)."""
    rf_e = f[:, F_RF]
    st, dw = stride[layer], depthwise[layer]
    rf_fp = np.stack(footprints(rf_e, st, dw), axis=-1)
    return rf_fp / rf_cap, _gb_need(f[:, F_GB], f[:, F_SPATIAL], rf_e, st, dw, banked) / gb_cap


def _gb_need(f_gb: np.ndarray, sp: np.ndarray, f_rf: np.ndarray, stride: np.ndarray, dw: np.ndarray,
             banked: np.ndarray | None) -> np.ndarray:
    """[..., 3] what a GB tile takes of each buffer: its footprint, or its fullest bank."""
    if banked is None:
        return np.stack(footprints(f_gb * sp * f_rf, stride, dw), axis=-1)
    return fpga_buffers.bank_need(f_gb, sp, f_rf, banked, stride, dw)


def _dram_traffic(f_dram: np.ndarray, extent: np.ndarray, order: np.ndarray, rel: np.ndarray,
                  stride: np.ndarray, depthwise: np.ndarray) -> np.ndarray:
    """[N] an estimate of a layer's DRAM words: each tensor's GB tile, fetched again at every
    iteration of the DRAM loops outside (and including) the innermost DRAM loop that indexes it
    (Timeloop's temporal reuse without its sliding-window and first-read refinements)."""
    fp = footprints(extent, stride, depthwise)
    fo = np.take_along_axis(f_dram, order, axis=-1)  # DRAM loop trip counts, outermost first
    cum = np.cumprod(fo, axis=-1)
    total = np.zeros(f_dram.shape[0])
    for t, words in enumerate(fp):
        r = np.take_along_axis(rel[:, t], order, axis=-1) & (fo > 1)
        last = r.shape[-1] - 1 - np.argmax(r[:, ::-1], axis=-1)
        mult = np.where(r.any(-1), np.take_along_axis(cum, last[:, None], axis=-1)[:, 0], 1)
        total += words * mult * (2 if t == 2 else 1)  # outputs are written and, when split, read back
    return total


def _grow(factors: np.ndarray, dram_order: np.ndarray, bounds: np.ndarray, gb_cap: np.ndarray,
          space: DesignSpace, fits: np.ndarray, banked: np.ndarray | None) -> None:
    """Grow GB tiles into the room their buffers leave, in place.

    A chunk's buffer sizes are knobs; a layer on it should use them.  Starting from the sampled
    (and fitted) loop sizes, each step moves one dim's DRAM loop into the GB (its GB size to the
    next candidate) where that lowers the estimated DRAM traffic most and the tiles still fit,
    until no step helps.  Search thus explores buffer sizes and orders, and every design it
    sees makes good use of what it built."""
    B, L = factors.shape[:2]
    n = B * L
    f = factors.reshape(n, 4, len(DIMS))
    layer = np.tile(np.arange(L), B)
    stride, dw = space.table.stride[layer], space.table.depthwise[layer]
    grouped, kg, k = space.table.grouped[layer], space.table.k_per_group[layer], DIMS.index(Dim.K)
    rel = np.broadcast_to(_RELEVANT, (n, 3, len(DIMS))).copy()
    rel[dw, 1, DIMS.index(Dim.K)] = True
    cap = gb_cap.reshape(n, 3)
    order = dram_order.reshape(n, len(DIMS))
    rem = -(-bounds[0, layer] // f[:, F_SPATIAL])
    rows = np.nonzero(np.repeat(fits, L))[0]
    eye = np.eye(len(DIMS), dtype=bool)[None]
    for _ in range(_MAX_FIT_STEPS):
        if rows.size == 0:
            break
        fr = f[rows]
        inner = fr[:, F_RF] * fr[:, F_SPATIAL]
        # every dim's next GB size at once: [N, 7 (dim grown), 7 (dim)]
        nxt = np.minimum(space.next_candidate(layer[rows], fr[:, F_GB]), -(-rem[rows] // fr[:, F_RF]))  # [N, 7]
        gb_f = np.where(eye, nxt[:, :, None], fr[:, None, F_GB])  # row d: dim d grown
        ext = inner[:, None] * gb_f
        need = _gb_need(gb_f, fr[:, None, F_SPATIAL], fr[:, None, F_RF], stride[rows][:, None], dw[rows][:, None],
                        None if banked is None else banked[rows][:, None])
        ok = (nxt > fr[:, F_GB]) & (need <= cap[rows][:, None]).all(-1)
        if banked is not None and grouped[rows].any():  # K tiles of grouped layers divide the group
            t_k = inner[:, k] * nxt[:, k]
            ok[:, k] &= ~grouped[rows] | (kg[rows] % t_k == 0)
        # the traffic only of the (row, dim) moves that fit: most rows' buffers fill up early
        live = ok.any(-1)
        rows, fr, ok, nxt, gb_f, ext, inner = (x[live] for x in (rows, fr, ok, nxt, gb_f, ext, inner))
        if rows.size == 0:
            break
        current = _dram_traffic(fr[:, F_DRAM], inner * fr[:, F_GB], order[rows], rel[rows], stride[rows], dw[rows])
        ri, di = np.nonzero(ok)
        r_all = rows[ri]
        f_dram = -(-rem[r_all] // (fr[ri, F_RF] * gb_f[ri, di]))
        after = _dram_traffic(f_dram, ext[ri, di], order[r_all], rel[r_all], stride[r_all], dw[r_all])
        gain = np.zeros(ok.shape)
        gain[ri, di] = current[ri] - after
        n_r = rows.size
        pick = gain.argmax(-1)
        moved = gain[np.arange(n_r), pick] > 0
        r, d = rows[moved], pick[moved]
        f[r, F_GB, d] = nxt[moved, d]
        f[r, F_DRAM, d] = -(-rem[r, d] // (f[r, F_RF, d] * f[r, F_GB, d]))
        rows = r
    factors[...] = f.reshape(factors.shape)
