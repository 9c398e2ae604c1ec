"""A layer as a 7-D loop nest.

Every layer dnac handles is described by the loop bounds N, K, C, R, S, P, Q plus stride,
padding and groups, because that one shape is what the accelerator design space, the cost
models and both back-ends reason about.  A linear layer is a conv with R = S = P = Q = 1;
a depthwise conv has groups == C == K; pools and residual adds keep K == C and do no MACs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from dnac.compiler.vocab import DIMS, Activation, Dim, OpKind

#: The reserved name of the network input tensor in `Layer.inputs`.
INPUT = "input"


#: Largest integer bias a layer may carry (accumulator units): a trained channel whose weights or
#: BatchNorm gain vanish has an unbounded one; past this its output saturates anyway.
MAX_BIAS = 1 << 40


@dataclass(frozen=True)
class Layer:
    """One layer; all sizes are for the whole layer (not per group)."""

    name: str  # unique within a workload
    op: OpKind
    N: int  # batch
    K: int  # output channels
    C: int  # input channels (total, over all groups)
    R: int  # kernel rows
    S: int  # kernel columns
    P: int  # output rows
    Q: int  # output columns
    H: int  # input rows (before padding)
    W: int  # input columns (before padding)
    stride: tuple[int, int] = (1, 1)  # (rows, columns)
    padding: tuple[int, int] = (0, 0)  # (rows, columns), applied on both sides
    groups: int = 1
    bias: bool = False
    activation: Activation = Activation.NONE  # fused after the op
    w_bits: int = 16  # weight width
    a_bits: int = 16  # width of the activations this layer reads (its MAC operand)
    inputs: tuple[str, ...] = (INPUT,)  # producer layer names, or INPUT
    source: str = ""  # where it came from (file:line, torch source line), for messages
    bias_bound: int = 0  # largest |bias| in accumulator units when known (a trained network), else 0

    # ----------------------------------------------------------------- shape views
    @property
    def dims(self) -> dict[Dim, int]:
        """The loop bounds as a dict keyed by `Dim`."""
        return {d: getattr(self, d.value) for d in DIMS}

    @property
    def bounds(self) -> dict[Dim, int]:
        """The loop bounds a mapping tiles: `dims` with C counted per group.

        A grouped conv runs K x (C / groups) x R x S x P x Q MACs per sample, so the C loop of its
        nest has C / groups iterations (1 for depthwise); K ranges over all output channels.
        """
        b = self.dims
        b[Dim.C] = self.c_per_group
        return b

    @property
    def is_depthwise(self) -> bool:
        return self.op is OpKind.DWCONV

    @property
    def has_macs(self) -> bool:
        return self.op.has_weights

    @property
    def c_per_group(self) -> int:
        return self.C // self.groups

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (self.C, self.H, self.W)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (self.K, self.P, self.Q)

    # ----------------------------------------------------------------- counts
    @property
    def macs(self) -> int:
        """Multiply-accumulates of conv / depthwise / linear layers; 0 for pool and add."""
        if not self.has_macs:
            return 0
        return self.N * self.K * self.c_per_group * self.R * self.S * self.P * self.Q

    @property
    def ops(self) -> int:
        """Arithmetic operations, counting a MAC as 2 (the GOP/s convention of DNNBuilder)."""
        if self.has_macs:
            return 2 * self.macs
        if self.op.is_pool:
            return self.N * self.K * self.R * self.S * self.P * self.Q
        return self.N * self.K * self.P * self.Q * (len(self.inputs) - 1)

    @property
    def weight_count(self) -> int:
        if not self.has_macs:
            return 0
        return self.K * self.c_per_group * self.R * self.S

    @property
    def params(self) -> int:
        return self.weight_count + (self.K if self.bias and self.has_macs else 0)

    @property
    def input_size(self) -> int:
        """Input elements read (per input tensor), over the batch."""
        return self.N * self.C * self.H * self.W

    @property
    def output_size(self) -> int:
        return self.N * self.K * self.P * self.Q

    def with_bits(self, w_bits: int, a_bits: int) -> Layer:
        return replace(self, w_bits=w_bits, a_bits=a_bits)


def out_extent(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output extent of a sliding window (floor mode, as PyTorch's default)."""
    return (size + 2 * pad - kernel) // stride + 1


@dataclass(frozen=True)
class Workload:
    """A network as a list of layers in topological order, plus where it came from."""

    name: str
    input_shape: tuple[int, int, int]  # (C, H, W) of one sample
    batch: int
    layers: tuple[Layer, ...]
    target_overrides: dict[str, dict[str, float]] = field(default_factory=dict)  # {"zc706": {"dsp": 600}}
    source: str = ""  # file path, "zoo:<name>" or "torch:<factory>"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {layer.name: layer for layer in self.layers})

    def layer(self, name: str) -> Layer:
        return self._by_name[name]  # type: ignore[attr-defined]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.layers)

    @property
    def compute_layers(self) -> tuple[Layer, ...]:
        """Layers with MACs: the ones that occupy a PE array."""
        return tuple(layer for layer in self.layers if layer.has_macs)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def outputs(self) -> tuple[str, ...]:
        """Layers whose result no other layer consumes: the network outputs."""
        used = {src for layer in self.layers for src in layer.inputs}
        return tuple(layer.name for layer in self.layers if layer.name not in used)
