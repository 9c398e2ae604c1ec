"""Published FPGA designs that the ZC706 model is calibrated against.

DNNBuilder (Zhang et al., ICCAD 2018, "DNNBuilder: an Automated Tool for Building
High-Performance DNN Hardware Accelerators for FPGAs"), as quoted in DNA Tab. 5 / TRIPS
Tab. 5: on the ZC706 (XC7Z045) at 200 MHz with 16-bit fixed point,
    VGG16    680 DSP  262 GOP/s (measured)
    AlexNet  808 DSP  247 GOP/s (measured)

DNNBuilder builds a fine-grained layer pipeline: one stage (chunk) per convolution, each
computing CPF input channels x KPF output channels per cycle, the DSPs given to layers in
proportion to their work, the rest of each stage (tiling, buffers, the order of its loops)
chosen by its design-space exploration under the BRAM and DRAM-bandwidth limits.  `configure`
reproduces exactly that in dnac's design space: it fixes the pipeline, the chunk per layer, the
(K, C) parallel style and DNNBuilder's proportional (KPF, CPF) allocation, and lets a seeded
random exploration of the remaining knobs stand in for DNNBuilder's own exploration.  The
throughput counts the convolution layers, as DNNBuilder's figures do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import torch

from dnac.compiler.cost import fpga
from dnac.compiler.cost.canonical import dram_words, nest_stats
from dnac.compiler.cost.model import evaluate
from dnac.compiler.das.batch import DesignBatch
from dnac.compiler.das.decode import decode
from dnac.compiler.das.space import UNROLL_CHOICES, UNROLL_DIMS, DesignSpace
from dnac.compiler.targets import FpgaTarget
from dnac.compiler.vocab import ArchStyle, Dim, NocStyle, OpKind
from dnac.compiler.workload import zoo
from dnac.compiler.workload.layer import Workload


@dataclass(frozen=True)
class PublishedDesign:
    """A measured design: model, precision, DSPs used and throughput, with its source."""

    name: str
    model: str  # zoo name
    bits: int
    dsp: int
    clock_mhz: float
    gops: float
    source: str


DNNBUILDER: tuple[PublishedDesign, ...] = (
    PublishedDesign("DNNBuilder VGG16", "vgg16", 16, 680, 200.0, 262.0,
                    "Zhang et al., DNNBuilder, ICCAD 2018; quoted in DNA (Fu et al., MLSys 2021) Tab. 5"),
    PublishedDesign("DNNBuilder AlexNet", "alexnet", 16, 808, 200.0, 247.0,
                    "Zhang et al., DNNBuilder, ICCAD 2018; quoted in DNA (Fu et al., MLSys 2021) Tab. 5"),
)


def conv_part(w: Workload) -> Workload:
    """The feature extractor: every layer before the first linear layer."""
    layers = []
    for layer in w.layers:
        if layer.op is OpKind.LINEAR:
            break
        layers.append(layer)
    return Workload(w.name, w.input_shape, w.batch, tuple(layers), dict(w.target_overrides), w.source)


def proportional_unrolls(w: Workload, dsp: int, target: FpgaTarget) -> list[tuple[int, int]]:
    """DNNBuilder's allocation: each conv gets DSPs in proportion to its MACs, spent on the
    largest KPF x CPF (from dnac's unroll choices, within the layer's K and C) that fits."""
    layers = w.compute_layers
    total = sum(layer.macs for layer in layers)
    out = []
    for layer in layers:
        budget = dsp * layer.macs / total * target.macs_per_dsp(max(layer.w_bits, layer.a_bits))
        best = (1, 1)
        for k in UNROLL_CHOICES[Dim.K]:
            for c in UNROLL_CHOICES[Dim.C]:
                if k <= layer.K and c <= layer.c_per_group and k * c <= budget and k * c > best[0] * best[1]:
                    best = (k, c)
        out.append(best)
    return out


def configure(design: PublishedDesign, target: FpgaTarget, *, samples: int = 2000, seed: int = 0) -> DesignBatch:
    """The published design's configuration, its exploration done stage by stage.

    In a pipeline with one layer per chunk, a layer's cycles depend only on its own loop sizes
    and its chunk's knobs, so each stage can take the best of `samples` seeded random candidates
    independently (DNNBuilder also sizes each stage on its own), within an equal share of the
    BRAM budget.  Returns a batch of one design."""
    w = conv_part(zoo.get(design.model, w_bits=design.bits, a_bits=design.bits))
    t = target.with_overrides(dsp=design.dsp, clock_mhz=design.clock_mhz)
    space = DesignSpace(w, t)
    ch = space.random_choices(samples, np.random.default_rng(seed))
    fix = {space.i_arch: list(ArchStyle).index(ArchStyle.PIPELINE)}
    for g_i, g in enumerate(space.groups):
        fix[int(space.i_nchunks[g_i])] = len(g.layers) - 1
    unrolls = proportional_unrolls(w, design.dsp, t)
    for li, layer in enumerate(space.layers):
        slot = li  # one group (16-bit convolutions): slot i runs layer i
        fix[space.knob(f"layer[{layer.name}].chunk")] = slot
        fix[int(space.i_noc[slot])] = list(NocStyle).index(NocStyle.KCRS)
        k, c = unrolls[li]
        for j, d in enumerate(UNROLL_DIMS):
            if d in NocStyle.KCRS.dims:
                fix[int(space.i_unroll[slot, j])] = UNROLL_CHOICES[d].index({Dim.K: k, Dim.C: c}.get(d, 1))
    for knob, value in fix.items():
        ch[:, knob] = value
    batch = decode(space, ch)
    stats = nest_stats(batch, device=torch.device("cpu"))
    cycles, nbytes = fpga.layer_cycles(batch, dram_words(stats, *batch.slot.shape), t, torch.device("cpu"))
    bram = fpga.chunk_resources(batch, t, torch.device("cpu"))["bram18k"][:, : len(space.layers)]
    ok = (bram <= t.bram18k / len(space.layers)) & torch.as_tensor(batch.fits)[:, None]
    picks = _stage_picks(cycles, nbytes, ok, t.dram_bytes_per_cycle)
    best = ch[0].copy()
    for li in range(len(space.layers)):
        own = [int(space.i_noc[li]), *space.i_unroll[li], *space.i_order[li].ravel(), *space.i_buf[li],
               *space.i_rf[li], *space.i_gb[li]]
        best[own] = ch[picks[li], own]
    return decode(space, best[None])


def _stage_picks(cycles: torch.Tensor, nbytes: torch.Tensor, ok: torch.Tensor, bytes_per_cycle: float) -> list[int]:
    """Per stage, the candidate to use: for every target period T (each candidate's cycles),
    each stage takes its least-traffic candidate that finishes within T; the T whose frame
    period max(T, traffic / bandwidth) is smallest wins (DNNBuilder's bandwidth-aware sizing)."""
    inf = torch.tensor(float("inf"), dtype=torch.float64)
    best_period, best_picks = float("inf"), [0] * cycles.shape[1]
    for period in torch.unique(torch.where(ok, cycles, inf)):
        if not torch.isfinite(period):
            continue
        within = ok & (cycles <= period)
        if not within.any(0).all():
            continue
        traffic = torch.where(within, nbytes, inf)
        picks = traffic.argmin(0)
        frame = max(float(period), float(traffic.min(0).values.sum()) / bytes_per_cycle)
        if frame < best_period:
            best_period, best_picks = frame, [int(p) for p in picks]
    return best_picks


def predicted_gops(design: PublishedDesign, target: FpgaTarget, *, samples: int = 2000, seed: int = 0) -> tuple[float, dict[str, float]]:
    """dnac's predicted GOP/s for the published configuration, and its resources."""
    batch = configure(design, target, samples=samples, seed=seed)
    t = target.with_overrides(dsp=design.dsp, clock_mhz=design.clock_mhz)
    cost = evaluate(batch, t)
    return float(cost.throughput_gops[0]), {k: float(v[0]) for k, v in cost.resources.items()}
