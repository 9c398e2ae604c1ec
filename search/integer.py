"""The integer network a trained `QuantNet` stands for: what the HLS engines run.

`QuantNet` (search/train.py) trains with the quantizers below, chosen so that each step has an
integer counterpart in `dnac.compiler.refmodel` (and so in `dnac_ops.h`):

* every tensor (the input and each layer's output) lives on one signed grid `q * step`, q in the
  tensor's `refmodel.tensor_bits` range; `step = s / qmax`, s an exponential moving average of
  max|x| over training batches.  Tensors that an add sums, and a pool's input and output, share
  one scale (`scale_groups`), since the integer add and pools work on raw integers;
* rounding is half up, `floor(x / step + 1/2)`, as the requantization's `+ 2^(shift-1) >> shift`;
* weights are symmetric per output channel, `round(w / step_w[k])`, `step_w[k] = max|w[k]| /
  (2^(b-1) - 1)`;
* a conv's BatchNorm and a linear layer's bias fold into the integer bias and the per-channel
  multiplier: with `a_k = gamma_k / sqrt(var_k + eps)`, `b_k = beta_k - a_k mu_k`,
  `y_k = a_k step_in step_w[k] acc + b_k`, so `q_out = round((acc + B_k) M_k)` with
  `M_k = a_k step_in step_w[k] / step_out` (as `mult_k / 2^shift_k`, mult signed, at most 15 bits
  of magnitude) and `B_k = round(b_k / (a_k step_in step_w[k]))`;
* average pooling rounds half up on the input grid, as `refmodel.pool_out`; the activation is the
  clamp `[lo, hi]`, ReLU6's 6.0 rounded onto the output grid.

In eval mode `QuantNet` itself computes the folded form with B_k already rounded
(`QuantNet.folded`), so the QAT network that is evaluated is the one the integer network
represents.  `to_integer(net)` does the conversion and returns a `refmodel.Golden`-shaped set of
parameters, so `refmodel.forward` runs the integer network.  The two differ only where `M_k` is
not a power of two times a 15-bit integer and where float32 arithmetic lands on the other side of
a rounding tie: a unit in the last place here and there, which a narrow layer downstream can
amplify (measured on the searched Fashion-MNIST network: the same class for 99.55% of the test
images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from dnac.compiler import refmodel
from dnac.compiler.vocab import Activation, OpKind
from dnac.compiler.workload.layer import INPUT, Workload

if TYPE_CHECKING:
    from dnac.search.train import QuantNet as QuantNetLike

#: Magnitude bits of a requantization multiplier (`refmodel.MULT_BITS`).
MULT_BITS = refmodel.MULT_BITS


def scale_groups(w: Workload) -> dict[str, str]:
    """Tensor -> the tensor whose scale it shares: the inputs of an add, and a pool's input and
    output, are one group (union-find over the workload)."""
    parent = {INPUT: INPUT} | {layer.name: layer.name for layer in w.layers}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for layer in w.layers:
        if layer.op is OpKind.ADD:
            for src in layer.inputs[1:]:
                union(layer.inputs[0], src)
        elif layer.op.is_pool:
            union(layer.inputs[0], layer.name)
    return {t: find(t) for t in parent}


class RoundHalfUp(torch.autograd.Function):
    """floor(x + 1/2) with the straight-through gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.floor(x + 0.5)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


def grid_clamp(bits: int, activation: Activation, step: float) -> tuple[int, int]:
    """The integer clamp of a tensor of `bits` after `activation`, on a grid of `step`."""
    qmin, qmax = refmodel.signed_range(bits)
    if activation is Activation.RELU:
        return 0, qmax
    if activation is Activation.RELU6:
        return 0, min(qmax, math.floor(6.0 / step + 0.5))
    return qmin, qmax


