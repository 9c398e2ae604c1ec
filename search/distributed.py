"""Data-parallel co-search over torch.distributed (gloo on CPU, NCCL on GPU; `torchrun`).

Every rank holds the whole supernet, reads its own share of every batch order
(`data.batches(rank=, world=)`) and averages gradients with an all-reduce before each
optimizer step, so weights, alpha and beta stay identical on every rank.  The averaging is
explicit instead of a `DistributedDataParallel` wrapper on purpose: the single-path graph
changes every step and alpha, beta enter the forward from outside the module (the sample is
drawn before the forward), which DDP's hooks would not see.  All ranks draw the same Gumbel
noise (one seeded generator each), so they run the same paths.  BatchNorm statistics and
activation scales are broadcast from rank 0 at the end of every epoch, as DDP's
`broadcast_buffers` does.  The DAS runs of the hardware penalty are shared out among the ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def current(cls) -> DistContext:
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def sync_grads(self, params: list[nn.Parameter]) -> None:
        """Average the gradients of `params` over the ranks (missing gradients count as zero)."""
        if not self.enabled:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world
        i = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[i: i + n].view_as(p).clone()
            i += n

    def sync_buffers(self, module: nn.Module) -> None:
        if not self.enabled:
            return
        for b in module.buffers():
            dist.broadcast(b, src=0)

    def gather(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_from_env() -> tuple[DistContext, torch.device]:
    """Join the process group `torchrun` describes (WORLD_SIZE > 1), else run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    ctx = DistContext.current()
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return ctx, torch.device("cuda", local)
    return ctx, torch.device("cpu")
