"""The supernet: one `MixedLayer` per searchable layer between a fixed stem and head.

Architecture parameters live apart from the weights (the DARTS habit): `ArchParams` holds
alpha [L, K] (operator logits, padded to the widest layer and masked) and beta [L, J]
(precision logits) under the `arch.` prefix; `arch_parameters()` and `weight_parameters()`
give the two disjoint sets their own optimizers.  A step first samples an `ArchSample`
(`sample()`, with one of the `SamplingMode`s and `PrecisionMode`s), then runs
`forward(x, sample)`; the hardware penalty reads the same sample, so the network that is
trained in a step is the one that is charged for.  `derive()` returns the argmax network and
precisions as a frozen `Genotype`.  No device is hard-coded: everything follows the module's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dnac.search.genotype import Genotype
from dnac.search.ops import OPS
from dnac.search.precision import PrecisionMode, PrecisionSample, QConv2d, QLinear, sample_precisions
from dnac.search.sampling import OpSample, SamplingMode, sample_ops
from dnac.search.space import LayerSlot, SearchSpace

ARCH_PREFIX = "arch."


@dataclass
class ArchSample:
    """Everything a step draws from alpha and beta."""

    ops: OpSample
    bits: torch.Tensor  # [L, J] precision weights p (TRIPS Eq. 4)
    precision_mode: PrecisionMode
    bit_paths: list[tuple[int, ...]] | None = None  # [L] precisions beta's gradient reaches (top-K)

    @property
    def active_bits(self) -> list[int]:
        return self.bits.detach().argmax(-1).tolist()

    def precision(self, layer: int, bits: tuple[int, ...]) -> PrecisionSample:
        return PrecisionSample(bits, self.bits[layer], self.precision_mode is PrecisionMode.ALL_PATHS,
                               None if self.bit_paths is None else self.bit_paths[layer])


class ArchParams(nn.Module):
    """alpha and beta, initialized to zero (uniform), with the mask of existing candidates."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        L, K = space.n_layers, space.max_candidates
        self.alpha = nn.Parameter(torch.zeros(L, K))
        self.beta = nn.Parameter(torch.zeros(L, len(space.bits)))
        mask = torch.zeros(L, K, dtype=torch.bool)
        for s in space.layers():
            mask[s.index, : len(s.candidates)] = True
        self.register_buffer("mask", mask)

    def op_probs(self) -> torch.Tensor:
        return torch.softmax(self.alpha.detach().masked_fill(~self.mask, float("-inf")), -1)

    def bit_probs(self) -> torch.Tensor:
        return torch.softmax(self.beta.detach(), -1)


class MixedLayer(nn.Module):
    """The candidates of one searchable layer; runs the paths of its sample (DNA Eq. 6 /
    TRIPS Eq. 6)."""

    def __init__(self, slot: LayerSlot) -> None:
        super().__init__()
        self.slot = slot
        self.ops = nn.ModuleList(OPS[name](slot.c_in, slot.c_out, slot.stride) for name in slot.candidates)

    def forward(self, x: torch.Tensor, paths: list[int], weights: torch.Tensor, prec: PrecisionSample) -> torch.Tensor:
        out = None
        for k in paths:
            y = self.ops[k](x, prec)
            if weights.requires_grad or len(paths) > 1:
                y = weights[k] * y
            out = y if out is None else out + y
        assert out is not None
        return out


class Supernet(nn.Module):
    def __init__(self, space: SearchSpace, *, sampling: SamplingMode = SamplingMode.SINGLE_PATH,
                 precision: PrecisionMode = PrecisionMode.HETEROGENEOUS, top_k: int = 2) -> None:
        super().__init__()
        self.space = space
        self.sampling = sampling
        self.precision_mode = precision
        self.top_k = top_k
        c_img = space.input_shape[0]
        self.stem = QConv2d(c_img, space.stem_channels, 3, stride=space.stem_stride, padding=1)
        self.stem_bn = nn.BatchNorm2d(space.stem_channels)
        self.layers = nn.ModuleList(MixedLayer(s) for s in space.layers())
        self.head = QConv2d(space.last_channels, space.head_channels, 1, signed_input=True)
        self.head_bn = nn.BatchNorm2d(space.head_channels)
        self.fc = QLinear(space.head_channels, space.classes)
        self.arch = ArchParams(space)

    # ------------------------------------------------------------------ parameters
    def arch_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n.startswith(ARCH_PREFIX)]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith(ARCH_PREFIX)]

    # ------------------------------------------------------------------ sampling
    def sample(self, tau: float, generator: torch.Generator, *, updating_arch: bool) -> ArchSample:
        a = self.arch
        ops = sample_ops(self.sampling, a.alpha, a.mask, tau, generator, updating_arch=updating_arch,
                         top_k=self.top_k)
        bits, paths = sample_precisions(a.beta, tau, generator, updating_arch=updating_arch,
                                        mode=self.precision_mode, top_k=self.top_k)
        return ArchSample(ops, bits, self.precision_mode, paths)

    def fixed_sample(self, ops: list[int], bits: list[int]) -> ArchSample:
        """The single path with operator ops[l] and precision bits[l] at every layer."""
        dev = self.arch.alpha.device
        L, K, J = self.space.n_layers, self.space.max_candidates, len(self.space.bits)
        w = torch.zeros(L, K, device=dev)
        w[torch.arange(L), torch.as_tensor(ops)] = 1.0
        p = torch.zeros(L, J, device=dev)
        p[torch.arange(L), torch.as_tensor(bits)] = 1.0
        mode = PrecisionMode.HARD if self.precision_mode is PrecisionMode.ALL_PATHS else self.precision_mode
        return ArchSample(OpSample(list(ops), [[o] for o in ops], w), p, mode)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, sample: ArchSample) -> torch.Tensor:
        edge = PrecisionSample.fixed(self.space.edge_bits, x.device)
        y = torch.relu(self.stem_bn(self.stem(x, edge)))
        for layer, paths, weights in zip(self.layers, sample.ops.paths, sample.ops.weights):
            y = layer(y, paths, weights, sample.precision(layer.slot.index, self.space.bits))
        y = torch.relu(self.head_bn(self.head(y, edge)))
        y = y.mean(dim=(2, 3))
        return self.fc(y, edge)

    # ------------------------------------------------------------------ derivation
    def argmax(self) -> tuple[list[int], list[int]]:
        """(operator, precision) indices of the most likely network (DNA Eq. 6 argmax)."""
        return self.arch.op_probs().argmax(-1).tolist(), self.arch.bit_probs().argmax(-1).tolist()

    def derive(self, name: str | None = None) -> Genotype:
        ops, bits = self.argmax()
        return Genotype.of(self.space, ops, bits, name)