def fake_quant(x: torch.Tensor, step: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """x on the grid `step`, clamped to [lo, hi] steps: the integer tensor's value."""
    return torch.clamp(RoundHalfUp.apply(x / step), lo, hi) * step


class ScaleTracker(nn.Module):
    """One scale group: s tracked as an EMA of max|x| while training, `step = s / qmax`."""

    def __init__(self, bits: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.qmax = refmodel.signed_range(bits)[1]
        self.momentum = momentum
        self.register_buffer("scale", torch.zeros(()))

    def observe(self, x: torch.Tensor) -> None:
        if self.training:
            with torch.no_grad():
                m = x.detach().abs().amax()
                if float(self.scale) <= 0:
                    self.scale.copy_(m)
                else:
                    self.scale.mul_(1 - self.momentum).add_(m, alpha=self.momentum)

    @property
    def step(self) -> torch.Tensor:
        return self.scale.clamp_min(1e-8) / self.qmax


def requant_pair(m: float, acc_peak: int) -> tuple[int, int]:
    """(mult, shift) with mult / 2^shift ~= m, |mult| < 2^MULT_BITS, and |acc_peak * mult| < 2^62."""
    if m == 0.0 or not math.isfinite(m):
        return 0, 0
    cap = max(1, ((1 << 62) - 1) // max(1, acc_peak))
    best = (round(m), 0) if abs(round(m)) <= cap else (0, 0)
    for shift in range(63):
        mult = math.floor(abs(m) * (1 << shift) + 0.5)
        if mult >= 1 << MULT_BITS or mult > cap:
            break
        best = (int(math.copysign(mult, m)), shift)
    return best


@dataclass
class IntegerNetwork:
    """The integer parameters of a trained network, in `refmodel.Golden`'s terms."""

    workload: Workload  # the trained workload, with `bias` set where BatchNorm folded one in
    input_step: float
    input_bits: int
    weights: dict[str, np.ndarray]
    biases: dict[str, np.ndarray]
    quant: dict[str, refmodel.Requant]

    def quantize_input(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """Images (N, C, H, W) as the network's integer input."""
        lo, hi = refmodel.signed_range(self.input_bits)
        return np.clip(np.floor(np.asarray(x, dtype=np.float64) / self.input_step + 0.5), lo, hi).astype(np.int64)

    def golden(self, images: np.ndarray) -> refmodel.Golden:
        """A `refmodel.Golden` of these parameters on integer `images` (N, C, H, W), every tensor run."""
        w = batched(self.workload, len(images))
        g = refmodel.Golden(0, images, self.weights, self.biases, self.quant)
        g.tensors = refmodel.forward(w, g)
        return g

    def logits(self, images: np.ndarray) -> np.ndarray:
        """The integer network's outputs (N, classes) for integer `images`."""
        out = self.workload.outputs[-1]
        return self.golden(images).tensors[out].reshape(len(images), -1)


def batched(w: Workload, n: int) -> Workload:
    """`w` at batch `n`."""
    from dataclasses import replace

    return replace(w, batch=n, layers=tuple(replace(layer, N=n) for layer in w.layers))


def to_integer(net: QuantNetLike) -> IntegerNetwork:
    """The integer network of a trained `QuantNet` in eval mode (see the module docstring)."""
    from dataclasses import replace

    from dnac.compiler.cost.fpga_buffers import acc_bits

    w = net.workload
    step = {t: float(net.step(t)) for t in net.tensor_group}
    weights: dict[str, np.ndarray] = {}
    biases: dict[str, np.ndarray] = {}
    quant: dict[str, refmodel.Requant] = {}
    layers = []
    with torch.no_grad():
        for layer in w.layers:
            s_out = step[layer.name]
            lo, hi = grid_clamp(net.bits[layer.name], layer.activation, s_out)
            if layer.has_macs:
                q, _ = net.weight(layer)
                _, eff, b_int = net.folded(layer)
                layer = replace(layer, bias=True, bias_bound=int(b_int.abs().max()))
                peak = (1 << acc_bits(layer)) - 1
                pairs = [requant_pair(float(m), peak) for m in (eff / s_out).tolist()]
                weights[layer.name] = q.to(torch.int64).reshape(layer.K, layer.c_per_group, layer.R, layer.S).numpy()
                biases[layer.name] = b_int.to(torch.int64).numpy()
                quant[layer.name] = refmodel.Requant(np.array([m for m, _ in pairs], dtype=np.int64),
                                                     np.array([s for _, s in pairs], dtype=np.int64), lo, hi)
            elif layer.op is OpKind.ADD:
                peak = (1 << acc_bits(layer)) - 1
                mult, shift = requant_pair(step[layer.inputs[0]] / s_out, peak)
                quant[layer.name] = refmodel.Requant(mult, shift, lo, hi)
            else:  # pools keep their input's grid
                quant[layer.name] = refmodel.Requant(1, 0, lo, hi)
            layers.append(layer)
    return IntegerNetwork(replace(w, layers=tuple(layers)), step[INPUT], net.bits[INPUT], weights, biases, quant)


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose largest logit (the first, as numpy's argmax) is the label."""
    return float((logits.argmax(1) == labels).mean()) if len(labels) else 0.0


def logits_both(net: QuantNetLike, integer: IntegerNetwork, images: torch.Tensor,
                batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(QAT logits, integer network logits) of float `images`, in batches."""
    qat, ints = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = images[start:start + batch]
            qat.append(net(x).numpy())
            ints.append(integer.logits(integer.quantize_input(x.numpy())))
    return np.concatenate(qat), np.concatenate(ints)
