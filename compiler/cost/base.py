"""What a cost model returns, and the design-level roll-up shared by both targets.

Per layer a model gives cycles and energy; per design the roll-up turns them into frame
period, latency, FPS and throughput according to the architecture style:

- pipeline (DNNBuilder / Shen et al.): chunks run concurrently on successive frames, so the
  frame period is the busiest chunk's cycles per frame (and never less than the frame's DRAM
  traffic over the shared DRAM bandwidth);
- multi-cycle: one engine runs every layer in turn: the period is the sum over layers.

Latency is one frame's trip through every layer, the sum of layer cycles, in both styles.
Layers without MACs (pools, residual adds) run in the output stage of the chunk that produced
their input, costing their element operations over that chunk's PE lanes and, for an add,
the DRAM read of its other operands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from dnac.compiler.das.batch import LayerTable
from dnac.compiler.vocab import OpKind
from dnac.compiler.workload.layer import INPUT, Workload


@dataclass
class BatchCost:
    """Costs of B designs (torch tensors on one device; [B] unless noted)."""

    feasible: torch.Tensor  # bool: fits every budget and buffer
    cycles_per_frame: torch.Tensor  # frame period in cycles
    latency_cycles: torch.Tensor
    fps: torch.Tensor
    throughput_gops: torch.Tensor  # 2 x unpadded MACs x FPS / 1e9
    energy_pj: torch.Tensor  # per frame
    edp: torch.Tensor  # energy (J) x latency (cycles), Timeloop's J*cycle
    layer_cycles: torch.Tensor  # [B, L] compute layers
    layer_energy_pj: torch.Tensor  # [B, L]
    layer_bytes: torch.Tensor  # [B, L] DRAM bytes per frame
    dram_bytes_per_cycle: float  # the target's DRAM bandwidth
    resources: dict[str, torch.Tensor] = field(default_factory=dict)  # dsp, bram18k, lut, ff / area_mm2
    slot_resources: dict[str, torch.Tensor] = field(default_factory=dict)  # the same per chunk slot [B, S]
    clock_mhz: float = 200.0

    @property
    def latency_ms(self) -> torch.Tensor:
        return self.latency_cycles / (self.clock_mhz * 1e3)

    def raw(self, name: str) -> torch.Tensor:
        """Objective `name` for every design, feasible or not; lower is better."""
        return {
            "fps": self.cycles_per_frame,
            "latency": self.latency_cycles,
            "energy": self.energy_pj,
            "edp": self.edp,
        }[name].to(torch.float64)

    def objective(self, name: str) -> torch.Tensor:
        """Objective `name`; infeasible designs are +inf."""
        value = self.raw(name)
        return torch.where(self.feasible, value, torch.full_like(value, float("inf")))


@dataclass(frozen=True)
class AuxTable:
    """Layers without MACs, each attached to the compute layer whose chunk runs it."""

    names: tuple[str, ...]
    host: np.ndarray  # [A] index into the LayerTable of the compute layer producing its input
    ops: np.ndarray  # [A] element operations (comparisons, additions)
    extra_words: np.ndarray  # [A] words read from DRAM besides the host's output (other add operands)
    bits: np.ndarray  # [A] activation bits

    @classmethod
    def of(cls, workload: Workload, table: LayerTable) -> AuxTable:
        index = {layer.name: i for i, layer in enumerate(table.layers)}
        host_of: dict[str, int] = {}
        names, host, ops, extra, bits = [], [], [], [], []
        for layer in workload.layers:
            if layer.name in index:
                host_of[layer.name] = index[layer.name]
                continue
            first = layer.inputs[0]
            h = host_of.get(first, 0) if first != INPUT else 0
            host_of[layer.name] = h
            names.append(layer.name)
            host.append(h)
            ops.append(layer.ops)
            per_input = layer.N * layer.C * layer.H * layer.W
            extra.append(per_input * (len(layer.inputs) - 1) if layer.op is OpKind.ADD else 0)
            bits.append(layer.a_bits)
        return cls(tuple(names), np.array(host, dtype=np.int64), np.array(ops, dtype=np.int64),
                   np.array(extra, dtype=np.int64), np.array(bits, dtype=np.int64))


def roll_up(
    *,
    arch: torch.Tensor,  # [B] 0 pipeline / 1 multi-cycle
    slot: torch.Tensor,  # [B, L]
    n_slots: int,
    layer_cycles: torch.Tensor,  # [B, L]
    aux_cycles: torch.Tensor,  # [B, L] cycles of aux layers hosted by each compute layer
    frame_bytes: torch.Tensor,  # [B] DRAM bytes per frame
    bytes_per_cycle: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(frame period, latency) in cycles for each design."""
    per_layer = layer_cycles + aux_cycles
    chunk = torch.zeros(per_layer.shape[0], n_slots, dtype=per_layer.dtype, device=per_layer.device)
    chunk.scatter_add_(1, slot, per_layer)
    latency = per_layer.sum(dim=1)
    pipeline = torch.maximum(chunk.max(dim=1).values, frame_bytes / bytes_per_cycle)
    period = torch.where(arch == 0, pipeline, latency)
    return period, latency
