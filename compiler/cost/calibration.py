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

DNNBuilder's per-stage (KPF, CPF) are not published, so the allocation is a stand-in, and the
prediction depends on it.  Two rules are offered (`ALLOCATIONS`):

- `balanced` (the default): any of dnac's unroll choices, padding charged -- the
  finest allocation, the one that reaches VGG16's measured 96% of the DSP roofline;
- `pow2`: the rule of IBM's open-source AccDNN (github.com/IBM/AccDNN,
  `util/optim.py` and `layers/convolution.py`: "The CPF/KPF should be power of 2", each dividing
  its channel count, at most 64; `settings.py` INPUT_CHANNEL_PADDING pads the image's 3 channels
  to 4), the RTL generator of DNNBuilder's group, whose column-pipeline architecture DNNBuilder
  shares.  It caps AlexNet's conv1 at 4 x 32 DSPs, as coarse as its measured 76% of the roofline
  suggests, but cannot reach VGG16's measured figure at 680 DSPs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dnac.compiler.cost.model import evaluate
from dnac.compiler.das.batch import DesignBatch
from dnac.compiler.das.decode import decode
from dnac.compiler.das.search import Das, DasConfig
from dnac.compiler.das.space import UNROLL_CHOICES, UNROLL_DIMS, DesignSpace
from dnac.compiler.targets import FpgaTarget
from dnac.compiler.vocab import ArchStyle, Dim, NocStyle, OpKind
from dnac.compiler.workload import zoo
from dnac.compiler.workload.layer import Layer, Workload


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
    PublishedDesign("DNNBuilder AlexNet", "alexnet_caffe", 16, 808, 200.0, 247.0,
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


def _pow2_divisors(n: int) -> tuple[int, ...]:
    """AccDNN's parallelism factors of a channel count: powers of two dividing it, at most 64."""
    return tuple(f for f in UNROLL_CHOICES[Dim.K] if f & (f - 1) == 0 and n % f == 0)


def _choices(layer: Layer, rule: str, first: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(KPF, CPF) candidates of one stage under an allocation rule."""
    if rule == "balanced":
        return (tuple(k for k in UNROLL_CHOICES[Dim.K] if k <= layer.K),
                tuple(c for c in UNROLL_CHOICES[Dim.C] if c <= layer.c_per_group))
    channels = 4 if first and layer.c_per_group == 3 else layer.c_per_group  # INPUT_CHANNEL_PADDING
    return _pow2_divisors(layer.K // layer.groups), _pow2_divisors(channels)


#: Allocation rules `balanced_unrolls` knows (see the module docstring).
ALLOCATIONS: tuple[str, ...] = ("balanced", "pow2")


def balanced_unrolls(w: Workload, dsp: int, target: FpgaTarget, rule: str = "balanced") -> list[tuple[int, int]]:
    """DNNBuilder's allocation: DSPs go to the stages in proportion to their work, i.e. the
    (KPF, CPF) of every stage (from the rule's choices) such that the slowest stage is as fast
    as the DSP budget allows: start every stage at 1 x 1 and keep giving the slowest stage its
    next larger option while the budget lasts."""
    if rule not in ALLOCATIONS:
        raise ValueError(f"unknown allocation rule {rule!r} (known: {', '.join(ALLOCATIONS)})")
    layers = w.compute_layers
    options = []
    for li, layer in enumerate(layers):
        kpf, cpf = _choices(layer, rule, li == 0)
        prods = sorted({(k * c, k, c) for k in kpf for c in cpf})
        best: dict[int, tuple[int, int, int]] = {}
        for p, k, c in prods:  # per product, the pair that pads least
            waste = math.ceil(layer.K / k) * k * math.ceil(layer.c_per_group / c) * c
            if p not in best or waste < best[p][0]:
                best[p] = (waste, k, c)
        # only options that are faster than every smaller one are worth their DSPs
        ranked, fastest = [], math.inf
        for p in sorted(best):
            _, k, c = best[p]
            cycles = math.ceil(layer.K / k) * math.ceil(layer.c_per_group / c)
            if cycles < fastest:
                ranked.append((p, k, c))
                fastest = cycles
        options.append(ranked)
    level = [0] * len(layers)
    per_dsp = [1.0 / target.macs_per_dsp(max(layer.w_bits, layer.a_bits)) for layer in layers]

    def used() -> float:
        return sum(options[i][level[i]][0] * per_dsp[i] for i in range(len(layers)))

    def time_of(i: int) -> float:  # cycles of stage i: its padded MACs over its MACs per cycle
        _, k, c = options[i][level[i]]
        layer = layers[i]
        return math.ceil(layer.K / k) * math.ceil(layer.c_per_group / c) * layer.macs / (layer.K * layer.c_per_group)

    while True:
        times = [time_of(i) for i in range(len(layers))]
        slow = max(range(len(layers)), key=times.__getitem__)
        if level[slow] + 1 >= len(options[slow]):
            break
        level[slow] += 1
        if used() > dsp:
            level[slow] -= 1
            break
    return [(options[i][level[i]][1], options[i][level[i]][2]) for i in range(len(layers))]


def frozen_knobs(space: DesignSpace, unrolls: list[tuple[int, int]]) -> dict[int, int]:
    """The knobs a DNNBuilder configuration fixes: pipeline, one chunk per layer, (K, C)
    parallelism with the given (KPF, CPF) per layer."""
    fix = {space.i_arch: list(ArchStyle).index(ArchStyle.PIPELINE)}
    for g_i, g in enumerate(space.groups):
        fix[int(space.i_nchunks[g_i])] = len(g.layers) - 1
    for li, layer in enumerate(space.layers):
        slot = li  # one group (16-bit convolutions): slot i runs layer i
        fix[space.knob(f"layer[{layer.name}].chunk")] = slot
        fix[int(space.i_noc[slot])] = list(NocStyle).index(NocStyle.KCRS)
        k, c = unrolls[li]
        for j, d in enumerate(UNROLL_DIMS):
            if d in NocStyle.KCRS.dims:
                fix[int(space.i_unroll[slot, j])] = UNROLL_CHOICES[d].index({Dim.K: k, Dim.C: c}.get(d, 1))
    return fix


def configure(design: PublishedDesign, target: FpgaTarget, *, steps: int = 200, seeds: int = 3,
              seed: int = 0, rule: str = "balanced") -> DesignBatch:
    """The published design's configuration; DAS, with every knob that configuration fixes
    frozen, explores the rest (tiling, loop orders, buffers) as DNNBuilder's own exploration
    did -- thoroughly: the best of `seeds` runs of `steps` steps (one short run leaves VGG16's
    stages refetching their inputs, and the prediction would measure the exploration's luck,
    not the model).  Returns a batch of one design."""
    w = conv_part(zoo.get(design.model, w_bits=design.bits, a_bits=design.bits))
    t = target.with_overrides(dsp=design.dsp, clock_mhz=design.clock_mhz)
    space = DesignSpace(w, t)
    frozen = frozen_knobs(space, balanced_unrolls(w, design.dsp, t, rule))
    runs = [Das(w, t, DasConfig(objective="fps", steps=steps, seed=seed + i, progress=False), frozen=frozen).run()
            for i in range(seeds)]
    best = min(runs, key=lambda r: r.objective)
    return decode(space, best.choices[None])


def predicted_gops(design: PublishedDesign, target: FpgaTarget, *, steps: int = 200, seeds: int = 3,
                   seed: int = 0, rule: str = "balanced") -> tuple[float, dict[str, float]]:
    """dnac's predicted GOP/s for the published configuration, and its resources."""
    batch = configure(design, target, steps=steps, seeds=seeds, seed=seed, rule=rule)
    t = target.with_overrides(dsp=design.dsp, clock_mhz=design.clock_mhz)
    cost = evaluate(batch, t)
    return float(cost.throughput_gops[0]), {k: float(v[0]) for k, v in cost.resources.items()}
