"""Read a Timeloop v3.0.3 case folder (arch.yaml, problem.yaml, mapping.yaml, ERT.yaml) into a `Nest`.

Only what `timeloop-model` itself reads is honoured, the way it reads it (TIMELOOP.md): the v0.3
architecture tree (`version` 0.2/0.3/0.4), storage/compute kind decided by a substring of the
class name, classes of neither kind ignored as Timeloop ignores them; sizes from
`depth|memory_depth` x block-size or `entries`; energies from the ERT table whose dotted name ends
with the level's name (the maximum over argument variants, as Timeloop takes it).

Anything malformed or outside what the model supports (another problem shape, a mapping whose
factors do not multiply to the instance, an unknown level) raises `DesignError` naming the file,
the field and the reason.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from dnac.compiler.errors import DesignError
from dnac.compiler.timeloop.nest import (
    COEFFICIENTS,
    TL_TENSORS,
    Compute,
    LevelMapping,
    Nest,
    Problem,
    ShapeKind,
    Storage,
    projections,
)
from dnac.compiler.yamlio import read_yaml

_STORAGE_CLASSES = ("DRAM", "SRAM", "regfile", "smartbuffer", "storage")
_COMPUTE_CLASSES = ("mac", "intmac", "fpmac", "compute")
_RANGE = re.compile(r"^(?P<base>[^\[]+)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")


def _load(path: Path, key: str) -> Any:
    doc = read_yaml(path, DesignError)
    if not isinstance(doc, dict) or key not in doc:
        raise DesignError(str(path), key, "missing top-level key")
    return doc[key]


def _split_name(name: str, file: str, field: str) -> tuple[str, int]:
    """`PE[0..15]` -> ("PE", 16); `GLB` -> ("GLB", 1)."""
    m = _RANGE.match(str(name))
    if not m:
        return str(name), 1
    lo, hi = int(m["lo"]), int(m["hi"])
    if hi < lo:
        raise DesignError(file, field, f"empty instance range in {name!r}")
    return m["base"], hi - lo + 1


def _int_attr(attrs: dict, keys: tuple[str, ...], file: str, field: str) -> int | None:
    for k in keys:
        if k in attrs:
            v = attrs[k]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0 or int(v) != v:
                raise DesignError(file, f"{field}.{k}", f"must be a positive integer, got {v!r}")
            return int(v)
    return None


def _num_attr(attrs: dict, key: str, file: str, field: str) -> float | None:
    if key not in attrs:
        return None
    v = attrs[key]
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
        raise DesignError(file, f"{field}.{key}", f"must be a positive number, got {v!r}")
    return float(v)


def parse_arch(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The storage levels (outermost first) and the compute level, as attribute dicts."""
    file = str(path)
    arch = _load(path, "architecture")
    if not isinstance(arch, dict) or str(arch.get("version")) not in ("0.2", "0.3", "0.4"):
        raise DesignError(file, "architecture.version", "must be 0.2, 0.3 or 0.4 (the v0.3 tree format)")
    storages: list[dict[str, Any]] = []
    computes: list[dict[str, Any]] = []

    def walk(nodes: Any, field: str, mult: int) -> None:
        if not isinstance(nodes, list):
            raise DesignError(file, field, "must be a list")
        for i, node in enumerate(nodes):
            f = f"{field}[{i}]"
            if not isinstance(node, dict) or "name" not in node:
                raise DesignError(file, f, "each entry needs a name")
            _, n = _split_name(node["name"], file, f"{f}.name")
            for j, comp in enumerate(node.get("local", []) or []):
                fl = f"{f}.local[{j}]"
                if not isinstance(comp, dict) or "name" not in comp or "class" not in comp:
                    raise DesignError(file, fl, "each component needs a name and a class")
                base, m = _split_name(comp["name"], file, f"{fl}.name")
                cls = str(comp["class"])
                attrs = comp.get("attributes", {}) or {}
                if not isinstance(attrs, dict):
                    raise DesignError(file, f"{fl}.attributes", "must be a mapping")
                entry = {"name": base, "instances": mult * n * m, "attrs": attrs, "field": fl, "class": cls}
                if any(s in cls for s in _STORAGE_CLASSES):
                    storages.append(entry)
                elif any(s in cls for s in _COMPUTE_CLASSES):
                    computes.append(entry)
                # Timeloop silently ignores components of any other class; so do we.
            if "subtree" in node:
                walk(node["subtree"], f"{f}.subtree", mult * n)

    walk(arch.get("subtree"), "architecture.subtree", 1)
    if not storages:
        raise DesignError(file, "architecture", "no storage level (class containing DRAM/SRAM/regfile/...)")
    if len(computes) != 1:
        raise DesignError(file, "architecture", f"needs exactly one compute level, found {len(computes)}")
    names = [s["name"] for s in storages]
    if len(set(names)) != len(names):
        raise DesignError(file, "architecture", f"duplicate storage level names {names}")
    return storages, computes[0]


