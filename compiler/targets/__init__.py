"""Hardware targets: the single place where dnac's hardware facts live, looked up by name.

The cost models, DAS resource budgets and the HLS / Timeloop back-ends never write a DSP count,
a clock or a pJ figure of their own.  They call `load_target("zc706")` or
`load_target("asic_45nm")` and ask the returned object.  Every fact comes from a data file in this
package that gives its source (`zc706.yaml`, `asic_45nm.yaml`, `asic_32nm.yaml`, and the
Accelergy table `data/accelergy_tables.csv`, described in `data/README.md`).  A report can
therefore say where each number came from, and a new board is a new YAML file plus one line in
`TARGET_FILES`.

    >>> t = load_target("zc706")
    >>> t.dsp, t.macs_per_dsp(8), t.uses_dsp(4)
    (900, 2.0, False)
    >>> load_target("asic").mac(16).energy_pJ
    2.20035

Files load through `importlib.resources`, so they work from an installed wheel.  A malformed
file or an unknown name raises `TargetError` with the file, the field and the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml

from ..errors import TargetError
from .asic import AsicTarget, Component, Estimate, Operation, RegfileLaw
from .asic_parse import apply_asic_overrides, parse_asic
from .fpga import FpgaTarget, apply_fpga_overrides, parse_fpga
from .schema import Fields, unsourced_numbers
from .tables import AccelergyTable, accelergy_table

__all__ = [
    "OVERRIDE_KEYS", "TARGET_FILES", "AccelergyTable", "AsicTarget", "Component", "Estimate",
    "FpgaTarget", "Operation", "RegfileLaw", "Target", "accelergy_table", "apply_overrides",
    "known_targets", "load_target", "parse_target", "read_target_document", "unsourced_numbers",
]

Target = FpgaTarget | AsicTarget

# Registry: target name -> file in this package. `asic` is the default ASIC node (45 nm, where
# Accelergy has real Aladdin numbers).
TARGET_FILES: dict[str, str] = {
    "zc706": "zc706.yaml",
    "asic": "asic_45nm.yaml",
    "asic_45nm": "asic_45nm.yaml",
    "asic_32nm": "asic_32nm.yaml",
}

# Keys a model.yaml `target:` section may set, per target kind (besides `name`).
OVERRIDE_KEYS: dict[str, tuple[str, ...]] = {
    FpgaTarget.KIND: FpgaTarget.OVERRIDE_KEYS,
    AsicTarget.KIND: AsicTarget.OVERRIDE_KEYS,
}


def known_targets() -> list[str]:
    """Names `load_target` accepts, sorted."""
    return sorted(TARGET_FILES)


def read_target_document(name: str) -> tuple[dict[str, Any], str]:
    """The parsed YAML of a registered target and its file name (for tests and tools)."""
    if name not in TARGET_FILES:
        raise TargetError(name, "target", f"unknown target {name!r} (known: {', '.join(known_targets())})")
    file = TARGET_FILES[name]
    text = resources.files(__package__).joinpath(file).read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TargetError(file, "", f"invalid YAML: {exc}".replace("\n", " ")) from None
    return doc, file


def parse_target(doc: object, file: str) -> Target:
    """Validate one target document (a parsed YAML mapping) into a typed target."""
    f = Fields(doc, file)
    kind = f.raw("kind")
    if kind == FpgaTarget.KIND:
        return parse_fpga(f)
    if kind == AsicTarget.KIND:
        return parse_asic(f, load_target)
    raise f.error("kind", f"unknown target kind {kind!r} (known: {', '.join(OVERRIDE_KEYS)})")


@functools.cache
def load_target(name: str) -> Target:
    """The target registered as `name` (`zc706`, `asic`, `asic_45nm`, `asic_32nm`).

    Targets are frozen, so the cached object is safe to share; `with_overrides` makes copies.
    """
    if not isinstance(name, str):
        raise TargetError("<python>", "target", f"target name must be a string, got {name!r}")
    doc, file = read_target_document(name)
    return parse_target(doc, file)


def apply_overrides(target: Target, section: Mapping[str, Any], *, file: str,
                    field_prefix: str = "target") -> Target:
    """Apply a model.yaml `target:` section (without its `name` key) to a target.

    Unknown keys are a `TargetError` that lists `OVERRIDE_KEYS[target kind]`."""
    if not isinstance(section, Mapping):
        raise TargetError(file, field_prefix, "expected a mapping")
    if isinstance(target, FpgaTarget):
        return apply_fpga_overrides(target, section, file=file, field_prefix=field_prefix)
    return apply_asic_overrides(target, section, file=file, field_prefix=field_prefix)
