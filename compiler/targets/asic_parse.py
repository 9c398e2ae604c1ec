"""Validating an ASIC target file into an `AsicTarget`, and applying model.yaml overrides.

This is kept apart from `asic.py` (the lookups) so that the lookups read as the cost model's
reference.  The parser checks the file against the Accelergy table it points at: every width it
claims to price exactly must have rows at its technology, and its DRAM type must exist.  A stale
target file therefore fails at load time with the file and field named.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ..errors import TargetError
from .asic import AsicTarget, Estimate, RegfileLaw
from .schema import Fields
from .tables import accelergy_table

_CLASS_OF_WIDTHS = {"sram": "SRAM", "regfile": "regfile", "mac": "intmac", "wire": "wire"}


def _dram_types(technology: str) -> tuple[str, ...]:
    return tuple(sorted({k[1].removeprefix("DRAM_") for k in accelergy_table().rows
                         if k[0] == technology and k[1].startswith("DRAM_")}))


def parse_asic(f: Fields, resolve: Callable[[str], object]) -> AsicTarget:
    """Validate an ASIC target document; `resolve(name)` loads `estimates.from_target`."""
    name = f.check_header(AsicTarget.KIND)
    table = accelergy_table()
    src: dict[str, str] = {}
    tech, src["technology"] = f.sourced("technology")
    if not isinstance(tech, str) or not table.has_class(tech, "SRAM"):
        raise f.error("technology.value", f"no SRAM rows for {tech!r} in the Accelergy table")
    clock, src["clock_mhz"] = f.number("clock_mhz")
    dram_type, src["dram_type"] = f.sourced("dram.type")
    if dram_type not in _dram_types(tech):
        raise f.error("dram.type.value", f"unknown DRAM type {dram_type!r} "
                                         f"(known: {', '.join(_dram_types(tech))})")
    dram_width, src["dram_width_bits"] = f.number("dram.width_bits", integer=True)
    bandwidth, src["dram_bandwidth_gbps"] = f.number("dram.bandwidth_gbps")

    widths: dict[str, tuple[int, ...]] = {}
    for key in f.mapping("widths"):
        if key not in _CLASS_OF_WIDTHS:
            raise f.error(f"widths.{key}", f"unknown class (known: {', '.join(_CLASS_OF_WIDTHS)})")
        widths[key], src[f"{key}_widths"] = f.int_list(f"widths.{key}")
        cls = _CLASS_OF_WIDTHS[key]
        have = ({w for _, w, _ in table.storage_points(tech, cls)} if key in ("sram", "regfile")
                else set(table.datawidths(tech, cls)))
        missing = sorted(set(widths[key]) - have)
        if missing:
            raise f.error(f"widths.{key}.value", f"no {tech} {cls} rows for width(s) {missing}")

    estimate: Estimate | None = None
    law: RegfileLaw | None = None
    if f.has("estimates"):
        base_name = f.string("estimates.from_target")
        try:
            base = resolve(base_name)
        except TargetError as exc:
            raise f.error("estimates.from_target", exc.reason) from None
        if not isinstance(base, AsicTarget) or base.estimate is not None:
            raise f.error("estimates.from_target", f"{base_name!r} is not an ASIC target with its own Aladdin rows")
        scales = {}
        for key in ("energy_scale", "idle_scale", "area_scale", "wire_energy_scale"):
            scales[key], src[f"estimate_{key}"] = f.number(f"estimates.{key}")
        estimate = Estimate(base=base, technology=tech, **scales)
        for key in ("regfile", "mac", "wire"):
            widths.setdefault(key, getattr(base, f"{key}_widths"))
    else:
        coeffs = {}
        for key in ("energy_per_bit", "energy_per_entry", "idle_per_bit", "idle_per_entry",
                    "area_per_bit", "area_per_entry"):
            coeffs[key], src[f"regfile_{key}"] = f.number(f"regfile_closed_form.{key}")
        law = RegfileLaw(**coeffs)
    for key in _CLASS_OF_WIDTHS:
        if key not in widths:
            raise f.error(f"widths.{key}", "missing field (and no estimates.from_target to borrow it from)")

    return AsicTarget(
        name=name, technology=tech, clock_mhz=clock, dram_type=dram_type, dram_width_bits=dram_width,
        dram_bandwidth_gbps=bandwidth, sram_widths=widths["sram"], regfile_widths=widths["regfile"],
        mac_widths=widths["mac"], wire_widths=widths["wire"], regfile_law=law, estimate=estimate,
        sources=tuple(sorted(src.items())), file=f.file,
    )


def apply_asic_overrides(t: AsicTarget, section: Mapping[str, Any], *, file: str,
                         field_prefix: str = "target") -> AsicTarget:
    """Validate a model.yaml `target:` section (minus `name`) and return the overridden copy."""
    changes: dict[str, Any] = {}
    sources = dict(t.sources)
    for key, value in section.items():
        where = f"{field_prefix}.{key}"
        if key not in AsicTarget.OVERRIDE_KEYS:
            raise TargetError(file, where, f"unknown key {key!r} for an ASIC target "
                                           f"(known: {', '.join(AsicTarget.OVERRIDE_KEYS)})")
        if key == "dram_type":
            if value not in _dram_types(t.technology):
                raise TargetError(file, where, f"unknown DRAM type {value!r} "
                                               f"(known: {', '.join(_dram_types(t.technology))})")
        elif key == "area_mm2" and value is None:
            pass
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                or not math.isfinite(value):
            raise TargetError(file, where, f"expected a positive number, got {value!r}")
        else:
            value = float(value)
        changes[key] = value
        sources[key] = f"override from {file}"
    return replace(t, **changes, sources=tuple(sorted(sources.items())))