def _mesh_x(entry: dict[str, Any], file: str) -> int:
    attrs = entry["attrs"]
    inst = entry["instances"]
    mx = _int_attr(attrs, ("meshX",), file, entry["field"] + ".attributes")
    my = _int_attr(attrs, ("meshY",), file, entry["field"] + ".attributes")
    if mx is None and my is None:
        return inst
    if mx is None:
        mx = inst // my  # type: ignore[operator]
    if inst % mx or (my is not None and mx * my != inst):
        raise DesignError(file, entry["field"] + ".attributes.meshX", f"does not divide {inst} instances")
    return mx


def parse_ert(path: Path) -> dict[str, dict[str, float]]:
    """Per level name (the last component of the table name): action -> energy (max over variants)."""
    file = str(path)
    ert = _load(path, "ERT")
    tables = ert.get("tables") if isinstance(ert, dict) else None
    if not isinstance(tables, list):
        raise DesignError(file, "ERT.tables", "must be a list")
    out: dict[str, dict[str, float]] = {}
    for i, t in enumerate(tables):
        if not isinstance(t, dict) or "name" not in t or not isinstance(t.get("actions"), list):
            raise DesignError(file, f"ERT.tables[{i}]", "needs a name and a list of actions")
        # the last dotted component, ranges like PE[0..15] (which hold dots) taken out first
        level = re.sub(r"\[\d+\.\.\d+\]", "", str(t["name"])).split(".")[-1]
        acts = out.setdefault(level, {})
        for j, a in enumerate(t["actions"]):
            e = a.get("energy") if isinstance(a, dict) else None
            if not isinstance(e, (int, float)) or isinstance(e, bool) or "name" not in a:
                raise DesignError(file, f"ERT.tables[{i}].actions[{j}]", "needs a name and a numeric energy")
            if not math.isfinite(e) or e < 0:
                raise DesignError(file, f"ERT.tables[{i}].actions[{j}].energy",
                                  f"must be a finite number of pJ >= 0, got {e!r}")
            acts[str(a["name"])] = max(float(e), acts.get(str(a["name"]), float("-inf")))
    return out


