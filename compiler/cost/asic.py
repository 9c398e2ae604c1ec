"""The ASIC cost model: Timeloop v3.0.3 semantics priced with Accelergy v0.4 tables.

Every count comes from the nest analysis of dnac's canonical hierarchy (DRAM -> global buffer
-> PE array -> per-PE register file), which reproduces `timeloop-model` exactly; energy is
those counts times the per-action energies of the target's technology table, and cycles are
Timeloop's bandwidth-throttled cycles.  The components a chunk is built from:

    DRAM      the target's DRAM type, one 64-bit access per vector of 64 / word-bits words
    GB        one SRAM macro, 64 bits wide, of the next power-of-two depth that holds the
              buffer (the depths Accelergy's CACTI table prices exactly), unlimited banking
    RF        one register file per PE (Aladdin closed form), one word per access
    MAC       an integer MAC of the chunk's datapath width

Word width is the chunk's datapath width (the wider of its weight and activation widths).
DRAM bandwidth bounds each layer (Timeloop's throttling) and, in the pipeline style, the frame
(all chunks share DRAM).  Area is the sum over the chunks built; EDP is energy (J) x latency
(cycles), Timeloop's J*cycle.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from dnac.compiler.cost.base import AuxTable, BatchCost, roll_up
from dnac.compiler.cost.canonical import DRAM, nest_stats
from dnac.compiler.das.batch import DesignBatch
from dnac.compiler.targets import AsicTarget

#: Width of one GB SRAM word and of one DRAM access, in bits.
GB_WIDTH = 64


def gb_depth(words: int, word_bits: int) -> int:
    """Rows of the GB SRAM macro holding `words` words: the next power of two, at least 128
    (the smallest 64-bit-wide macro in the tables)."""
    rows = max(1, math.ceil(words * word_bits / GB_WIDTH))
    return max(128, 1 << (rows - 1).bit_length())


def gb_depths(words: np.ndarray, word_bits: np.ndarray) -> np.ndarray:
    """`gb_depth` of whole arrays (the search costs thousands of chunks a step)."""
    rows = np.maximum(1, -(-(np.asarray(words, dtype=np.int64) * word_bits) // GB_WIDTH))
    below = rows - 1  # the next power of two is 1 << bit_length(rows - 1); frexp gives that length
    bits = np.where(below > 0, np.frexp(below.astype(np.float64))[1], 0)
    return np.maximum(128, np.left_shift(1, bits.astype(np.int64)))


@lru_cache(maxsize=4096)
def _components(target: AsicTarget, gb_rows: int, rf_words: int, word_bits: int) -> tuple[float, ...]:
    """(dram read, gb read, gb write, rf read, rf write, mac pJ, gb um2, rf um2, mac um2, dram write)."""
    dram = target.dram(GB_WIDTH)
    gb = target.sram(gb_rows, GB_WIDTH)
    rf = target.regfile(max(1, rf_words), word_bits)
    mac = target.mac(word_bits)
    return (dram.read_pJ, gb.read_pJ, gb.write_pJ, rf.read_pJ, rf.write_pJ, mac.energy_pJ,
            gb.area_um2, rf.area_um2, mac.area_um2, dram.write_pJ)


def slot_components(batch: DesignBatch, target: AsicTarget) -> np.ndarray:
    """[B, S, 10] the components of every chunk slot (see `_components`), looked up once per
    distinct (GB rows, RF words, word width)."""
    word_bits = np.broadcast_to(batch.bits.max(axis=1)[None], batch.gb.shape[:2])
    rows = gb_depths(batch.gb.sum(-1), word_bits)
    rf_words = batch.rf.sum(-1)
    assert rf_words.max() < 1 << 12 and word_bits.max() < 1 << 8
    # one int64 key per slot (a 1-D unique sorts far faster than rows of three)
    keys = (rows.astype(np.int64) << 20 | rf_words << 8 | word_bits).reshape(-1)
    uniq, inverse = np.unique(keys, return_inverse=True)
    table = np.array([_components(target, int(k >> 20), int(k >> 8 & 0xFFF), int(k & 0xFF)) for k in uniq])
    return table[inverse.reshape(-1)].reshape(batch.gb.shape[:2] + (table.shape[-1],))


def evaluate(batch: DesignBatch, target: AsicTarget, *, device: torch.device | None = None) -> BatchCost:
    device = device or torch.device("cpu")
    B, L = batch.slot.shape
    comp = slot_components(batch, target)  # [B, S, 10]
    lc = torch.as_tensor(batch.per_layer(comp), device=device)  # [B, L, 10]
    word_bits = torch.as_tensor(batch.per_layer(np.broadcast_to(batch.bits.max(1)[None], batch.slot.shape[:1] + (batch.n_slots,))), device=device)
    vec = (GB_WIDTH // word_bits).clamp(min=1)  # words per DRAM / GB access
    energy = torch.zeros(B, L, 3, 3, 2, dtype=torch.float64, device=device)
    energy[:, :, 0, :, 0] = lc[:, :, 0, None]
    energy[:, :, 0, :, 1] = lc[:, :, 9, None]
    energy[:, :, 1, :, 0] = lc[:, :, 1, None]
    energy[:, :, 1, :, 1] = lc[:, :, 2, None]
    energy[:, :, 2, :, 0] = lc[:, :, 3, None]
    energy[:, :, 2, :, 1] = lc[:, :, 4, None]
    block = torch.stack((vec, vec, torch.ones_like(vec)), dim=-1)
    dram_words_per_cycle = target.dram_bytes_per_cycle * 8 / word_bits.to(torch.float64)
    bandwidth = torch.full((B, L, 3, 3), float("inf"), dtype=torch.float64, device=device)
    bandwidth[:, :, 0, 2] = dram_words_per_cycle
    stats = nest_stats(batch, device=device, energy=energy, mac_pJ=lc[:, :, 5], block_size=block, bandwidth=bandwidth)
    cyc = stats.cycles.reshape(B, L).to(torch.float64)
    e_layer = stats.energy_pJ.reshape(B, L).to(torch.float64)
    dram_words = (stats.reads[:, DRAM] + stats.fills[:, DRAM] + stats.updates[:, DRAM]).sum(-1).reshape(B, L)
    layer_bytes = dram_words.to(torch.float64) * word_bits / 8
    frame_bytes = layer_bytes.sum(1)
    # pools and adds: element operations on the host chunk's output lanes, an adder each
    aux = AuxTable.of(batch.workload, batch.table)
    acyc = torch.zeros_like(cyc)
    aux_energy = torch.zeros(B, dtype=torch.float64, device=device)
    if aux.names:
        u = torch.as_tensor(batch.per_layer(batch.unroll), device=device, dtype=torch.float64)
        lanes = (u[..., 1] * u[..., 5] * u[..., 6])[:, aux.host]
        extra_cycles = torch.as_tensor(aux.extra_words * aux.bits / 8, device=device) / target.dram_bytes_per_cycle
        acyc.index_add_(1, torch.as_tensor(aux.host, device=device),
                        torch.maximum(torch.as_tensor(aux.ops, device=device) / lanes, extra_cycles))
        add_pj = np.array([target.adder(int(b)).energy_pJ for b in aux.bits])
        dram_pj = target.dram(GB_WIDTH).read_pJ * aux.extra_words * aux.bits / GB_WIDTH
        aux_energy += float((aux.ops * add_pj + dram_pj).sum())
        frame_bytes = frame_bytes + float((aux.extra_words * aux.bits / 8).sum())
    period, latency = roll_up(
        arch=torch.as_tensor(batch.arch, device=device), slot=torch.as_tensor(batch.slot, device=device),
        n_slots=batch.n_slots, layer_cycles=cyc, aux_cycles=acyc, frame_bytes=frame_bytes,
        bytes_per_cycle=target.dram_bytes_per_cycle,
    )
    used = torch.as_tensor(batch.used_slots(), device=device, dtype=torch.float64)
    cs = torch.as_tensor(comp, device=device)
    pes = torch.as_tensor(batch.unroll, device=device, dtype=torch.float64).prod(-1)
    slot_area = (pes * (cs[..., 7] + cs[..., 8]) + cs[..., 6]) * used / 1e6
    area_mm2 = slot_area.sum(1)
    feasible = torch.as_tensor(batch.fits, device=device) & stats.fits.reshape(B, L).all(1)
    if target.area_mm2 is not None:
        feasible &= area_mm2 <= target.area_mm2
    total_energy = e_layer.sum(1) + aux_energy
    fps = target.clock_mhz * 1e6 / period
    return BatchCost(
        feasible=feasible, cycles_per_frame=period, latency_cycles=latency, fps=fps,
        throughput_gops=2 * float(batch.table.macs.sum()) * fps / 1e9, energy_pj=total_energy,
        edp=total_energy * 1e-12 * latency, layer_cycles=cyc, layer_energy_pj=e_layer, layer_bytes=layer_bytes,
        dram_bytes_per_cycle=target.dram_bytes_per_cycle, resources={"area_mm2": area_mm2}, slot_resources={"area_mm2": slot_area},
        clock_mhz=target.clock_mhz,
    )
