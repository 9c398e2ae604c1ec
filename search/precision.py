"""Quantizers with straight-through gradients, and TRIPS' heterogeneous precision sampling.

Every searchable block has logits beta over the precision choices (default 4, 6, 8, 12, 16
bits; TRIPS Sec. 4.1), shared by the weights and activations of all its convs.  A conv
computes with *composite* operands (Cai & Vasconcelos 2020; TRIPS Eq. 4):

    W = sum_j p_j Q_j(w)        A = sum_j p_j Q_j(a)        out = conv(A, W)

where p is a soft Gumbel-softmax sample of beta while the weights are updated and a hard
one-hot sample (straight-through) while beta is updated.  The activation composite is a custom
autograd function: it keeps only its input for the backward pass and recomputes Q_j(a) there
one at a time, and passes dL/da = dL/dA (STE, Zhou et al. 2016) through.  So the activation
memory of a step does not grow with the number of precision choices, which is TRIPS' point
against activating every precision as a separate path (`PrecisionMode.ALL_PATHS`, kept as the
baseline that `dnac bench search` measures).

Quantizers are symmetric and uniform: weights per output channel with the scale max|w|;
activations per tensor with a scale tracked as an exponential moving average of max|a| in
training (a buffer, so it is checkpointed and fixed at evaluation).  Activations known to be
non-negative (ReLU outputs) use the unsigned range.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import nn

#: Precision choices of TRIPS Sec. 4.1.
DEFAULT_BITS: tuple[int, ...] = (4, 6, 8, 12, 16)
#: Momentum of the activation-scale moving average.
SCALE_MOMENTUM = 0.1


class PrecisionMode(StrEnum):
    """How the precision choices of a block enter the forward pass."""

    HETEROGENEOUS = "heterogeneous"  # TRIPS Eq. 4: soft GS composite for w, hard GS for beta
    HARD = "hard"  # hard GS for both updates (the biased search of TRIPS Fig. 2b)
    ALL_PATHS = "all_paths"  # soft GS, every precision a separate conv (memory grows with J)


@dataclass
class PrecisionSample:
    """The precision of one block for one step."""

    bits: tuple[int, ...]  # the choices
    weights: torch.Tensor  # [J] p_j: soft or (straight-through) one-hot; may carry grad to beta
    all_paths: bool = False  # ALL_PATHS: sum of J separate convs instead of composite operands
    grad_paths: tuple[int, ...] | None = None  # choices that get a gradient to beta (top-K); None: all

    @classmethod
    def fixed(cls, bits: int, device: torch.device | None = None) -> PrecisionSample:
        return cls((bits,), torch.ones(1, device=device))


def _levels(bits: int, signed: bool) -> int:
    """Largest quantized magnitude: 2^(b-1) - 1 signed, 2^b - 1 unsigned."""
    return (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1


def quantize_values(x: torch.Tensor, bits: int, scale: torch.Tensor, signed: bool) -> torch.Tensor:
    """Q_b(x): x clipped to the scale and rounded to b bits (no gradient bookkeeping)."""
    n = _levels(bits, signed)
    step = scale.clamp_min(1e-8) / n
    return torch.div(x, step).round_().clamp_(-n if signed else 0, n).mul_(step)


def ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Value q, gradient of x (the straight-through estimator)."""
    return x + (q - x).detach()


def weight_scale(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel max|w|, shaped to broadcast over w."""
    return w.detach().abs().flatten(1).amax(1).clamp_min(1e-8).view(-1, *([1] * (w.dim() - 1)))


def composite_weight(w: torch.Tensor, prec: PrecisionSample) -> torch.Tensor:
    """sum_j p_j Q_j(w), with the STE towards w and exact gradients towards p."""
    return _CompositeQuant.apply(w, prec.weights, weight_scale(w), tuple(prec.bits), True, prec.grad_paths, False)


class _CompositeQuant(torch.autograd.Function):
    """sum_j p_j Q_j(x) that saves only x: backward recomputes each Q_j(x) on its own.

    The gradient towards x is the straight-through one, masked to the clipping range for
    activations (`clip_mask`); towards p_j it is <dL/dout, Q_j(x)> for the choices in
    `grad_paths` (all if None)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: torch.Tensor, scale: torch.Tensor, bits: tuple[int, ...],  # type: ignore[override]
                signed: bool, grad_paths: tuple[int, ...] | None, clip_mask: bool = True) -> torch.Tensor:
        out = torch.zeros_like(x)
        for j, b in enumerate(bits):
            pj = float(p[j])
            if pj != 0.0:
                out.add_(quantize_values(x, b, scale, signed), alpha=pj)
        ctx.save_for_backward(x, p, scale)
        ctx.bits, ctx.signed, ctx.grad_paths, ctx.clip_mask = bits, signed, grad_paths, clip_mask
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        x, p, scale = ctx.saved_tensors
        grad_x = grad_p = None
        if ctx.needs_input_grad[0]:
            grad_x = grad * p.sum()
            if ctx.clip_mask:
                inside = (x.abs() <= scale) if ctx.signed else ((x >= 0) & (x <= scale))
                grad_x = grad_x * inside.to(grad.dtype)
        if ctx.needs_input_grad[1]:
            paths = range(len(ctx.bits)) if ctx.grad_paths is None else ctx.grad_paths
            grad_p = torch.zeros_like(p)
            for j in paths:
                grad_p[j] = (grad * quantize_values(x, ctx.bits[j], scale, ctx.signed)).sum()
        return grad_x, grad_p, None, None, None, None, None