def parse_problem(path: Path) -> Problem:
    """The explicit shape (one of the two known ones) and its instance."""
    file = str(path)
    prob = _load(path, "problem")
    shape = prob.get("shape") if isinstance(prob, dict) else None
    if not isinstance(shape, dict):
        raise DesignError(file, "problem.shape", "missing (only explicit shapes are supported)")
    kinds = {k.shape_name: k for k in ShapeKind}
    if shape.get("name") not in kinds:
        raise DesignError(file, "problem.shape.name",
                          f"unsupported shape {shape.get('name')!r}; expected one of {sorted(kinds)}")
    kind = kinds[shape["name"]]
    if list(shape.get("dimensions", [])) != list(kind.dims):
        raise DesignError(file, "problem.shape.dimensions", f"must be {list(kind.dims)} for {kind.shape_name}")
    spaces = shape.get("data-spaces")
    want = projections(kind)
    if not isinstance(spaces, list) or [s.get("name") for s in spaces if isinstance(s, dict)] != list(TL_TENSORS):
        raise DesignError(file, "problem.shape.data-spaces", f"must list {list(TL_TENSORS)} in that order")
    for i, s in enumerate(spaces):
        proj = tuple(tuple((t[0], t[1] if len(t) > 1 else None) for t in rank) for rank in s.get("projection", []))
        if proj != want[s["name"]]:
            raise DesignError(file, f"problem.shape.data-spaces[{i}].projection",
                              f"{s['name']} projection differs from the standard {kind.shape_name}")
        if bool(s.get("read-write", False)) != (s["name"] == "Outputs"):
            raise DesignError(file, f"problem.shape.data-spaces[{i}].read-write", "only Outputs is read-write")
    defaults = {c: 1 for c in COEFFICIENTS}
    for c in shape.get("coefficients", []) or []:
        if isinstance(c, dict) and c.get("name") in defaults:
            defaults[c["name"]] = int(c.get("default", 1))
    inst = prob.get("instance")
    if not isinstance(inst, dict):
        raise DesignError(file, "problem.instance", "missing")
    bounds: dict[str, int] = {}
    for d in kind.dims:
        v = inst.get(d)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise DesignError(file, f"problem.instance.{d}", f"every dimension needs a positive integer, got {v!r}")
        bounds[d] = v
    co = {c: inst.get(c, defaults[c]) for c in COEFFICIENTS}
    for c, v in co.items():
        if not isinstance(v, int) or v < 1:
            raise DesignError(file, f"problem.instance.{c}", f"must be a positive integer, got {v!r}")
    return Problem(kind, bounds, co["Wstride"], co["Hstride"], co["Wdilation"], co["Hdilation"])


def _factors(text: Any, dims: tuple[str, ...], file: str, field: str) -> dict[str, int]:
    if not isinstance(text, str):
        raise DesignError(file, field, "must be a string like 'C=2 M=4'")
    out: dict[str, int] = {}
    for tok in text.split():
        m = re.fullmatch(r"([A-Za-z]+)=(\d+)", tok)
        if not m or m[1] not in dims or int(m[2]) < 1:
            raise DesignError(file, field, f"bad factor {tok!r} (dims are {''.join(dims)})")
        out[m[1]] = int(m[2])
    return out


def _perm(text: Any, factors: dict[str, int], dims: tuple[str, ...], file: str, field: str) -> tuple[str, ...]:
    """Timeloop's innermost-first string -> dnac's outermost-first tuple (missing dims outermost)."""
    s = "" if text is None else str(text)
    if any(ch not in dims for ch in s) or len(set(s)) != len(s):
        raise DesignError(file, field, f"{s!r} is not a permutation of {''.join(dims)}")
    missing = [d for d in dims if d not in s]
    if any(factors.get(d, 1) > 1 for d in missing) and s:
        raise DesignError(file, field, f"{s!r} omits a dim with a factor > 1")
    return tuple(missing) + tuple(reversed(s))


