"""The design IR: round trips through design.yaml and the validator's invariants."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import random_design

from dnac.compiler.errors import DesignError
from dnac.compiler.ir import design_yaml
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.ir.mapping import LevelLoops, Mapping
from dnac.compiler.ir.validate import check, violations
from dnac.compiler.vocab import ArchStyle, Dim
from dnac.compiler.workload import zoo


@pytest.mark.parametrize("name", zoo.names())
def test_unmapped_roundtrip_every_zoo_model(name: str) -> None:
    g = DesignGraph.from_workload(zoo.get(name), "zc706")
    assert violations(g) == []
    again = design_yaml.loads(design_yaml.dump(g))
    assert again == g
    assert again.workload().layers == g.workload().layers


@pytest.mark.parametrize("name", zoo.names())
@pytest.mark.parametrize("seed", [0, 1])
def test_mapped_roundtrip_every_zoo_model(name: str, seed: int) -> None:
    g = random_design(zoo.get(name), seed)
    assert violations(g) == [], [v.line() for v in violations(g)][:3]
    assert g.is_mapped
    text = design_yaml.dump(g)
    again = design_yaml.loads(text)
    assert again == g
    assert design_yaml.dump(again) == text  # the same bytes


def test_dump_is_readable_yaml() -> None:
    g = random_design(zoo.get("tiny"), 3)
    text = design_yaml.dump(g)
    assert text.startswith("# dnac design")
    assert "dnac_design: 1" in text
    assert "order: " in text and "loop_order:" in text
    # flow style leaves keep dims on one line
    assert "dims: {N: 1, K: 8, C: 3, R: 3, S: 3, P: 16, Q: 16}" in text


def test_graph_edges_follow_inputs() -> None:
    g = DesignGraph.from_workload(zoo.get("tiny_mbv2"), "asic")
    adds = [n for n in g.nodes() if n.layer.op.value == "add"]
    assert adds
    for n in adds:
        assert sorted(g.predecessors(n.name)) == sorted(n.layer.inputs)
    for u, v, t in g.edges():
        assert t.shape == (1, *g.node(u).layer.out_shape)


def _first_mapped(g: DesignGraph) -> LayerNode:
    return next(n for n in g.nodes() if n.mapping is not None)


def test_validator_names_node_and_field_for_uncovered_loop() -> None:
    g = random_design(zoo.get("tiny"), 5)
    n = _first_mapped(g)
    m = n.mapping
    assert m is not None
    temporal = dict(m.temporal)
    temporal["DRAM"] = LevelLoops(m.temporal["DRAM"].order, {})
    temporal["GB"] = LevelLoops(m.temporal["GB"].order, {})
    temporal["RF"] = LevelLoops(m.temporal["RF"].order, {})
    g.set_node(replace(n, mapping=Mapping(temporal, {})))
    lines = [v.line() for v in violations(g)]
    assert any(line.startswith(f"{n.name}: mapping.K: loops cover 1 of") for line in lines), lines
    with pytest.raises(DesignError, match=rf"{n.name}\.mapping\.\w"):
        check(g, "d.yaml")


def test_validator_rejects_padding_only_outer_iterations() -> None:
    g = random_design(zoo.get("tiny"), 5)
    n = _first_mapped(g)
    m = n.mapping
    assert m is not None
    t = dict(m.temporal)
    sizes = dict(t["DRAM"].sizes)
    sizes[Dim.K] = m.factor("DRAM", Dim.K) * 2 + 1
    t["DRAM"] = LevelLoops(t["DRAM"].order, sizes)
    g.set_node(replace(n, mapping=Mapping(t, m.spatial)))
    assert any(v.field == "mapping.K" and "all padding" in v.reason for v in violations(g))


def test_validator_chunk_rules() -> None:
    g = random_design(zoo.get("tiny_mbv2"), 2)
    g.arch = ArchStyle.PIPELINE
    dw = next(n for n in g.nodes() if n.layer.is_depthwise)
    conv = next(n for n in g.nodes() if n.layer.has_macs and not n.layer.is_depthwise)
    # move the depthwise layer into the conv's chunk
    g.set_node(replace(dw, chunk=conv.chunk, mapping=None))
    reasons = [v.line() for v in violations(g)]
    assert any("mixes depthwise" in r for r in reasons), reasons
    assert any(r.startswith(f"chunk {conv.chunk}: layers: lists") for r in reasons)


def test_validator_rejects_wrong_loop_order_and_unroll() -> None:
    g = random_design(zoo.get("tiny"), 7)
    n = _first_mapped(g)
    chunk = g.chunks[n.chunk]  # type: ignore[index]
    m = n.mapping
    assert m is not None
    t = dict(m.temporal)
    rf = t["RF"]
    t["RF"] = LevelLoops(tuple(reversed(rf.order)), rf.sizes)
    g.set_node(replace(n, mapping=Mapping(t, m.spatial)))
    assert any(v.field == "mapping.RF.order" for v in violations(g))
    bad_unroll = dict(chunk.unroll)
    foreign = next(d for d in Dim if d not in chunk.noc.dims)
    bad_unroll[foreign] = 2
    g.chunks[chunk.id] = replace(chunk, unroll=bad_unroll)
    assert any(v.node == f"chunk {chunk.id}" and v.field == f"unroll.{foreign}" for v in violations(g))


def test_validator_shape_and_edges() -> None:
    g = DesignGraph.from_workload(zoo.get("tiny"), "zc706")
    n = g.node("conv2")
    g.set_node(replace(n, layer=replace(n.layer, P=9)))
    lines = [v.line() for v in violations(g)]
    assert any(line.startswith("conv2: dims.P: is 9") for line in lines), lines
    assert any(line.startswith("pool: inputs[0]: reads [16, 9, 8]") for line in lines), lines


def test_design_yaml_structure_errors_name_the_field(tmp_path) -> None:
    g = random_design(zoo.get("tiny"), 1)
    text = design_yaml.dump(g)
    bad = text.replace("noc: ", "noc_style: ", 1)
    with pytest.raises(DesignError, match=r"chunks\[0\]\.noc_style: unknown field"):
        design_yaml.loads(bad, "d.yaml")
    bad = text.replace("dnac_design: 1", "dnac_design: 99")
    with pytest.raises(DesignError, match="schema version"):
        design_yaml.loads(bad, "d.yaml")
    with pytest.raises(DesignError, match=r"loop order 'KCRSPQ' must name each"):
        design_yaml.loads(text.replace(design_yaml._order(g.chunks[0].loop_order["DRAM"]), "KCRSPQ", 1))


def test_validator_checks_tiles_fit_buffers() -> None:
    from dnac.compiler.ir.chunk import BufferAlloc, canonical_hierarchy

    g = random_design(zoo.get("tiny"), 9)
    cid, chunk = next(iter(g.chunks.items()))
    g.chunks[cid] = replace(chunk, hierarchy=canonical_hierarchy(BufferAlloc(1, 1, 1), chunk.rf))
    lines = [v.line() for v in violations(g)]
    assert any(": mapping.GB: " in line and "tile of" in line and "exceeds" in line for line in lines), lines
