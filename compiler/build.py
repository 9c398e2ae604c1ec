"""`dnac build`: a model in, a costed accelerator design and its back-end project out.

The steps, in order (each one line of `build`):

    load      MODEL -> workload (zoo name, model.yaml) or a finished design (design.yaml)
    target    the target file, with the model's overrides and --budget applied
    search    DAS over the design space (skipped for a design.yaml: it is re-costed as is)
    cost      the scalar report of the chosen design (the same model the search used)
    emit      design.yaml, report.json and the target's back-end folder (hls/ or timeloop/),
              written to a temporary folder and moved into place only when complete
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnac.compiler import __version__
from dnac.compiler.cost.model import Target, cost_design
from dnac.compiler.das.search import Das, DasConfig, check_objective
from dnac.compiler.errors import BudgetError, OptionError
from dnac.compiler.frontend import LoadedModel, load_model
from dnac.compiler.ir import design_yaml
from dnac.compiler.ir.design import DesignGraph
from dnac.compiler.ir.validate import check
from dnac.compiler.naming import safe_path_segment
from dnac.compiler.targets import AsicTarget, FpgaTarget, apply_overrides, load_target

if TYPE_CHECKING:
    from dnac.search.deploy import Deployment

log = logging.getLogger("dnac.build")

#: Default objective per target kind.
DEFAULT_OBJECTIVE = {FpgaTarget.KIND: "fps", AsicTarget.KIND: "edp"}


@dataclass(frozen=True)
class BuildOptions:
    """What `dnac build` was asked to do."""

    model: str  # zoo name, model.yaml or design.yaml
    target: str  # registered target name
    out: Path | None = None  # default: hw_out/<model>-<target>
    seed: int = 0
    budget: float | None = None  # DSP count (FPGA) or mm^2 (ASIC)
    objective: str | None = None  # default per target kind
    force: bool = False  # overwrite an existing folder dnac did not write
    steps: int = DasConfig.steps
    refine: int = 0  # hill-climbing rounds after DAS
    progress: bool | None = None
    weights: Path | None = None  # <stem>.weights.pt of `dnac train`: build the trained network
    images: int | None = None  # test images in the testbench with `weights` (default 100)
    link_transfers: bool = True  # ASIC: price link transfers as timeloop-model does by default


def resolve_target(name: str, overrides: dict[str, dict[str, float]], budget: float | None, file: str) -> Target:
    target = load_target(name)
    if name in overrides:
        target = apply_overrides(target, overrides[name], file=file, field_prefix=f"target.{name}")
    if budget is not None:
        if not math.isfinite(budget) or budget <= 0:
            raise BudgetError("-", "--budget", f"must be a finite positive number, got {budget:g}")
        if isinstance(target, FpgaTarget):
            if budget != int(budget):
                raise BudgetError("-", "--budget", f"a DSP budget is a whole number, got {budget:g}")
            if budget > target.device_dsp:
                raise BudgetError("-", "--budget", f"{budget:g} DSPs exceed the {target.device_dsp} of {target.part}")
            target = target.with_overrides(dsp=int(budget))
        else:
            target = target.with_overrides(area_mm2=float(budget))
            smallest = min_pe_area_mm2(target)
            if budget < smallest:
                raise BudgetError("-", "--budget", f"{budget:g} mm^2 is too small for one PE with the smallest "
                                  f"buffers ({smallest:.4f} mm^2 on {target.name})")
    return target


def min_pe_area_mm2(target: AsicTarget) -> float:
    """Area of the smallest chunk dnac can build: one MAC, the smallest RF and GB."""
    from dnac.compiler.cost.asic import _components, gb_depth
    from dnac.compiler.das.space import RF_WORDS

    comp = _components(target, gb_depth(1, 16), RF_WORDS["asic"][0], 8)
    return (comp[6] + comp[7] + comp[8]) / 1e6


def report_dict(design: DesignGraph, target: Target, search: dict[str, Any]) -> dict[str, Any]:
    """report.json: the keys DESIGN.md promises, then details."""
    c = cost_design(design, target).as_dict()
    report = {
        "model": c["model"], "target": target.name, "fps": c["fps"], "latency_ms": c["latency_ms"],
        "cycles_per_frame": c["cycles_per_frame"], "throughput_gops": c["throughput_gops"],
        "resources": c["resources"], "energy_pj": c["energy_pj"], "edp": c["edp"], "search": search,
        "layers": c["layers"], "arch": c["arch"], "feasible": c["feasible"], "dnac_version": __version__,
        "clock_mhz": target.clock_mhz,
        "chunks": [{"id": ch.id, "layers": list(ch.layers), "noc": ch.noc.value if ch.noc else None,
                    "pes": ch.pes, "pe_array": list(ch.pe_array)} for ch in sorted(design.chunks.values(), key=lambda x: x.id)],
    }
    if isinstance(target, FpgaTarget):
        report["budget"] = {"dsp": target.dsp, "bram18k": target.bram18k, "lut": target.lut, "ff": target.ff}
    elif target.area_mm2 is not None:
        report["budget"] = {"area_mm2": target.area_mm2}
    return report


def build(opts: BuildOptions) -> Path:
    """Run the build steps; returns the output folder."""
    from dnac.compiler.output import exclusive

    loaded = load_model(opts.model)  # load
    w = loaded.workload
    target = resolve_target(opts.target, w.target_overrides, opts.budget, opts.model)  # target
    if not opts.link_transfers:
        if not isinstance(target, AsicTarget):
            raise OptionError("-", "--no-link-transfers", f"prices Timeloop's link transfers: needs an ASIC target, "
                              f"not {target.name}")
        target = replace(target, link_transfers=False)
    objective = opts.objective or DEFAULT_OBJECTIVE[target.KIND]
    check_objective(objective, target)
    dep = None
    if opts.weights is not None:  # the trained network, converted and measured before any search
        if not isinstance(target, FpgaTarget):
            raise OptionError("-", "--weights", f"runs the trained network in the HLS testbench: needs an FPGA "
                              f"target, not {target.name}")
        if loaded.design is not None:
            raise OptionError(opts.model, "--weights", "give the model.yaml the weights were trained for, not a "
                              "design.yaml")
        from dnac.search.deploy import deploy

        dep = deploy(w, Path(opts.weights), 100 if opts.images is None else opts.images, opts.model)
        loaded = LoadedModel(dep.integer.workload, None, loaded.kind)
        w = loaded.workload
    elif opts.images is not None:
        raise OptionError("-", "--images", "needs --weights (without them the testbench checks random data)")
    if isinstance(target, FpgaTarget):  # a network the engines or the board cannot hold: before the search
        from dnac.compiler.backends.hls import check_workload
        check_workload(w, target)
    out = opts.out or Path("hw_out") / safe_path_segment(f"{w.name}-{opts.target}")
    with exclusive(out):  # a second build into `out` stops here instead of interleaving with this one
        _build(opts, loaded, target, objective, out, dep)
    return out


def _build(opts: BuildOptions, loaded: LoadedModel, target: Target, objective: str, out: Path,
           dep: Deployment | None = None) -> None:
    """Search (or re-cost), cost and emit into `out`, holding its lock."""
    from dnac.compiler.backends import BACKENDS
    from dnac.compiler.output import atomic_output, preflight
    from dnac.compiler.plots import das_history

    w = loaded.workload
    preflight(out, force=opts.force)  # an unwritable --out is found before the search, not after
    if loaded.design is not None:  # search (or not)
        design = loaded.design
        if design.target != opts.target:
            design.target = opts.target
        check(design, opts.model)
        search = {"method": "none (design.yaml re-costed)", "evaluations": 1, "seconds": 0.0}
        history: list[dict[str, float]] = []
    else:
        cfg = DasConfig(objective=objective, seed=opts.seed, steps=opts.steps, progress=opts.progress,
                        refine=opts.refine)
        result = Das(w, target, cfg).run()
        design = result.design
        search = {"method": "das", "objective": objective, "evaluations": result.evaluations,
                  "seconds": round(result.seconds, 3), "seed": opts.seed, "steps": cfg.steps, "batch": cfg.batch,
                  "refine": cfg.refine}
        history = result.history
    report = report_dict(design, target, search)  # cost
    if not report["feasible"]:  # only a re-costed design.yaml can get here: DAS returns designs that fit
        over = [f"{k} {report['resources'][k]:g} > {v:g}" for k, v in report.get("budget", {}).items()
                if k in report["resources"] and report["resources"][k] > v]
        raise BudgetError(opts.model, "resources", f"the design exceeds {target.name}'s budget"
                          f"{': ' + ', '.join(over) if over else ''}")
    with atomic_output(out, force=opts.force) as tmp:  # emit
        (tmp / "design.yaml").write_text(design_yaml.dump(design), encoding="utf-8")
        if history:
            das_history(history, objective, f"DAS: {w.name} on {target.name}", tmp / "search.svg")
        backend = BACKENDS[target.KIND]()
        if dep is None:
            backend.write(design, target, tmp, seed=opts.seed)
        else:
            backend.write(design, target, tmp, seed=opts.seed, golden=dep.integer.golden(dep.images),
                          labels=dep.labels)
            report["deploy"] = dep.report
        report.update(backend.report)
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
