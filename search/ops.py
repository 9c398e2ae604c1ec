"""The FBNet candidate operators, registered by name (the mobile-vision `PRIMITIVES` habit).

An operator name is `k{kernel}_e{expansion}[_g{groups}]` or `skip` (Wu et al. 2019, "FBNet",
Table 2).  `k5_e6` is an inverted residual block: a 1x1 expansion to 6x the input width,
a 5x5 depthwise conv, a 1x1 linear projection, plus the identity when shapes allow.  Expansion
1 drops the 1x1 expansion conv (mobile-vision's IRFBlock); `_g2` makes both 1x1 convs grouped,
with a channel shuffle after the expansion (a free permutation, not a layer).

One `OpSpec` describes an operator once, as a list of conv layers (`layer_plan`): the
supernet's PyTorch block (`IRBlock`) and the compiler's `Workload` (`genotype.py`) are both
built from that plan, so the network that is trained is the network that is mapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
from torch import nn

from dnac.search.errors import ConfigError
from dnac.search.precision import PrecisionSample, QConv2d

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> value table; registering a name twice is a bug, an unknown name a user error."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, value: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.what} {name!r} registered twice")
        self._items[name] = value
        return value

    def get(self, name: str, *, file: str = "<python>", field: str = "") -> T:
        if name not in self._items:
            raise ConfigError(file, field, f"unknown {self.what} {name!r} (known: {', '.join(self._items)})")
        return self._items[name]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)


@dataclass(frozen=True)
class ConvPlan:
    """One conv layer of a block, as both the supernet and the workload builder need it."""

    role: str  # "pw" (1x1 expansion), "dw" (depthwise kxk) or "pwl" (1x1 linear projection)
    out_channels: int
    kernel: int
    stride: int
    groups: int  # == in channels for the depthwise conv
    relu: bool  # ReLU after BN (the projection is linear)


@dataclass(frozen=True)
class OpSpec:
    """An FBNet candidate: an inverted residual block, or `skip` (the identity)."""

    name: str
    kernel: int = 0
    expansion: int = 0
    groups: int = 1  # groups of both 1x1 convs
    skip: bool = False

    def layer_plan(self, c_in: int, c_out: int, stride: int) -> tuple[ConvPlan, ...]:
        """The conv layers of this block on a (c_in -> c_out, stride) position; () for skip."""
        if self.skip:
            return ()
        mid = c_in * self.expansion
        plan = []
        if mid != c_in:
            plan.append(ConvPlan("pw", mid, 1, 1, self.groups, True))
        plan.append(ConvPlan("dw", mid, self.kernel, stride, mid, True))
        plan.append(ConvPlan("pwl", c_out, 1, 1, self.groups, False))
        return tuple(plan)

    def fits(self, c_in: int, c_out: int, stride: int) -> bool:
        """Whether the block exists at this position: skip only where it is an identity, grouped
        1x1 convs only where the group count divides both widths."""
        if self.skip:
            return stride == 1 and c_in == c_out
        return c_in % self.groups == 0 and c_out % self.groups == 0

    def residual(self, c_in: int, c_out: int, stride: int) -> bool:
        return not self.skip and stride == 1 and c_in == c_out

    def __call__(self, c_in: int, c_out: int, stride: int) -> nn.Module:
        """Build the block (its `forward(x, prec)` takes the block's precision sample)."""
        if self.skip:
            return Skip()
        return IRBlock(self, c_in, c_out, stride)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class Skip(nn.Module):
    """The identity; it has no layers, so no precision and no hardware cost."""

    def forward(self, x: torch.Tensor, prec: PrecisionSample | None = None) -> torch.Tensor:
        return x


class IRBlock(nn.Module):
    """Inverted residual block of `OpSpec.layer_plan`: quantized conv -> BN (-> ReLU) per layer.

    Every conv of the block runs at the block's precision (TRIPS Sec. 4.1: weights and
    activations of a block share one precision)."""

    def __init__(self, spec: OpSpec, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.spec = spec
        self.plan = spec.layer_plan(c_in, c_out, stride)
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        c = c_in
        for i, p in enumerate(self.plan):
            # the block input may be negative (a linear projection plus a residual); inside the
            # block every conv reads a ReLU output
            self.convs.append(QConv2d(c, p.out_channels, p.kernel, stride=p.stride, padding=p.kernel // 2,
                                      groups=p.groups, signed_input=(i == 0)))
            self.bns.append(nn.BatchNorm2d(p.out_channels))
            c = p.out_channels
        self.residual = spec.residual(c_in, c_out, stride)
        self.shuffle = spec.groups if spec.groups > 1 and self.plan[0].role == "pw" else 1

    def forward(self, x: torch.Tensor, prec: PrecisionSample | None = None) -> torch.Tensor:
        y = x
        for p, conv, bn in zip(self.plan, self.convs, self.bns):
            y = bn(conv(y, prec))
            if p.relu:
                y = torch.relu(y)
            if p.role == "pw" and self.shuffle > 1:
                y = channel_shuffle(y, self.shuffle)
        return y + x if self.residual else y


OPS: Registry[OpSpec] = Registry("operator")
for _k in (3, 5):
    for _e in (1, 3, 6):
        OPS.register(f"k{_k}_e{_e}", OpSpec(f"k{_k}_e{_e}", _k, _e))
        if _e == 1:
            OPS.register(f"k{_k}_e1_g2", OpSpec(f"k{_k}_e1_g2", _k, 1, groups=2))
OPS.register("skip", OpSpec("skip", skip=True))
