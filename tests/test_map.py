"""`dnac map`: Timeloop architectures imported as frozen hardware, legal mappings searched on them,
layer folders that reproduce report.json, constraints, bad input, and the bench at a tiny size."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from test_cli import run

from dnac.compiler.errors import DesignError
from dnac.compiler.mapcmd import ARCHS, MapOptions, layer_problem, read_constraints, resolve_files, shipped_hardware
from dnac.compiler.timeloop import evaluate, read_case
from dnac.compiler.timeloop.mapper import Hardware, LevelRule, Space, anneal, exhaustive, random_search, space_size
from dnac.compiler.timeloop.nest import TL_TENSORS, Problem, ShapeKind
from dnac.compiler.workload import zoo


def hardware(arch: str) -> tuple[Hardware, dict[str, LevelRule]]:
    return shipped_hardware(arch)


def conv(**bounds: int) -> Problem:
    full = {d: 1 for d in ShapeKind.CONV.dims}
    full.update(bounds)
    return Problem(ShapeKind.CONV, full)


# ----------------------------------------------------------------------------- architecture import

#: Per shipped arch: storage (name, instances, words) outermost first, MACs, and each level's fan-out.
FAMILIES = {
    "two_level": ([("DRAM", 1, None), ("GLB", 1, 65536)], 256, [(1, 1), (16, 16)]),
    "three_level": ([("DRAM", 1, None), ("GLB", 1, 65536), ("RF", 256, 16)], 256, [(1, 1), (32, 8), (1, 1)]),
    "eyeriss_like": ([("DRAM", 1, None), ("GLB", 1, 65536), ("ifmap_spad", 168, 12), ("weights_spad", 168, 192),
                      ("psum_spad", 168, 16)], 168, [(1, 1), (14, 12), (1, 1), (1, 1), (1, 1)]),
    "simba_like": ([("DRAM", 1, None), ("GlobalBuffer", 1, 32768), ("PEInputBuffer", 16, 4096),
                    ("PEWeightBuffer", 64, 2048), ("PEAccuBuffer", 64, 128), ("PEWeightRegs", 256, 1)], 256,
                   [(1, 1), (4, 4), (4, 1), (1, 1), (4, 1), (1, 1)]),
}


@pytest.mark.parametrize("arch", sorted(FAMILIES))
def test_each_arch_family_imports(arch: str) -> None:
    hw, rules = hardware(arch)
    levels, macs, fanouts = FAMILIES[arch]
    assert [(s.name, s.instances, s.size) for s in hw.storage] == levels
    assert hw.compute.instances == macs
    assert [hw.fanout(i) for i in range(len(hw.storage))] == fanouts
    assert all(s.read_pJ > 0 and s.write_pJ > 0 for s in hw.storage) and hw.compute.mac_pJ > 0
    if arch == "simba_like":  # its constraints: one tensor per PE buffer, weights around the global buffer
        assert rules["GlobalBuffer"].keep == frozenset({"Inputs", "Outputs"})
        assert rules["PEWeightRegs"].keep == frozenset({"Weights"})


def test_every_shipped_arch_is_listed() -> None:
    assert set(FAMILIES) | {"two_level_16", "three_level_16"} == set(ARCHS)


# ----------------------------------------------------------------------------- legality


def _check_legal(space: Space, nest, rules: dict[str, LevelRule]) -> None:
    """Factors multiply to the layer, spatial factors fit each fan-out, every tile fits (the model
    raises otherwise), constrained levels keep what the constraints say."""
    for d in nest.problem.dims:
        assert math.prod(m.t(d) * m.s(d) for m in nest.mappings) == nest.problem.bounds[d], d
    for lvl, m in enumerate(nest.mappings):
        fx, fy = space.hw.fanout(lvl)
        xs, ys = m.spatial_xy()
        assert math.prod(m.s(d) for d in xs) <= fx and math.prod(m.s(d) for d in ys) <= fy
        rule = rules.get(space.hw.storage[lvl].name)
        if rule is not None and rule.keep is not None:
            assert m.keep == rule.keep
    assert nest.mappings[0].keep == frozenset(TL_TENSORS)
    evaluate(nest)


@pytest.mark.parametrize("arch,model,layer", [
    ("eyeriss_like", "resnet18", "layer2.0.conv1"), ("simba_like", "mobilenet_v2", "features.2.pw"),
    ("three_level", "mobilenet_v2", "features.1.dw"), ("two_level", "alexnet", "classifier.6"),
])
def test_mappings_found_are_legal_and_beat_random_search(arch: str, model: str, layer: str) -> None:
    hw, rules = hardware(arch)
    lay = next(x for x in zoo.get(model).layers if x.name == layer)
    prob = layer_problem(lay)
    space = Space(prob, hw, rules)
    ours = anneal(space, 150, seed=1)
    _check_legal(space, ours.nest, rules)
    assert ours.evaluations <= 150
    again = anneal(Space(prob, hw, rules), 150, seed=1)
    assert again.value == ours.value  # deterministic for a seed
    rnd = random_search(Space(prob, hw, rules), 150, seed=1)
    assert ours.value <= rnd.value


def test_search_finds_the_exhaustive_optimum_of_a_small_layer() -> None:
    hw, _ = hardware("two_level_16")
    prob = conv(C=4, M=2, R=3, P=2)
    space = Space(prob, hw)
    assert 1000 < space_size(space) < 20_000
    best = exhaustive(Space(prob, hw))
    ours = anneal(Space(prob, hw), 400)
    assert ours.value <= best.value * 1.02
    assert best.value <= ours.value


def test_fixed_factors_and_innermost_loops_are_kept(tmp_path: Path) -> None:
    hw, _ = hardware("three_level")
    (tmp_path / "c.yaml").write_text(
        "constraints:\n"
        "- {target: RF, type: temporal, factors: R=3 S=3 C=1, permutation: SR}\n"
        "- {target: GLB, type: spatial, factors: M=16}\n"
        "- {target: GLB, type: bypass, keep: [Inputs, Outputs]}\n")
    rules = read_constraints(tmp_path / "c.yaml", [s.name for s in hw.storage])
    lay = next(x for x in zoo.get("resnet18").layers if x.name == "layer3.0.conv2")
    res = anneal(Space(layer_problem(lay), hw, rules), 120)
    glb, rf = res.nest.mappings[1], res.nest.mappings[2]
    assert (rf.t("R"), rf.t("S"), rf.t("C")) == (3, 3, 1)
    assert rf.temporal_perm[-2:] == ("R", "S")  # Timeloop's permutation SR: S innermost
    assert glb.s("M") == 16 and glb.keep == frozenset({"Inputs", "Outputs"})


def test_a_fixed_factor_that_does_not_divide_the_layer_is_one_error(tmp_path: Path) -> None:
    hw, _ = hardware("three_level")
    (tmp_path / "c.yaml").write_text("constraints:\n- {target: RF, type: temporal, factors: M=5}\n")
    rules = read_constraints(tmp_path / "c.yaml", [s.name for s in hw.storage])
    with pytest.raises(DesignError, match="M=5 does not divide"):
        Space(conv(M=16, C=4), hw, rules)


# ----------------------------------------------------------------------------- the command


def test_map_command_writes_folders_timeloop_reproduces(capsys, tmp_path: Path) -> None:
    out = tmp_path / "m"
    code, stdout, err = run(capsys, "map", "tiny_mbv2", "--arch", "eyeriss_like", "--out", str(out),
                            "--evaluations", "60")
    assert code == 0, err
    assert "mappings priced" in stdout
    report = json.loads((out / "report.json").read_text())
    for key in ("model", "target", "fps", "latency_ms", "cycles_per_frame", "throughput_gops", "resources",
                "energy_pj", "edp", "search", "layers"):
        assert key in report
    assert report["search"]["method"] == "map" and report["search"]["link_transfers"] is True
    assert report["resources"]["area_mm2"] > 0
    layers = {entry["name"]: entry for entry in report["layers"]}
    folders = sorted((out / "timeloop").iterdir())
    assert folders and len(folders) == sum(1 for entry in report["layers"] if entry["macs"])
    for folder in folders:
        for f in ("arch.yaml", "ERT.yaml", "ART.yaml", "problem.yaml", "mapping.yaml"):
            assert (folder / f).is_file()
        name = folder.name.split("_", 1)[1]
        entry = next(v for k, v in layers.items() if k.replace("/", "_") == name or k == name)
        got = evaluate(read_case(folder))  # what timeloop-model computes from the folder
        assert got.cycles == entry["cycles"]
        assert got.energy_pJ == pytest.approx(entry["energy_pj"], rel=1e-12)
    total = sum(entry["energy_pj"] for entry in report["layers"])
    assert report["energy_pj"] == pytest.approx(total, rel=1e-12)


def test_map_without_link_transfers_prices_as_timeloop_with_them_disabled(capsys, tmp_path: Path) -> None:
    out = tmp_path / "m"
    code, _, err = run(capsys, "map", "tiny", "--arch", "three_level_16", "--out", str(out), "--evaluations", "40",
                       "--no-link-transfers", "--objective", "energy")
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["search"]["link_transfers"] is False and report["search"]["objective"] == "energy"
    for folder in sorted((out / "timeloop").iterdir()):
        got = evaluate(read_case(folder), link_transfers=False)
        entry = next(e for e in report["layers"] if folder.name.endswith(e["name"]))
        assert got.energy_pJ == pytest.approx(entry["energy_pj"], rel=1e-12)


def _two_word_glb(src: Path) -> str:
    text = src.read_text()
    assert "memory_depth: 2048" in text
    return text.replace("memory_depth: 2048", "memory_depth: 2048\n          entries: 2", 1)


BAD_ARCH_TWO_MACS = """\
architecture:
  version: 0.3
  subtree:
  - name: system
    local:
    - {name: DRAM, class: DRAM, attributes: {width: 64, block-size: 4, word-bits: 16}}
    - {name: mac1, class: intmac, attributes: {datawidth: 16}}
    - {name: mac2, class: intmac, attributes: {datawidth: 16}}
