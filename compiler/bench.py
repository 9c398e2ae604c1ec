"""`dnac bench NAME`: reproducible measurements, printed as a table and saved as JSON.

Every figure is what the code measured on this machine at the time; nothing is typed in.  The
speed benchmarks (costmodel, das) measure twice: on the machine as it is ("idle") and with one
CPU-bound process of their own running beside them ("loaded", `cpu_load`), since users run dnac
on laptops, shared servers and CI runners where a core is often taken.
"""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from dnac.compiler import plots
from dnac.compiler.cost.model import evaluate
from dnac.compiler.das.decode import decode
from dnac.compiler.das.space import DesignSpace
from dnac.compiler.targets import load_target
from dnac.compiler.textable import render
from dnac.compiler.workload import zoo

Row = dict[str, Any]


def table(rows: list[Row], columns: list[str]) -> str:
    """A plain-text table, right-aligned numbers."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    return render(columns, [[cell(r.get(c, "")) for c in columns] for r in rows])


def environment() -> dict[str, Any]:
    return {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "processor": platform.processor(), "threads": torch.get_num_threads()}


@contextlib.contextmanager
def cpu_load() -> Iterator[subprocess.Popen[bytes]]:
    """One CPU-bound process beside the measurement (a core taken, as on a busy machine),
    stopped when the block ends, however it ends."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # let it take its core
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _load(loaded: bool) -> contextlib.AbstractContextManager[Any]:
    return cpu_load() if loaded else contextlib.nullcontext()


def costmodel(*, model: str = "vgg16", batches: tuple[int, ...] = (1, 64, 1024), seconds: float = 2.0,
              seed: int = 0, **_: Any) -> list[Row]:
    """Layer-design evaluations per second of the batched cost models on `model`: B random
    designs, each costing every compute layer, repeated for `seconds` after one warm-up call;
    idle and loaded (see the module docstring)."""
    rows: list[Row] = []
    w = zoo.get(model)
    for target_name in ("zc706", "asic"):
        target = load_target(target_name)
        space = DesignSpace(w, target)
        for b in batches:
            batch = decode(space, space.random_choices(b, np.random.default_rng(seed)))
            evaluate(batch, target)
            row: Row = {"target": target_name, "model": model, "B": b, "layers": len(space.layers)}
            for load in ("idle", "loaded"):
                with _load(load == "loaded"):
                    n, start = 0, time.perf_counter()
                    while time.perf_counter() - start < seconds:
                        evaluate(batch, target)
                        n += 1
                    per_call = (time.perf_counter() - start) / n
                row[f"ms_per_call_{load}"] = per_call * 1e3
                row[f"layer_evals_per_s_{load}"] = b * row["layers"] / per_call
            rows.append(row)
    return rows


BENCHES: dict[str, Callable[..., list[Row]]] = {"costmodel": costmodel}
COLUMNS: dict[str, list[str]] = {
    "costmodel": ["target", "model", "B", "layers", "ms_per_call_idle", "layer_evals_per_s_idle", "ms_per_call_loaded",
                  "layer_evals_per_s_loaded"],
    "map": ["arch", "layer", "dnac_edp", "dnac_s", "random_x10", "random_s", "loma", "loma_s", "loma_speedup",
            "optimum", "gap_pct"],
}


def run(name: str, out: Path | None = None, **kwargs: Any) -> tuple[str, Path | None]:
    """Run bench `name`; returns the table and the JSON file written (if `out`)."""
    rows = BENCHES[name](**kwargs)
    text = table(rows, COLUMNS[name])
    path = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"bench_{name}.json"
        path.write_text(json.dumps({"bench": name, "environment": environment(), "rows": rows}, indent=2) + "\n")
        if name in FIGURES and rows:
            FIGURES[name](rows, out / f"bench_{name}.svg")
    return text, path


