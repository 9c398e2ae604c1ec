"""Run the Timeloop-semantics nest analysis on every (design, layer) of a batch.

Both targets need the same numbers first: how many words each level of dnac's canonical
hierarchy reads, fills and updates for every layer under its mapping.  The FPGA model turns the
DRAM-level counts into traffic and time; the ASIC model prices every count with the technology
tables (and Timeloop's bandwidth-throttled cycles).  Flattening B designs x L layers into one
batch of nests lets the batched analysis (`dnac.compiler.timeloop.batched`) run once.
"""

from __future__ import annotations

import numpy as np
import torch

from dnac.compiler.das.batch import DesignBatch
from dnac.compiler.timeloop.batched import BatchStats, evaluate_batch

#: Index of each level / tensor / action on the axes of `BatchStats` and the energy tensor.
DRAM, GB, RF = 0, 1, 2
W, I, O = 0, 1, 2


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

    def flat(x: np.ndarray | torch.Tensor, tail: tuple[int, ...]) -> torch.Tensor:
        t = torch.as_tensor(np.array(x) if isinstance(x, np.ndarray) else x, device=device)
        return t.reshape((n,) + tail)

    bounds = np.broadcast_to(batch.table.bounds[None], (B, L, 7))
    stride = np.broadcast_to(batch.table.stride[None], (B, L, 2))
    dw = np.broadcast_to(batch.table.depthwise[None], (B, L))
    pes = batch.per_layer(batch.unroll).prod(-1)  # [B, L]
    mesh = np.stack([pes, np.ones_like(pes)], axis=-1)
    return evaluate_batch(
        flat(batch.factors, (4, 7)),
        flat(batch.layer_order(), (3, 7)),
        flat(bounds, (7,)),
        strides=flat(stride, (2,)),
        depthwise=flat(dw, ()),
        spatial_x=torch.ones(n, 7, dtype=torch.bool, device=device),
        mesh=flat(mesh, (2,)),
        gb_capacity=flat(batch.per_layer(batch.gb), (3,)),
        rf_capacity=flat(batch.per_layer(batch.rf), (3,)),
        block_size=None if block_size is None else block_size.reshape(n, 3),
        energy=None if energy is None else energy.reshape(n, 3, 3, 2),
        mac_pJ=mac_pJ if isinstance(mac_pJ, float) else mac_pJ.reshape(n),
        bandwidth=None if bandwidth is None else bandwidth.reshape(n, 3, 3),
    )


def dram_words(stats: BatchStats, B: int, L: int) -> torch.Tensor:
    """[B, L, 4] DRAM words per layer: weight reads, input reads, final output writes and
    partial-sum spills (Timeloop elides the first read, so spills = DRAM reads of outputs)."""
    return torch.stack(
        (stats.reads[:, DRAM, W], stats.reads[:, DRAM, I], stats.partition[:, DRAM, O], stats.reads[:, DRAM, O]),
        dim=-1,
    ).reshape(B, L, 4).to(torch.float64)
