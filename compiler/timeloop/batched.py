"""Timeloop v3.0.3 semantics for dnac's canonical hierarchy, vectorized in torch over B designs.

Hierarchy: DRAM (keeps all, unbounded) -> GB (keeps all, one capacity per tensor) -> spatial fan-out
over the PE array -> RF per PE (keeps all, one capacity per tensor) -> MAC.  Every count, cycle and
energy equals what `model.evaluate` (the scalar, exact model) returns for the same nest; the
derivations are in `tiles.py` and `model.py`.  What makes the canonical case cheap:

* nothing is bypassed, so Timeloop's bypass masking never rescales anything;
* the RF serves one access per MAC per cycle; the GB serves the RF's fills once per multicast
  group; DRAM serves the GB's fills.  Fills come from the walk of `tiles.walk_fills`, run here
  for all designs at once (the RF's walk over the GB then DRAM loops, the GB's over the DRAM
  loops; unit loops are moved out of the way).  Weights and outputs need no direction state
  (closed form); the inputs' DP collapses from 5 states to 2 entry classes (see `_walk`);
* multicast groups are uniform for weights and outputs (each of their ranks is one dim); only the
  sliding-window ranks of the inputs can collide unevenly (spatial R with P, or S with Q), and
  their multiplicity histograms have a closed form (`_window_hist`).

Loop geometry (strides, window shifts) is computed in int32, counts in int64 and energies in
float64; op-space extents must stay below 2**31 / (stride x dilation), far above any layer.

Tensor layouts (dnac's orders): dims N,K,C,R,S,P,Q (K is Timeloop's M); levels DRAM, GB, RF;
tensors W, I, O; `factors[:, 0..3]` are DRAM, GB, spatial, RF.  Non-dividing factors are fine:
the padded problem (the product of the factors) is what is evaluated, as dnac charges it.

Depthwise: the plain conv shape with C = 1 and the groups folded into K would let every output
channel share one input channel, i.e. credit input reuse and multicast across K that does not
exist.  So a design flagged `depthwise` re-projects the input-channel rank onto K (C must have
factor 1 everywhere): exactly Timeloop's `Depthwise-CNN-Layer` with G = K and C = M = 1, which is
how the tests check it against the scalar model.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

N_, K_, C_, R_, S_, P_, Q_ = range(7)


@dataclass(frozen=True)
class BatchStats:
    """Per design: counts per instance [B, level(DRAM, GB, RF), tensor(W, I, O)], and totals."""

    reads: torch.Tensor
    fills: torch.Tensor
    updates: torch.Tensor
    tile: torch.Tensor  # utilized capacity (words)
    partition: torch.Tensor
    instances: torch.Tensor  # [B, 3] utilized instances per level
    level_cycles: torch.Tensor  # [B, 3]
    slowdown: torch.Tensor  # [B, 3]
    level_energy_pJ: torch.Tensor  # [B, 3]
    compute_cycles: torch.Tensor  # [B]
    cycles: torch.Tensor
    macs: torch.Tensor  # padded MACs
    utilization: torch.Tensor
    energy_pJ: torch.Tensor
    fits: torch.Tensor  # [B] bool: GB and RF tiles within their per-tensor capacities
    valid: torch.Tensor  # fits, spatial factors within the mesh, factors cover the bounds


def _geometry(ext: torch.Tensor, co: torch.Tensor, ch_is_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Words per tensor [..., 3] and the inputs' window extents [..., 2] of tiles whose op-space
    extents are ext [B, X, 7]; co [B, 1, 4] = (dilation, stride) of the P/R then the Q/S axis."""
    e = ext.unbind(-1)
    win_w = (e[R_] - 1) * co[..., 0] + (e[P_] - 1) * co[..., 1] + 1
    win_h = (e[S_] - 1) * co[..., 2] + (e[Q_] - 1) * co[..., 3] + 1
    ch = torch.where(ch_is_k, e[K_], e[C_])
    words = torch.stack((e[K_] * e[C_] * e[R_] * e[S_], e[N_] * ch * win_w * win_h,
                         e[N_] * e[K_] * e[P_] * e[Q_]), -1)
    return words, torch.stack((win_w, win_h), -1)


