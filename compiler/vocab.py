"""Closed vocabularies shared by the workload, the IR, the cost models and the back-ends.

Each is a `StrEnum` so that YAML and JSON stay human-readable (`K`, `GB`, `pipeline`) while
code compares enum members, never loose strings.
"""

from __future__ import annotations

from enum import StrEnum


class Dim(StrEnum):
    """The 7 loop dimensions of a convolution, in the order dnac prints them.

    N batch, K output channels, C input channels, R/S kernel rows/columns, P/Q output
    rows/columns.  Timeloop calls K "M"; the Timeloop back-end translates.
    """

    N = "N"
    K = "K"
    C = "C"
    R = "R"
    S = "S"
    P = "P"
    Q = "Q"


DIMS: tuple[Dim, ...] = tuple(Dim)


class MemLevel(StrEnum):
    """Memory levels of the generic accelerator (DNA Tab. 1), outermost first."""

    DRAM = "DRAM"
    GB = "GB"  # global buffer (on-chip SRAM / BRAM)
    RF = "RF"  # per-PE register file


MEM_LEVELS: tuple[MemLevel, ...] = tuple(MemLevel)


class Tensor(StrEnum):
    """The three data spaces of a layer."""

    W = "W"  # weights
    I = "I"  # input activations
    O = "O"  # output activations / partial sums


TENSORS: tuple[Tensor, ...] = tuple(Tensor)


class NocStyle(StrEnum):
    """PE-array parallel styles of DNA Sec. 3.5: the dims unrolled spatially.

    KPQ parallelizes over output partial sums (output stationary, ShiDianNao-like), KCRS over
    kernels (weight parallel, DianNao/Zhang FPGA'15-like), KRQ over kernel rows and output
    columns (row stationary, Eyeriss-like).
    """

    KPQ = "KPQ"
    KCRS = "KCRS"
    KRQ = "KRQ"

    @property
    def dims(self) -> tuple[Dim, ...]:
        return tuple(Dim(ch) for ch in self.value)


class ArchStyle(StrEnum):
    """Pipeline of chunks (DNNBuilder / Shen et al.) or one multi-cycle shared engine."""

    PIPELINE = "pipeline"
    MULTI_CYCLE = "multi_cycle"


class OpKind(StrEnum):
    """What a layer computes."""

    CONV = "conv"
    DWCONV = "dwconv"  # depthwise: groups == C == K
    LINEAR = "linear"  # a conv with R = S = P = Q = 1
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    ADD = "add"  # element-wise residual add of two tensors

    @property
    def has_weights(self) -> bool:
        return self in (OpKind.CONV, OpKind.DWCONV, OpKind.LINEAR)

    @property
    def is_pool(self) -> bool:
        return self in (OpKind.MAXPOOL, OpKind.AVGPOOL)


class Activation(StrEnum):
    """Activation fused into the end of a layer."""

    NONE = "none"
    RELU = "relu"
    RELU6 = "relu6"
