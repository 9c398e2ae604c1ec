"""`dnac bench search`: the co-search benchmarks of issue 6, as tables and JSON.

- memory: activation memory saved for the backward pass (and, on CUDA, the allocator's peak) of
  one search step (a weight update and an alpha/beta update) with 1, 3 and 5 precision choices:
  heterogeneous sampling (TRIPS Eq. 4: composite operands) against activating every precision
  as its own path with soft weights.  On a CPU the figure is the bytes of the distinct tensors
  autograd saves (`torch.autograd.graph.saved_tensors_hooks`), which is what grows with the
  choices (TRIPS Fig. 2a); weights and gradients do not depend on the choices.
- overhead: seconds per epoch spent on the hardware penalty (DAS runs and candidate costing)
  against the supernet's training steps, for TRIPS and DNA.
- quality: on Fashion-MNIST with a small budget, the co-searched network against the sequential
  baseline (FLOPs-aware NAS, then DAS for the derived network) and a random network with DAS;
  each derived network trained briefly from scratch: top-1 and FPS on its accelerator.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
import torch.nn.functional as F

from dnac.compiler import textable
from dnac.compiler.cost.model import cost_design
from dnac.compiler.das.search import Das, DasConfig
from dnac.compiler.targets import load_target
from dnac.search import data as datasets
from dnac.search.config import SearchConfig, load_config
from dnac.search.genotype import Genotype
from dnac.search.precision import PrecisionMode, sample_precisions
from dnac.search.sampling import SamplingMode, sample_ops
from dnac.search.space import SearchSpace, fbnet_space
from dnac.search.supernet import ArchSample, Supernet

BITS_BY_COUNT = {1: (8,), 3: (4, 8, 16), 5: (4, 6, 8, 12, 16)}


# ---------------------------------------------------------------------------- memory
class SavedBytes:
    """Bytes of the distinct storages autograd saves for backward while active."""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        try:
            st = t.untyped_storage()
            self.seen[st.data_ptr()] = st.nbytes()
        except RuntimeError:
            pass
        return t

    @property
    def total(self) -> int:
        return sum(self.seen.values())


def step_memory(space: SearchSpace, mode: PrecisionMode, batch: int, device: torch.device, seed: int = 0) -> dict[str, float]:
    """Peak activation memory (MiB) of one weight step and one arch step, the larger of the two."""
    torch.manual_seed(seed)
    net = Supernet(space, sampling=SamplingMode.SINGLE_PATH, precision=mode).to(device)
    x = torch.randn(batch, *space.input_shape, device=device)
    y = torch.randint(0, space.classes, (batch,), device=device)
    peaks, cuda_peak = [], 0.0
    params = sum(p.numel() * p.element_size() for p in net.parameters())
    for updating_arch in (False, True):
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        rec = SavedBytes()
        # the same operators for every precision count (their own noise), so that only the
        # precision sampling differs between the rows
        ops = sample_ops(net.sampling, net.arch.alpha, net.arch.mask, 5.0, torch.Generator().manual_seed(seed),
                         updating_arch=updating_arch, top_k=net.top_k)
        bits, paths = sample_precisions(net.arch.beta, 5.0, torch.Generator().manual_seed(seed + 1),
                                        updating_arch=updating_arch, mode=mode, top_k=net.top_k)
        sample = ArchSample(ops, bits, mode, paths)
        with torch.autograd.graph.saved_tensors_hooks(rec.pack, lambda t: t):
            loss = F.cross_entropy(net(x, sample), y)
        loss.backward()
        net.zero_grad(set_to_none=True)
        peaks.append(rec.total)
        if device.type == "cuda":
            cuda_peak = max(cuda_peak, torch.cuda.max_memory_allocated(device) / 2**20)
    out = {"activations_mib": max(peaks) / 2**20, "params_mib": params / 2**20}
    if device.type == "cuda":
        out["cuda_peak_mib"] = cuda_peak
    return out


def memory_table(space_of: Any, batch: int, device: torch.device) -> list[dict[str, Any]]:
    rows = []
    for n, bits in BITS_BY_COUNT.items():
        space = space_of(bits)
        for mode in (PrecisionMode.HETEROGENEOUS, PrecisionMode.ALL_PATHS):
            r = step_memory(space, mode, batch, device)
            rows.append({"choices": n, "bits": list(bits), "mode": mode.value, **r})
    base = {r["mode"]: r["activations_mib"] for r in rows if r["choices"] == 1}
    for r in rows:
        r["ratio_vs_1"] = r["activations_mib"] / base[r["mode"]]
    return rows


# ---------------------------------------------------------------------------- overhead and quality
def _run_search(cfg: SearchConfig, splits: datasets.Splits, out: Path, progress: bool) -> Any:
    from dnac.search.cosearch import CoSearch

    return CoSearch(cfg, out, splits=splits, progress=progress, printer=lambda s: click.echo(f"  {s}", err=True)).run()


def overhead_table(cfg: SearchConfig, splits: datasets.Splits, out: Path, progress: bool) -> list[dict[str, Any]]:
    rows = []
    for method, sampling in (("trips", SamplingMode.SINGLE_PATH), ("dna", SamplingMode.SOFT)):
        # DNA Alg. 1 samples M = 10 networks per epoch; TRIPS optimizes one accelerator
        hw = replace(cfg.hardware, samples=10) if method == "dna" else cfg.hardware
        c = replace(cfg, name=f"bench-{method}", search=replace(cfg.search, method=method, sampling=sampling),
                    hardware=hw)
        click.echo(f"overhead: {method} search ({c.search.epochs} epochs)", err=True)
        res = _run_search(c, splits, out / f"overhead-{method}", progress)
        for e in res.log:
            s = e["seconds"]
            rows.append({"method": method, "epoch": e["epoch"], "samples": 1 if method == "trips" else c.hardware.samples,
                         "penalty_s": s["penalty"], "train_s": s["train"], "ratio": s["penalty"] / max(s["train"], 1e-9)})
    return rows


def _fps_of(g: Genotype, cfg: SearchConfig) -> tuple[float, float]:
    t = load_target(cfg.hardware.target)
    res = Das(g.to_workload(), t, DasConfig(objective=cfg.hardware.objective, steps=cfg.hardware.final_das.steps,
                                            batch=cfg.hardware.final_das.batch, seed=cfg.seed, progress=False)).run()
    c = cost_design(res.design, t)
    return c.fps, c.latency_ms


def quality_table(cfg: SearchConfig, splits: datasets.Splits, out: Path, progress: bool,
                  train_limit: int | None) -> list[dict[str, Any]]:
    from dnac.search.train import train

    rows = []
    cases: list[tuple[str, Genotype, float]] = []
    t0 = time.perf_counter()
    res = _run_search(replace(cfg, name="bench-cosearch"), splits, out / "quality-cosearch", progress)
    cases.append(("co-search (TRIPS + DAS)", res.genotype, time.perf_counter() - t0))
    t0 = time.perf_counter()
    flops = replace(cfg, name="bench-flops", search=replace(cfg.search, method="flops"))
    res_f = _run_search(flops, splits, out / "quality-sequential", progress)
    cases.append(("sequential (FLOPs NAS, then DAS)", res_f.genotype, time.perf_counter() - t0))
    space = cfg.build_space(splits.train.shape, splits.train.classes)
    rng = np.random.default_rng(cfg.seed)
    ops = [int(rng.integers(len(s.candidates))) for s in space.layers()]
    bits = [int(rng.integers(len(space.bits))) for _ in space.layers()]
    cases.append(("random network + DAS", Genotype.of(space, ops, bits, "random"), 0.0))
    for name, g, search_s in cases:
        click.echo(f"quality: training {name}: {' '.join(g.describe())}", err=True)
        fps, latency = _fps_of(g, cfg)
        w = g.to_workload()
        tr = train(w, cfg.train, splits, seed=cfg.seed, limit_batches=train_limit, progress=progress,
                   printer=lambda s: click.echo(f"  {s}", err=True))
        rows.append({"method": name, "network": g.describe(), "top1": tr.top1, "fps": fps, "latency_ms": latency,
                     "macs": w.total_macs, "mean_bits": float(np.mean([b.bits for b in g.blocks])),
                     "search_s": round(search_s, 1), "train_s": round(tr.seconds, 1)})
    return rows


# ---------------------------------------------------------------------------- tables
def _fmt_table(rows: list[dict[str, Any]], cols: list[tuple[str, str, str]]) -> str:
    body = [[format(r[k], f) if f else str(r[k]) for k, _, f in cols] for r in rows]
    return textable.render([c[1] for c in cols], body, left=range(len(cols)))


def render(results: dict[str, Any]) -> str:
    parts = []
    if "memory" in results:
        parts.append("memory: activations saved for backward in one search step (weight + arch update)\n" + _fmt_table(
            results["memory"], [("choices", "choices", ""), ("mode", "precision sampling", ""),
                                ("activations_mib", "activations MiB", ".1f"), ("ratio_vs_1", "x vs 1 choice", ".2f")]
            + ([("cuda_peak_mib", "CUDA peak MiB", ".1f")] if results["memory"] and "cuda_peak_mib" in results["memory"][0] else [])))
    if "overhead" in results:
        parts.append("overhead: hardware penalty vs supernet training, per epoch\n" + _fmt_table(
            results["overhead"], [("method", "method", ""), ("epoch", "epoch", "d"), ("samples", "DAS nets", "d"),
                                  ("penalty_s", "penalty s", ".2f"), ("train_s", "train s", ".1f"),
                                  ("ratio", "penalty/train", ".1%")]))
    if "quality" in results:
        parts.append("quality: derived networks trained briefly from scratch\n" + _fmt_table(
            results["quality"], [("method", "method", ""), ("top1", "top-1", ".4f"), ("fps", "FPS", ".1f"),
                                 ("latency_ms", "latency ms", ".3f"), ("macs", "MACs", ",d"),
                                 ("mean_bits", "mean bits", ".1f")]))
    return "\n\n".join(parts)


def run_bench(out: Path, *, config_name: str = "fashion-mnist", parts: tuple[str, ...] = (), epochs: int | None = None,
              limit_batches: int | None = None, train_epochs: int | None = None, train_limit: int | None = None,
              memory_space: str = "fbnet-cifar", memory_batch: int = 32, data_dir: str | None = None,
              progress: bool | None = None) -> tuple[str, Path]:
    """Run the parts (default all); returns the tables as text and the JSON file written."""
    from dnac.search.config import with_overrides

    parts = parts or ("memory", "overhead", "quality")
    cfg = with_overrides(load_config(config_name), epochs=epochs, limit_batches=limit_batches, data_dir=data_dir,
                         train_epochs=train_epochs)
    show = sys.stderr.isatty() if progress is None else progress
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    results: dict[str, Any] = {"config": cfg.as_dict(), "device": str(device), "torch_threads": torch.get_num_threads()}
    splits = None
    if "memory" in parts:
        click.echo("memory: one search step per precision count", err=True)
        if memory_space == "fbnet-cifar":
            def space_of(bits: tuple[int, ...]) -> SearchSpace:
                return fbnet_space("fbnet-cifar", (3, 32, 32), 10, bits=bits)
        else:
            splits = datasets.load(cfg.data.dataset, cfg.data.data_dir, seed=cfg.seed)

            def space_of(bits: tuple[int, ...]) -> SearchSpace:
                return replace(cfg, space=replace(cfg.space, bits=bits)).build_space(splits.train.shape, splits.train.classes)
        results["memory"] = memory_table(space_of, memory_batch, device)
    if "overhead" in parts or "quality" in parts:
        splits = splits or datasets.load(cfg.data.dataset, cfg.data.data_dir, seed=cfg.seed)
    if "overhead" in parts:
        results["overhead"] = overhead_table(cfg, splits, folder, show)  # type: ignore[arg-type]
    if "quality" in parts:
        results["quality"] = quality_table(cfg, splits, folder, show, train_limit)  # type: ignore[arg-type]
    path = folder / "bench_search.json"
    path.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return render(results), path
