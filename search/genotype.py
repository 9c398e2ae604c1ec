"""The derived network: a frozen `Genotype`, its `Workload` for the compiler, its model.yaml.

`Supernet.derive()` returns a Genotype (the argmax of alpha and beta per layer); the compiler
maps `Genotype.to_workload()` (DAS, `dnac build`), and `model_yaml()` writes any workload as a
model.yaml that `dnac build` / `dnac train` read back to the very same layers (tested).  Block
layers come from `OpSpec.layer_plan`, as the supernet's modules do.  BatchNorm is folded into
the convs (so each conv has a bias); the channel shuffle of `_g2` blocks is a permutation and
is not a layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dnac.compiler.vocab import OpKind
from dnac.compiler.workload.builder import ModelBuilder
from dnac.compiler.workload.layer import INPUT, Workload
from dnac.compiler.yamlio import dump_yaml
from dnac.search.ops import OPS
from dnac.search.space import SearchSpace


@dataclass(frozen=True)
class BlockGene:
    """One searchable layer of the derived network."""

    op: str  # operator name (ops.OPS)
    c_in: int
    c_out: int
    stride: int
    bits: int  # weights and activations of the block


@dataclass(frozen=True)
class Genotype:
    """A network of the space with its precisions: what co-search hands to the compiler."""

    name: str
    input_shape: tuple[int, int, int]
    classes: int
    stem_channels: int
    stem_stride: int
    head_channels: int
    edge_bits: int  # stem, head and classifier precision
    blocks: tuple[BlockGene, ...]

    @classmethod
    def of(cls, space: SearchSpace, ops: list[int], bits: list[int], name: str | None = None) -> Genotype:
        """The genotype with operator index ops[l] (into layer l's candidates) and precision index
        bits[l] (into space.bits) at every searchable layer."""
        blocks = tuple(
            BlockGene(s.candidates[ops[s.index]], s.c_in, s.c_out, s.stride, space.bits[bits[s.index]])
            for s in space.layers()
        )
        return cls(name or space.name, space.input_shape, space.classes, space.stem_channels, space.stem_stride,
                   space.head_channels, space.edge_bits, blocks)

    def key(self) -> tuple[tuple[str, int], ...]:
        """What distinguishes two genotypes of one space (for caches)."""
        return tuple((b.op, b.bits) for b in self.blocks)

    def describe(self) -> list[str]:
        return [f"{b.op}@{b.bits}b" for b in self.blocks]

    def to_workload(self, *, batch: int = 1) -> Workload:
        b = ModelBuilder(self.name, self.input_shape, batch=batch, w_bits=self.edge_bits, a_bits=self.edge_bits,
                         file=f"genotype:{self.name}")
        b.conv("stem", self.stem_channels, 3, stride=self.stem_stride, padding=1, bias=True, activation="relu")
        for i, g in enumerate(self.blocks):
            x = b.last
            plan = OPS[g.op].layer_plan(g.c_in, g.c_out, g.stride)
            for p in plan:
                b.conv(f"blocks.{i}.{p.role}", p.out_channels, p.kernel, stride=p.stride, padding=p.kernel // 2,
                       groups=p.groups, bias=True, activation="relu" if p.relu else "none", w_bits=g.bits,
                       a_bits=g.bits)
            if OPS[g.op].residual(g.c_in, g.c_out, g.stride):
                b.add(f"blocks.{i}.add", [b.last, x], a_bits=g.bits)
        b.conv("head", self.head_channels, 1, bias=True, activation="relu")
        b.pool("avgpool", "avgpool", None)
        b.flatten("flatten")
        b.linear("fc", self.classes, bias=True)
        return b.build(source=f"genotype:{self.name}")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "input_shape": list(self.input_shape), "classes": self.classes,
                "stem_channels": self.stem_channels, "stem_stride": self.stem_stride,
                "head_channels": self.head_channels, "edge_bits": self.edge_bits,
                "blocks": [{"op": g.op, "c_in": g.c_in, "c_out": g.c_out, "stride": g.stride, "bits": g.bits}
                           for g in self.blocks]}


def model_yaml(w: Workload, *, header: str = "") -> str:
    """Any workload as a model.yaml (`dnac.compiler.workload.model_yaml` reads it back to the
    same layers).  Every layer states its bits, so no default precision is involved."""
    entries: list[dict[str, Any]] = []
    prev = INPUT
    for layer in w.layers:
        e: dict[str, Any] = {"name": layer.name}
        src = layer.inputs[0]
        if layer.op is OpKind.ADD:
            e.update(op="add", inputs=list(layer.inputs))
        elif layer.op in (OpKind.CONV, OpKind.DWCONV):
            dw = layer.op is OpKind.DWCONV
            e["op"] = "dwconv" if dw else "conv"
            if not dw:
                e["out_channels"] = layer.K
            e["kernel"] = layer.R if layer.R == layer.S else [layer.R, layer.S]
            if layer.stride != (1, 1):
                e["stride"] = layer.stride[0] if layer.stride[0] == layer.stride[1] else list(layer.stride)
            if layer.padding != (0, 0):
                e["padding"] = layer.padding[0] if layer.padding[0] == layer.padding[1] else list(layer.padding)
            if layer.groups != 1 and not dw:
                e["groups"] = layer.groups
        elif layer.op is OpKind.LINEAR:
            if prev != src or _spatial(w, src):
                entries.append({"name": f"{layer.name}_flatten", "op": "flatten", **({"input": src} if prev != src else {})})
                prev = src = f"{layer.name}_flatten"
            e.update(op="linear", out_features=layer.K)
        else:  # pools
            e["op"] = layer.op.value
            e["kernel"] = "global" if (layer.R, layer.S) == (layer.H, layer.W) and layer.P == layer.Q == 1 else (
                layer.R if layer.R == layer.S else [layer.R, layer.S])
            if layer.stride != (layer.R, layer.S):
                e["stride"] = layer.stride[0] if layer.stride[0] == layer.stride[1] else list(layer.stride)
            if layer.padding != (0, 0):
                e["padding"] = layer.padding[0] if layer.padding[0] == layer.padding[1] else list(layer.padding)
        if layer.op is not OpKind.ADD and src != prev:
            e["input"] = src
        if layer.has_macs:
            e["bias"] = layer.bias
        if layer.activation.value != "none":
            e["activation"] = layer.activation.value
        if layer.has_macs:
            e["w_bits"] = layer.w_bits
        e["a_bits"] = layer.a_bits
        entries.append(e)
        prev = layer.name
    doc = {"name": w.name, "input_shape": list(w.input_shape), "batch": w.batch, "layers": entries}
    text = dump_yaml(doc)
    if header:
        text = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + text
    return text


def _spatial(w: Workload, name: str) -> bool:
    """Whether tensor `name` still has a spatial extent (it needs a flatten before a linear)."""
    if name == INPUT:
        return True
    layer = w.layer(name)
    return layer.op is not OpKind.LINEAR and (layer.P, layer.Q) != (1, 1)
