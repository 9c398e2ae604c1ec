"""The ZC706 (FPGA) cost model: cycles from tiles and DRAM traffic, DSP/BRAM/LUT/FF from the
PE arrays and buffers.

Per layer on its chunk (one MAC per PE per cycle, the innermost loops pipelined at II=1 and
flattened, DNNBuilder-style ping-pong buffers):

    compute   C = padded temporal iterations = prod over dims of the DRAM, GB and RF loop sizes
    traffic   bytes = DRAM reads of weights and inputs at their widths + outputs written once
              at the activation width + partial sums spilled and re-read at the accumulator width
              (counts from the Timeloop-semantics nest analysis of the canonical hierarchy)
    tiles     T = prod of the DRAM loop sizes; per tile c = C/T + pipeline depth, m = bytes/T/bw
    cycles    m + c + (T - 1) * max(c, m): the first tile's load, then loads overlapped with
              compute (double buffering), then the last tile's compute

Resources per chunk: DSP48 from the PE count and the precision rule of the target file
(16-bit: one MAC per DSP; 5-8-bit: pairs of K lanes packed into one DSP, `fpga_buffers.dsps`;
narrow MACs in LUTs); BRAM18K and
LUTRAM from the W / I / O buffers exactly as the HLS engine declares them (`fpga_buffers`:
ping-pong copies of as many banks as the PE array reads per cycle); LUT and FF from per-PE
accumulators and operand registers and per-chunk control.  The RF level of the mapping is a loop
level on the FPGA, not a memory: a PE's operands come from the GB banks every cycle.  A design
over any budget, or with a tile that does not fit its banks, is infeasible.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dnac.compiler.cost import fpga_buffers as buffers
from dnac.compiler.cost.base import AuxTable, BatchCost, roll_up
from dnac.compiler.das.batch import F_DRAM, F_GB, F_RF, F_SPATIAL, DesignBatch
from dnac.compiler.targets import FpgaTarget
from dnac.compiler.vocab import DIMS, Dim
from dnac.compiler.workload.layer import Workload

#: Accumulator width of partial sums spilled to DRAM (the on-chip O buffers hold each chunk's
#: own width, `fpga_buffers.acc_bits`).
ACC_BITS = 32
#: Pipeline depth of one engine: BRAM read (2) + DSP48E1 multiply-add (4, fully pipelined
#: AREG/MREG/PREG, UG479 ch. 2) + write-back (2), plus one adder stage per halving of a
#: spatial reduction (added per chunk).
PIPELINE_BASE = 8
#: Estimates of ours for the logic around each MAC: a 32-bit accumulator and operand registers
#: (FF), the accumulator's adder and a small mux (LUT); and per chunk the loop counters, address
#: generators and AXI bursts of an HLS engine.
FF_PER_PE = 2 * ACC_BITS
LUT_PER_PE = ACC_BITS + 8
LUT_PER_CHUNK = 2500
FF_PER_CHUNK = 3000

#: `slot_buffers`' result: [B, S, 3] banks, words per bank, bits per word.
Buffers = tuple[np.ndarray, np.ndarray, np.ndarray]

_K, _C, _R, _S, _P, _Q = (DIMS.index(d) for d in (Dim.K, Dim.C, Dim.R, Dim.S, Dim.P, Dim.Q))


def _t(x: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype, device=device)


def slot_acc_bits(batch: DesignBatch) -> np.ndarray:
    """[B, S] accumulator width of every slot: the widest its layers need (0 for unused slots)."""
    acc = np.zeros(batch.noc.shape, dtype=np.int64)
    rows = np.repeat(np.arange(batch.size), batch.slot.shape[1])
    np.maximum.at(acc, (rows, batch.slot.reshape(-1)), np.tile(batch.table.acc_bits, batch.size))
    return acc


def slot_buffers(batch: DesignBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """([B, S, 3] banks, [B, S, 3] words per bank, [B, S, 3] bits per word) of every slot's
    W / I / O buffers, as `fpga_buffers` describes them (and the HLS back-end declares them)."""
    n_banks = buffers.banks(batch.unroll, _depthwise_slots(batch).astype(bool))
    depth = buffers.depths(batch.gb, n_banks)
    width = np.stack([np.broadcast_to(batch.bits[None, :, 0], batch.noc.shape),
                      np.broadcast_to(batch.bits[None, :, 1], batch.noc.shape), slot_acc_bits(batch)], axis=-1)
    return n_banks, depth, width


def chunk_resources(batch: DesignBatch, target: FpgaTarget, device: torch.device,
                    bufs: Buffers | None = None) -> dict[str, torch.Tensor]:
    """[B, S] DSP, BRAM18K, LUT and FF of every chunk slot (unused slots cost nothing);
    `bufs`: `slot_buffers(batch)` if already computed."""
    used = _t(batch.used_slots(), device)  # [B, S]
    u = _t(batch.unroll, device)  # [B, S, 7]
    pes = u.prod(dim=-1)
    dsp_per_mac = np.array([target.dsp_per_mac(int(w), int(a)) for w, a in batch.bits])
    lut_per_mac = np.array([target.lut_per_mac(int(w), int(a)) for w, a in batch.bits])
    dw = _depthwise_slots(batch).astype(bool)
    dsp = _t(buffers.dsps(batch.unroll, dsp_per_mac[None], dw, target.packed_macs_per_dsp), device) * used
    n_banks, depth, width = bufs or slot_buffers(batch)
    copies = buffers.COPIES * n_banks
    bram = _t((copies * buffers.bram18k(depth, width, target)).sum(-1), device) * used
    lutram = _t((copies * buffers.lutram_luts(depth, width)).sum(-1), device) * used
    lut = (pes * (LUT_PER_PE + _t(lut_per_mac, device)) + LUT_PER_CHUNK + lutram) * used
    ff = (pes * FF_PER_PE + FF_PER_CHUNK) * used
    return {"dsp": dsp, "bram18k": bram, "lut": lut, "ff": ff}


def _depthwise_slots(batch: DesignBatch) -> np.ndarray:
    """[B, S] whether each slot runs depthwise layers."""
    dw = np.zeros(batch.noc.shape, dtype=np.float64)
    np.put_along_axis(dw, batch.slot, batch.table.depthwise[None, :].repeat(batch.size, 0).astype(np.float64), axis=1)
    return dw


def tiles_fit(batch: DesignBatch, bufs: Buffers | None = None) -> np.ndarray:
    """[B] whether every layer's GB tile fits the banks of its chunk's buffers
    (`fpga_buffers.bank_need` <= words per bank) and no grouped layer's K tile spans two groups."""
    f = batch.factors
    unroll = batch.per_layer(batch.unroll)
    need = buffers.bank_need(f[:, :, F_GB], f[:, :, F_SPATIAL], f[:, :, F_RF], unroll, batch.table.stride[None],
                             batch.table.depthwise[None])
    _, depth, _ = bufs or slot_buffers(batch)
    fit = (need <= batch.per_layer(depth)).all(-1)
    t_k = f[:, :, F_GB, _K] * f[:, :, F_SPATIAL, _K] * f[:, :, F_RF, _K]
    fit &= ~batch.table.grouped[None] | (batch.table.k_per_group[None] % t_k == 0)
    return fit.all(-1)


