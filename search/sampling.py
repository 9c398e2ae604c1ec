"""How the operator logits alpha pick the paths a step computes: one small function per mode.

- `SamplingMode.SINGLE_PATH` (TRIPS Eq. 6-7): the forward pass runs only the operator of the
  hard Gumbel-softmax sample.  While alpha is updated, the top-K operators by relaxed
  probability (K = 2 in TRIPS Sec. 4.1) are also computed, each scaled by its straight-through
  weight (0 in value, except the sampled one), so the output is still the single path's while
  dL/dGS(alpha_k) = <dL/dA_{l+1}, O_k(A_l)> reaches the K paths (Eq. 7).  While the weights are
  updated, the single path alone runs.
- `SamplingMode.SOFT` (DNA Eq. 6, FBNet): every operator runs and the output is their sum
  weighted by the soft Gumbel-softmax sample.  Memory and time grow with the candidates; it is
  kept for comparison with DNA's published form.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch

from dnac.search.precision import gumbel_softmax, straight_through


class SamplingMode(StrEnum):
    SINGLE_PATH = "single_path"  # TRIPS: hard single-path forward, top-K multi-path backward
    SOFT = "soft"  # DNA / FBNet: all paths, soft Gumbel-softmax weights


@dataclass
class OpSample:
    """The operators of every searchable layer for one step."""

    active: list[int]  # [L] the operator of the hard sample (argmax of the relaxed sample)
    paths: list[list[int]]  # [L] operators the forward computes
    weights: torch.Tensor  # [L, K] their weights (grad to alpha while updating alpha)


def single_path(alpha: torch.Tensor, mask: torch.Tensor, tau: float, generator: torch.Generator, *,
                updating_arch: bool, top_k: int) -> OpSample:
    soft = gumbel_softmax(alpha, tau, generator, mask)
    hard = straight_through(soft)
    active = soft.detach().argmax(-1).tolist()
    if not updating_arch:
        return OpSample(active, [[a] for a in active], hard.detach())
    k = min(top_k, int(mask.sum(-1).min()))
    top = soft.detach().topk(k, dim=-1).indices.tolist()
    return OpSample(active, top, hard)


def soft(alpha: torch.Tensor, mask: torch.Tensor, tau: float, generator: torch.Generator, *,
         updating_arch: bool, top_k: int) -> OpSample:
    w = gumbel_softmax(alpha, tau, generator, mask)
    active = w.detach().argmax(-1).tolist()
    paths = [[k for k in range(mask.shape[1]) if bool(mask[l, k])] for l in range(mask.shape[0])]
    return OpSample(active, paths, w if updating_arch else w.detach())


SAMPLERS = {SamplingMode.SINGLE_PATH: single_path, SamplingMode.SOFT: soft}


def sample_ops(mode: SamplingMode, alpha: torch.Tensor, mask: torch.Tensor, tau: float, generator: torch.Generator,
               *, updating_arch: bool, top_k: int = 2) -> OpSample:
    return SAMPLERS[mode](alpha, mask, tau, generator, updating_arch=updating_arch, top_k=top_k)
