"""Hard Gumbel-softmax sampling of every knob of a design space (DNA Eq. 7, TRIPS Eq. 5).

Each knob s has logits gamma_s over its choices.  A step draws one choice per knob per sample
with the Gumbel-max trick (the hard, one-hot sample of the forward pass) and keeps the relaxed
softmax((gamma_s + g) / tau) of that draw for the backward pass: `Sample.relaxed[b, s]` is 1 in
value and carries the gradient of the chosen option's relaxed probability, the straight-through
estimator the papers multiply the hardware cost by.

Two knob families are sampled under masks, so that every draw is a legal design:
- loop orders are n picks without replacement: position j may not repeat the dims picked at
  positions < j (DNA Sec. 3.5);
- loop sizes pick among the factors that remain: the RF size among candidates no larger than
  what the chunk's spatial unroll leaves of the bound, the GB size among those no larger than
  what the RF size leaves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dnac.compiler.das.decode import remaining, slots, unrolls
from dnac.compiler.das.space import DesignSpace


@dataclass
class Sample:
    choices: np.ndarray  # [B, K] choice index per knob
    relaxed: torch.Tensor  # [B, K] straight-through relaxed one-hot of the chosen option


class KnobLogits(nn.Module):
    """The architecture parameters gamma of DAS: one logit vector per knob (padded to the
    widest knob; padding is masked)."""

    def __init__(self, space: DesignSpace, frozen: dict[int, int] | None = None) -> None:
        super().__init__()
        self.space = space
        width = int(space.n_choices.max())
        self.gamma = nn.Parameter(torch.zeros(space.n_knobs, width, dtype=torch.float64))
        valid = torch.arange(width)[None, :] < torch.as_tensor(space.n_choices)[:, None]
        self.register_buffer("valid", valid)
        self.frozen = dict(frozen or {})
        self._frozen_idx = torch.tensor(sorted(self.frozen), dtype=torch.long)
        self._frozen_val = torch.tensor([self.frozen[k] for k in sorted(self.frozen)], dtype=torch.long)
        self._order = torch.as_tensor(space.i_order.reshape(-1, space.i_order.shape[-1]))  # [S*3, 7]
        self._rf = torch.as_tensor(space.i_rf)  # [L, 7]
        self._gb = torch.as_tensor(space.i_gb)
        self._cand = torch.as_tensor(space.cand)  # [L, 7, C]
        self._ncand = torch.as_tensor(space.n_cand)  # [L, 7]

    def mode(self) -> np.ndarray:
        """[1, K] the most likely choice of every knob (orders and sizes made legal by decode)."""
        masked = self.gamma.detach().masked_fill(~self.valid, float("-inf"))
        ch = masked.argmax(-1)
        if len(self._frozen_idx):
            ch[self._frozen_idx] = self._frozen_val
        return ch[None].numpy().astype(np.int64)

    def sample(self, batch: int, tau: float, generator: torch.Generator) -> Sample:
        sp = self.space
        u = torch.rand((batch,) + tuple(self.gamma.shape), generator=generator, dtype=torch.float32)
        gumbel = -torch.log(-torch.log(u.clamp_min(1e-30)))
        mask = self.valid[None].expand(batch, -1, -1).clone()
        noisy = (self.gamma.detach().float()[None] + gumbel).masked_fill_(~mask, float("-inf"))
        choice = noisy.argmax(-1)  # [B, K]
        if len(self._frozen_idx):
            choice[:, self._frozen_idx] = self._frozen_val
        # loop orders: picks without replacement, position by position
        n_dims = self._order.shape[1]
        taken = torch.zeros(batch, self._order.shape[0], n_dims, dtype=torch.bool)
        for j in range(n_dims):
            k = self._order[:, j]
            m = mask[:, k, :n_dims] & ~taken
            mask[:, k, :n_dims] = m
            pick = noisy[:, k, :n_dims].masked_fill(~m, float("-inf")).argmax(-1)
            for col, fv in self._frozen_cols(k):
                pick[:, col] = fv
            choice[:, k] = pick
            taken.scatter_(2, pick[..., None], True)
        # loop sizes among what remains, given the sampled chunks and unrolls
        ch = choice.numpy()
        _, slot = slots(sp, ch)
        _, rem = remaining(sp, slot, unrolls(sp, ch))
        rem = torch.as_tensor(rem)  # [B, L, 7]
        cand = self._cand[None]  # [1, L, 7, C]
        in_list = torch.arange(cand.shape[-1])[None, None, None, :] < self._ncand[None, :, :, None]
        rf_ok = in_list & (cand <= rem[..., None])
        rf_pick = self._masked_pick(noisy, mask, self._rf, rf_ok, choice)
        rf_val = cand.expand(batch, -1, -1, -1).gather(-1, rf_pick[..., None])[..., 0]
        gb_ok = in_list & (cand <= -(-rem // rf_val)[..., None])
        self._masked_pick(noisy, mask, self._gb, gb_ok, choice)
        # the relaxed one-hot of every draw, for the straight-through gradient
        z = ((self.gamma.float()[None] + gumbel) / tau).masked_fill(~mask, float("-inf"))
        logp = z.gather(-1, choice[..., None])[..., 0] - torch.logsumexp(z, dim=-1)
        p = logp.exp().to(torch.float64)
        relaxed = 1.0 + p - p.detach()
        return Sample(choice.numpy().astype(np.int64), relaxed)

    def _frozen_cols(self, knobs: torch.Tensor) -> list[tuple[int, int]]:
        if not self.frozen:
            return []
        return [(col, self.frozen[int(k)]) for col, k in enumerate(knobs.tolist()) if int(k) in self.frozen]

    def _masked_pick(self, noisy: torch.Tensor, mask: torch.Tensor, knobs: torch.Tensor, ok: torch.Tensor,
                     choice: torch.Tensor) -> torch.Tensor:
        """Draw the knobs `knobs` [L, 7] among the options `ok` [B, L, 7, C]; updates mask and choice."""
        flat = knobs.reshape(-1)
        c = ok.shape[-1]
        okf = ok.reshape(ok.shape[0], -1, c)
        mask[:, flat, :c] &= okf
        pick = noisy[:, flat, :c].masked_fill(~mask[:, flat, :c], float("-inf")).argmax(-1)
        for col, fv in self._frozen_cols(flat):
            pick[:, col] = fv
        choice[:, flat] = pick
        return pick.reshape(ok.shape[:3])
