"""The co-search loop: DNA Algorithm 1 / TRIPS Sec. 3.4, with checkpoints and resume.

    for epoch in range(epochs):
        tau = tau0 * tau_decay ** epoch                        # DNA 3 x 0.92, TRIPS 5 x 0.975
        table = penalty.refresh(...)                           # DAS accelerator(s), per-candidate costs
        for (x_w, y_w), (x_a, y_a) in zip(weight half, arch half):
            update omega on (x_w, y_w)                         # Eq. 2: SGD, cosine schedule
            update alpha, beta on (x_a, y_a)                   # Eq. 1: Adam; L_val + lambda L_hw
        checkpoint                                             # <out>/checkpoint.pt, every epoch
    derive: argmax alpha, beta -> Genotype -> final DAS -> model.yaml, design.yaml, report.json

The run is a function of the config and the seed: batch orders come from (seed, epoch), the
Gumbel noise from one generator whose state is checkpointed, DAS from per-epoch seeds, and the
penalty's caches are checkpointed too, so `resume` ends where an uninterrupted run does.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from dnac.compiler import plots
from dnac.compiler.cost.model import cost_design
from dnac.compiler.das.search import Das, DasConfig
from dnac.compiler.errors import first_line
from dnac.compiler.ir import design_yaml
from dnac.compiler.ir.design import DesignGraph
from dnac.compiler.output import MARKER, MARKER_TEXT, atomic_output, write_atomic
from dnac.compiler.targets import load_target
from dnac.search import data as datasets
from dnac.search.config import SearchConfig
from dnac.search.distributed import DistContext
from dnac.search.errors import CheckpointError, DataError
from dnac.search.genotype import Genotype, model_yaml
from dnac.search.hw_penalty import CostTable, HardwarePenalty, dna_loss, trips_loss
from dnac.search.supernet import Supernet

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_VERSION = 1
GRAD_CLIP = 5.0  # DARTS' weight-gradient clip
#: What `write` puts into the output folder (all together, or none of them).
PRODUCTS = ("model.yaml", "design.yaml", "report.json", "search_log.json", "search.svg")


def json_text(obj: Any, indent: int = 1, _level: int = 0) -> str:
    """JSON with one line per list of scalars (alpha, beta rows) and indentation elsewhere."""
    pad, inner = " " * (indent * _level), " " * (indent * (_level + 1))
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(str(k))}: {json_text(v, indent, _level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, (list, tuple)) and obj and any(isinstance(v, (dict, list, tuple)) for v in obj):
        items = [f"{inner}{json_text(v, indent, _level + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(obj)


@dataclass
class SearchResult:
    genotype: Genotype
    design: DesignGraph | None
    report: dict[str, Any]
    log: list[dict[str, Any]] = field(default_factory=list)
    out: Path | None = None


class CoSearch:
    """One co-search run of a config into an output folder."""

    def __init__(self, cfg: SearchConfig, out: Path, *, splits: datasets.Splits | None = None,
                 dist: DistContext | None = None, device: torch.device | None = None,
                 progress: bool | None = None, printer: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.dist = dist or DistContext()
        self.device = device or torch.device("cpu")
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.printer = printer or (lambda s: print(s, file=sys.stderr, flush=True))
        splits = splits or datasets.load(cfg.data.dataset, cfg.data.data_dir, seed=cfg.seed)
        self.dataset = splits.name
        self.space = cfg.build_space(splits.train.shape, splits.train.classes)
        self.w_data, self.a_data = datasets.search_halves(splits.train, cfg.seed)
        if cfg.data.batch_size * self.dist.world > min(len(self.w_data), len(self.a_data)):
            procs = f" (x {self.dist.world} processes)" if self.dist.world > 1 else ""
            raise DataError(cfg.source, "data.batch_size", f"{cfg.data.batch_size}{procs} is more than the {min(len(self.w_data), len(self.a_data)):,} images of each half of "
                            f"{splits.name}'s training split: no batch would be drawn")
        s = cfg.search
        torch.manual_seed(cfg.seed)
        self.net = Supernet(self.space, sampling=s.sampling, precision=s.precision, top_k=s.top_k).to(self.device)
        self.w_opt = torch.optim.SGD(self.net.weight_parameters(), lr=s.weight_lr, momentum=s.momentum,
                                     weight_decay=s.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, T_max=s.epochs, eta_min=0.0)
        # DNA Sec. 4.1.2: Adam "with a momentum of 0.9" (beta1) and a fixed learning rate
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=s.arch_lr, betas=(0.9, 0.999),
                                      weight_decay=s.arch_weight_decay)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)  # Gumbel noise, the same on every rank
        h = cfg.hardware
        self.penalty = HardwarePenalty(self.space, method=s.method, target=h.target, objective=h.objective,
                                       samples=h.samples, das_steps=h.das.steps, das_batch=h.das.batch,
                                       probe_draws=h.probe_draws, seed=cfg.seed)
        self.epoch = 0
        self.log: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT

    def save_checkpoint(self) -> None:
        if not self.dist.is_main:
            return
        if not (self.out / MARKER).is_file():  # the folder is dnac's: a later search may resume or replace it
            write_atomic(self.out / MARKER, MARKER_TEXT)
        state = {
            "version": CHECKPOINT_VERSION, "config": self.cfg.as_dict(), "epoch": self.epoch,
            "net": self.net.state_dict(), "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict(),
            "sched": self.sched.state_dict(), "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
            "penalty": self.penalty.state_dict(), "log": self.log,
        }
        write_atomic(self.checkpoint_path, lambda p: torch.save(state, p))

    def load_checkpoint(self) -> None:
        path = self.checkpoint_path
        if not path.is_file():
            raise CheckpointError(str(path), "--resume", "no checkpoint to resume from (run without --resume first)")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)  # data, never code
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise CheckpointError(str(path), "", f"unreadable checkpoint: {str(exc).splitlines()[0]}") from None
        if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(str(path), "version", f"not a dnac search checkpoint of version {CHECKPOINT_VERSION}")
        try:
            diff = _first_difference(state["config"], self.cfg.as_dict())
        except KeyError:
            raise CheckpointError(str(path), "config", "damaged checkpoint: no config") from None
        if diff:
            raise CheckpointError(str(path), diff, "the checkpoint was made with another config; resume with the "
                                  "same config and flags, or start a new --out")
        try:  # a file with the right version and config but damaged state is the same user error
            self.net.load_state_dict(state["net"])
            self.w_opt.load_state_dict(state["w_opt"])
            self.a_opt.load_state_dict(state["a_opt"])
            self.sched.load_state_dict(state["sched"])
            self.gen.set_state(state["gen"])
            torch.set_rng_state(state["torch_rng"])
            self.penalty.load_state_dict(state["penalty"])
            self.log = list(state["log"])
            self.epoch = int(state["epoch"])
        except KeyError as exc:
            raise CheckpointError(str(path), str(exc.args[0]), "damaged checkpoint: missing") from None
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(str(path), "", f"damaged checkpoint: {first_line(exc)}") from None

    # ------------------------------------------------------------------ steps
    def _weights_step(self, x: torch.Tensor, y: torch.Tensor, tau: float) -> tuple[float, float]:
        sample = self.net.sample(tau, self.gen, updating_arch=False)
        logits = self.net(x, sample)
        loss = F.cross_entropy(logits, y)
        self.w_opt.zero_grad(set_to_none=True)
        loss.backward()
        params = self.net.weight_parameters()
        self.dist.sync_grads(params)
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        self.w_opt.step()
        return loss.item(), float((logits.argmax(1) == y).float().mean())

    def _arch_step(self, x: torch.Tensor, y: torch.Tensor, tau: float, table: CostTable | None) -> dict[str, float]:
        sample = self.net.sample(tau, self.gen, updating_arch=True)
        weights = self.net.weight_parameters()
        for p in weights:  # only alpha and beta learn here; no weight gradients to compute
            p.requires_grad_(False)
        try:
            logits = self.net(x, sample)
            ce = F.cross_entropy(logits, y)
            hw = torch.zeros((), dtype=torch.float64, device=self.device)
            if table is not None and self.cfg.hardware.lam > 0:
                if self.cfg.search.method == "trips":
                    a = self.net.arch
                    hw = trips_loss(table, a.alpha, a.beta, sample.ops.active, sample.active_bits)
                else:
                    hw = dna_loss(table, sample.ops.weights, sample.bits)
            loss = ce + self.cfg.hardware.lam * hw.to(ce.dtype)
            self.a_opt.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            for p in weights:
                p.requires_grad_(True)
        self.dist.sync_grads(self.net.arch_parameters())
        self.a_opt.step()
        return {"ce": ce.item(), "hw": hw.item(), "acc": float((logits.argmax(1) == y).float().mean())}

    # ------------------------------------------------------------------ epochs
    def _epoch(self) -> dict[str, Any]:
        cfg, s, e = self.cfg, self.cfg.search, self.epoch
        tau = s.tau0 * s.tau_decay ** e
        searching = e >= s.warmup_epochs
        self.net.train()
        t0 = time.perf_counter()
        table = None
        if searching:
            a = self.net.arch
            table = self.penalty.refresh(e, a.op_probs().cpu().numpy().astype(np.float64),
                                         a.bit_probs().cpu().numpy().astype(np.float64),
                                         rank=self.dist.rank, world=self.dist.world, gather=self.dist.gather)
        t_pen = time.perf_counter() - t0
        bs, lim = cfg.data.batch_size, cfg.data.limit_batches
        kw: dict[str, Any] = {"seed": cfg.seed, "epoch": e, "limit": lim, "rank": self.dist.rank,
                              "world": self.dist.world}
        steps = min(datasets.n_batches(self.w_data, bs, lim, self.dist.world),
                    datasets.n_batches(self.a_data, bs, lim, self.dist.world))
        pairs = zip(datasets.batches(self.w_data, bs, stream=0, **kw), datasets.batches(self.a_data, bs, stream=1, **kw))
        bar = tqdm(pairs, total=steps, desc=f"epoch {e + 1}/{s.epochs}", disable=not (self.progress and self.dist.is_main),
                   leave=False, file=sys.stderr)
        sums = {"loss": 0.0, "acc": 0.0, "ce": 0.0, "hw": 0.0, "arch_acc": 0.0}
        n = 0
        t1 = time.perf_counter()
        for (xw, yw), (xa, ya) in bar:
            xw, yw, xa, ya = (t.to(self.device) for t in (xw, yw, xa, ya))
            loss, acc = self._weights_step(xw, yw, tau)
            sums["loss"] += loss
            sums["acc"] += acc
            if searching:
                r = self._arch_step(xa, ya, tau, table)
                sums["ce"] += r["ce"]
                sums["hw"] += r["hw"]
                sums["arch_acc"] += r["acc"]
            n += 1
            bar.set_postfix(loss=f"{sums['loss'] / n:.3f}", acc=f"{sums['acc'] / n:.3f}")
        t_train = time.perf_counter() - t1
        lr = self.sched.get_last_lr()[0]
        self.sched.step()
        self.dist.sync_buffers(self.net)
        ops, bits = self.net.argmax()
        a = self.net.arch
        entry: dict[str, Any] = {
            "epoch": e, "tau": tau, "lr": lr, "searching": searching, "steps": n,
            "train_loss": sums["loss"] / max(n, 1), "train_acc": sums["acc"] / max(n, 1),
            "arch_ce": sums["ce"] / max(n, 1) if searching else None,
            "arch_acc": sums["arch_acc"] / max(n, 1) if searching else None,
            "hw_loss": sums["hw"] / max(n, 1) if searching else None,
            "hw_cost": table.network(ops, bits) if table is not None else None,
            "accelerators": table.accelerators if table is not None else [],
            "alpha": [[round(float(v), 6) for v in row[: len(sl.candidates)]]
                      for row, sl in zip(a.op_probs().cpu(), self.space.layers())],
            "beta": [[round(float(v), 6) for v in row] for row in a.bit_probs().cpu()],
            "derived": Genotype.of(self.space, ops, bits).describe(),
            "seconds": {"penalty": t_pen, "train": t_train},
        }
        return entry

    def _line(self, entry: dict[str, Any]) -> str:
        e = entry
        hw = e["hw_cost"]
        hw_text = " ".join(f"{k} {v:.4g}" for k, v in hw.items()) if hw else "-"
        arch = f" arch ce {e['arch_ce']:.3f} acc {e['arch_acc']:.3f}" if e["searching"] else " (warm-up)"
        return (f"epoch {e['epoch'] + 1}/{self.cfg.search.epochs}: loss {e['train_loss']:.3f} acc {e['train_acc']:.3f}"
                f"{arch} | hw {hw_text} | tau {e['tau']:.3f} | train {e['seconds']['train']:.1f}s "
                f"penalty {e['seconds']['penalty']:.1f}s")

    # ------------------------------------------------------------------ run
    def run(self, *, resume: bool = False, stop_after: int | None = None) -> SearchResult | None:
        """Search to the configured epochs (or `stop_after` more, for tests of resume) and
        derive.  Returns None when stopped early."""
        if resume:
            self.load_checkpoint()
        start = time.perf_counter()
        done_now = 0
        while self.epoch < self.cfg.search.epochs:
            if stop_after is not None and done_now >= stop_after:
                return None
            entry = self._epoch()
            self.log.append(entry)
            self.epoch += 1
            done_now += 1
            if self.dist.is_main:
                self.save_checkpoint()
                write_atomic(self.out / "search_log.json", json_text(self._log_doc()))
                self.printer(self._line(entry))
        result = self.derive()
        result.report["search"]["seconds"] = round(time.perf_counter() - start, 3)
        if self.dist.is_main:
            self.write(result)
        return result

    def _log_doc(self) -> dict[str, Any]:
        return {"config": self.cfg.as_dict(), "dataset": self.dataset,
                "space": {"layers": [list(s.candidates) for s in self.space.layers()], "bits": list(self.space.bits)},
                "epochs": self.log}

    def evaluate_path(self, ops: list[int], bits: list[int], limit: int | None = None) -> float:
        """Top-1 of one single path of the supernet on the architecture half."""
        self.net.eval()
        sample = self.net.fixed_sample(ops, bits)
        correct = total = 0
        with torch.no_grad():
            for x, y in datasets.batches(self.a_data, self.cfg.data.batch_size, seed=self.cfg.seed, epoch=0,
                                         limit=limit, shuffle=False):
                pred = self.net(x.to(self.device), sample).argmax(1).cpu()
                correct += int((pred == y).sum())
                total += len(y)
        self.net.train()
        return correct / max(total, 1)

    def derive(self) -> SearchResult:
        """Argmax of alpha and beta, its supernet accuracy, and its final DAS accelerator."""
        ops, bits = self.net.argmax()
        g = Genotype.of(self.space, ops, bits)
        top1 = self.evaluate_path(ops, bits, self.cfg.data.limit_batches)
        h = self.cfg.hardware
        target = load_target(h.target)
        w = g.to_workload()
        res = Das(w, target, DasConfig(objective=h.objective, steps=h.final_das.steps, batch=h.final_das.batch,
                                       seed=self.cfg.seed, progress=self.progress and self.dist.is_main)).run()
        design = res.design
        report = cost_design(design, target).as_dict()
        report["search"] = {"method": "das", "evaluations": res.evaluations, "seconds": round(res.seconds, 3)}
        report["cosearch"] = {
            "method": self.cfg.search.method, "config": self.cfg.name, "config_source": self.cfg.source,
            "dataset": self.dataset,
            "epochs": self.cfg.search.epochs, "seed": self.cfg.seed, "objective": h.objective,
            "supernet_top1": top1, "network": g.describe(), "macs": w.total_macs, "params": w.total_params,
            "penalty_seconds": round(sum(e["seconds"]["penalty"] for e in self.log), 3),
            "train_seconds": round(sum(e["seconds"]["train"] for e in self.log), 3),
            "genotype": g.as_dict(),
        }
        return SearchResult(g, design, report, self.log, self.out)

    def write(self, result: SearchResult) -> None:
        """Swap the final products in together (`atomic_output` with `carry`): a run killed while
        writing them leaves the previous set beside the checkpoint, never a new model.yaml with an
        old report.json."""
        header = (f"derived by `dnac search {self.cfg.source}` (method {self.cfg.search.method}, dataset "
                  f"{self.dataset}, seed {self.cfg.seed})\nnetwork: {' '.join(result.genotype.describe())}")
        with atomic_output(self.out, force=True, replacing=PRODUCTS) as out:  # the run claimed the folder
            (out / "model.yaml").write_text(model_yaml(result.genotype.to_workload(), header=header),
                                            encoding="utf-8")
            if result.design is not None:
                (out / "design.yaml").write_text(design_yaml.dump(result.design), encoding="utf-8")
            (out / "report.json").write_text(json.dumps(result.report, indent=2), encoding="utf-8")
            (out / "search_log.json").write_text(json_text(self._log_doc()), encoding="utf-8")
            if self.log:
                layers = [list(s.candidates) for s in self.space.layers()]
                plots.cosearch_curves(self.log, layers, out / "search.svg")


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """The dotted path of the first field where two config dicts differ ('' if equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            d = _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
            if d:
                return d
        return ""
    return "" if a == b else (path or "config")
