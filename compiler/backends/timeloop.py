"""The Timeloop back-end: a mapped design -> per-layer Timeloop v3.0.3 / Accelergy v0.4 inputs.

Writes `<out>/timeloop/<NN>_<layer>/` for every layer with MACs (NN its index in the design, the
name through `naming.safe_path_segment`; pools and adds are not Timeloop problems):

    arch.yaml            the layer's chunk: storage outermost first, the PE array as meshX
    problem.yaml         the explicit shape (CNN-Layer, or Depthwise-CNN-Layer with G) and instance
    mapping.yaml         exactly the IR's loop nest: temporal per level, the spatial fan-out, bypass
    ERT.yaml, ART.yaml   dnac's own energies and areas (Timeloop then skips Accelergy)
    components/compound_components.yaml   the storage classes, for users who run Accelergy
    mapper.yaml, constraints.yaml          for users who let timeloop-mapper search the layer

Every number comes from `timeloop.lower.lower`, the same `Nest` the scalar model evaluates and
the batched ASIC cost model agrees with, so `timeloop-model arch.yaml components/*.yaml
problem.yaml mapping.yaml ERT.yaml ART.yaml` reproduces report.json's cycles and energy for the
layer (link transfers aside, see TIMELOOP.md).  Choices that keep Timeloop's accounting equal to
dnac's:

* a level partitioned among weights, inputs and outputs is one Timeloop level of the partition's
  total size (`entries`): Timeloop has no per-tensor capacity, and dnac's per-tensor check is the
  stricter one, so every dnac mapping fits (the partition is stated in a comment);
* storage widths are `block-size x word-bits`, so Timeloop's cluster size is 1;
* the problem is padded to the mapping's factor products (Timeloop needs exact products).

All values go through `|tojson`; this module only builds the template context.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

from dnac.compiler.backends.base import Backend, write_files
from dnac.compiler.backends.render import render
from dnac.compiler.cost.asic import GB_WIDTH, gb_depth
from dnac.compiler.errors import DesignError
from dnac.compiler.ir.chunk import Chunk, StorageLevel
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.naming import safe_path_segment
from dnac.compiler.targets import AsicTarget, Target
from dnac.compiler.timeloop.emit import mapping_directives, problem_instance
from dnac.compiler.timeloop.lower import lower, tl_dims, word_bits
from dnac.compiler.timeloop.nest import TL_TENSORS, Nest, ShapeKind, Storage
from dnac.compiler.vocab import DIMS, MemLevel

#: Files of one layer folder, each from the template of the same name.
FILES: tuple[str, ...] = ("arch.yaml", "problem.yaml", "mapping.yaml", "ERT.yaml", "ART.yaml", "mapper.yaml",
                          "constraints.yaml", "components/compound_components.yaml")
_TEMPLATE = {"components/compound_components.yaml": "components.yaml"}
#: Timeloop classes of dnac's canonical components (see components.yaml.j2).
_CLASS = {"DRAM": "DRAM", "SRAM": "dnac_SRAM", "regfile": "dnac_regfile"}
_STORAGE_WORDS = ("DRAM", "SRAM", "regfile", "smartbuffer", "storage")


def folder_names(design: DesignGraph) -> dict[str, str]:
    """`{layer: folder}` for the layers with MACs: `<NN>_<safe name>`, NN the design index."""
    nodes = list(design.nodes())
    width = max(2, len(str(len(nodes) - 1)))
    return {n.name: f"{i:0{width}d}_{safe_path_segment(n.name)}" for i, n in enumerate(nodes) if n.layer.has_macs}


def _cls(level: StorageLevel) -> str:
    if level.component in _CLASS:
        return _CLASS[level.component]
    if any(s in level.component for s in _STORAGE_WORDS):
        return level.component
    return {MemLevel.DRAM: "DRAM", MemLevel.GB: "dnac_SRAM", MemLevel.RF: "dnac_regfile"}[level.role]


def _attributes(level: StorageLevel, s: Storage, target: AsicTarget, per_pe: bool, cols: int) -> dict[str, Any]:
    """A storage level's attributes: what Timeloop reads (sizes, block, bandwidth, mesh) and what
    Accelergy needs to price the class (depth, width, DRAM type)."""
    a: dict[str, Any] = {k: v for k, v in level.attrs.items() if k not in ("word-bits", "multiple-buffering")}
    width = s.block_size * s.word_bits
    if level.role is MemLevel.DRAM:
        a.setdefault("type", target.dram_type)
        a["width"] = width
    else:
        depth = s.size if s.size is not None else 0
        if level.component == "SRAM":
            depth = gb_depth(depth, s.word_bits)
        elif s.block_size > 1 and depth:
            depth = math.ceil(depth / s.block_size)
        a.update({"memory_depth": depth, "memory_width": width})
        if level.component == "SRAM":
            a.setdefault("n_banks", 1)
    a.update({"block-size": s.block_size, "word-bits": s.word_bits})
    if s.size is not None:
        a["entries"] = s.size
    if s.multiple_buffering != 1.0:
        a["multiple-buffering"] = s.multiple_buffering
    for key, bw in (("read_bandwidth", s.read_bw), ("write_bandwidth", s.write_bw), ("shared_bandwidth", s.shared_bw)):
        if bw is not None:
            a[key] = bw
    if per_pe:
        a["meshX"] = cols
    return a


def _area(level: StorageLevel, s: Storage, target: AsicTarget) -> float:
    """um^2 of one instance, priced as `cost/asic.py` prices the canonical components (0 for DRAM
    and for imported levels, whose areas dnac does not know)."""
    if level.component == "SRAM" and s.size is not None:
        return target.sram(gb_depth(s.size, s.word_bits), GB_WIDTH).area_um2
    if level.component == "regfile" and s.size is not None:
        return target.regfile(max(1, s.size), s.word_bits).area_um2
    return 0.0


def _constraints(chunk: Chunk, nest: Nest, depthwise: bool) -> list[dict[str, Any]]:
    names = tl_dims(depthwise)
    dims = nest.problem.dims
    out: list[dict[str, Any]] = []
    for level, m in zip(chunk.hierarchy, nest.mappings):
        perm = "".join(reversed(m.temporal_perm))
        out.append({"type": "temporal", "target": level.name, "permutation": perm})
        if level.name == chunk.fanout and chunk.noc is not None:
            free = {names[d] for d in chunk.noc.dims}
            out.append({"type": "spatial", "target": level.name,
                        "factors": " ".join(f"{d}=1" for d in dims if d not in free)})
    for level, m in zip(chunk.hierarchy, nest.mappings):
        out.append({"type": "bypass", "target": level.name, "keep": [t for t in TL_TENSORS if t in m.keep],
                    "bypass": [t for t in TL_TENSORS if t not in m.keep]})
    return out


def layer_context(design: DesignGraph, node: LayerNode, target: AsicTarget) -> dict[str, Any]:
    """Everything the templates of one layer folder need."""
    nest = lower(design, node.name, target)
    chunk = design.chunks[node.chunk]  # type: ignore[index]
    rows, cols = chunk.pe_array
    pes = rows * cols
    pe_name = f"PE[0..{pes - 1}]"
    bits = word_bits(chunk)
    system, chip, pe, notes = [], [], [], []
    ert, art = [], []
    for level, s in zip(chunk.hierarchy, nest.storage):
        entry = {"name": s.name, "cls": _cls(level), "attributes": _attributes(level, s, target, level.per_pe, cols)}
        if level is chunk.hierarchy[0]:
            system.append(entry)
            path = f"system.{s.name}"
        elif level.per_pe:
            pe.append(entry)
            path = f"system.chip.{pe_name}.{s.name}"
        else:
            chip.append(entry)
            path = f"system.chip.{s.name}"
        ert.append({"name": path, "actions": [{"name": "read", "energy": s.read_pJ},
                                              {"name": "write", "energy": s.write_pJ}]})
        art.append({"name": path, "area": _area(level, s, target)})
        if level.partition is not None:
            p = level.partition
            notes.append(f"{s.name}: dnac partitions its {level.words} words as weights {p.W}, inputs {p.I}, "
                         f"outputs {p.O}; Timeloop checks the shared total.")
    mac_cls = str(chunk.attrs.get("mac_class", "intmac"))
    pe.append({"name": nest.compute.name, "cls": mac_cls, "attributes": {"datawidth": bits, "meshX": cols}})
    mac_path = f"system.chip.{pe_name}.{nest.compute.name}"
    ert.append({"name": mac_path, "actions": [{"name": "mac_random", "energy": nest.compute.mac_pJ}]})
    art.append({"name": mac_path, "area": target.mac(bits).area_um2 if "mac_pJ" not in chunk.attrs else 0.0})
    prob = nest.problem
    layer = node.layer
    names = tl_dims(layer.is_depthwise)
    instance = problem_instance(prob)
    return {
        "model": design.name, "layer": node.name, "op": layer.op.value,
        "chunk": {"id": chunk.id, "rows": rows, "cols": cols}, "chunk_id": chunk.id,
        "noc": chunk.noc.value if chunk.noc is not None else "any",
        "technology": target.technology, "notes": notes, "system": system, "chip": chip, "pe": pe,
        "pe_name": pe_name, "depthwise": prob.kind is ShapeKind.DEPTHWISE, "shape_name": prob.kind.shape_name,
        "dims": list(prob.dims), "instance": instance,
        "bounds": {names[d]: v for d, v in layer.bounds.items() if d in DIMS},
        "directives": mapping_directives(nest), "constraints": _constraints(chunk, nest, layer.is_depthwise),
        "tables": ert, "areas": art, "source": f"{target.name} ({target.technology})",
    }


class TimeloopBackend(Backend):
    """Per-layer Timeloop/Accelergy inputs for ASIC targets (see the module docstring)."""

    name: ClassVar[str] = "timeloop"
    template_dir: ClassVar[str] = "timeloop"

    def write(self, design: DesignGraph, target: Target, out_dir: Path, *, seed: int) -> list[Path]:
        """`seed` is unused: the Timeloop inputs hold no random data."""
        if not isinstance(target, AsicTarget):
            raise DesignError(design.name, "target", f"the Timeloop back-end needs an ASIC target, not {target.name!r}")
        files: dict[str, str | bytes] = {}
        for layer, folder in folder_names(design).items():
            ctx = layer_context(design, design.node(layer), target)
            for name in FILES:
                template = f"timeloop/{_TEMPLATE.get(name, name)}.j2"
                extra = {"tables": ctx["areas"]} if name == "ART.yaml" else {}
                if name == "constraints.yaml":
                    extra = {"directives": ctx["constraints"]}
                files[f"{folder}/{name}"] = render(template, **{**ctx, **extra})
        return write_files(out_dir / self.name, files)
