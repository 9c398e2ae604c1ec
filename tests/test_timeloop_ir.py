"""The Timeloop form <-> IR bridge: imported golden cases reproduce timeloop-model, and lowered dnac
designs make the scalar model agree exactly with the batched ASIC cost model."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from conftest import random_design
from test_timeloop_golden import CASES, FIELDS, GOLDEN, expected

from dnac.compiler.cost import asic
from dnac.compiler.cost.canonical import nest_stats
from dnac.compiler.das.batch import encode
from dnac.compiler.errors import DesignError
from dnac.compiler.ir import design_yaml
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.ir.validate import violations
from dnac.compiler.targets import load_target
from dnac.compiler.timeloop import TL_TENSORS, ShapeKind, evaluate, lower, read_case
from dnac.compiler.timeloop.lower import split_spatial
from dnac.compiler.timeloop.to_ir import _unroll, import_case
from dnac.compiler.vocab import DIMS, Dim, MemLevel
from dnac.compiler.workload import zoo
from dnac.compiler.workload.builder import ModelBuilder
from dnac.compiler.workload.layer import Workload

TARGET = load_target("asic")


# ----------------------------------------------------------------------------- imported golden cases


@pytest.mark.parametrize("case", CASES)
def test_imported_case_reproduces_timeloop(case: str) -> None:
    g = import_case(GOLDEN / case)
    assert [v.line() for v in violations(g)] == []
    again = design_yaml.loads(design_yaml.dump(g))
    assert again == g
    nest = lower(again, case, TARGET)
    orig = read_case(GOLDEN / case)
    assert nest.problem == orig.problem
    assert [m.temporal for m in nest.mappings] == [m.temporal for m in orig.mappings]
    assert [m.spatial for m in nest.mappings] == [m.spatial for m in orig.mappings]
    assert [m.keep for m in nest.mappings] == [m.keep for m in orig.mappings]

    exp = expected(case)
    got = evaluate(nest)
    assert got.cycles == exp["cycles"]
    assert got.computes == exp["computes"]
    assert got.utilization == pytest.approx(exp["utilization"], rel=1e-12)
    assert got.energy_pJ == pytest.approx(exp["energy_pJ_full_precision"], rel=1e-9)
    for lv in got.levels:
        el = exp["levels"][lv.name]
        assert lv.cycles == el["cycles"], lv.name
        for t, ts in lv.tensors.items():
            for f in FIELDS:
                assert getattr(ts, f) == el["dataspaces"][t][f], (lv.name, t, f)


def test_imported_hierarchy_fields() -> None:
    """Eyeriss: three per-PE scratchpads below a shared GLB; keeps, sizes, energies, mesh kept."""
    g = import_case(GOLDEN / "p_002_eyeriss_C16_w16_c1_C64M32P14")
    chunk = g.chunks[0]
    assert chunk.level_names == ("DRAM", "GLB", "ifmap_spad", "weights_spad", "psum_spad")
    assert [lv.role for lv in chunk.hierarchy] == [MemLevel.DRAM, MemLevel.GB] + [MemLevel.RF] * 3
    assert [lv.per_pe for lv in chunk.hierarchy] == [False, False, True, True, True]
    assert chunk.fanout == "GLB" and chunk.noc is None and chunk.pe_array == (4, 4)
    glb, ifmap, weights = chunk.hierarchy[1], chunk.hierarchy[2], chunk.hierarchy[3]
    assert (glb.words, glb.block_size, glb.component, glb.keeps) == (8192, 4, "smartbuffer_SRAM", ("W", "I"))
    assert glb.attrs["n_banks"] == 8 and glb.attrs["memory_width"] == 64
    assert (ifmap.words, ifmap.keeps, weights.keeps) == (12, ("I",), ())
    assert (ifmap.read_pJ, ifmap.write_pJ) == (0.236322, 0.236322)
    assert chunk.attrs["mac_pJ"] == 2.20035 and chunk.attrs["mac_class"] == "intmac"
    assert chunk.unroll == {Dim.K: 4, Dim.C: 4}
    layer = g.node(g.name).layer
    assert (layer.K, layer.C, layer.H, layer.W, layer.padding) == (32, 64, 14, 14, (0, 0))


def test_imported_depthwise_and_stride() -> None:
    g = import_case(GOLDEN / "p_020_eyeriss_C168_w16_dw_G64R3P7_s2")
    layer = g.node(g.name).layer
    assert layer.is_depthwise and (layer.K, layer.C, layer.groups) == (64, 64, 64)
    assert (layer.H, layer.stride) == ((7 - 1) * 2 + 3, (2, 2))
    assert g.chunks[0].depthwise and g.input_shape == (64, 15, 15)


def test_unroll_covers_the_array() -> None:
    # aligned with the mapping's own split: X dims cover meshX, Y dims meshY
    assert _unroll({Dim.P: 2, Dim.Q: 7}, (Dim.P, Dim.Q), (), 16, 1) == {Dim.P: 2, Dim.Q: 8}
    # no aligned cover (X empty on an 8-wide mesh): any cover of all PEs
    assert _unroll({Dim.K: 4, Dim.N: 2}, (), (Dim.K, Dim.N), 8, 8) == {Dim.N: 2, Dim.K: 32}
    assert _unroll({}, (), (), 4, 4) == {Dim.K: 16}
    # no cover exists (3 x 5 on 16 PEs): the factors themselves, and the validator says so
    assert _unroll({Dim.P: 3, Dim.Q: 5}, (Dim.P,), (Dim.Q,), 4, 4) == {Dim.P: 3, Dim.Q: 5}


# ----------------------------------------------------------------------------- dnac designs: scalar == batched


def _asymmetric() -> Workload:
    """Kernels, strides and outputs that differ between rows and columns (R/P vs S/Q), batch 2,
    and a depthwise layer: catches a swapped Wstride/Hstride or a mis-projected depthwise."""
    b = ModelBuilder("asym", (6, 15, 11), batch=2, w_bits=8, a_bits=8)
    b.conv("c1", 12, (3, 1), stride=(2, 1))
    b.conv("dw", 12, (1, 3), stride=(1, 2), groups=12)
    b.conv("c2", 10, (3, 2), stride=(1, 2), padding=(1, 0))
    return b.build()


WORKLOADS = {"tiny": zoo.get("tiny"), "tiny_mbv2": zoo.get("tiny_mbv2"), "resnet18": zoo.get("resnet18"),
             "asym": _asymmetric()}
#: (model, seeds, layers to check: None = every compute layer)
SAMPLES = [("tiny", range(30), None), ("tiny_mbv2", range(25), None), ("asym", range(30), None),
           ("resnet18", range(6), ("conv1", "layer1.0.conv1", "layer2.0.conv1", "layer2.0.downsample.0",
                                   "layer3.1.conv2", "layer4.1.conv2", "fc"))]


def _check_layer(g: DesignGraph, name: str, li: int, cost, stats) -> None:
    nest = lower(g, name, TARGET)
    node = g.node(name)
    assert nest.problem.kind is (ShapeKind.DEPTHWISE if node.layer.is_depthwise else ShapeKind.CONV)
    got = evaluate(nest, link_transfers=False)  # the batched model counts without link transfers
    assert got.cycles == int(cost.layer_cycles[0, li]), name
    assert got.energy_pJ == pytest.approx(float(cost.layer_energy_pj[0, li]), rel=1e-9), name
    assert got.compute_cycles == int(stats.compute_cycles[li])
    for i, lv in enumerate(got.levels):
        assert int(stats.instances[li, i]) == lv.tensors["Weights"].utilized_instances, (name, lv.name)
        for j, t in enumerate(TL_TENSORS):
            ts = lv.tensors[t]
            row = (stats.reads[li, i, j], stats.fills[li, i, j], stats.updates[li, i, j], stats.tile[li, i, j],
                   stats.partition[li, i, j])
            assert tuple(int(v) for v in row) == (ts.reads, ts.fills, ts.updates, ts.utilized_capacity,
                                                  ts.partition_size), (name, lv.name, t)


@pytest.mark.parametrize("model,seeds,only", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_lowered_scalar_equals_batched(model: str, seeds: range, only: tuple[str, ...] | None) -> None:
    """The issue's "batched and scalar agree exactly": per compute layer, cycles exact and energy to
    1e-9 against `cost/asic.py`, every level/tensor count against `cost/canonical.nest_stats`."""
    checked = 0
    for seed in seeds:
        g = random_design(WORKLOADS[model], seed, target="asic")
        batch = encode(g)
        cost = asic.evaluate(batch, TARGET)
        stats = nest_stats(batch, device=torch.device("cpu"))
        names = [layer.name for layer in batch.table.layers]
        for li, name in enumerate(names):
            if only is None or name in only:
                _check_layer(g, name, li, cost, stats)
                checked += 1
    assert checked >= len(seeds) * (len(only) if only else 3)


def test_lowered_canonical_nest_shape() -> None:
    """Storage, blocks, DRAM bandwidth and the depthwise shape of a lowered canonical design."""
    g = random_design(WORKLOADS["tiny_mbv2"], 1, target="asic")
    dw = next(n for n in g.nodes() if n.layer.is_depthwise)
    chunk = g.chunks[dw.chunk]  # type: ignore[index]
    nest = lower(g, dw.name, TARGET)
    bits = max(chunk.w_bits, chunk.a_bits)
    assert [s.name for s in nest.storage] == ["DRAM", "GB", "RF"]
    assert [s.block_size for s in nest.storage] == [64 // bits, 64 // bits, 1]
    assert [s.instances for s in nest.storage] == [1, 1, chunk.pes]
    assert nest.storage[0].shared_bw == TARGET.dram_bytes_per_cycle * 8 / bits
    assert nest.storage[2].capacities == {"Weights": chunk.rf.W, "Inputs": chunk.rf.I, "Outputs": chunk.rf.O}
    m = dw.mapping
    assert m is not None
    assert nest.problem.bounds["G"] == m.covered(Dim.K) and nest.problem.bounds["C"] == nest.problem.bounds["M"] == 1
    assert nest.mappings[0].temporal_perm[:7] == tuple("G" if d is Dim.K else d.value for d in m.temporal["DRAM"].order)


def test_split_spatial() -> None:
    assert split_spatial({Dim.K: 4, Dim.P: 2}, 8, 1) == ((Dim.K, Dim.P), ())
    assert split_spatial({Dim.K: 4, Dim.P: 2, Dim.Q: 3}, 6, 4) == ((Dim.P, Dim.Q), (Dim.K,))
    assert split_spatial({Dim.K: 5}, 4, 4) is None


def test_lower_rejects_unmapped_layer_and_unfit_array() -> None:
    g = random_design(WORKLOADS["tiny"], 0, target="asic")
    g.set_node(LayerNode(g.node("conv1").layer))
    with pytest.raises(DesignError, match="no chunk or no mapping"):
        lower(g, "conv1", TARGET)
    g = random_design(WORKLOADS["tiny"], 0, target="asic")
    n = next(n for n in g.nodes() if n.mapping is not None and n.mapping.pes_used > 1)
    chunk = g.chunks[n.chunk]  # type: ignore[index]
    g.chunks[chunk.id] = replace(chunk, pe_array=(1, 1))
    with pytest.raises(DesignError, match="fit no split"):
        lower(g, n.name, TARGET)


def test_padding_is_lowered_as_padded_bounds() -> None:
    """A mapping that pads (covers more than the bound) lowers to the padded problem."""
    for seed in range(20):
        g = random_design(WORKLOADS["resnet18"], seed, target="asic")
        for n in g.nodes():
            if n.mapping is None:
                continue
            padded = {d: n.mapping.covered(d) for d in DIMS}
            if padded != n.layer.bounds:
                nest = lower(g, n.name, TARGET)
                assert nest.problem.macs == math.prod(padded.values()) > n.layer.macs
                return
    pytest.skip("no padded mapping among the samples")
