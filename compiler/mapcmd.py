"""`dnac map MODEL --arch ARCH.yaml`: map a network onto an accelerator that already exists.

The accelerator is a Timeloop v0.3-tree architecture with its Accelergy energy table (ERT): the
hardware is frozen as written, and only each layer's mapping is searched (`timeloop.mapper`).
The output folder has the layout of `dnac build --target asic`: `timeloop/<NN>_<layer>/` with the
user's arch.yaml (and ERT/ART/components) copied verbatim beside the problem and the mapping
found, so `timeloop-model arch.yaml components/*.yaml problem.yaml mapping.yaml ERT.yaml ART.yaml`
reproduces each layer's figures in report.json (`search.method: map`).

Shipped architectures (`ARCHS`, in `timeloop/archs/`): `two_level` (DRAM, a global buffer feeding
16 MACs), `three_level` (DRAM, global buffer, 16 PEs with a register file each), `eyeriss_like`
(DRAM, global buffer, 14 x 12 PEs with separate input, weight and partial-sum scratchpads) and
`simba_like` (DRAM, global buffer, 16 PEs each with an input buffer, 4 weight buffers, 4
accumulation buffers, weight registers and 16 MACs: two fan-outs), and `two_level_16` /
`three_level_16`, the first two with 16 MACs (small enough to enumerate every mapping).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from dnac.compiler import __version__
from dnac.compiler.backends.render import render
from dnac.compiler.errors import DesignError, OptionError
from dnac.compiler.frontend import load_model
from dnac.compiler.naming import safe_path_segment
from dnac.compiler.timeloop.emit import mapping_directives, problem_instance
from dnac.compiler.timeloop.mapper import OBJECTIVES, Hardware, LevelRule, MapResult, Space, anneal
from dnac.compiler.timeloop.nest import TL_TENSORS, Problem, ShapeKind
from dnac.compiler.timeloop.parse import read_hardware
from dnac.compiler.vocab import Dim
from dnac.compiler.workload.layer import Layer
from dnac.compiler.yamlio import read_yaml

#: Architectures shipped with dnac (folder names under timeloop/archs/).
ARCHS = ("two_level", "three_level", "eyeriss_like", "simba_like", "two_level_16", "three_level_16")
#: Timeloop's name of each dnac dim (conv shape; depthwise: K is the group dim G).
_TL = {Dim.N: "N", Dim.K: "M", Dim.C: "C", Dim.R: "R", Dim.S: "S", Dim.P: "P", Dim.Q: "Q"}


@dataclass
class MapOptions:
    model: str
    arch: str  # a path to arch.yaml, or a shipped name
    ert: Path | None = None  # default: ERT.yaml beside the arch
    art: Path | None = None  # default: ART.yaml beside the arch, if any
    components: Path | None = None  # default: components/ beside the arch, if any
    constraints: Path | None = None
    objective: str = "edp"
    out: Path | None = None
    evaluations: int = 800  # per distinct layer shape
    jobs: int = 1  # processes mapping distinct shapes side by side (`dnac map --jobs`)
    seed: int = 0
    link_transfers: bool = True
    clock_mhz: float = 1000.0
    force: bool = False
    progress: bool | None = None


def shipped_arch(name: str) -> Path:
    return Path(str(resources.files("dnac.compiler.timeloop").joinpath("archs", name, "arch.yaml")))


def resolve_files(opts: MapOptions) -> tuple[Path, Path, Path | None, Path | None]:
    """(arch, ERT, ART or None, components folder or None), each checked to exist."""
    arch = shipped_arch(opts.arch) if opts.arch in ARCHS else Path(opts.arch)
    if not arch.is_file():
        raise OptionError(str(arch), "--arch", f"no such file (give a Timeloop arch.yaml or one of {', '.join(ARCHS)})")
    ert = opts.ert or arch.with_name("ERT.yaml")
    if not ert.is_file():
        raise OptionError(str(ert), "--ert", "no energy reference table: give Accelergy's ERT.yaml for this "
                          "architecture (--ert), or put it beside arch.yaml")
    art = opts.art or (arch.with_name("ART.yaml") if arch.with_name("ART.yaml").is_file() else None)
    if art is not None and not art.is_file():
        raise OptionError(str(art), "--art", "no such file")
    comp = opts.components or (arch.parent / "components" if (arch.parent / "components").is_dir() else None)
    if comp is not None and not comp.is_dir():
        raise OptionError(str(comp), "--components", "no such folder")
    return arch, ert, art, comp


def shipped_hardware(name: str) -> tuple[Hardware, dict[str, LevelRule]]:
    """A shipped architecture (`ARCHS`) with its own constraints, as `dnac map --arch NAME` reads it."""
    arch, ert, _, _ = resolve_files(MapOptions(model="-", arch=name))
    storage, compute = read_hardware(arch, ert)
    cons = arch.with_name("constraints.yaml")
    return Hardware(storage, compute, name), (read_constraints(cons, [s.name for s in storage]) if cons.is_file() else {})


def read_constraints(path: Path, levels: list[str]) -> dict[str, LevelRule]:
    """Timeloop's constraints format (a list of `{target, type, factors, permutation, keep,
    bypass}`, under `constraints:` / `mapspace_constraints:`, optionally in `targets:`)."""
    file = str(path)
    doc = read_yaml(path, DesignError)
    body = doc.get("constraints", doc.get("mapspace_constraints")) if isinstance(doc, dict) else None
    if isinstance(body, dict):
        body = body.get("targets")
    if not isinstance(body, list):
        raise DesignError(file, "constraints", "must be a list of {target, type, ...} entries")
    rules: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(body):
        f = f"constraints[{i}]"
        if not isinstance(c, dict) or c.get("target") not in levels:
            raise DesignError(file, f"{f}.target", f"must name a storage level of the architecture ({', '.join(levels)})")
        r = rules.setdefault(c["target"], {"keep": None, "temporal": {}, "spatial": {}, "innermost": ()})
        typ = c.get("type")
        if typ in ("bypass", "datatype"):
            keep, byp = list(c.get("keep", []) or []), list(c.get("bypass", []) or [])
            bad = [t for t in keep + byp if t not in TL_TENSORS]
            if bad:
                raise DesignError(file, f, f"unknown tensors {bad} (Weights, Inputs, Outputs)")
            if "keep" in c and "bypass" not in c:
                r["keep"] = frozenset(keep)
            else:
                r["keep"] = frozenset(t for t in TL_TENSORS if t not in byp)
        elif typ in ("temporal", "spatial"):
            for tok in str(c.get("factors", "") or "").split():
                name, _, val = tok.partition("=")
                if not val.isdigit() or name not in ("C", "M", "R", "S", "N", "P", "Q", "G"):
                    raise DesignError(file, f"{f}.factors", f"bad factor {tok!r} (like M=4; 0 leaves it free)")
                if int(val) > 0:
                    r[typ][name] = int(val)
            if typ == "temporal" and c.get("permutation"):
                r["innermost"] = tuple(reversed(str(c["permutation"])))
        elif typ not in ("utilization", "max_overbooked_proportion"):
            raise DesignError(file, f"{f}.type", f"unsupported constraint type {typ!r}")
    return {k: LevelRule(v["keep"], v["temporal"], v["spatial"], v["innermost"]) for k, v in rules.items()}


def layer_problem(layer: Layer) -> Problem:
    """The Timeloop problem of a layer: the conv shape (dnac K = Timeloop M), or the depthwise
    shape with G = K and C = M = 1 (as `timeloop.lower` writes it)."""
    b = layer.bounds
    if layer.is_depthwise:
        bounds = {"G": b[Dim.K], "C": 1, "M": 1, **{_TL[d]: b[d] for d in (Dim.R, Dim.S, Dim.N, Dim.P, Dim.Q)}}
        kind = ShapeKind.DEPTHWISE
    else:
        bounds = {_TL[d]: b[d] for d in _TL}
        kind = ShapeKind.CONV
    return Problem(kind, bounds, wstride=layer.stride[0], hstride=layer.stride[1])


def _key(p: Problem) -> tuple:
    return (p.kind, tuple(sorted(p.bounds.items())), p.wstride, p.hstride)


def _map_one(args: tuple[Problem, Hardware, dict[str, LevelRule], str, bool, int, int, str]) -> MapResult:
    prob, hw, rules, objective, link, evaluations, seed, source = args
    space = Space(prob, hw, rules, objective=objective, link_transfers=link, source=source)
    return anneal(space, evaluations, seed)


def map_layers(layers: list[Layer], hw: Hardware, rules: dict[str, LevelRule], opts: MapOptions,
               source: str) -> tuple[dict[str, MapResult], int]:
    """The best mapping of every layer (layers of one shape are mapped once, `opts.jobs` shapes at a
    time), and the mappings priced.  Each shape's search depends on the seed only."""
    from tqdm import tqdm

    shapes: dict[tuple, tuple[Problem, str]] = {}
    for layer in layers:
        prob = layer_problem(layer)
        shapes.setdefault(_key(prob), (prob, layer.name))
    tasks = [(prob, hw, rules, opts.objective, opts.link_transfers, opts.evaluations, opts.seed, f"{source}:{name}")
             for prob, name in shapes.values()]
    show = opts.progress if opts.progress is not None else sys.stderr.isatty()
    bar = tqdm(total=len(tasks), desc="mapping", unit="shape", disable=not show, leave=False)
    results: list[MapResult] = []
    if opts.jobs > 1 and len(tasks) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=min(opts.jobs, len(tasks)), mp_context=ctx) as pool:
            for res in pool.map(_map_one, tasks):
                results.append(res)
                bar.update()
    else:
        for task in tasks:
            results.append(_map_one(task))
            bar.update()
    bar.close()
    done = dict(zip(shapes, results))
    out = {layer.name: done[_key(layer_problem(layer))] for layer in layers}
    return out, sum(r.evaluations for r in results)


def _area_mm2(art: Path | None, hw: Hardware) -> float | None:
    """Total area from Accelergy's ART (per-instance areas x instances), or None without one."""
    if art is None:
        return None
    doc = read_yaml(art, DesignError)
    tables = doc.get("ART", {}).get("tables") if isinstance(doc, dict) else None
    if not isinstance(tables, list):
        raise DesignError(str(art), "ART.tables", "must be a list")
    inst = {s.name: s.instances for s in hw.storage}
    inst[hw.compute.name] = hw.compute.instances
    total = 0.0
    for i, t in enumerate(tables):
        if not isinstance(t, dict) or not isinstance(t.get("area"), (int, float)):
            raise DesignError(str(art), f"ART.tables[{i}]", "needs a name and a numeric area")
        name = str(t.get("name", "")).split(".")[-1].split("[")[0]
        total += float(t["area"]) * inst.get(name, 0)
    return total / 1e6


def run_map(opts: MapOptions) -> Path:
    """Search, then write the output folder atomically; returns it."""
    from dnac.compiler.output import atomic_output, exclusive, preflight

    if opts.objective not in OBJECTIVES:
        raise OptionError("-", "--objective", f"must be one of {', '.join(OBJECTIVES)}, got {opts.objective!r}")
    arch, ert, art, comp = resolve_files(opts)
    storage, compute = read_hardware(arch, ert)
    hw = Hardware(storage, compute, opts.arch if opts.arch in ARCHS else arch.parent.name or arch.stem)
    hw.check(str(arch))
    cons = opts.constraints or (arch.with_name("constraints.yaml") if opts.arch in ARCHS else None)
    if cons is not None and not cons.is_file():
        if opts.constraints is not None:
            raise OptionError(str(cons), "--constraints", "no such file")
        cons = None
    rules = read_constraints(cons, [s.name for s in storage]) if cons is not None else {}
    loaded = load_model(opts.model)
    w = loaded.workload
    layers = [layer for layer in w.layers if layer.has_macs]
    out = opts.out or Path("hw_out") / safe_path_segment(f"{w.name}-map-{hw.name}")
    with exclusive(out):
        preflight(out, force=opts.force)
        t0 = time.perf_counter()
        found, evaluations = map_layers(layers, hw, rules, opts, str(arch))
        seconds = time.perf_counter() - t0
        report = _report(w.name, w.layers, found, hw, opts, evaluations, seconds, _area_mm2(art, hw))
        width = max(2, len(str(len(w.layers) - 1)))
        with atomic_output(out, force=opts.force) as tmp:
            for i, layer in enumerate(w.layers):
                if layer.name not in found:
                    continue
                folder = tmp / "timeloop" / f"{i:0{width}d}_{safe_path_segment(layer.name)}"
                _write_layer(folder, w.name, layer, found[layer.name], arch, ert, art, comp)
            (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return out


def _write_layer(folder: Path, model: str, layer: Layer, res: MapResult, arch: Path, ert: Path,
                 art: Path | None, comp: Path | None) -> None:
    folder.mkdir(parents=True)
    shutil.copyfile(arch, folder / "arch.yaml")
    shutil.copyfile(ert, folder / "ERT.yaml")
    if art is not None:
        shutil.copyfile(art, folder / "ART.yaml")
    if comp is not None:
        (folder / "components").mkdir()
        for f in sorted(comp.glob("*.yaml")):
            shutil.copyfile(f, folder / "components" / safe_path_segment(f.name))
    prob = res.nest.problem
    instance = problem_instance(prob)
    names = {**_TL, Dim.K: "G"} if layer.is_depthwise else _TL
    (folder / "problem.yaml").write_text(render(
        "timeloop/problem.yaml.j2", model=model, layer=layer.name, op=layer.op.value,
        depthwise=prob.kind is ShapeKind.DEPTHWISE, shape_name=prob.kind.shape_name, dims=list(prob.dims),
        instance=instance, bounds={names[d]: v for d, v in layer.bounds.items() if d in names}), encoding="utf-8")
    (folder / "mapping.yaml").write_text(render("timeloop/mapping.yaml.j2", layer=layer.name, chunk_id=None,
                                                directives=mapping_directives(res.nest)), encoding="utf-8")


def _report(model: str, all_layers: list[Layer], found: dict[str, MapResult], hw: Hardware, opts: MapOptions,
            evaluations: int, seconds: float, area: float | None) -> dict[str, Any]:
    """report.json with `dnac build`'s keys: the layers run one after another on the one array."""
    layers = []
    total_cycles = total_energy = 0.0
    for layer in all_layers:
        res = found.get(layer.name)
        if res is None:
            layers.append({"name": layer.name, "op": layer.op.value, "chunk": None, "macs": layer.macs,
                           "cycles": 0.0, "energy_pj": 0.0})
            continue
        s = res.stats
        total_cycles += s.cycles
        total_energy += s.energy_pJ
        layers.append({"name": layer.name, "op": layer.op.value, "chunk": 0, "macs": layer.macs,
                       "cycles": float(s.cycles), "energy_pj": s.energy_pJ, "utilization": s.utilization,
                       "link_transfers": {lv.name: {t: ts.link_transfers for t, ts in lv.tensors.items()
                                                    if ts.link_transfers} for lv in s.levels
                                          if any(ts.link_transfers for ts in lv.tensors.values())}})
    macs = sum(layer.macs for layer in all_layers)
    fps = opts.clock_mhz * 1e6 / total_cycles if total_cycles else math.inf
    return {
        "model": model, "target": f"timeloop:{hw.name}", "fps": fps,
        "latency_ms": total_cycles / (opts.clock_mhz * 1e3), "cycles_per_frame": total_cycles,
        "throughput_gops": 2 * macs * fps / 1e9, "resources": {"area_mm2": area},
        "energy_pj": total_energy, "edp": total_energy * 1e-12 * total_cycles,
        "search": {"method": "map", "objective": opts.objective, "evaluations": evaluations,
                   "seconds": round(seconds, 3), "seed": opts.seed, "evaluations_per_shape": opts.evaluations,
                   "link_transfers": opts.link_transfers},
        "layers": layers, "arch": "timeloop", "feasible": True, "dnac_version": __version__,
        "clock_mhz": opts.clock_mhz,
        "hardware": {"levels": [{"name": s.name, "instances": s.instances, "words": s.size,
                                 "meshX": s.mesh_x} for s in hw.storage],
                     "macs": hw.compute.instances},
    }