def layer_cycles(
    batch: DesignBatch, dram_words: torch.Tensor, target: FpgaTarget, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, L] cycles, [B, L] DRAM bytes) of every compute layer.

    `dram_words[B, L, 4]`: weight reads, input reads, output words written once (final), and
    partial-sum words spilled (each written and read back once more)."""
    f = _t(batch.factors, device)
    compute = f[:, :, F_DRAM].prod(-1) * f[:, :, F_GB].prod(-1) * f[:, :, F_RF].prod(-1)
    tiles = f[:, :, F_DRAM].prod(-1)
    bits = _t(batch.table.bits, device)  # [L, 2]
    nbytes = (dram_words[..., 0] * bits[:, 0] + (dram_words[..., 1] + dram_words[..., 2]) * bits[:, 1]
              + 2 * dram_words[..., 3] * ACC_BITS) / 8
    u = _t(batch.per_layer(batch.unroll), device)
    reduction = u[..., _C] * u[..., _R] * u[..., _S]
    depth = PIPELINE_BASE + torch.ceil(torch.log2(reduction))
    c = compute / tiles + depth
    m = nbytes / tiles / target.dram_bytes_per_cycle
    cycles = m + c + (tiles - 1) * torch.maximum(c, m)
    return cycles, nbytes


def aux_cycles(batch: DesignBatch, aux: AuxTable, target: FpgaTarget, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, L] cycles, [B] DRAM bytes) of the pools and adds each compute layer's chunk runs."""
    B, L = batch.slot.shape
    cycles = torch.zeros(B, L, dtype=torch.float64, device=device)
    if not aux.names:
        return cycles, torch.zeros(B, dtype=torch.float64, device=device)
    u = _t(batch.per_layer(batch.unroll), device)  # [B, L, 7]
    lanes = (u[..., _K] * u[..., _P] * u[..., _Q])[:, aux.host]  # [B, A] output lanes of the host
    nbytes = _t(aux.extra_words * aux.bits / 8, device)  # [A]
    each = torch.maximum(_t(aux.ops, device) / lanes, nbytes / target.dram_bytes_per_cycle)
    cycles.index_add_(1, torch.as_tensor(aux.host, device=device), each)
    return cycles, nbytes.sum().expand(B)


