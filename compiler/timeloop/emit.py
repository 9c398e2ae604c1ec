"""A `Nest`'s mapping as the directives of Timeloop's mapping.yaml (the templates render them)."""

from __future__ import annotations

from typing import Any

from dnac.compiler.timeloop.nest import TL_TENSORS, Nest, Problem


def _factors(dims: tuple[str, ...], f: dict[str, int]) -> str:
    return " ".join(f"{d}={f.get(d, 1)}" for d in dims)


def mapping_directives(nest: Nest) -> list[dict[str, Any]]:
    """Temporal and spatial directives per level (permutations innermost first, as Timeloop reads
    them; `split` counts the X dims from that end), then every level's keep/bypass."""
    dims = nest.problem.dims
    out: list[dict[str, Any]] = []
    for s, m in zip(nest.storage, nest.mappings):
        out.append({"type": "temporal", "target": s.name, "factors": _factors(dims, m.temporal),
                    "permutation": "".join(reversed(m.temporal_perm))})
        if m.spatial:
            out.append({"type": "spatial", "target": s.name, "factors": _factors(dims, m.spatial),
                        "permutation": "".join(reversed(m.spatial_perm)), "split": m.spatial_split})
    for s, m in zip(nest.storage, nest.mappings):
        out.append({"type": "bypass", "target": s.name, "keep": [t for t in TL_TENSORS if t in m.keep],
                    "bypass": [t for t in TL_TENSORS if t not in m.keep]})
    return out


def problem_instance(prob: Problem) -> dict[str, int]:
    """problem.yaml's `instance`: every dim's bound and the four coefficients."""
    return {**{d: prob.bounds[d] for d in prob.dims}, "Wstride": prob.wstride, "Hstride": prob.hstride,
            "Wdilation": prob.wdilation, "Hdilation": prob.hdilation}