def parse_mapping(path: Path, level_names: list[str], problem: Problem) -> list[LevelMapping]:
    """One `LevelMapping` per storage level (outermost first)."""
    file = str(path)
    mapping = _load(path, "mapping")
    if not isinstance(mapping, list):
        raise DesignError(file, "mapping", "must be a list of directives")
    dims = problem.dims
    parts: dict[str, dict[str, Any]] = {n: {} for n in level_names}
    for i, d in enumerate(mapping):
        f = f"mapping[{i}]"
        if not isinstance(d, dict):
            raise DesignError(file, f, "must be a mapping")
        target, typ = d.get("target"), d.get("type")
        if target not in parts:
            raise DesignError(file, f"{f}.target", f"unknown storage level {target!r}; levels are {level_names}")
        if typ in ("temporal", "spatial"):
            if typ in parts[target]:
                raise DesignError(file, f, f"second {typ} directive for {target}")
            fac = _factors(d.get("factors", ""), dims, file, f"{f}.factors")
            perm = _perm(d.get("permutation"), fac, dims, file, f"{f}.permutation")
            split = d.get("split", len(dims))
            if not isinstance(split, int) or split < 0:
                raise DesignError(file, f"{f}.split", "must be a non-negative integer")
            parts[target][typ] = (fac, perm, min(split, len(dims)))
        elif typ in ("bypass", "datatype"):
            keep, byp = d.get("keep", []) or [], d.get("bypass", []) or []
            bad = [t for t in list(keep) + list(byp) if t not in TL_TENSORS]
            if bad or set(keep) & set(byp):
                raise DesignError(file, f, f"keep/bypass must name distinct tensors of {list(TL_TENSORS)}")
            parts[target]["keep"] = frozenset(t for t in TL_TENSORS if t not in byp)
        else:
            raise DesignError(file, f"{f}.type", f"unsupported directive type {typ!r}")
    out: list[LevelMapping] = []
    for name in level_names:
        p = parts[name]
        tf, tp, _ = p.get("temporal", ({}, tuple(dims), 0))
        sf, sp, split = p.get("spatial", ({}, tuple(dims), 0))
        # Timeloop's split counts dims from the innermost end of the permutation.
        out.append(LevelMapping({k: v for k, v in tf.items() if v > 1}, tp,
                                {k: v for k, v in sf.items() if v > 1}, sp, split,
                                p.get("keep", frozenset(TL_TENSORS))))
    for dim in dims:
        prod = math.prod(m.t(dim) * m.s(dim) for m in out)
        if prod != problem.bounds[dim]:
            raise DesignError(file, f"mapping.factors.{dim}",
                              f"product of all factors is {prod}, the instance has {dim}={problem.bounds[dim]}")
    return out


def read_hardware(arch_path: str | Path, ert_path: str | Path) -> tuple[tuple[Storage, ...], Compute]:
    """The storage levels (outermost first) and the MAC level of a v0.3-tree architecture, priced by
    an Accelergy energy reference table (what `timeloop-model` reads from arch.yaml and ERT.yaml)."""
    arch_file, ert_file = str(arch_path), str(ert_path)
    storages, compute = parse_arch(Path(arch_path))
    ert = parse_ert(Path(ert_path))
    levels: list[Storage] = []
    for s in storages:
        a, f = s["attrs"], s["field"] + ".attributes"
        block = _int_attr(a, ("block-size", "n_words"), arch_file, f) or 1
        bits = _int_attr(a, ("word-bits", "word_width", "datawidth"), arch_file, f) or 16
        entries = _int_attr(a, ("entries",), arch_file, f)
        depth = _int_attr(a, ("depth", "memory_depth"), arch_file, f)
        size = entries if entries is not None else (depth * block if depth is not None else None)
        if size is None and "DRAM" not in s["class"]:
            raise DesignError(arch_file, f, f"{s['name']}: on-chip storage needs depth/memory_depth or entries")
        acts = ert.get(s["name"])
        if acts is None or "read" not in acts or "write" not in acts:
            raise DesignError(ert_file, "ERT.tables", f"no read/write energies for level {s['name']!r}")
        mb = _num_attr(a, "multiple-buffering", arch_file, f) or 1.0
        levels.append(Storage(s["name"], s["instances"], _mesh_x(s, arch_file), size, block, bits,
                              _num_attr(a, "read_bandwidth", arch_file, f),
                              _num_attr(a, "write_bandwidth", arch_file, f),
                              _num_attr(a, "shared_bandwidth", arch_file, f),
                              acts["read"], acts["write"], None, mb))
    cacts = ert.get(compute["name"], {})
    if "mac_random" not in cacts:
        raise DesignError(ert_file, "ERT.tables", f"no mac_random energy for {compute['name']!r}")
    comp = Compute(compute["name"], compute["instances"], _mesh_x(compute, arch_file), cacts["mac_random"])
    return tuple(levels), comp


def read_case(folder: str | Path) -> Nest:
    """A golden-case folder (arch/problem/mapping/ERT YAML) -> `Nest`."""
    folder = Path(folder)
    levels, comp = read_hardware(folder / "arch.yaml", folder / "ERT.yaml")
    problem = parse_problem(folder / "problem.yaml")
    mappings = parse_mapping(folder / "mapping.yaml", [s.name for s in levels], problem)
    return Nest(problem, levels, comp, tuple(mappings), source=str(folder))
