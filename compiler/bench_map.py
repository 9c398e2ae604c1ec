"""`dnac bench map`: dnac's mapper against other mappers, on the same layers and the same hardware.

Per (architecture, layer): `dnac map`'s search (`timeloop.mapper.anneal`, the default number of
evaluations), dnac's own random mapper with 10x the evaluations, ZigZag's LOMA (PyPI
`zigzag-dse`, an optional bench dependency: `pip install 'dnac[bench]'`; rows say `not
installed` without it) on the architecture described to ZigZag from the same Timeloop files,
and, on layers small enough, the true optimum by enumerating every mapping (the optimality gap).
Every mapping, whoever found it, is priced by the same exact model (Timeloop v3.0.3's counts, link
transfers on), so the EDP columns compare mappings, not cost models.  Seconds are each mapper's
own wall time on this machine, one process each.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from typing import Any

from tqdm import tqdm

from dnac.compiler.mapcmd import layer_problem, shipped_hardware
from dnac.compiler.timeloop.mapper import (
    Hardware,
    LevelRule,
    Space,
    anneal,
    exhaustive,
    objective_value,
    random_search,
    space_size,
)
from dnac.compiler.timeloop.model import evaluate
from dnac.compiler.timeloop.nest import TL_TENSORS, Problem, ShapeKind
from dnac.compiler.workload import zoo

Row = dict[str, Any]

#: Network layers: (architecture, model, layer).  ResNet-18, MobileNetV2 (pointwise and
#: depthwise) and VGG16 on the Eyeriss-like array and on the three-level one.
LAYERS: tuple[tuple[str, str, str], ...] = tuple(
    (arch, model, layer) for arch in ("eyeriss_like", "three_level") for model, layer in (
        ("resnet18", "layer1.0.conv1"), ("resnet18", "layer2.0.conv1"), ("resnet18", "layer3.0.conv2"),
        ("resnet18", "layer4.0.downsample.0"), ("mobilenet_v2", "features.2.pw"), ("mobilenet_v2", "features.4.dw"),
        ("vgg16", "features.10"))) + (("simba_like", "resnet18", "layer2.0.conv1"), ("simba_like", "vgg16", "features.10"))

#: Small layers whose whole mapping space is enumerated: (architecture, name, bounds, keep-all).
#: On three_level_16 every level keeps every tensor (bypass fixed), to keep the space enumerable.
SMALL: tuple[tuple[str, str, dict[str, int], bool], ...] = (
    ("two_level_16", "conv C4 M2 R3 P2", {"C": 4, "M": 2, "R": 3, "P": 2}, False),
    ("two_level_16", "conv C4 M4 R3 P2", {"C": 4, "M": 4, "R": 3, "P": 2}, False),
    ("three_level_16", "conv C4 M2 R3 P2", {"C": 4, "M": 2, "R": 3, "P": 2}, True),
    ("three_level_16", "conv C2 M4 R3 P4", {"C": 2, "M": 4, "R": 3, "P": 4}, True),
)

def _loma(prob: Problem, hw: Hardware, space: Space, objective: str) -> tuple[float | None, float | None, str]:
    """LOMA's best mapping priced by the exact model: (value, seconds, note)."""
    try:
        from dnac.compiler.zigzag_loma import loma_map, supported
    except ImportError as e:  # the adapter itself is part of dnac; zigzag-dse is imported inside it
        return None, None, f"adapter missing: {e}"
    reason = supported(hw)
    if reason is not None:
        return None, None, reason
    try:
        res = loma_map(prob, hw, space.default_keeps(), objective=objective)
    except ImportError:
        return None, None, "not installed (pip install zigzag-dse six)"
    if res.nest is None:
        return None, res.seconds, res.note
    value = objective_value(evaluate(res.nest, link_transfers=space.link), objective)
    return value, res.seconds, ("" if res.exact else res.note)


def map_bench(*, seed: int = 0, evaluations: int = 800, random_factor: int = 10, objective: str = "edp",
              layers: tuple[tuple[str, str, str], ...] = LAYERS,
              small: tuple[tuple[str, str, dict[str, int], bool], ...] = SMALL,
              loma: bool = True, exhaustive_limit: int = 60_000, **_: Any) -> list[Row]:
    """One row per (architecture, layer); see the module docstring."""
    rows: list[Row] = []
    cases: list[tuple[str, str, Problem, bool]] = []
    for arch, model, layer in layers:
        lay = next(x for x in zoo.get(model).layers if x.name == layer)
        cases.append((arch, f"{model} {layer}", layer_problem(lay), False))
    for arch, name, bounds, keep_all in small:
        full = {d: 1 for d in ShapeKind.CONV.dims}
        full.update(bounds)
        cases.append((arch, name, Problem(ShapeKind.CONV, full), keep_all))
    bar = tqdm(cases, desc="bench map", unit="layer", disable=not sys.stderr.isatty())
    for arch, name, prob, keep_all in bar:
        bar.set_postfix_str(f"{name} on {arch}")
        hw, rules = shipped_hardware(arch)
        if keep_all:  # bypass fixed: every level keeps every tensor
            rules = {s.name: replace(rules.get(s.name, LevelRule()), keep=frozenset(TL_TENSORS)) for s in hw.storage}

        def space(prob: Problem = prob, hw: Hardware = hw, rules: dict[str, LevelRule] = rules,
                  where: str = f"{arch}:{name}") -> Space:
            return Space(prob, hw, rules, objective=objective, source=where)

        ours = anneal(space(), evaluations, seed)
        rnd = random_search(space(), evaluations * random_factor, seed)
        row: Row = {"arch": arch, "layer": name, "macs": prob.macs, "dnac_edp": ours.value,
                    "dnac_s": round(ours.seconds, 3), "dnac_evaluations": ours.evaluations,
                    "random_x10": rnd.value / ours.value, "random_edp": rnd.value, "random_s": round(rnd.seconds, 3),
                    "random_evaluations": rnd.evaluations}
        if loma:
            value, secs, note = _loma(prob, hw, space(), objective)
            row.update({"loma": value / ours.value if value is not None else note, "loma_edp": value,
                        "loma_s": round(secs, 3) if secs is not None else None,
                        "loma_speedup": round(secs / ours.seconds, 1) if value is not None and secs else None,
                        "loma_note": note})
        full_space = space()
        size = space_size(full_space, exhaustive_limit)
        row["space"] = size if size <= exhaustive_limit else f"> {exhaustive_limit:,}"
        if size <= exhaustive_limit:
            best = exhaustive(full_space, limit=exhaustive_limit)
            row.update({"optimum": best.value, "optimum_s": round(best.seconds, 1), "optimum_ratio": best.value / ours.value,
                        "gap_pct": round(100 * (ours.value / best.value - 1), 3)})
        rows.append(row)
    return rows


def summary(rows: list[Row]) -> dict[str, Any]:
    """The targets of the issue, as measured: worst gap, LOMA ratio and speed-up."""
    gaps = [r["gap_pct"] for r in rows if isinstance(r.get("gap_pct"), float)]
    loma = [r for r in rows if isinstance(r.get("loma"), float)]
    return {
        "worst_gap_pct": max(gaps) if gaps else None,
        "best_loma_over_dnac": min((r["loma"] for r in loma), default=None),
        "min_loma_speedup": min((r["loma_speedup"] for r in loma if r.get("loma_speedup")), default=None),
        "geomean_random_over_dnac": math.exp(sum(math.log(r["random_x10"]) for r in rows) / len(rows)) if rows else None,
    }
