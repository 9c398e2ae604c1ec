"""The Timeloop back-end: golden tree, well-formed YAML, mappings that Timeloop accepts, and the
round trip through dnac's Timeloop reader and importer.

"Same design" after `import_case` covers: per layer the mapping (every level's temporal order and
sizes, the spatial factors, the fan-out level), the chunk's storage hierarchy (level names, roles,
kept tensors, capacities in words, per-PE placement, block sizes, bandwidths), the PE array, the
problem (padded bounds, strides, depthwise shape) and the figures (cycles and energy).  It does not
cover what Timeloop has no syntax for: per-tensor buffer partitions (exported as one shared level
of the partition's total, stated in a comment), the NoC style and unroll (Timeloop sees only the
mapping's spatial factors), component class names, and the layer's unpadded shape.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from backend_util import check_golden, design, write

from dnac.compiler.backends import BACKENDS, TimeloopBackend
from dnac.compiler.backends.timeloop import FILES, folder_names
from dnac.compiler.cost.model import cost_design
from dnac.compiler.errors import DesignError
from dnac.compiler.ir.validate import violations
from dnac.compiler.targets import load_target
from dnac.compiler.timeloop import evaluate, lower, read_case
from dnac.compiler.timeloop.lower import tl_dims
from dnac.compiler.timeloop.parse import parse_arch
from dnac.compiler.timeloop.to_ir import import_case
from dnac.compiler.vocab import Dim

ASIC = load_target("asic")
#: The top-level key of each file (TIMELOOP.md: no key may appear in two files of a folder).
KEYS = {"arch.yaml": {"architecture"}, "problem.yaml": {"problem"}, "mapping.yaml": {"mapping"},
        "ERT.yaml": {"ERT"}, "ART.yaml": {"ART"}, "mapper.yaml": {"mapper"},
        "constraints.yaml": {"architecture_constraints"},
        "components/compound_components.yaml": {"compound_components"}}
SAMPLES = [("tiny", s) for s in range(4)] + [("tiny_mbv2", s) for s in range(4)] + [("odd", s) for s in range(3)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], tuple]:
    out = {}
    for model, seed in SAMPLES:
        g = design(model, seed, "asic")
        root = tmp_path_factory.mktemp(f"{model}_{seed}")
        write(g, "asic", root, seed)
        out[(model, seed)] = (g, root / "timeloop")
    return out


def test_golden_tree_tiny(tmp_path: Path) -> None:
    write(design("tiny", 0, "asic"), "asic", tmp_path, 0)
    check_golden(tmp_path, "tiny_asic")


def test_registry_and_wrong_target(tmp_path: Path) -> None:
    assert BACKENDS["asic"] is TimeloopBackend and TimeloopBackend.template_dir == "timeloop"
    with pytest.raises(DesignError, match="ASIC target"):
        TimeloopBackend().write(design("tiny", 0, "asic"), load_target("zc706"), tmp_path, seed=0)


@pytest.mark.parametrize("case", SAMPLES, ids=[f"{m}-{s}" for m, s in SAMPLES])
def test_files_parse_and_keys_match(exported: dict, case: tuple[str, int]) -> None:
    g, root = exported[case]
    folders = folder_names(g)
    assert sorted(p.name for p in root.iterdir()) == sorted(folders.values())
    assert set(folders) == {n.name for n in g.nodes() if n.layer.has_macs}
    for folder in folders.values():
        found = sorted(p.relative_to(root / folder).as_posix() for p in (root / folder).rglob("*") if p.is_file())
        assert found == sorted(FILES)
        seen: set[str] = set()
        for name in FILES:
            doc = yaml.safe_load((root / folder / name).read_text())
            assert isinstance(doc, dict) and set(doc) == KEYS[name], (folder, name)
            assert not seen & set(doc)
            seen |= set(doc)


@pytest.mark.parametrize("case", SAMPLES, ids=[f"{m}-{s}" for m, s in SAMPLES])
def test_mappings_are_valid_timeloop(exported: dict, case: tuple[str, int]) -> None:
    """Factor products equal the instance, tiles fit the buffers, spatial factors fit the fan-out:
    checked directly on the YAML, then by the reader (which rejects any of them)."""
    g, root = exported[case]
    for layer, folder in folder_names(g).items():
        d = root / folder
        prob = yaml.safe_load((d / "problem.yaml").read_text())["problem"]
        mapping = yaml.safe_load((d / "mapping.yaml").read_text())["mapping"]
        dims = prob["shape"]["dimensions"]
        prod = {dim: 1 for dim in dims}
        for m in mapping:
            if m["type"] in ("temporal", "spatial"):
                factors = dict(tok.split("=") for tok in m["factors"].split())
                assert sorted(factors) == sorted(dims) and sorted(m["permutation"]) == sorted(dims)
                for dim, f in factors.items():
                    prod[dim] *= int(f)
        assert prod == {dim: prob["instance"][dim] for dim in dims}, folder
        storages, compute = parse_arch(d / "arch.yaml")
        levels = [s["name"] for s in storages]
        for m in mapping:
            if m["type"] == "spatial":  # fan-out from this level to the next inner one's instances
                i = levels.index(m["target"])
                inner = storages[i + 1] if i + 1 < len(storages) else compute
                mesh_x = inner["attrs"].get("meshX", inner["instances"])
                f = dict(tok.split("=") for tok in m["factors"].split())
                perm = m["permutation"]
                x = math.prod(int(f[c]) for c in perm[:m["split"]])
                y = math.prod(int(f[c]) for c in perm[m["split"]:])
                assert x <= mesh_x and y <= inner["instances"] // mesh_x, folder
        nest = read_case(d)
        stats = evaluate(nest)  # raises on a tile over capacity or an unfit fan-out
        for lv, s in zip(stats.levels, nest.storage):
            if s.size is not None:
                assert sum(ts.utilized_capacity for ts in lv.tensors.values() if ts.kept) <= s.size
        assert nest.problem.bounds == lower(g, layer, ASIC).problem.bounds


@pytest.mark.parametrize("case", SAMPLES, ids=[f"{m}-{s}" for m, s in SAMPLES])
def test_reader_reproduces_the_report(exported: dict, case: tuple[str, int]) -> None:
    """What timeloop-model would read gives report.json's per-layer cycles and energy."""
    g, root = exported[case]
    report = {row["name"]: row for row in cost_design(g, ASIC).layers}
    for layer, folder in folder_names(g).items():
        got = evaluate(read_case(root / folder))
        assert got.cycles == report[layer]["cycles"], layer
        assert got.energy_pJ == pytest.approx(report[layer]["energy_pj"], rel=1e-9), layer


