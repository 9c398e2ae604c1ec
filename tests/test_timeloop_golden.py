"""dnac's Timeloop model against the real Timeloop v3.0.3 (40 + 8 golden cases) and hand counts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dnac.compiler.errors import DesignError
from dnac.compiler.timeloop import (
    Compute,
    LevelMapping,
    Nest,
    Problem,
    ShapeKind,
    Storage,
    evaluate,
    read_case,
)

GOLDEN = Path(__file__).parent / "data" / "timeloop-golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
GOLDEN2 = Path(__file__).parent / "data" / "timeloop-golden-2"
CASES2 = sorted(p.name for p in GOLDEN2.iterdir() if p.is_dir())
FIELDS = ("reads", "fills", "updates", "utilized_capacity", "utilized_instances", "partition_size")


def expected(case: str, link_transfers: bool = True) -> dict:
    """result.json (Timeloop's defaults), or with `link_transfers=False` the numbers of its re-run
    with TIMELOOP_DISABLE_LINK_TRANSFERS=1 where Timeloop used link transfers."""
    res = json.loads((GOLDEN / case / "result.json").read_text())
    var = res.get("no_link_transfers_variant", {})
    if link_transfers or not res.get("link_transfers_used") or var.get("identical"):
        return res
    out = copy.deepcopy(res)
    for key in ("cycles", "utilization", "energy_pJ_full_precision"):
        out[key] = var[key]
    for lname, lv in var.get("levels", {}).items():
        for key in ("cycles", "slowdown", "energy_pJ"):
            if key in lv:
                out["levels"][lname][key] = lv[key]
        for t, tv in lv.get("dataspaces", {}).items():
            out["levels"][lname]["dataspaces"][t].update(tv)
    return out


def test_all_cases_present() -> None:
    assert len(CASES) == 40
    assert len(CASES2) == 8


@pytest.mark.parametrize("link_transfers", [True, False], ids=["default", "no-link-transfers"])
@pytest.mark.parametrize("case", CASES)
def test_golden_case(case: str, link_transfers: bool) -> None:
    exp = expected(case, link_transfers)
    got = evaluate(read_case(GOLDEN / case), link_transfers=link_transfers)
    assert got.computes == exp["computes"]
    assert got.compute_cycles == exp["compute_cycles"]
    assert got.cycles == exp["cycles"]
    assert got.utilization == pytest.approx(exp["utilization"], rel=1e-12)
    assert got.energy_pJ == pytest.approx(exp["energy_pJ_full_precision"], rel=1e-9)
    assert got.mac_energy_pJ == pytest.approx(exp["levels"]["mac"]["energy_pJ"], rel=1e-12)
    assert got.utilized_macs == exp["levels"]["mac"]["utilized_instances"]
    assert [lv.name for lv in reversed(got.levels)] == exp["level_order_inner_to_outer"][1:]
    for lv in got.levels:
        el = exp["levels"][lv.name]
        assert lv.cycles == el["cycles"], lv.name
        assert lv.slowdown == pytest.approx(el["slowdown"], rel=1e-12), lv.name
        assert lv.energy_pJ == pytest.approx(el["energy_pJ"], rel=1e-9, abs=1e-9), lv.name
        for t, ts in lv.tensors.items():
            et = el["dataspaces"][t]
            assert ts.kept == et["kept"], (lv.name, t)
            for f in FIELDS:
                assert getattr(ts, f) == et[f], (lv.name, t, f)


def test_link_transfers_of_golden_case_p000() -> None:
    """The one case of the first set where Timeloop took words from mesh neighbours."""
    res = json.loads((GOLDEN / CASES[0] / "result.json").read_text())
    got = evaluate(read_case(GOLDEN / CASES[0]))
    for net in res["networks"]:
        parent = net["name"].split(" <==> ")[0]
        for t, ds in net["dataspaces"].items():
            assert got.level(parent).tensors[t].link_transfers == ds["link_transfers"], (net["name"], t)
    assert any(ds["link_transfers"] for net in res["networks"] for ds in net["dataspaces"].values())


@pytest.mark.parametrize("case", CASES2)
def test_golden2_case(case: str) -> None:
    """Layers as `dnac build --target asic` emits them, where link transfers and two kinds of input
    refill used to differ: every count, cycles and energy, with and without link transfers."""
    res = json.loads((GOLDEN2 / case / "result.json").read_text())
    nest = read_case(GOLDEN2 / case)
    got = evaluate(nest)
    assert got.cycles == res["cycles"]
    assert got.energy_pJ == pytest.approx(res["energy_pJ"], rel=1e-9)
    for lname, tensors in res["levels"].items():
        lv = got.level(lname)
        for t, want in tensors.items():
            ts = lv.tensors[t]
            assert (ts.reads, ts.fills, ts.updates) == (want["reads"], want["fills"], want["updates"]), (lname, t)
    links = {f"{lv.name} <==> {nxt}": {t: ts.link_transfers for t, ts in lv.tensors.items() if ts.link_transfers}
             for lv, nxt in zip(got.levels, [s.name for s in nest.storage[1:]] + [nest.compute.name])}
    want_links = {net: {t: v["link_transfers"] for t, v in ts.items() if v["link_transfers"]}
                  for net, ts in res["link_transfers"].items()}
    assert {k: v for k, v in links.items() if v} == want_links
    off = evaluate(nest, link_transfers=False)
    assert off.cycles == res["timeloop_without_link_transfers"]["cycles"]
    assert off.energy_pJ == pytest.approx(res["timeloop_without_link_transfers"]["energy_pJ"], rel=1e-9)


# ----------------------------------------------------------------------------- hand-counted nests


def _store(name: str, size: int | None, read: float, write: float, instances: int = 1, mesh_x: int = 1,
           block: int = 1) -> Storage:
    return Storage(name, instances, mesh_x, size, block, 16, read_pJ=read, write_pJ=write)


def _conv(**bounds: int) -> Problem:
    full = {d: 1 for d in ShapeKind.CONV.dims}
    full.update(bounds)
    return Problem(ShapeKind.CONV, full)


ORDER = ("C", "M", "R", "S", "N", "P", "Q")  # outermost first; only the relative order of loops > 1 matters


def _counts(stats, level: str, tensor: str) -> tuple[int, int, int]:
    ts = stats.level(level).tensors[tensor]
    return ts.reads, ts.fills, ts.updates


def test_hand_1d_conv_two_levels() -> None:
    """1-D conv R=3, P=4 (W = R + P - 1 = 6 inputs): DRAM loop P2 over a buffer loop nest P2 (outer)
    x R3 (inner), then one MAC."""
    nest = Nest(_conv(R=3, P=4),
                (_store("DRAM", None, 10.0, 10.0), _store("Buf", 64, 1.0, 2.0)),
                Compute("mac", 1, 1, 0.5),
                (LevelMapping({"P": 2}, ORDER), LevelMapping({"P": 2, "R": 3}, ORDER)))
    s = evaluate(nest)
    assert (s.computes, s.compute_cycles, s.cycles) == (12, 12, 12)  # 2 x 2 x 3 MACs, one MAC unit
    buf = s.level("Buf").tensors
    # Buf tile (P2 x R3): weights R3 = 3, inputs W = (2-1) + (3-1) + 1 = 4, outputs P2 = 2.
    assert [buf[t].utilized_capacity for t in ("Weights", "Inputs", "Outputs")] == [3, 4, 2]
    # The buffer serves every MAC: 12 reads of weights and inputs, 12 output updates.
    # Buffer fills = the DRAM loop's walk: first tile in full, then P moves by 2:
    #   weights do not depend on P -> 3 + 0 = 3; inputs slide 2 words along W -> 4 + 2 = 6;
    #   outputs jump to a disjoint tile -> 2 + 2 = 4 (the buffer's share of DRAM accesses).
    assert _counts(s, "Buf", "Weights") == (12, 3, 0)
    assert _counts(s, "Buf", "Inputs") == (12, 6, 0)
    # Outputs, first-read elision: partition 4 (all outputs pass through), reads = 12 - 4 = 8,
    # fills = share 4 - partition 4 = 0.
    assert buf["Outputs"].partition_size == 4
    assert _counts(s, "Buf", "Outputs") == (8, 0, 12)
    # DRAM serves the buffer's fills; outputs: 4 updates, 4 - 4 = 0 reads, no fills (outermost).
    assert _counts(s, "DRAM", "Weights") == (3, 0, 0)
    assert _counts(s, "DRAM", "Inputs") == (6, 0, 0)
    assert _counts(s, "DRAM", "Outputs") == (0, 0, 4)
    # Energy: DRAM (3 + 6) reads x 10 + 4 updates x 10 = 130; Buf 12x1 + 3x2 (W) + 12x1 + 6x2 (I)
    # + 8x1 + 12x2 (O) = 74; MACs 12 x 0.5 = 6.
    assert s.level("DRAM").energy_pJ == pytest.approx(130.0)
    assert s.level("Buf").energy_pJ == pytest.approx(74.0)
    assert s.energy_pJ == pytest.approx(210.0)


def test_hand_output_stationary_multicast() -> None:
    """Output stationary: P4 unrolled over 4 PEs, each PE's RF loops over C2 for one output.
    Every PE needs the same 2 weights, so the GB reads them once (multicast 4)."""
    nest = Nest(_conv(C=2, P=4),
                (_store("DRAM", None, 100.0, 100.0), _store("GB", 64, 10.0, 10.0),
                 _store("RF", 8, 1.0, 1.0, instances=4, mesh_x=4)),
                Compute("mac", 4, 4, 1.0),
                (LevelMapping({}, ORDER), LevelMapping({}, ORDER, {"P": 4}, ORDER, 7),
                 LevelMapping({"C": 2}, ORDER)))
    s = evaluate(nest)
    assert (s.computes, s.compute_cycles, s.cycles, s.utilized_macs) == (8, 2, 2, 4)
    assert s.utilization == 1.0
    rf = s.level("RF").tensors
    # RF tile: weights C2 = 2, inputs C2 x W1 = 2, outputs 1; 2 MAC cycles per PE.
    assert [rf[t].utilized_capacity for t in ("Weights", "Inputs", "Outputs")] == [2, 2, 1]
    assert rf["Weights"].utilized_instances == 4
    # Each PE's RF is filled once with its tile (no temporal loop above it): W 2, I 2.
    assert _counts(s, "RF", "Weights") == (2, 2, 0)
    assert _counts(s, "RF", "Inputs") == (2, 2, 0)
    # RF outputs: 2 updates, partition 4 x 1 / 4 = 1 -> reads 2 - 1 = 1, fills 1 - 1 = 0.
    assert rf["Outputs"].partition_size == 1
    assert _counts(s, "RF", "Outputs") == (1, 0, 2)
    # GB: the 4 PEs' weight tiles are equal -> one read per word (2); inputs differ per PE
    # (P indexes W) -> 4 x 2 = 8 reads; outputs 4 x 1 = 4 updates, 4 - 4 = 0 reads.
    assert _counts(s, "GB", "Weights") == (2, 2, 0)
    assert _counts(s, "GB", "Inputs") == (8, 8, 0)
    assert _counts(s, "GB", "Outputs") == (0, 0, 4)
    assert _counts(s, "DRAM", "Weights") == (2, 0, 0)
    assert _counts(s, "DRAM", "Inputs") == (8, 0, 0)
    assert _counts(s, "DRAM", "Outputs") == (0, 0, 4)
    # Energy: DRAM 14 accesses x 100; GB (2+2 + 8+8 + 4) x 10; RF 4 PEs x (4 + 4 + 3) x 1; MACs 8.
    assert s.energy_pJ == pytest.approx(1400 + 240 + 44 + 8)


def test_hand_bypassed_middle_level() -> None:
    """The GB bypasses weights: the RF is filled straight from DRAM.  RF loop C2; GB loops P2
    (outer) x M2 (inner); nothing at DRAM."""
    nest = Nest(_conv(C=2, M=2, P=2),
                (_store("DRAM", None, 1.0, 1.0), _store("GB", 64, 1.0, 1.0), _store("RF", 8, 1.0, 1.0)),
                Compute("mac", 1, 1, 1.0),
                (LevelMapping({}, ORDER),
                 LevelMapping({"P": 2, "M": 2}, ("P", "M", "C", "R", "S", "N", "Q"),
                              keep=frozenset({"Inputs", "Outputs"})),
                 LevelMapping({"C": 2}, ORDER)))
    s = evaluate(nest)
    assert s.compute_cycles == 8
    # RF tile: weights C2 (one m) = 2, inputs C2 = 2, outputs 1.  The walk over the GB loops
    # (M inner, then P): weights change with M and with P's step (M returns 1 -> 0):
    #   2 (first) + 2 (M) + 2 (P) + 2 (M) = 8 fills.
    # Inputs do not depend on M; P moves the 1-wide window to a disjoint one: 2 + 0 + 2 + 0 = 4.
    # Outputs: every step changes the single output: 4 x 1 = 4 = share; partition 4 -> fills 0.
    assert _counts(s, "RF", "Weights") == (8, 8, 0)
    assert _counts(s, "RF", "Inputs") == (8, 4, 0)
    assert _counts(s, "RF", "Outputs") == (4, 0, 8)
    gb = s.level("GB").tensors["Weights"]
    assert (gb.kept, gb.reads, gb.fills, gb.utilized_capacity, gb.partition_size) == (False, 0, 0, 0, 0)
    assert gb.utilized_instances == 1
    # With the GB bypassed, DRAM serves the RF's 8 weight fills (a GB keeping its 4-word weight
    # tile would have needed only 4).  Inputs: the GB tile (C2 x W2 = 4) is loaded once.
    assert _counts(s, "DRAM", "Weights") == (8, 0, 0)
    assert _counts(s, "GB", "Inputs") == (4, 4, 0)
    assert _counts(s, "DRAM", "Inputs") == (4, 0, 0)
    assert _counts(s, "GB", "Outputs") == (0, 0, 4)
    assert _counts(s, "DRAM", "Outputs") == (0, 0, 4)


def test_capacity_overflow_names_level_and_tensor() -> None:
    nest = Nest(_conv(C=2, M=2, P=2),
                (_store("DRAM", None, 1.0, 1.0), _store("RF", 4, 1.0, 1.0)),
                Compute("mac", 1, 1, 1.0),
                (LevelMapping({}, ORDER), LevelMapping({"C": 2, "M": 2, "P": 2}, ORDER)))
    with pytest.raises(DesignError, match="RF.*exceeds buffer capacity 4"):
        evaluate(nest)
    part = Storage("RF", 1, 1, None, capacities={"Weights": 2, "Inputs": 8, "Outputs": 8})
    nest2 = Nest(nest.problem, (nest.storage[0], part), nest.compute, nest.mappings)
    with pytest.raises(DesignError, match="RF.Weights"):
        evaluate(nest2)


def test_malformed_mapping_is_a_design_error(tmp_path: Path) -> None:
    src = GOLDEN / CASES[0]
    for name in ("arch.yaml", "problem.yaml", "ERT.yaml"):
        (tmp_path / name).write_text((src / name).read_text())
    text = (src / "mapping.yaml").read_text().replace("target: DRAM", "target: L9", 1)
    (tmp_path / "mapping.yaml").write_text(text)
    with pytest.raises(DesignError, match="unknown storage level 'L9'"):
        read_case(tmp_path)
