"""The `dnac` command line (click).

Contract (DESIGN.md): user errors print exactly one line `dnac: error: <file>: <field>:
<reason>` on stderr and exit with status 2; `--debug` shows the traceback instead.  Usage
errors (unknown option, missing argument) follow the same one-line rule.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import click

from dnac.compiler import __version__
from dnac.compiler import threads as threads_mod
from dnac.compiler.errors import DnacError
from dnac.compiler.frontend import load_model
from dnac.compiler.naming import printable
from dnac.compiler.textable import render
from dnac.compiler.workload.layer import Workload

log = logging.getLogger("dnac")

#: Most DAS steps or refinement rounds a build accepts: about 10 minutes of search on VGG16
#: (64 steps take 3-4 s on 2 cores); more is a typo, not a search.
MAX_STEPS = 10_000


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="dnac")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.option("--threads", type=int, default=None, metavar="N",
              help=f"Threads for tensor work (search, cost models, training). Default: ${threads_mod.ENV}, else "
                   f"{threads_mod.DEFAULT}: more threads gain 12-20% on an idle machine and lose 1.5-2.3x when "
                   "another process holds a core.")
@click.option("--trust-code", is_flag=True,
              help="Let model.yaml files name PyTorch factories (`torch: package.module:factory`), which imports "
                   "and runs that code; only for files you trust (also: DNAC_TRUST_CODE=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, threads: int | None, trust_code: bool) -> None:
    """dnac: network / precision / accelerator co-design compiler (DNA + TRIPS)."""
    from dnac.compiler.workload import module_spec

    module_spec.trust_code(trust_code)
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["threads"] = n_threads = threads_mod.resolve(threads)
    threads_mod.apply(n_threads)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


# ---------------------------------------------------------------------------- inspect
def _layer_row(layer: Any) -> dict[str, Any]:
    return {
        "name": layer.name,
        "op": layer.op.value,
        **{d: getattr(layer, d) for d in "NKCRSPQ"},
        "stride": list(layer.stride),
        "groups": layer.groups,
        "w_bits": layer.w_bits,
        "a_bits": layer.a_bits,
        "macs": layer.macs,
        "params": layer.params,
    }


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f} {unit}"
    return f"{x:g}"


def _table(w: Workload) -> str:
    header = ["name", "op", "N", "K", "C", "R", "S", "P", "Q", "stride", "groups", "bits", "MACs", "params"]
    rows = []
    for layer in w.layers:
        s = layer.stride
        rows.append([
            layer.name, layer.op.value, *(str(getattr(layer, d)) for d in "NKCRSPQ"),
            str(s[0]) if s[0] == s[1] else f"{s[0]}x{s[1]}", str(layer.groups),
            f"w{layer.w_bits}a{layer.a_bits}", f"{layer.macs:,}", f"{layer.params:,}",
        ])
    lines = [render(header, rows, left={0, 1, 11})]
    lines.append(
        f"{w.name}: {len(w.layers)} layers, input {list(w.input_shape)} x batch {w.batch}; "
        f"total {w.total_macs:,} MACs ({_si(w.total_macs)}MACs), {w.total_params:,} params ({_si(w.total_params)})"
    )
    return "\n".join(lines)


#: DNA Sec. 3.5 / TRIPS App. B quote this many designs for their FBNet space.
PAPER_SPACE_SIZE = 2.24e27


def _space_summary(w: Workload, target_name: str) -> dict[str, Any]:
    from dnac.compiler.das.space import DesignSpace
    from dnac.compiler.targets import load_target

    space = DesignSpace(w, load_target(target_name))
    return {
        "target": target_name,
        "knobs": space.n_knobs,
        "chunk_slots": space.n_slots,
        "groups": len(space.groups),
        "log10_size": round(space.size_log10(), 2),
        "paper_log10_size": round(math.log10(PAPER_SPACE_SIZE), 2),
    }


@cli.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON (layers, total_macs, total_params).")
@click.option("--space", "show_space", is_flag=True, help="Also print the size of the accelerator design space.")
@click.option("--target", default="zc706", show_default=True,
              help="Target whose design space --space sizes: zc706, asic, asic_45nm or asic_32nm.")
def inspect(model: str, as_json: bool, show_space: bool, target: str) -> None:
    """Show MODEL's layers: shapes, bits, MACs and parameters.

    MODEL is a zoo name (alexnet, vgg16, resnet18, resnet50, mobilenet_v2, fbnet, tiny, ...),
    a model.yaml or a design.yaml.
    """
    loaded = load_model(model)
    w = loaded.workload
    space = _space_summary(w, target) if show_space else None
    if as_json:
        out = {
            "model": w.name,
            "input_shape": list(w.input_shape),
            "batch": w.batch,
            "layers": [_layer_row(layer) for layer in w.layers],
            "total_macs": w.total_macs,
            "total_params": w.total_params,
        }
        if space is not None:
            out["space"] = space
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(printable(_table(w), lines=True))
    if space is not None:
        click.echo(
            f"design space on {space['target']}: {space['knobs']} knobs, {space['chunk_slots']} chunk slots in "
            f"{space['groups']} precision/depthwise groups; size 10^{space['log10_size']:.1f} "
            f"(DNA/TRIPS quote {PAPER_SPACE_SIZE:.2E} = 10^{space['paper_log10_size']:.1f} for their FBNet space)"
        )


# ---------------------------------------------------------------------------- build
@cli.command()
@click.argument("model")
@click.option("--target", "target_name", required=True,
              help="zc706 (Vivado HLS project), or asic, asic_45nm, asic_32nm (Timeloop/Accelergy specs; asic is "
                   "asic_45nm).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: hw_out/<model>-<target>].")
@click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=0, show_default=True, metavar="INTEGER",
              help="Seed of the search, 0 .. 2^32-1.")
@click.option("--budget", type=float, default=None, help="DSP count (zc706) or area in mm^2 (asic), finite and > 0.")
@click.option("--objective", default=None, help="fps or latency (zc706); edp, latency or energy (asic).")
@click.option("--steps", type=click.IntRange(min=1, max=MAX_STEPS), default=None, metavar="INTEGER",
              help=f"DAS gradient steps, 1 .. {MAX_STEPS:,}.  [default: 64]")
@click.option("--refine", type=click.IntRange(min=0, max=MAX_STEPS), default=0, show_default=True, metavar="INTEGER",
              help=f"Rounds of hill climbing after DAS, 64 neighbour designs each, 0 .. {MAX_STEPS:,} (0: DAS as in "
                   "the papers).")
@click.option("--force", is_flag=True, help="Overwrite an existing folder that dnac did not write.")
@click.option("--weights", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="<model>.weights.pt of `dnac train` (its .quant.json and .train.json beside it): the HLS project "
                   "carries the trained network as integers, and its testbench classifies test images (zc706).")
@click.option("--images", type=click.IntRange(min=1, max=10_000), default=None, metavar="INTEGER",
              help="Test images in the testbench with --weights, 1 .. 10,000.  [default: 100]")
@click.option("--no-link-transfers", is_flag=True,
              help="ASIC: report energy as timeloop-model run with TIMELOOP_DISABLE_LINK_TRANSFERS=1 (default: as it "
                   "runs by default, PEs taking words from their mesh neighbours).")
def build(model: str, target_name: str, out: Path | None, seed: int, budget: float | None, objective: str | None,
          steps: int | None, refine: int, force: bool, weights: Path | None, images: int | None,
          no_link_transfers: bool) -> None:
    """Search an accelerator for MODEL (or re-cost a design.yaml) and emit its project.

    MODEL is a zoo name (see `dnac inspect --help`), a model.yaml or a design.yaml.  Writes
    design.yaml, report.json, search.svg (the DAS run; not for a design.yaml) and hls/ (zc706) or
    timeloop/ (asic) into the output folder, all at once: a failed or interrupted build leaves the
    previous output.
    """
    from dnac.compiler.build import BuildOptions
    from dnac.compiler.build import build as run_build
    from dnac.compiler.das.search import DasConfig
    from dnac.compiler.targets import known_targets

    if target_name not in known_targets():
        from dnac.compiler.errors import TargetError

        raise TargetError(target_name, "--target", f"unknown target {target_name!r} (known: {', '.join(known_targets())})")
    opts = BuildOptions(model=model, target=target_name, out=out, seed=seed, budget=budget, objective=objective,
                        force=force, steps=steps if steps is not None else DasConfig.steps, refine=refine,
                        weights=weights, images=images, link_transfers=not no_link_transfers)
    path = run_build(opts)
    report = json.loads((path / "report.json").read_text())
    click.echo(f"{printable(report['model'])} on {report['target']}: {report['fps']:.4g} FPS, {report['throughput_gops']:.4g} GOP/s, "
               f"latency {report['latency_ms']:.4g} ms; wrote {path}/")
    if "deploy" in report:
        d = report["deploy"]
        click.echo(f"{d['dataset']} test split ({d['test_images']:,} images): top-1 {d['qat_top1']:.4f} QAT, "
                   f"{d['integer_top1']:.4f} integer, same class on {d['agreement']:.2%}; the testbench runs the first "
                   f"{d['images']} (make -C {path}/hls csim)")


# ---------------------------------------------------------------------------- map
@cli.command(name="map")
@click.argument("model")
@click.option("--arch", required=True,
              help="A Timeloop v0.3-tree arch.yaml, or a shipped one: two_level, three_level, eyeriss_like, simba_like.")
@click.option("--ert", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Accelergy energy reference table [default: ERT.yaml beside the arch].")
@click.option("--art", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Accelergy area table, for report.json's area [default: ART.yaml beside the arch, if any].")
@click.option("--components", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Accelergy compound components, copied into every layer folder [default: components/ beside the "
                   "arch, if any].")
@click.option("--constraints", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Timeloop constraints.yaml: bypass, fixed factors, innermost loops [default: a shipped arch's own].")
@click.option("--objective", type=click.Choice(["edp", "energy", "latency"]), default="edp", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: hw_out/<model>-map-<arch>].")
@click.option("--evaluations", type=click.IntRange(min=1, max=1_000_000), default=800, show_default=True,
              metavar="INTEGER", help="Mappings priced per distinct layer shape, 1 .. 1,000,000.")
@click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=0, show_default=True, metavar="INTEGER")
@click.option("--clock-mhz", type=click.FloatRange(min=1e-3, max=1e5), default=1000.0, show_default=True,
              metavar="FLOAT", help="Clock for report.json's fps and latency (Timeloop counts cycles only).")
@click.option("--no-link-transfers", is_flag=True,
              help="Price as timeloop-model with TIMELOOP_DISABLE_LINK_TRANSFERS=1 (default: its defaults).")
@click.option("--jobs", type=click.IntRange(min=1, max=64), default=None, metavar="INTEGER",
              help="Processes mapping distinct layer shapes side by side, 1 .. 64 (the result does not depend on it).  "
                   "[default: 2, or 1 on a one-core machine]")
@click.option("--force", is_flag=True, help="Overwrite an existing folder that dnac did not write.")
def map_cmd(model: str, arch: str, ert: Path | None, art: Path | None, components: Path | None,
            constraints: Path | None, objective: str, out: Path | None, evaluations: int, seed: int,
            clock_mhz: float, no_link_transfers: bool, jobs: int | None, force: bool) -> None:
    """Map MODEL's layers onto an existing accelerator (a Timeloop architecture).

    The hardware is frozen as the architecture states it; each layer's mapping (factors per level,
    loop orders, spatial split, bypass) is searched against Timeloop v3.0.3's own counts.  Writes
    report.json and timeloop/<NN>_<layer>/ (arch, ERT, problem, mapping, ...), so that timeloop-model
    on each folder reproduces the layer's figures in report.json.  Distinct layer shapes are mapped
    in separate processes (--jobs): independent searches, so unlike tensor threads they do not slow
    each other down when another program holds a core.
    """
    from dnac.compiler.mapcmd import MapOptions, run_map

    opts = MapOptions(model=model, arch=arch, ert=ert, art=art, components=components, constraints=constraints,
                      objective=objective, out=out, evaluations=evaluations, seed=seed,
                      link_transfers=not no_link_transfers, clock_mhz=clock_mhz, force=force,
                      jobs=jobs if jobs is not None else min(2, os.cpu_count() or 1))
    path = run_map(opts)
    report = json.loads((path / "report.json").read_text())
    s = report["search"]
    click.echo(f"{printable(report['model'])} on {printable(report['target'])}: {report['energy_pj'] / 1e6:.4g} uJ, "
               f"{report['cycles_per_frame']:.4g} cycles, EDP {report['edp']:.4g} J*cycles; {s['evaluations']:,} "
               f"mappings priced in {s['seconds']:.2f} s; wrote {path}/")


# ---------------------------------------------------------------------------- bench
@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name", type=click.Choice(["costmodel", "calibration", "das", "vgg16", "map", "search"]))
@click.option("--out", type=click.Path(path_type=Path), default=Path("hw_out/bench"), show_default=True,
              help="Folder for the JSON results.")
@click.option("--seconds", type=click.FloatRange(min=0.01, max=3600), default=2.0, show_default=True, metavar="FLOAT",
              help="Timing window per row (costmodel), 0.01 .. 3600.")
@click.option("--models", default=None, help="Comma-separated zoo models (das) [default: alexnet,vgg16,resnet18,mobilenet_v2].")
@click.option("--pool", type=click.IntRange(min=1, max=10_000_000), default=100_000, show_default=True, metavar="INTEGER",
              help="Random designs in the pool baseline (das), 1 .. 10^7.")
@click.option("--no-ablation", is_flag=True, help="Skip the frozen-knob ablation (das).")
@click.pass_context
def bench(ctx: click.Context, name: str, out: Path, seconds: float, models: str | None, pool: int,
          no_ablation: bool) -> None:
    """Run a reproducible benchmark; print its table and save it as JSON (das: also a figure, bench_das.svg).

    costmodel: layer-design evaluations per second, idle and with a CPU-bound process of the
    bench's own beside it; das: DAS against random search and the ablation, DAS's seconds idle
    and loaded; vgg16: VGG16 16-bit GOP/s on the ZC706; calibration: the ZC706 model against
    DNNBuilder's measured designs; map: `dnac map` against its random mapper (10x the evaluations),
    ZigZag's LOMA (with `pip install 'dnac[bench]'`) and, on small layers, the exhaustive optimum,
    with a bar figure bench_map.svg; search: co-search memory, penalty overhead and quality
    (options of its own: `dnac bench search --help-search`, e.g. --only memory --config tiny).
    """
    from dnac.compiler import bench as benches

    if name == "search":  # the co-search benchmarks live with the co-search, with their options
        from dnac.search.cli import bench_search

        args = ["--help" if a == "--help-search" else a for a in ctx.args]
        bench_search.main(["--out", str(out / "search"), *args], prog_name="dnac bench search",
                          standalone_mode=False)
        return
    if ctx.args:
        raise click.UsageError(f"unexpected arguments for `dnac bench {name}`: {' '.join(ctx.args)}")
    kwargs: dict[str, Any] = {"seconds": seconds, "random_pool": pool, "ablation": not no_ablation}
    if models:
        kwargs["models"] = tuple(m.strip() for m in models.split(",") if m.strip())
    text, path = benches.run(name, out, **kwargs)
    click.echo(text)
    if path is not None:
        click.echo(f"saved {path}")


# ---------------------------------------------------------------------------- co-search
from dnac.search.cli import search, train

cli.add_command(search)
cli.add_command(train)


# ---------------------------------------------------------------------------- entry
def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, exit status 2 for user errors."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:  # a global flag, accepted wherever it is typed (`dnac build ... --debug` too)
        args = ["--debug", *(a for a in args if a != "--debug")]
    try:
        cli.main(args=args, prog_name="dnac", standalone_mode=False)
    except DnacError as exc:
        if debug:
            raise
        click.echo(f"dnac: error: {exc.line()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("dnac: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        if debug:
            raise
        msg = exc.format_message().replace("\n", " ")
        click.echo(f"dnac: error: {msg} (see 'dnac --help')", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)


if __name__ == "__main__":
    main()