def _walk(dim: torch.Tensor, n: torch.Tensor, stride: torch.Tensor, win: torch.Tensor, full: torch.Tensor,
          co: torch.Tensor, depthwise: torch.Tensor) -> torch.Tensor:
    """`tiles.walk_fills` for every design, walk and tensor -> fills [B,W,3].

    dim/n/stride [B,W,L] per loop position, innermost first, the loops with n > 1 first (n = 1
    positions are no-ops); win [B,W,2] the inputs' window extents and full [B,W,3] the words of
    each walk's tile; co [B,4] (dilation, stride) of the P/R then the Q/S axis.

    The closed form of `tiles.walk_steps`: the move of loop j (j steps 0 -> 1, the loops inside
    it return 1 -> 0) happens `(n_j - 1) prod_{i>j} n_i` times; the innermost loop's move M0
    costs its AAHR difference, any other costs the same when it equals M0 as a vector and the
    whole tile otherwise.  A rank indexed by one dim never slides (every stride above a tile is
    a multiple of the tile's extent along that dim), so only the inputs' two window ranks can
    cost a slab."""
    bsz, nw, npos = dim.shape
    real = n >= 2
    step = torch.where(real, stride, 0).long()
    one = torch.zeros(bsz, nw, npos, 7, dtype=torch.int64, device=dim.device)
    one.scatter_(-1, dim.long().unsqueeze(-1), step.unsqueeze(-1))
    disp = 2 * one - torch.cumsum(one, 2)  # +s_j on dim_j, -s_i on dim_i for every i < j
    e = disp.unbind(-1)
    c = co[:, None, None, :].long()
    dw = depthwise[:, None, None]
    w_vec = torch.stack((e[K_], e[C_], e[R_], e[S_]), -1)
    o_vec = torch.stack((e[N_], e[K_], e[P_], e[Q_]), -1)
    sw = c[..., 0] * e[R_] + c[..., 1] * e[P_]
    sh = c[..., 2] * e[S_] + c[..., 3] * e[Q_]
    i_vec = torch.stack((e[N_], torch.where(dw, e[K_], e[C_]), sw, sh), -1)
    vecs = torch.stack((w_vec, i_vec, o_vec), 3)  # [B,W,L,3,4]
    same = (vecs == vecs[:, :, :1]).all(-1)  # [B,W,L,3]
    moved0 = vecs[:, :, 0] != 0  # [B,W,3,4]
    c0 = torch.where(moved0.any(-1), full, 0)
    # The inputs' innermost move slides one window rank by less than the window: a slab.
    sw0, sh0 = sw[:, :, 0].abs(), sh[:, :, 0].abs()
    only_w = moved0[:, :, 1, 2] & ~moved0[:, :, 1, [0, 1, 3]].any(-1) & (sw0 < win[..., 0])
    only_h = moved0[:, :, 1, 3] & ~moved0[:, :, 1, [0, 1, 2]].any(-1) & (sh0 < win[..., 1])
    f_i = full[..., 1]
    c0_i = torch.where(only_w, sw0 * (f_i // win[..., 0]), torch.where(only_h, sh0 * (f_i // win[..., 1]), c0[..., 1]))
    c0 = torch.stack((c0[..., 0], c0_i, c0[..., 2]), -1)
    nl = n.long()
    after = torch.cumprod(nl.flip(2), dim=2).flip(2)
    after = torch.cat((after[:, :, 1:], torch.ones_like(after[:, :, :1])), 2)
    weight = ((nl - 1) * after).unsqueeze(-1)  # [B,W,L,1]
    cost = torch.where(same, c0.unsqueeze(2), full.unsqueeze(2))
    return full + (weight * cost).sum(2)


def _window_hist(n1: torch.Tensor, n2: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[B, M] histogram of one sliding-window rank's spatial multiplicities (index m-1): how many
    distinct values i*a + j*b (i < n1, j < n2) occur m times.

    Equal values form chains (i, j), (i + b', j - a'), ... with a' = a/g, b' = b/g, g = gcd(a, b);
    a value's multiplicity is its chain's length.  A chain starts where its predecessor leaves
    the box (i < b' or j + a' >= n2) and is 1 + min((n1-1-i) // b', j // a') long."""
    cap = int(torch.minimum(n1, n2).max().item())
    h = torch.zeros(n1.shape[0], max(cap, 1), dtype=torch.int64, device=n1.device)
    h[:, 0] = n1 * n2
    rows = torch.nonzero((n1 > 1) & (n2 > 1)).flatten()
    if rows.numel():
        m1, m2, aa, bb = n1[rows, None, None], n2[rows, None, None], a[rows, None, None], b[rows, None, None]
        g = torch.gcd(aa, bb)
        ap, bp = aa // g, bb // g
        i = torch.arange(int(m1.max().item()), device=n1.device)[None, :, None]
        j = torch.arange(int(m2.max().item()), device=n1.device)[None, None, :]
        start = (i < m1) & (j < m2) & ((i < bp) | (j + ap >= m2))
        length = 1 + torch.minimum((m1 - 1 - i) // bp, j // ap)
        sub = torch.zeros(rows.numel(), h.shape[1] + 1, dtype=torch.int64, device=n1.device)
        sub.scatter_add_(1, torch.where(start, length, 0).flatten(1), start.flatten(1).long())
        h[rows] = sub[:, 1:]
    return h


def _run_walks(dims: torch.Tensor, n: torch.Tensor, st: torch.Tensor, win: torch.Tensor, full: torch.Tensor,
               co: torch.Tensor, depthwise: torch.Tensor) -> torch.Tensor:
    """Fills [B, W, 3] of W walks given per loop position (innermost first) [B, W, L]."""
    # Unit loops change nothing anywhere: move them outermost and drop the positions no design uses.
    order = torch.argsort((n < 2).to(torch.int8), dim=-1, stable=True)
    used = max(int((n > 1).sum(-1).max().item()), 1)
    order = order[..., :used]
    dims, n, st = (x.gather(-1, order) for x in (dims, n, st))
    return _walk(dims, n, st, win.long(), full, co, depthwise)


def _gb_walk(dram_dims: torch.Tensor, dram_n: torch.Tensor, ext_gb: torch.Tensor, win: torch.Tensor,
             words: torch.Tensor, co: torch.Tensor, depthwise: torch.Tensor) -> torch.Tensor:
    """The GB's fills [B, 3] (= DRAM's reads): its tile (index 1 of `win`/`words`) walked over
    the DRAM loops (dims innermost first)."""
    return _run_walks(dram_dims[:, None], dram_n[:, None], ext_gb.gather(1, dram_dims)[:, None],
                      win[:, 1:2], words[:, 1:2], co, depthwise)[:, 0]


def _bc(x: torch.Tensor | float | tuple | None, shape: tuple[int, ...], default: float,
        dtype: torch.dtype = torch.int64, device: torch.device | None = None) -> torch.Tensor:
    """`x` (or `default` when None) broadcast to `shape`, whose first axis is the batch."""
    t = torch.as_tensor(default if x is None else x, dtype=dtype, device=device)
    return t.expand(shape) if t.dim() < len(shape) or t.shape[0] != shape[0] else t


def _setup(factors: torch.Tensor, strides: torch.Tensor | None, dilations: torch.Tensor | None,
           depthwise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(int64 factors, strides, dilations, depthwise) broadcast over the batch."""
    f = factors.to(torch.int64)
    bsz, dev = f.shape[0], f.device
    return (f, _bc(strides, (bsz, 2), 1, device=dev), _bc(dilations, (bsz, 2), 1, device=dev),
            _bc(depthwise, (bsz,), False, torch.bool, dev))


def dram_counts(factors: torch.Tensor, perms: torch.Tensor, *, strides: torch.Tensor | None = None,
                dilations: torch.Tensor | None = None,
                depthwise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, 3] DRAM reads, [B, 3] DRAM tile) per tensor (W, I, O): exactly `evaluate_batch`'s
    `reads[:, 0]` and `partition[:, 0]`, for a model that prices only off-chip traffic (the
    FPGA's).  DRAM reads are the GB's fills, so only the GB's walk over the DRAM loops runs --
    the RF's walk, the multicast analysis and the energies are skipped, which is most of the
    work."""
    f, strides, dilations, depthwise = _setup(factors, strides, dilations, depthwise)
    dram, gb, sp, rf = f.unbind(1)
    ext_gb = rf * sp * gb
    co = torch.stack((dilations[:, 0], strides[:, 0], dilations[:, 1], strides[:, 1]), 1)
    words, win = _geometry(torch.stack((ext_gb * dram, ext_gb), 1), co[:, None], depthwise[:, None])
    dram_dims = perms[:, 0].to(torch.int64).flip(-1)
    a_gb = _gb_walk(dram_dims, dram.gather(1, dram_dims), ext_gb, win, words, co, depthwise)
    part = words[:, 0]
    return torch.where(torch.tensor([False, False, True], device=f.device), a_gb - part, a_gb), part


def evaluate_batch(factors: torch.Tensor, perms: torch.Tensor, bounds: torch.Tensor | None = None, *,
                   strides: torch.Tensor | None = None, dilations: torch.Tensor | None = None,
                   depthwise: torch.Tensor | None = None, spatial_x: torch.Tensor | None = None,
                   mesh: torch.Tensor | tuple[int, int] = (16, 16),
                   gb_capacity: torch.Tensor | None = None, rf_capacity: torch.Tensor | None = None,
                   block_size: torch.Tensor | tuple[int, int, int] = (1, 1, 1),
                   energy: torch.Tensor | None = None, mac_pJ: torch.Tensor | float = 1.0,
                   bandwidth: torch.Tensor | None = None) -> BatchStats:
    """Evaluate B canonical nests at once.

    factors [B,4,7] (DRAM, GB, spatial, RF x N,K,C,R,S,P,Q); perms [B,3,7] outermost-first dim
    indices for DRAM, GB, RF (the RF order changes nothing: the MACs hold no data); bounds [B,7]
    only for the `valid` flag.  Optional, broadcast over B: strides/dilations [B,2] (P/R axis,
    Q/S axis), depthwise [B] bool, spatial_x [B,7] bool (dims unrolled along mesh X; default none),
    mesh [B,2] PE array (X, Y), gb_capacity/rf_capacity [B,3] words per tensor (default
    unbounded), block_size [B,3] words per vector access per level, energy [B,3,3,2] pJ per vector
    access (level, tensor, read/write), mac_pJ [B], bandwidth [B,3,3] words/cycle per instance
    (level x read/write/shared; inf = unlimited)."""
    f, strides, dilations, depthwise = _setup(factors, strides, dilations, depthwise)
    bsz, dev = f.shape[0], f.device

    def bc(x: torch.Tensor | float | tuple | None, shape: tuple[int, ...], default: float,
           dtype: torch.dtype = torch.int64) -> torch.Tensor:
        return _bc(x, shape, default, dtype, dev)

    dram, gb, sp, rf = f.unbind(1)
    perms = perms.to(torch.int64)

    # Tiles (op-space extents) and their words per tensor: DRAM, GB, RF and the GB's fan-out.
    ext_sp = rf * sp
    ext_gb = ext_sp * gb
    co = torch.stack((dilations[:, 0], strides[:, 0], dilations[:, 1], strides[:, 1]), 1)
    words, win = _geometry(torch.stack((ext_gb * dram, ext_gb, rf, ext_sp), 1), co[:, None], depthwise[:, None])
    tile, sp_tile = words[:, :3], words[:, 3]
    fan = sp.prod(-1)  # PEs used

    # The two walks, loop positions innermost first: the RF's over the GB loops then the DRAM
    # loops, the GB's over the DRAM loops (each run on its own: padding the shorter one to the
    # longer's positions would double its work).
    gb_dims, dram_dims = perms[:, 1].flip(-1), perms[:, 0].flip(-1)
    gb_n, dram_n = gb.gather(1, gb_dims), dram.gather(1, dram_dims)
    n_rf = torch.cat((gb_n, dram_n), 1)[:, None]
    a_rf = _run_walks(torch.cat((gb_dims, dram_dims), 1)[:, None], n_rf,
                      torch.cat((ext_sp.gather(1, gb_dims), ext_gb.gather(1, dram_dims)), 1)[:, None],
                      win[:, 2:3], tile[:, 2:3], co, depthwise)[:, 0]
    a_gb = _gb_walk(dram_dims, dram_n, ext_gb, win, tile, co, depthwise)

    # Multicast groups at the GB fan-out and the RF's share of the GB's reads.
    ch = torch.where(depthwise, sp[:, K_], sp[:, C_])
    hw = _window_hist(sp[:, R_], sp[:, P_], rf[:, R_] * dilations[:, 0], rf[:, P_] * strides[:, 0])
    hh = _window_hist(sp[:, S_], sp[:, Q_], rf[:, S_] * dilations[:, 1], rf[:, Q_] * strides[:, 1])
    groups = torch.stack((sp[:, K_] * sp[:, C_] * sp[:, R_] * sp[:, S_],
                          sp[:, N_] * ch * hw.sum(-1) * hh.sum(-1),
                          sp[:, N_] * sp[:, K_] * sp[:, P_] * sp[:, Q_]), 1)
    share_rf = a_rf  # sum of accesses x multicast / fan-out = each PE's own fills

    # Counts per level (all levels keep all tensors: no bypass masking).
    cycles = (dram * gb * rf).prod(-1)
    macs = f.prod(1).prod(-1)
    content = torch.stack((a_gb, a_rf * groups, cycles[:, None].expand(bsz, 3)), 1)  # [B,L,T]
    part_rf = tile[:, 0] * tile[:, 2] // torch.where((fan > 1)[:, None], sp_tile, tile[:, 2])
    part = torch.stack((tile[:, 0], tile[:, 0], part_rf), 1)
    share = torch.stack((torch.zeros_like(a_gb), a_gb, share_rf), 1)
    is_o = torch.tensor([False, False, True], device=dev)
    reads = torch.where(is_o, content - part, content)
    updates = torch.where(is_o, content, 0)
    fills = torch.where(is_o, share - part, share)
    fills[:, 0] = 0
    inst = torch.stack((torch.ones_like(fan), torch.ones_like(fan), fan), 1)

    # Energy and bandwidth, in the scalar model's order of float operations.
    blk = bc(block_size, (bsz, 3), 1)[:, :, None]
    en = bc(energy, (bsz, 3, 3, 2), 1.0, torch.float64)
    vec = ((reads + blk - 1) // blk) * en[..., 0] + ((fills + blk - 1) // blk) * en[..., 1] \
        + ((updates + blk - 1) // blk) * en[..., 1]
    level_energy = vec[:, :, 0] * inst + vec[:, :, 1] * inst + vec[:, :, 2] * inst
    cyc = cycles.double()[:, None]
    rd = reads[:, :, 0] / cyc + reads[:, :, 1] / cyc + reads[:, :, 2] / cyc
    wrc = fills + updates
    wr = wrc[:, :, 0] / cyc + wrc[:, :, 1] / cyc + wrc[:, :, 2] / cyc
    bw = bc(bandwidth, (bsz, 3, 3), math.inf, torch.float64)
    slow = torch.ones_like(rd)
    for lim, dem in ((bw[..., 0], rd), (bw[..., 1], wr), (bw[..., 2], rd + wr)):
        slow = torch.where(lim < dem, torch.minimum(slow, lim / dem), slow)
    level_cycles = torch.ceil(cyc / slow).to(torch.int64)
    total_cycles = torch.maximum(cycles, level_cycles.max(-1).values)
    mac_energy = macs * bc(mac_pJ, (bsz,), 1.0, torch.float64)
    energy_total = mac_energy + (level_energy[:, 0] + level_energy[:, 1] + level_energy[:, 2])
    meshv = bc(mesh, (bsz, 2), 1)

    # Validity: capacities, fan-out, coverage, depthwise C.
    cap_gb = bc(gb_capacity, (bsz, 3), torch.iinfo(torch.int64).max)
    cap_rf = bc(rf_capacity, (bsz, 3), torch.iinfo(torch.int64).max)
    fits = ((tile[:, 1] <= cap_gb) & (tile[:, 2] <= cap_rf)).all(-1)
    sx = bc(spatial_x, (bsz, 7), False, torch.bool)
    px = torch.where(sx, sp, 1).prod(-1)
    py = torch.where(sx, 1, sp).prod(-1)
    valid = fits & (px <= meshv[:, 0]) & (py <= meshv[:, 1])
    valid &= ~depthwise | (f[:, :, C_] == 1).all(-1)
    if bounds is not None:
        valid &= (f.prod(1) >= bounds.to(dev)).all(-1)
    utilization = macs.double() / (meshv[:, 0] * meshv[:, 1] * total_cycles).double()
    return BatchStats(reads, fills, updates, tile, part, inst, level_cycles, slow, level_energy, cycles,
                      total_cycles, macs, utilization, energy_total, fits, valid)


# ----------------------------------------------------------------------------- random nests, bench


#: A layer for the generator: (bounds N,K,C,R,S,P,Q; (stride P/R axis, stride Q/S axis); depthwise).
Layer = tuple[tuple[int, ...], tuple[int, int], bool]

#: VGG16's 13 convolutions at 224x224 (N=1, 3x3, stride 1).
VGG16: tuple[Layer, ...] = tuple(((1, k, c, 3, 3, p, p), (1, 1), False) for c, k, p in (
    (3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56),
    (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 28), (512, 512, 14), (512, 512, 14),
    (512, 512, 14)))


def random_canonical(batch: int, layers: tuple[Layer, ...] | list[Layer], seed: int = 0,
                     mesh: tuple[int, int] = (16, 16)) -> dict[str, torch.Tensor]:
    """Random canonical nests (keyword arguments of `evaluate_batch`): each dim's bound is dealt to
    spatial, RF, GB and DRAM, sometimes with a non-dividing factor (the problem is then padded);
    spatial factors stay within the mesh; loop orders are random."""
    import random

    rng = random.Random(seed)
    fac, perm, bnd, strd, dws, spx = [], [], [], [], [], []
    for _ in range(batch):
        bounds, stride, dw = rng.choice(list(layers))
        cap = list(mesh)
        f = [[1] * 7 for _ in range(4)]
        x = [False] * 7
        for d in rng.sample(range(7), 7):
            rest = bounds[d]
            axis = rng.randrange(2)
            if rest > 1 and cap[axis] > 1 and rng.random() < 0.5:
                fits = [v for v in range(2, min(rest, cap[axis]) + 1) if rest % v == 0]
                s = rng.choice(fits) if fits and rng.random() < 0.7 else rng.randint(2, min(rest, cap[axis]))
                cap[axis] //= s
                f[2][d], x[d], rest = s, axis == 0, -(-rest // s)
            for slot in (3, 1):
                divs = [v for v in range(1, rest + 1) if rest % v == 0]
                v = rng.randint(1, rest) if rng.random() < 0.2 else rng.choice(divs)
                f[slot][d], rest = v, -(-rest // v)
            f[0][d] = rest
        fac.append(f)
        perm.append([rng.sample(range(7), 7) for _ in range(3)])
        bnd.append(list(bounds))
        strd.append(list(stride))
        dws.append(dw)
        spx.append(x)
    return {"factors": torch.tensor(fac), "perms": torch.tensor(perm), "bounds": torch.tensor(bnd),
            "strides": torch.tensor(strd), "depthwise": torch.tensor(dws), "spatial_x": torch.tensor(spx),
            "mesh": torch.tensor([list(mesh)] * batch)}


def bench(batch: int = 1024, repeats: int = 5, threads: int = 2, seed: int = 0) -> float:
    """Layer-design evaluations per second for random canonical designs of VGG16's convolutions
    (evaluation only, best of `repeats`, on `threads` CPU threads)."""
    spec = random_canonical(batch, VGG16, seed)
    spec["gb_capacity"] = torch.full((batch, 3), 1 << 40)
    spec["rf_capacity"] = torch.full((batch, 3), 1 << 40)
    spec["energy"] = torch.rand(batch, 3, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    spec["bandwidth"] = torch.tensor([[math.inf] * 3, [64.0, 64.0, math.inf], [2.0, 2.0, math.inf]])
    spec["block_size"] = (4, 4, 1)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        evaluate_batch(**spec)  # warm-up
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            evaluate_batch(**spec)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(saved)
    return batch / best
