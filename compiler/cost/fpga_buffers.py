"""The on-chip buffers and DSP48s of an FPGA engine, described once for the cost model and the
HLS back-end.

A chunk's engine keeps one global-buffer (GB) partition per tensor, W, I and O, as the IR gives
them (`Chunk.gb`, in words).  Each is an array `[2][banks][depth]`: two copies (ping-pong: the
next tile loads into one while the PE array computes on the other, the overlap the cycle model
assumes) of `banks` memories that the PE array reads in the same cycle, each `depth` words of
the tensor's width.  `banks` comes from the PE array alone and `depth = ceil(words / banks)`, so
nothing depends on the layers that run on the chunk; a layer's tile is runtime data placed in
those fixed banks.  The cost model (`cost.fpga`) counts BRAM18K from these arrays, DAS decodes
tiles into them (`bank_need`), and the back-end declares exactly them and counts what it
declared (`hls_resources`): one description, so the three cannot drift.

Banking, and why no two PEs read one bank in the same cycle.  A dim `d` of a GB tile is the
nest `(g * sp + s) * rf + r` (GB loop g, spatial lane s < sp <= unroll, RF loop r).  The bank
coordinate of an element along `d` is its lane `s` and its address the rest, `g * rf + r`:

  W   banks (sK, sC, sR, sS): each PE reads its own weight; PEs that differ only in P or Q read
      the same word (one read, broadcast).
  O   banks (sK, sP, sQ): each output lane updates its own accumulator word.
  I   channel banks by sC (by sK on a depthwise chunk, whose input channel is the output
      channel); rows and columns are the hard case, because neighbouring output rows share
      input rows (the halo) and a stride spreads them.  Rows are banked *block-cyclically*:
      row h lies in bank `(h // B) % sp` at address `(h // (B * sp)) * B + h % B`, with block
      `B = rf_P * stride` when P is unrolled and `B = rf_R` when R is (the NoC styles never
      unroll both; columns likewise with Q / S).  In one cycle lane s reads row `X + s * B` for
      a lane-independent X, so it hits block `X // B + s` and bank `(X // B + s) % sp`: sp
      consecutive blocks, sp different banks, for any stride, kernel, RF tile or halo.  The
      engine reads each bank once at its own address and rotates the values to the lanes.
      A grouped (not depthwise) layer keeps its K tiles inside one group (`tK | K / groups`),
      so all K lanes read the same input words.

The price of the halo is that a bank's rows are counted per block: `bank_need` is the exact
number of words the fullest bank of a tile holds, and a tile fits when that is at most `depth`.
Banks of at most `LUTRAM_MAX_BITS` bits are LUTRAM (one LUT6 per 64 bits, UG474 "Distributed
RAM"), the rest BRAM18K in the fewest simple-dual-port aspect ratios (UG473): one read port for
the PE array and one write port for the loader / the accumulator write-back.

Works on numpy arrays (the batched model) and on Python ints (the back-end) alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dnac.compiler.targets import FpgaTarget
from dnac.compiler.vocab import DIMS, TENSORS, Dim, OpKind
from dnac.compiler.workload.layer import Layer

_N, _K, _C, _R, _S, _P, _Q = (DIMS.index(d) for d in (Dim.N, Dim.K, Dim.C, Dim.R, Dim.S, Dim.P, Dim.Q))

#: Copies of every GB buffer: ping-pong.
COPIES = 2
#: A bank of at most this many bits is built from LUTRAM instead of a BRAM18K.
LUTRAM_MAX_BITS = 1024
#: Bits of one LUT6 used as distributed RAM (64 x 1).
LUTRAM_BITS_PER_LUT = 64


def banks(unroll: Any, depthwise: Any) -> Any:
    """[..., 3] banks of the W, I and O buffers of PE arrays `unroll[..., 7]`."""
    u = np.asarray(unroll)
    ch = np.where(depthwise, u[..., _K], u[..., _C])
    return np.stack([
        u[..., _K] * u[..., _C] * u[..., _R] * u[..., _S],
        ch * u[..., _P] * u[..., _R] * u[..., _Q] * u[..., _S],
        u[..., _K] * u[..., _P] * u[..., _Q],
    ], axis=-1)


def depths(words: Any, n_banks: Any) -> Any:
    """[..., 3] words per bank: the GB partition spread over its banks (rounded up)."""
    return -(-np.asarray(words) // np.maximum(n_banks, 1))


def block_extent(extent: Any, block: Any, cycle: Any) -> Any:
    """Addresses the fullest bank needs for rows 0..extent-1 banked block-cyclically
    (block `block`, `cycle` banks): whole super-blocks, then bank 0's share of the rest."""
    q, rem = np.divmod(np.asarray(extent) - 1, block * cycle)
    return q * block + np.minimum(block, rem + 1)


def _axis(f_gb: Any, sp: Any, f_rf: Any, unroll: Any, stride: Any, out: int, red: int) -> Any:
    """Per-bank input extent along one spatial axis (rows: P/R, columns: Q/S)."""
    t_out = f_gb[..., out] * sp[..., out] * f_rf[..., out]
    t_red = f_gb[..., red] * sp[..., red] * f_rf[..., red]
    extent = (t_out - 1) * stride + t_red
    by_out = unroll[..., out] > 1
    by_red = ~by_out & (unroll[..., red] > 1)
    block = np.where(by_out, f_rf[..., out] * stride, np.where(by_red, f_rf[..., red], 1))
    cycle = np.where(by_out, sp[..., out], np.where(by_red, sp[..., red], 1))
    return block_extent(extent, block, cycle)


