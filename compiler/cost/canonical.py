"""Run the Timeloop-semantics nest analysis on every (design, layer) of a batch.

Both targets need the same numbers first: how many words each level of dnac's canonical
hierarchy reads, fills and updates for every layer under its mapping.  The FPGA model turns the
DRAM-level counts into traffic and time; the ASIC model prices every count with the technology
tables (and Timeloop's bandwidth-throttled cycles).  Flattening B designs x L layers into one
batch of nests lets the batched analysis (`dnac.compiler.timeloop.batched`) run once.  The FPGA
model prices only DRAM traffic, so it takes the DRAM-only analysis (`dram_words`), which gives
the very same counts for a fraction of the work.
"""

from __future__ import annotations

import numpy as np
import torch

from dnac.compiler.das.batch import DesignBatch
from dnac.compiler.timeloop.batched import BatchStats, dram_counts, evaluate_batch

#: Index of each level / tensor / action on the axes of `BatchStats` and the energy tensor.
DRAM, GB, RF = 0, 1, 2
W, I, O = 0, 1, 2


def _flat(x: np.ndarray, tail: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """[B, L, *tail] (or a broadcast view of it) as a [B*L, *tail] tensor of its own."""
    return torch.as_tensor(np.array(x), device=device).reshape((-1,) + tail)


def _flat_nests(batch: DesignBatch, device: torch.device) -> dict[str, torch.Tensor]:
    """factors, perms, strides and depthwise flags of every (design, layer), [B*L, ...]."""
    B, L = batch.slot.shape
    return {
        "factors": _flat(batch.factors, (4, 7), device),
        "perms": _flat(batch.layer_order(), (3, 7), device),
        "strides": _flat(np.broadcast_to(batch.table.stride[None], (B, L, 2)), (2,), device),
        "depthwise": _flat(np.broadcast_to(batch.table.depthwise[None], (B, L)), (), device),
    }


def nest_stats(
    batch: DesignBatch,
    *,
    device: torch.device,
    energy: torch.Tensor | None = None,  # [B, L, 3, 3, 2] pJ per vector access
    mac_pJ: torch.Tensor | float = 1.0,  # [B, L] or scalar
    block_size: torch.Tensor | None = None,  # [B, L, 3]
    bandwidth: torch.Tensor | None = None,  # [B, L, 3, 3] words/cycle (read, write, shared)
) -> BatchStats:
    """The canonical-hierarchy analysis of every compute layer; results are [B*L, ...]."""
    B, L = batch.slot.shape
    n = B * L
    nests = _flat_nests(batch, device)
    bounds = _flat(np.broadcast_to(batch.table.bounds[None], (B, L, 7)), (7,), device)
    pes = _flat(batch.per_layer(batch.unroll).prod(-1), (), device)  # [B*L]
    return evaluate_batch(
        nests["factors"], nests["perms"], bounds,
        strides=nests["strides"],
        depthwise=nests["depthwise"],
        spatial_x=torch.ones(n, 7, dtype=torch.bool, device=device),
        mesh=torch.stack([pes, torch.ones_like(pes)], dim=-1),
        gb_capacity=_flat(batch.per_layer(batch.gb), (3,), device),
        rf_capacity=_flat(batch.per_layer(batch.rf), (3,), device),
        block_size=None if block_size is None else block_size.reshape(n, 3),
        energy=None if energy is None else energy.reshape(n, 3, 3, 2),
        mac_pJ=mac_pJ if isinstance(mac_pJ, float) else mac_pJ.reshape(n),
        bandwidth=None if bandwidth is None else bandwidth.reshape(n, 3, 3),
    )


def dram_words(batch: DesignBatch, *, device: torch.device) -> torch.Tensor:
    """[B, L, 4] DRAM words per layer: weight reads, input reads, final output writes and
    partial-sum spills (Timeloop elides the first read, so spills = DRAM reads of outputs);
    the same numbers as `nest_stats`' DRAM level."""
    B, L = batch.slot.shape
    nests = _flat_nests(batch, device)
    reads, part = dram_counts(nests["factors"], nests["perms"], strides=nests["strides"],
                              depthwise=nests["depthwise"])
    return torch.stack((reads[:, W], reads[:, I], part[:, O], reads[:, O]), dim=-1).reshape(B, L, 4).to(torch.float64)