def evaluate(batch: DesignBatch, target: FpgaTarget, dram_words: torch.Tensor, *, device: torch.device | None = None) -> BatchCost:
    """Cost B designs; `dram_words[B, L, 4]` as in `layer_cycles`."""
    device = device or dram_words.device
    cyc, nbytes = layer_cycles(batch, dram_words, target, device)
    aux = AuxTable.of(batch.workload, batch.table)
    acyc, abytes = aux_cycles(batch, aux, target, device)
    frame_bytes = nbytes.sum(1) + abytes
    period, latency = roll_up(
        arch=torch.as_tensor(batch.arch, device=device), slot=torch.as_tensor(batch.slot, device=device),
        n_slots=batch.n_slots, layer_cycles=cyc, aux_cycles=acyc, frame_bytes=frame_bytes,
        bytes_per_cycle=target.dram_bytes_per_cycle,
    )
    bufs = slot_buffers(batch)
    per_slot = chunk_resources(batch, target, device, bufs)
    res = {k: v.sum(1) for k, v in per_slot.items()}
    # multi-cycle shares one engine per kind; the per-slot sum already counts only used slots
    feasible = torch.as_tensor(batch.fits & tiles_fit(batch, bufs), device=device)
    for key, budget in (("dsp", target.dsp), ("bram18k", target.bram18k), ("lut", target.lut), ("ff", target.ff)):
        feasible &= res[key] <= budget
    clock_hz = target.clock_mhz * 1e6
    fps = clock_hz / period
    macs = float(batch.table.macs.sum())
    energy = torch.full_like(period, float("nan"))
    return BatchCost(
        feasible=feasible, cycles_per_frame=period, latency_cycles=latency, fps=fps,
        throughput_gops=2 * macs * fps / 1e9, energy_pj=energy, edp=energy * 1e-12 * latency,
        layer_cycles=cyc, layer_energy_pj=torch.full_like(cyc, float("nan")), layer_bytes=nbytes,
        dram_bytes_per_cycle=target.dram_bytes_per_cycle, resources=res, slot_resources=per_slot,
        clock_mhz=target.clock_mhz,
    )


def dsp_roofline_gops(dsp: float, bits: int, target: FpgaTarget) -> float:
    """The most GOP/s `dsp` DSP48s can do at `bits`: 2 ops x MACs per cycle x clock."""
    return 2 * dsp * target.macs_per_dsp(bits) * target.clock_mhz * 1e6 / 1e9 if target.uses_dsp(bits) else math.inf


def frame_cycles_bound(workload: Workload, target: FpgaTarget) -> float:
    """A lower bound on any design's cycles per frame, whatever its mapping: the MACs over the
    most MACs the DSP (or, for LUT-built MACs, LUT) budget can do per cycle, and the weights that
    cannot stay in BRAM over the DRAM bandwidth (every weight is needed once per frame, and the
    whole BRAM holds at most bram18k x 18 Kb of them).  It tells how far any search could still
    improve on a design; it is not reachable in general (stages stall, tiles pad)."""
    dsp_cycles = lut_cycles = 0.0
    weight_bytes = 0.0
    for layer in workload.compute_layers:
        if target.uses_dsp(layer.w_bits, layer.a_bits):
            dsp_cycles += layer.macs * target.dsp_per_mac(layer.w_bits, layer.a_bits) / target.dsp
        else:
            lut_cycles += layer.macs * target.lut_per_mac(layer.w_bits, layer.a_bits) / target.lut
        weight_bytes += layer.weight_count * layer.w_bits / 8
    on_chip_bytes = target.bram18k * target.bram18k_bits / 8
    traffic = max(0.0, weight_bytes - on_chip_bytes) / target.dram_bytes_per_cycle
    return max(dsp_cycles, lut_cycles, traffic)