def das(*, models: tuple[str, ...] = ("alexnet", "vgg16", "resnet18", "mobilenet_v2"),
        targets: tuple[str, ...] = ("zc706", "asic"), random_pool: int = 100_000, ablation: bool = True,
        seed: int = 0, refine: int = 16, **_: Any) -> list[Row]:
    """DAS against random search with the same number of evaluations and against the best of
    `random_pool` random designs; DAS's wall time, idle and loaded (the same search again beside
    a CPU-bound process); DAS followed by `refine` rounds of hill climbing (`dnac build
    --refine`); DAS with one knob family frozen at a time."""
    from dnac.compiler.build import DEFAULT_OBJECTIVE
    from dnac.compiler.cost.fpga import frame_cycles_bound
    from dnac.compiler.das.search import ABLATIONS, Das, DasConfig, frozen_defaults, random_search

    rows: list[Row] = []
    # minutes of work (the 100,000-design pool dominates): a bar per (target, model) on a terminal
    pairs = tqdm([(t, m) for t in targets for m in models], desc="bench das", unit="model",
                 disable=not sys.stderr.isatty())
    for target_name, model in pairs:
        pairs.set_postfix_str(f"{model} on {target_name}")
        target = load_target(target_name)
        objective = DEFAULT_OBJECTIVE[target.KIND]
        w = zoo.get(model)
        cfg = DasConfig(objective=objective, seed=seed, progress=False)
        search = Das(w, target, cfg)
        result = search.run()
        equal, _ = random_search(w, target, result.evaluations, objective=objective, seed=seed)
        pool, _ = random_search(w, target, random_pool, objective=objective, seed=seed + 1)
        row: Row = {
            "target": target_name, "model": model, "objective": objective, "das": result.objective,
            "das_seconds": round(result.seconds, 2), "evaluations": result.evaluations,
            "random_equal": equal, "random_pool": pool, "pool_size": random_pool,
            "gain_vs_equal": equal / result.objective, "gain_vs_pool": pool / result.objective,
        }
        with cpu_load():
            again = Das(w, target, cfg).run()
        if again.objective != result.objective:
            raise RuntimeError(f"DAS on {model} ({target_name}) gave another design under load: not deterministic")
        row["das_seconds_loaded"] = round(again.seconds, 2)
        if refine:
            t0 = time.perf_counter()
            _, refined, extra = search.refine(result.choices, result.objective, refine)
            row.update({"das_refined": refined, "refined_gain_vs_pool": pool / refined,
                        "refined_seconds": round(result.seconds + time.perf_counter() - t0, 2),
                        "refined_evaluations": result.evaluations + extra})
        if objective == "fps":
            row["das_gops"] = 2 * w.total_macs * target.clock_mhz * 1e6 / result.objective / 1e9
            # how much room any search had: random search can be beaten by at most this much
            row["bound"] = frame_cycles_bound(w, target)
            row["random_over_bound"] = equal / row["bound"]
        if ablation:
            for family in ABLATIONS:
                frozen = Das(w, target, cfg, frozen=frozen_defaults(search.space, family)).run()
                row[f"frozen_{family}"] = frozen.objective / result.objective
        rows.append(row)
    return rows


def vgg16_gops(*, seed: int = 0, **_: Any) -> list[Row]:
    """VGG16 at 16 bits on the ZC706 within 900 DSPs: DAS's throughput on the whole network and
    on its convolution layers (the basis of DNA Tab. 5 and DNNBuilder's figures), at the default
    number of steps, at twice as many (`dnac build --steps`), the effort of a final build, and at
    the default followed by 16 rounds of hill climbing (`dnac build --refine 16`)."""
    from dnac.compiler.cost.calibration import conv_part
    from dnac.compiler.cost.model import cost_design
    from dnac.compiler.das.search import Das, DasConfig

    target = load_target("zc706")
    rows: list[Row] = []
    default = DasConfig().steps
    for label, w in (("vgg16 (all layers)", zoo.get("vgg16")), ("vgg16 (conv layers)", conv_part(zoo.get("vgg16")))):
        for steps, refine in ((default, 0), (2 * default, 0), (default, 16)):
            cfg = DasConfig(objective="fps", seed=seed, steps=steps, refine=refine, progress=False)
            r = Das(w, target, cfg).run()
            c = cost_design(r.design, target)
            rows.append({"network": label, "steps": steps, "refine": refine, "gops": c.throughput_gops,
                         "fps": c.fps, "dsp": c.resources["dsp"], "bram18k": c.resources["bram18k"], "arch": c.arch,
                         "seconds": round(r.seconds, 2)})
    return rows


BENCHES.update({"das": das, "vgg16": vgg16_gops})
#: Benchmarks that also save a figure beside their JSON.
FIGURES: dict[str, Callable[[list[Row], Path], None]] = {"das": plots.das_bench}
COLUMNS.update({
    "das": ["target", "model", "objective", "das", "random_equal", "random_pool", "gain_vs_equal", "gain_vs_pool",
            "das_refined", "refined_gain_vs_pool", "bound", "random_over_bound", "das_seconds", "das_seconds_loaded",
            "evaluations", "frozen_loop_order", "frozen_chunk_assignment", "frozen_noc_style",
            "frozen_buffer_split"],
    "vgg16": ["network", "steps", "refine", "gops", "fps", "dsp", "bram18k", "arch", "seconds"],
})


def calibration(*, seed: int = 0, **_: Any) -> list[Row]:
    """dnac's ZC706 model against DNNBuilder's measured designs (DNA Tab. 5), each configured as
    published (see `cost.calibration`), under both stand-ins for their unpublished per-stage
    parallelism."""
    from dnac.compiler.cost.calibration import ALLOCATIONS, DNNBUILDER, predicted_gops

    target = load_target("zc706")
    rows: list[Row] = []
    for rule in ALLOCATIONS:
        for d in DNNBUILDER:
            gops, res = predicted_gops(d, target, seed=seed, rule=rule)
            rows.append({"design": d.name, "model": d.model, "allocation": rule, "bits": d.bits,
                         "dsp_published": d.dsp, "dsp_model": res["dsp"], "bram18k_model": res["bram18k"],
                         "gops_published": d.gops, "gops_model": gops, "error": gops / d.gops - 1})
    return rows


BENCHES["calibration"] = calibration


def map_mappers(*, seed: int = 0, **kwargs: Any) -> list[Row]:
    """`bench_map.map_bench` (imported on use: it is the only bench that needs the mapper)."""
    from dnac.compiler.bench_map import map_bench

    return map_bench(seed=seed, **kwargs)


BENCHES["map"] = map_mappers
FIGURES["map"] = plots.map_bench
COLUMNS["calibration"] = ["design", "model", "allocation", "bits", "dsp_published", "dsp_model", "bram18k_model", "gops_published",
                          "gops_model", "error"]
