"""One interface over both cost models.

`evaluate(batch, target)` costs B designs at once (search); `cost_design(design, target)` costs
one IR design for reports, through the very same code on a batch of one, so that what a search
optimized is what the report says.  One exception, on ASIC targets: the batched model counts as
`timeloop-model` does with link transfers disabled, and the report prices each layer's link
transfers on top (`_link_transfer_energy`), so that report.json equals `timeloop-model` run with
its defaults.  Link transfers only replace global-buffer reads by cheaper neighbour reads where
that lowers the buffer's accesses, and they never change cycles on dnac's hierarchy (only DRAM
has a bandwidth limit, and they do not touch DRAM), so the search optimizes a close upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from dnac.compiler.cost import asic, fpga
from dnac.compiler.cost.base import BatchCost
from dnac.compiler.cost.canonical import dram_words
from dnac.compiler.das.batch import DesignBatch, encode
from dnac.compiler.ir.design import DesignGraph
from dnac.compiler.targets import AsicTarget, FpgaTarget

Target = FpgaTarget | AsicTarget

#: Objectives per target kind; lower `BatchCost.objective` values are better.
OBJECTIVES: dict[str, tuple[str, ...]] = {
    FpgaTarget.KIND: ("fps", "latency"),
    AsicTarget.KIND: ("edp", "latency", "energy"),
}


def evaluate(batch: DesignBatch, target: Target, *, device: torch.device | None = None) -> BatchCost:
    device = device or torch.device("cpu")
    if isinstance(target, FpgaTarget):
        return fpga.evaluate(batch, target, dram_words(batch, device=device), device=device)
    return asic.evaluate(batch, target, device=device)


@dataclass
class DesignCost:
    """The figures of one design, as report.json states them."""

    model: str
    target: str
    arch: str
    feasible: bool
    fps: float
    latency_ms: float
    cycles_per_frame: float
    throughput_gops: float
    energy_pj: float | None
    edp: float | None
    resources: dict[str, float]
    layers: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "target": self.target, "arch": self.arch, "feasible": self.feasible,
            "fps": self.fps, "latency_ms": self.latency_ms, "cycles_per_frame": self.cycles_per_frame,
            "throughput_gops": self.throughput_gops, "resources": dict(self.resources),
            "energy_pj": self.energy_pj, "edp": self.edp, "layers": list(self.layers),
        }


def _num(x: torch.Tensor) -> float | None:
    v = float(x)
    return None if math.isnan(v) else v


def _link_transfer_energy(design: DesignGraph, target: AsicTarget, names: list[str]) -> dict[str, float]:
    """Per layer, the exact `timeloop-model` energy with link transfers (the scalar model on the
    layer's Timeloop form); empty when the target prices them off."""
    if not target.link_transfers:
        return {}
    from dnac.compiler.timeloop import evaluate as timeloop_model
    from dnac.compiler.timeloop import lower

    return {name: timeloop_model(lower(design, name, target)).energy_pJ for name in names}


def cost_design(design: DesignGraph, target: Target) -> DesignCost:
    """Cost one mapped design on dnac's canonical hierarchy."""
    batch = encode(design)
    c = evaluate(batch, target)
    names = [layer.name for layer in batch.table.layers]
    per_layer = {
        name: (float(c.layer_cycles[0, i]), _num(c.layer_energy_pj[0, i])) for i, name in enumerate(names)
    }
    total, edp = _num(c.energy_pj[0]), _num(c.edp[0])
    if isinstance(target, AsicTarget):
        exact = _link_transfer_energy(design, target, names)
        for name, e in exact.items():
            total += e - per_layer[name][1]
            per_layer[name] = (per_layer[name][0], e)
        edp = total * 1e-12 * float(c.latency_cycles[0])
    layers = []
    for n in design.nodes():
        cycles, energy = per_layer.get(n.name, (0.0, 0.0 if isinstance(target, AsicTarget) else None))
        layers.append({"name": n.name, "op": n.layer.op.value, "chunk": n.chunk, "macs": n.layer.macs,
                       "cycles": cycles, "energy_pj": energy})
    return DesignCost(
        model=design.name, target=target.name, arch=design.arch.value, feasible=bool(c.feasible[0]),
        fps=float(c.fps[0]), latency_ms=float(c.latency_ms[0]), cycles_per_frame=float(c.cycles_per_frame[0]),
        throughput_gops=float(c.throughput_gops[0]), energy_pj=total, edp=edp,
        resources={k: float(v[0]) for k, v in c.resources.items()}, layers=layers,
    )