"""


@pytest.mark.parametrize("case", ["missing arch", "no ERT", "NaN energy", "negative energy", "two compute levels",
                                  "uneven fan-out", "bad constraints target",
                                  "bad constraints tensor", "bad objective", "nothing fits, in a worker"])
def test_bad_map_input_is_one_line_and_exit_2(capsys, tmp_path: Path, case: str) -> None:
    src, _, _, _ = resolve_files(MapOptions(model="-", arch="three_level_16"))
    args = ["map", "tiny", "--arch", str(src), "--out", str(tmp_path / "o"), "--evaluations", "5"]
    want = ""
    if case == "missing arch":
        args[3], want = str(tmp_path / "nope.yaml"), "--arch: no such file"
    elif case == "no ERT":
        (tmp_path / "arch.yaml").write_text(src.read_text())
        args[3], want = str(tmp_path / "arch.yaml"), "no energy reference table"
    elif case in ("NaN energy", "negative energy"):  # the mapper would rank mappings by nonsense
        (tmp_path / "arch.yaml").write_text(src.read_text())
        value = ".nan" if case == "NaN energy" else "-3.0"
        ert = re.sub(r"energy: [0-9.]+", f"energy: {value}", src.with_name("ERT.yaml").read_text(), count=1)
        (tmp_path / "ERT.yaml").write_text(ert)
        args[3], want = str(tmp_path / "arch.yaml"), "energy: must be a finite number of pJ >= 0"
    elif case == "two compute levels":
        (tmp_path / "arch.yaml").write_text(BAD_ARCH_TWO_MACS)
        (tmp_path / "ERT.yaml").write_text("ERT: {version: '0.4', tables: []}\n")
        args[3], want = str(tmp_path / "arch.yaml"), "needs exactly one compute level, found 2"
    elif case == "uneven fan-out":  # 16 PEs under a buffer of 3 instances
        text = src.read_text()
        (tmp_path / "arch.yaml").write_text(text.replace("- name: chip\n", "- name: chip[0..2]\n", 1))
        (tmp_path / "ERT.yaml").write_text(src.with_name("ERT.yaml").read_text())
        args[3], want = str(tmp_path / "arch.yaml"), "a fan-out must be whole"
    elif case == "bad constraints target":
        (tmp_path / "c.yaml").write_text("constraints:\n- {target: L2, type: bypass, keep: [Inputs]}\n")
        args += ["--constraints", str(tmp_path / "c.yaml")]
        want = "constraints[0].target: must name a storage level"
    elif case == "bad constraints tensor":
        (tmp_path / "c.yaml").write_text("constraints:\n- {target: RF, type: bypass, keep: [Psums]}\n")
        args += ["--constraints", str(tmp_path / "c.yaml")]
        want = "unknown tensors ['Psums']"
    elif case == "bad objective":
        args += ["--objective", "fps"]
        want = "--objective"
    else:  # a global buffer of 2 words that must keep all three tensors; the error crosses a process
        (tmp_path / "arch.yaml").write_text(_two_word_glb(src))
        (tmp_path / "ERT.yaml").write_text(src.with_name("ERT.yaml").read_text())
        (tmp_path / "c.yaml").write_text("constraints:\n- {target: GLB, type: bypass, keep: [Weights, Inputs, Outputs]}\n")
        args[3] = str(tmp_path / "arch.yaml")
        args = ["--threads", "2", *args, "--constraints", str(tmp_path / "c.yaml")]
        want = "no mapping of the layer fits the architecture's buffers"
    code, _, err = run(capsys, *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and want in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- the bench, tiny


def test_bench_map_smoke_writes_table_json_and_figure(tmp_path: Path) -> None:
    from dnac.compiler import bench
    from dnac.compiler.bench_map import SMALL

    text, path = bench.run("map", tmp_path, layers=(("three_level_16", "tiny", "conv2"),), small=SMALL[:1],
                           loma=False, evaluations=60, random_factor=2, exhaustive_limit=20_000)
    assert "two_level_16" in text and "three_level_16" in text
    rows = json.loads(path.read_text())["rows"]
    assert len(rows) == 2
    small = rows[1]
    assert small["gap_pct"] >= 0 and small["optimum"] <= small["dnac_edp"]
    assert rows[0]["random_evaluations"] == 120
    assert (tmp_path / "bench_map.svg").read_text().startswith("<?xml")


def test_zigzag_description_of_the_eyeriss_like_array() -> None:
    """The bench's ZigZag adapter (pure functions; LOMA itself needs the optional zigzag-dse):
    one memory per level holding the tensors the level keeps, per-PE scratchpads serving no
    array dim, the global buffer all of them, and a 14 x 12 array."""
    from dnac.compiler.zigzag_loma import accelerator_dict, supported

    hw, rules = hardware("eyeriss_like")
    assert supported(hw) is None
    space = Space(conv(C=4, M=4), hw, rules)
    acc, _ = accelerator_dict(hw, space.default_keeps())
    assert acc["operational_array"]["sizes"] == [14, 12]
    mems = acc["memories"]
    served = {name: m["served_dimensions"] for name, m in mems.items()}
    operands = {name: sorted(m["operands"]) for name, m in mems.items()}
    assert list(mems) == ["L4_psum_spad", "L3_weights_spad", "L2_ifmap_spad", "L1_GLB", "L0_DRAM"]  # innermost first
    assert operands["L2_ifmap_spad"] == ["I1"] and operands["L3_weights_spad"] == ["I2"]
    assert operands["L4_psum_spad"] == ["O"] and operands["L1_GLB"] == ["I1", "I2", "O"]
    assert served["L2_ifmap_spad"] == [] and sorted(served["L1_GLB"]) == ["D1", "D2"]
    assert mems["L3_weights_spad"]["size"] == 192 * 16


@pytest.mark.slow
def test_loma_mapping_is_priced_by_the_exact_model() -> None:
    pytest.importorskip("zigzag")
    from dnac.compiler.zigzag_loma import loma_map

    hw, rules = hardware("three_level_16")
    space = Space(conv(C=4, M=8, R=3, P=8), hw, rules)
    res = loma_map(space.problem, hw, space.default_keeps(), lpf_limit=4)
    assert res.nest is not None
    evaluate(res.nest)
