"""Properties both cost models must keep on random designs and random layer shapes
(prime dimensions included)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnac.compiler.cost.fpga import frame_cycles_bound
from dnac.compiler.cost.model import evaluate
from dnac.compiler.das.decode import decode
from dnac.compiler.das.space import DesignSpace
from dnac.compiler.targets import load_target
from dnac.compiler.workload import ModelBuilder, Workload, zoo

ZC706 = load_target("zc706")
ASIC = load_target("asic")
PROPS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def workloads(draw: st.DrawFn) -> Workload:
    """One or two conv layers (and sometimes a depthwise one) of random, often prime, shape."""
    dims = st.sampled_from([1, 2, 3, 5, 7, 8, 11, 13, 16, 17, 24, 31, 32])
    c, h = draw(dims), draw(st.sampled_from([5, 7, 8, 13, 16, 17, 28]))
    bits = draw(st.sampled_from([8, 16]))
    b = ModelBuilder("prop", (c, h, h), w_bits=bits, a_bits=bits)
    for i in range(draw(st.integers(1, 2))):
        k = draw(st.sampled_from([1, 3, 5]))
        stride = draw(st.sampled_from([1, 2]))
        b.conv(f"c{i}", draw(dims), k, stride=stride, padding=k // 2, activation="relu")
    if draw(st.booleans()):
        ch = b.shape_of(b.last)[0]
        b.conv("dw", ch, 3, padding=1, groups=ch) if ch > 1 else b.conv("pw", 4, 1)
    return b.build()


def _designs(w: Workload, target, seed: int, n: int = 24):
    space = DesignSpace(w, target)
    return decode(space, space.random_choices(n, np.random.default_rng(seed)))


@PROPS
@given(workloads(), st.integers(0, 10_000))
def test_fpga_never_beats_the_dsp_roofline(w: Workload, seed: int) -> None:
    batch = _designs(w, ZC706, seed)
    cost = evaluate(batch, ZC706)
    pes = batch.unroll.prod(-1) * batch.used_slots()  # [B, S] MAC lanes built
    lanes = torch.as_tensor(pes.sum(1), dtype=torch.float64)
    clock = ZC706.clock_mhz * 1e6
    # 2 ops x MACs per cycle x clock; MACs per cycle <= the PE lanes, which the DSPs bound
    assert (cost.throughput_gops <= 2 * lanes * clock / 1e9 * (1 + 1e-9)).all()
    bits = int(batch.bits.max())
    dsp_bound = 2 * cost.resources["dsp"] * ZC706.macs_per_dsp(bits) * clock / 1e9
    assert (cost.throughput_gops <= dsp_bound * (1 + 1e-9)).all()
    # every layer takes at least its MACs over the lanes of its chunk; utilization <= 1
    layer_pes = batch.per_layer(batch.unroll).prod(-1)
    macs = batch.table.macs[None, :]
    util = macs / (cost.layer_cycles.numpy() * layer_pes)
    assert (util <= 1 + 1e-9).all()


@PROPS
@given(workloads(), st.integers(0, 10_000), st.sampled_from([16, 900]), st.sampled_from([4, 1090]),
       st.sampled_from([0.05, 3.2]))
def test_no_fpga_design_beats_the_frame_bound(w: Workload, seed: int, dsp: int, bram: int, gbps: float) -> None:
    target = ZC706.with_overrides(dsp=dsp, bram18k=bram, dram_bandwidth_gbps=gbps)
    cost = evaluate(_designs(w, target, seed, n=48), target)
    bound = frame_cycles_bound(w, target)
    assert bound > 0
    assert (cost.cycles_per_frame[cost.feasible] >= bound * (1 - 1e-9)).all()


def test_frame_bound_holds_on_alexnet_where_weights_stream() -> None:
    w = zoo.get("alexnet")
    cost = evaluate(_designs(w, ZC706, 0, n=256), ZC706)
    bound = frame_cycles_bound(w, ZC706)
    # AlexNet's 61 M 16-bit weights cannot stay in 2.4 MB of BRAM: the DRAM term binds
    assert bound > w.total_macs / ZC706.dsp
    assert cost.feasible.any()
    assert (cost.cycles_per_frame[cost.feasible] >= bound).all()


@PROPS
@given(workloads(), st.integers(0, 10_000))
def test_asic_cycles_at_least_macs_over_pes(w: Workload, seed: int) -> None:
    batch = _designs(w, ASIC, seed)
    cost = evaluate(batch, ASIC)
    layer_pes = batch.per_layer(batch.unroll).prod(-1)
    assert (cost.layer_cycles.numpy() * layer_pes >= batch.table.macs[None, :]).all()
    assert (cost.energy_pj > 0).all() and (cost.resources["area_mm2"] > 0).all()


@PROPS
@given(workloads(), st.integers(0, 10_000), st.sampled_from([1.5, 2.0, 8.0]))
def test_more_bandwidth_never_slower(w: Workload, seed: int, factor: float) -> None:
    for target in (ZC706, ASIC):
        batch = _designs(w, target, seed)
        base = evaluate(batch, target)
        fast = evaluate(batch, target.with_overrides(dram_bandwidth_gbps=target.dram_bandwidth_gbps * factor))
        assert (fast.cycles_per_frame <= base.cycles_per_frame * (1 + 1e-12)).all()
        assert (fast.layer_cycles <= base.layer_cycles * (1 + 1e-12)).all()


@PROPS
@given(workloads(), st.integers(0, 10_000))
def test_more_buffer_never_slower(w: Workload, seed: int) -> None:
    for target in (ZC706, ASIC):
        batch = _designs(w, target, seed)
        base = evaluate(batch, target)
        bigger = replace(batch, gb=batch.gb * 2, rf=batch.rf * 2)  # the same mappings in larger buffers
        more = evaluate(bigger, target)
        assert (more.cycles_per_frame <= base.cycles_per_frame * (1 + 1e-12)).all()


@PROPS
@given(workloads(), st.integers(0, 10_000))
def test_every_decoded_design_validates_or_is_infeasible(w: Workload, seed: int) -> None:
    from dnac.compiler.ir.validate import violations

    batch = _designs(w, ZC706, seed, n=8)
    for i in range(batch.size):
        g = batch.to_design(i, "zc706")
        assert violations(g) == [] or not batch.fits[i]