@pytest.mark.parametrize("case", SAMPLES, ids=[f"{m}-{s}" for m, s in SAMPLES])
def test_import_gives_back_the_design(exported: dict, case: tuple[str, int]) -> None:
    """Export then `import_case`: the same mapping, hierarchy and figures (module docstring)."""
    g, root = exported[case]
    for layer, folder in folder_names(g).items():
        back = import_case(root / folder)
        assert [v.line() for v in violations(back)] == []
        node, chunk = g.node(layer), g.chunk_of(layer)
        bnode = back.node(back.name)
        bchunk = back.chunks[0]
        orig = lower(g, layer, ASIC)
        fan = next((m for m in orig.mappings if m.spatial), None)
        to_dim = {v: k for k, v in tl_dims(node.layer.is_depthwise).items()}
        mesh = None if fan is None else tuple(tuple(to_dim[d] for d in dims if fan.s(d) > 1)
                                              for dims in fan.spatial_xy())
        assert bnode.mapping == replace(node.mapping, mesh=mesh), layer  # the split Timeloop was given
        assert bchunk.pe_array == chunk.pe_array and bchunk.fanout == chunk.fanout
        assert bchunk.loop_order == chunk.loop_order
        again = lower(back, back.name, ASIC)
        for a, b, lvl in zip(orig.storage, again.storage, chunk.hierarchy):
            blvl = bchunk.hierarchy[[x.name for x in bchunk.hierarchy].index(lvl.name)]
            assert (blvl.name, blvl.role, blvl.keeps, blvl.words, blvl.per_pe, blvl.block_size) == \
                (lvl.name, lvl.role, lvl.keeps, lvl.words, lvl.per_pe, a.block_size)
            assert (b.read_pJ, b.write_pJ, b.read_bw, b.write_bw, b.shared_bw, b.instances, b.mesh_x) == \
                (a.read_pJ, a.write_pJ, a.read_bw, a.write_bw, a.shared_bw, a.instances, a.mesh_x)
        assert again.problem == orig.problem and again.mappings == orig.mappings
        e1, e2 = evaluate(orig), evaluate(again)
        assert (e1.cycles, e1.energy_pJ) == (e2.cycles, e2.energy_pJ)
        bl, ol = bnode.layer, node.layer
        padded = {d: node.mapping.covered(d) for d in Dim}
        assert (bl.stride, bl.is_depthwise, bl.K, bl.R, bl.S, bl.P, bl.Q, bl.N) == (
            ol.stride, ol.is_depthwise, padded[Dim.K], padded[Dim.R], padded[Dim.S], padded[Dim.P], padded[Dim.Q],
            padded[Dim.N])


def test_depthwise_shape_and_partition_note(exported: dict) -> None:
    g, root = exported[("tiny_mbv2", 0)]
    dw = next(n for n in g.nodes() if n.layer.is_depthwise)
    d = root / folder_names(g)[dw.name]
    prob = yaml.safe_load((d / "problem.yaml").read_text())["problem"]
    assert prob["shape"]["name"] == "Depthwise-CNN-Layer" and prob["instance"]["C"] == prob["instance"]["M"] == 1
    assert prob["instance"]["G"] == dw.mapping.covered(Dim.K)
    assert "dnac partitions its" in (d / "arch.yaml").read_text()


def test_hostile_names_give_safe_folders(exported: dict) -> None:
    g, root = exported[("odd", 0)]
    for layer, folder in folder_names(g).items():
        path = (root / folder).resolve()
        assert path.parent == root.resolve() and folder.isascii() and len(folder) <= 72
        assert yaml.safe_load((path / "arch.yaml").read_text())["architecture"]["version"] == 0.3
        header = (path / "problem.yaml").read_text().splitlines()[0]
        assert header.isascii() and yaml.safe_load(header.split("layer ", 1)[1].split(" of ")[0]) == layer