def bank_need(f_gb: Any, sp: Any, f_rf: Any, unroll: Any, stride: Any, depthwise: Any) -> Any:
    """[..., 3] words the fullest bank of each buffer holds for a GB tile (loop sizes `f_gb`,
    `sp`, `f_rf` [..., 7] on a PE array `unroll` [..., 7]; `stride` [..., 2])."""
    f_gb, sp, f_rf, unroll, stride = (np.asarray(x) for x in (f_gb, sp, f_rf, unroll, stride))
    a = f_gb * f_rf  # addresses per dim of a lane-banked dim
    a_n = a[..., _N] * sp[..., _N]
    w = a[..., _K] * a[..., _C] * a[..., _R] * a[..., _S]
    o = a_n * a[..., _K] * a[..., _P] * a[..., _Q]
    ch = np.where(depthwise, a[..., _K], a[..., _C])
    rows = _axis(f_gb, sp, f_rf, unroll, stride[..., 0], _P, _R)
    cols = _axis(f_gb, sp, f_rf, unroll, stride[..., 1], _Q, _S)
    return np.stack([w, a_n * ch * rows * cols, o], axis=-1)


def acc_bits(layer: Layer) -> int:
    """Accumulator width of a layer: no sum of its products (plus bias) overflows, signed.  A
    bias is bounded by 2^(w+a-3) (random data) or by the trained network's own (`bias_bound`).
    An add sums its inputs, each `a_bits` wide."""
    if layer.op is OpKind.ADD:
        return (len(layer.inputs) << (layer.a_bits - 1)).bit_length() + 1
    bound = layer.c_per_group * layer.R * layer.S * (1 << (layer.w_bits - 1)) * (1 << (layer.a_bits - 1))
    bound += max(1 << (layer.w_bits + layer.a_bits - 3), layer.bias_bound) if layer.bias else 0
    return bound.bit_length() + 1


def bram18k(depth: Any, width: Any, target: FpgaTarget) -> Any:
    """BRAM18K of one bank of `depth` x `width` bits (0 for LUTRAM banks)."""
    depth, width = np.asarray(depth), np.asarray(width)
    best = None
    for w, d in target.bram18k_sdp:
        n = -(-width // w) * -(-depth // d)
        best = n if best is None else np.minimum(best, n)
    return np.where((depth * width <= LUTRAM_MAX_BITS) | (depth <= 0), 0, best)


def lutram_luts(depth: Any, width: Any) -> Any:
    """LUTs of one bank built as distributed RAM (0 for BRAM banks)."""
    bits = np.asarray(depth) * np.asarray(width)
    return np.where((bits <= LUTRAM_MAX_BITS) & (bits > 0), -(-bits // LUTRAM_BITS_PER_LUT), 0)


@dataclass(frozen=True)
class Buffer:
    """One GB buffer of an engine as the HLS declares it: `COPIES x banks x depth` words."""

    tensor: str  # "W", "I" or "O"
    banks: int
    depth: int  # words per bank
    width: int  # bits per word
    words: int  # the IR's GB partition it implements

    @property
    def lutram(self) -> bool:
        return self.depth * self.width <= LUTRAM_MAX_BITS

    def bram18k(self, target: FpgaTarget) -> int:
        return COPIES * self.banks * int(bram18k(self.depth, self.width, target))

    def luts(self) -> int:
        return COPIES * self.banks * int(lutram_luts(self.depth, self.width))


def chunk_buffers(unroll: dict[Dim, int], gb_words: tuple[int, int, int], widths: tuple[int, int, int],
                  depthwise: bool) -> list[Buffer]:
    """The W, I and O buffers of one engine (the scalar form of `banks` / `depths`)."""
    u = np.array([unroll.get(d, 1) for d in DIMS])
    nb = banks(u, depthwise)
    dp = depths(np.array(gb_words), nb)
    return [Buffer(t, int(nb[i]), int(dp[i]), int(widths[i]), int(gb_words[i])) for i, t in enumerate(TENSORS)]


def dsps(unroll: Any, per_mac: Any, depthwise: Any, packed_macs: int) -> Any:
    """DSP48 slices of PE arrays `unroll[..., 7]` whose MACs cost `per_mac` DSPs each.

    Packed MACs (`0 < per_mac < 1`: two narrow multiplies in one DSP48, WP486) must share an
    operand: the engine packs pairs of K lanes, which read the same input, so a K unroll of u
    costs ceil(u / 2) DSPs per column of the array.  A depthwise engine's K lanes read different
    inputs and different weights: it packs nothing, one DSP per MAC."""
    u = np.asarray(unroll)
    per_mac = np.asarray(per_mac, dtype=np.float64)
    pes = u.prod(axis=-1)
    packed = (per_mac > 0) & (per_mac < 1)
    pairs = -(-u[..., _K] // packed_macs) * (pes // u[..., _K])
    return np.where(packed, np.where(depthwise, pes, pairs), np.ceil(pes * per_mac)).astype(np.int64)


def packs(w_bits: int, a_bits: int, depthwise: bool, target: FpgaTarget) -> bool:
    """Whether an engine of these widths packs two K lanes' MACs into one DSP (see `dsps`)."""
    return 0 < target.dsp_per_mac(w_bits, a_bits) < 1 and not depthwise


def dsp_count(unroll: dict[Dim, int], w_bits: int, a_bits: int, depthwise: bool, target: FpgaTarget) -> int:
    """DSP48 slices of one engine (the scalar form of `dsps`)."""
    u = np.array([unroll.get(d, 1) for d in DIMS])
    return int(dsps(u, target.dsp_per_mac(w_bits, a_bits), depthwise, target.packed_macs_per_dsp))
