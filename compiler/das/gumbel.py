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


#: Static knobs are sampled in groups of similar width, so that narrow knobs (most of them)
#: do not pay for the widest one's padding.
_WIDTH_GROUPS = (4, 8, 16, 24, 1 << 30)


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
        self._rf = torch.as_tensor(space.i_rf).reshape(-1)  # [L*7]
        self._gb = torch.as_tensor(space.i_gb).reshape(-1)
        self._cand = torch.as_tensor(space.cand)  # [L, 7, C]
        self._ncand = torch.as_tensor(space.n_cand)  # [L, 7]
        dynamic = set(self._order.reshape(-1).tolist()) | set(self._rf.tolist()) | set(self._gb.tolist())
        static = [k for k in range(space.n_knobs) if k not in dynamic]
        self._groups: list[tuple[torch.Tensor, int]] = []
        lo = 0
        for hi in _WIDTH_GROUPS:
            members = [k for k in static if lo < space.n_choices[k] <= hi]
            if members:
                w = int(max(space.n_choices[k] for k in members))
                self._groups.append((torch.tensor(members, dtype=torch.long), w))
            lo = hi
        # loop-size knobs too, by their number of candidates (a 960-channel dim has 30 or more,
        # a 3x3 kernel's 2): columns of the flattened [L*7] tables, and the width they need
        ncand = self._ncand.reshape(-1)
        self._size_groups: list[tuple[torch.Tensor, int]] = []
        lo = 0
        for hi in _WIDTH_GROUPS:
            cols = torch.nonzero((ncand > lo) & (ncand <= hi))[:, 0]
            if cols.numel():
                self._size_groups.append((cols, int(ncand[cols].max())))
            lo = hi
        sized = [self._rf[c] for c, _ in self._size_groups] + [self._gb[c] for c, _ in self._size_groups]
        self._cand_flat = self._cand.reshape(-1, self._cand.shape[-1])  # [L*7, C]
        self._in_list = torch.arange(self._cand_flat.shape[-1])[None, :] < ncand[:, None]  # [L*7, C] real candidates
        # knob order of the concatenated per-family results, and its inverse
        order = torch.cat([g for g, _ in self._groups] + [self._order.T.reshape(-1)] + sized)
        self._inverse = torch.empty_like(order)
        self._inverse[order] = torch.arange(order.numel())
        self._frozen_of = {int(k): v for k, v in self.frozen.items()}

    def mode(self) -> np.ndarray:
        """[1, K] the most likely choice of every knob (orders and sizes made legal by decode)."""
        masked = self.gamma.detach().masked_fill(~self.valid, float("-inf"))
        ch = masked.argmax(-1)
        if len(self._frozen_idx):
            ch[self._frozen_idx] = self._frozen_val
        return ch[None].numpy().astype(np.int64)

    def _draw(self, knobs: torch.Tensor, width: int, ok: torch.Tensor | None, tau: float, batch: int,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Gumbel-max draws of `knobs` among their options (`ok` [B, n, width] narrows them) and the
        log relaxed probability of each draw: ([B, n] choice, [B, n] log p with gradient)."""
        # double precision on purpose: in single precision the relaxed probability of a nearly
        # settled choice rounds to 1 and its gradient to 0, and Adam stops moving that knob; DAS
        # then found worse VGG16 designs (mean over 8 seeds 292 against 314 GOP/s)
        logits = self.gamma[knobs, :width]  # [n, width], in the graph
        allowed = self.valid[knobs, :width][None]
        if ok is not None:
            allowed = allowed & ok
        u = torch.rand((batch,) + tuple(logits.shape), generator=gen, dtype=torch.float64)
        z = (logits[None] - torch.log(-torch.log(u.clamp_min(1e-300)))) / tau
        z = z.masked_fill(~allowed, float("-inf"))
        pick = z.detach().argmax(-1)
        frozen = [(col, self._frozen_of[int(k)]) for col, k in enumerate(knobs.tolist()) if int(k) in self._frozen_of]
        for col, value in frozen:
            pick[:, col] = value
        logp = z.gather(-1, pick[..., None])[..., 0] - torch.logsumexp(z, dim=-1)
        if frozen:  # a frozen knob was not drawn: no probability, no gradient
            cols = torch.tensor([c for c, _ in frozen])
            logp = logp.index_fill(1, cols, 0.0)
        return pick, logp

    def sample(self, batch: int, tau: float, generator: torch.Generator) -> Sample:
        sp = self.space
        choice = torch.zeros(batch, sp.n_knobs, dtype=torch.long)
        logps: list[torch.Tensor] = []
        for knobs, width in self._groups:
            pick, lp = self._draw(knobs, width, None, tau, batch, generator)
            choice[:, knobs] = pick
            logps.append(lp)
        # loop orders: picks without replacement, position by position
        n_dims = self._order.shape[1]
        taken = torch.zeros(batch, self._order.shape[0], n_dims, dtype=torch.bool)
        for j in range(n_dims):
            k = self._order[:, j]
            pick, lp = self._draw(k, n_dims, ~taken, tau, batch, generator)
            choice[:, k] = pick
            logps.append(lp)
            taken = taken.scatter(2, pick[..., None], True)
        # loop sizes among what remains, given the sampled chunks and unrolls
        ch = choice.numpy()
        _, slot = slots(sp, ch)
        _, rem = remaining(sp, slot, unrolls(sp, ch))
        rem = torch.as_tensor(rem).reshape(batch, -1)  # [B, L*7]
        cand, in_list = self._cand_flat, self._in_list
        rf_val = torch.ones_like(rem)
        for level, knobs in (("rf", self._rf), ("gb", self._gb)):
            # the RF size among candidates within what the unroll leaves, the GB size within
            # what the RF size leaves
            limit = rem if level == "rf" else -(-rem // rf_val)
            for cols, w in self._size_groups:
                c = cand[cols, :w]
                ok = in_list[cols, :w][None] & (c[None] <= limit[:, cols, None])
                pick, lp = self._draw(knobs[cols], w, ok, tau, batch, generator)
                choice[:, knobs[cols]] = pick
                logps.append(lp)
                if level == "rf":
                    rf_val[:, cols] = c[None].expand(batch, -1, -1).gather(-1, pick[..., None])[..., 0]
        logp = torch.cat(logps, dim=1)[:, self._inverse]
        p = logp.exp()
        relaxed = 1.0 + p - p.detach()
        return Sample(choice.numpy().astype(np.int64), relaxed)