def composite_activation(x: torch.Tensor, prec: PrecisionSample, scale: torch.Tensor, signed: bool) -> torch.Tensor:
    return _CompositeQuant.apply(x, prec.weights, scale, tuple(prec.bits), signed, prec.grad_paths, True)


class _Quantized:
    """Activation-scale tracking shared by the quantized conv and linear layers."""

    act_scale: torch.Tensor
    signed_input: bool

    def _track(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                m = x.detach().abs().amax() if self.signed_input else x.detach().clamp_min(0).amax()
                if float(self.act_scale) <= 0:  # first batch
                    self.act_scale.copy_(m)
                else:
                    self.act_scale.mul_(1 - SCALE_MOMENTUM).add_(m, alpha=SCALE_MOMENTUM)
        return self.act_scale.clamp_min(1e-8)


class QConv2d(nn.Conv2d, _Quantized):
    """A conv whose operands are quantized at the precision sample it is given (float if None)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, stride: int = 1, padding: int = 0, groups: int = 1,
                 bias: bool = False, signed_input: bool = True) -> None:
        super().__init__(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups, bias=bias)
        self.signed_input = signed_input
        self.register_buffer("act_scale", torch.zeros(()))

    def forward(self, x: torch.Tensor, prec: PrecisionSample | None = None) -> torch.Tensor:  # type: ignore[override]
        if prec is None:
            return super().forward(x)
        scale = self._track(x)
        if prec.all_paths:
            out = None
            for j, b in enumerate(prec.bits):
                xq = ste(x, quantize_values(x, b, scale, self.signed_input))
                wq = ste(self.weight, quantize_values(self.weight, b, weight_scale(self.weight), True))
                term = prec.weights[j] * self._conv_forward(xq, wq, self.bias)
                out = term if out is None else out + term
            return out
        a = composite_activation(x, prec, scale, self.signed_input)
        return self._conv_forward(a, composite_weight(self.weight, prec), self.bias)


class QLinear(nn.Linear, _Quantized):
    """A linear layer with the same quantizers (the classifier at the edge precision)."""

    def __init__(self, c_in: int, c_out: int, *, bias: bool = True, signed_input: bool = False) -> None:
        super().__init__(c_in, c_out, bias=bias)
        self.signed_input = signed_input
        self.register_buffer("act_scale", torch.zeros(()))

    def forward(self, x: torch.Tensor, prec: PrecisionSample | None = None) -> torch.Tensor:  # type: ignore[override]
        if prec is None:
            return super().forward(x)
        a = composite_activation(x, prec, self._track(x), self.signed_input)
        return F.linear(a, composite_weight(self.weight, prec), self.bias)


def gumbel_softmax(logits: torch.Tensor, tau: float, generator: torch.Generator,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """Soft Gumbel-softmax samples softmax((logits + g) / tau) along the last axis, with the
    noise drawn from `generator` (so that every rank and a resumed run draw the same)."""
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float32).to(logits.device, logits.dtype)
    g = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
    z = (logits + g) / tau
    if mask is not None:
        z = z.masked_fill(~mask, float("-inf"))
    return torch.softmax(z, dim=-1)


def straight_through(soft: torch.Tensor) -> torch.Tensor:
    """One-hot of the argmax in value, the gradient of `soft` (hard Gumbel-softmax)."""
    hard = torch.zeros_like(soft).scatter_(-1, soft.detach().argmax(-1, keepdim=True), 1.0)
    return hard - soft.detach() + soft


def sample_precisions(beta: torch.Tensor, tau: float, generator: torch.Generator, *, updating_arch: bool,
                      mode: PrecisionMode, top_k: int = 2) -> tuple[torch.Tensor, list[tuple[int, ...]] | None]:
    """([L, J] precision weights p for one step, the choices each layer's gradient reaches).

    TRIPS Eq. 4 in HETEROGENEOUS mode.  Updating the weights: soft samples without gradient
    (HETEROGENEOUS, ALL_PATHS) or hard ones (HARD).  Updating beta: hard straight-through samples
    (HETEROGENEOUS, HARD) whose gradient reaches the top-K choices by relaxed probability, as
    TRIPS Sec. 3.4 does for alpha (Eq. 7) and "similarly for beta"; or soft ones (ALL_PATHS)."""
    soft = gumbel_softmax(beta, tau, generator)
    hard = mode is PrecisionMode.HARD or (mode is PrecisionMode.HETEROGENEOUS and updating_arch)
    p = straight_through(soft) if hard else soft
    if not updating_arch:
        return p.detach(), None
    if not hard:
        return p, None
    k = min(top_k, beta.shape[-1])
    return p, [tuple(row) for row in soft.detach().topk(k, dim=-1).indices.tolist()]
