"""DAS: differentiable accelerator search (DNA Sec. 3.4 Eq. 7; TRIPS Sec. 3.3 Eq. 5).

Each step draws a batch of designs with hard Gumbel-softmax (`gumbel.KnobLogits.sample`),
costs them all with the batched cost model, and descends

    loss = mean_b  sum_s  A[b, s] * GS(gamma_s)[b]

where GS(gamma_s)[b] is the straight-through relaxed one-hot of knob s's draw in sample b
(value 1, gradient of its relaxed probability) and A[b, s] the cost that draw is charged.
Two choices make one set of hyper-parameters work from AlexNet to MobileNetV2, where the
papers' learning rate of 1e-9 only reflects raw cycle counts:

- costs are normalized: log of the objective, standardized over the batch (a baseline and a
  scale), so the gradient does not depend on the model's size or the objective's unit;
- credit goes where the cost arises: a knob of layer l (its chunk slot, its loop sizes) is
  charged the design's cost plus layer l's own (its cycles, and energy for energy objectives),
  a knob of chunk slot s (NoC, unrolls, loop orders, buffers) the design's plus that chunk's.

Budgets enter the cost as a penalty on the overflow of every resource, so the search is pushed
back inside them; the engine only ever returns a design that fits (the best feasible design it
has evaluated), and says so when none does.

`DasConfig.refine` > 0 adds a few rounds of hill climbing around the result (`hill_climb`); the
default, 0, is the papers' DAS.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from dnac.compiler.cost.base import BatchCost
from dnac.compiler.cost.model import OBJECTIVES, Target, evaluate
from dnac.compiler.das.batch import DesignBatch
from dnac.compiler.das.decode import decode
from dnac.compiler.das.gumbel import KnobLogits
from dnac.compiler.das.space import DesignSpace, KnobKind
from dnac.compiler.errors import BudgetError
from dnac.compiler.ir.design import DesignGraph
from dnac.compiler.targets import AsicTarget, FpgaTarget
from dnac.compiler.workload.layer import Workload

_LAYER_KINDS = {KnobKind.ASSIGN, KnobKind.RF_TILE, KnobKind.GB_TILE}
_SLOT_KINDS = {KnobKind.NOC, KnobKind.UNROLL, KnobKind.ORDER, KnobKind.GB_SIZE, KnobKind.GB_SPLIT,
               KnobKind.RF_SIZE, KnobKind.RF_SPLIT}


@dataclass(frozen=True)
class DasConfig:
    """DAS hyper-parameters (one set for every model; see the module docstring)."""

    objective: str = "fps"  # fps or latency (FPGA); edp, latency or energy (ASIC)
    steps: int = 64  # gradient steps (64 x 64 evaluations: MobileNetV2 in < 10 s on 2 cores)
    batch: int = 64  # designs drawn per step
    lr: float = 0.15  # Adam learning rate on the logits
    tau0: float = 5.0  # Gumbel-softmax temperature, annealed geometrically ...
    tau_end: float = 0.5  # ... to this at the last step
    local_weight: float = 1.0  # weight of a knob's own layer / chunk cost in its charge
    penalty: float = 4.0  # log-cost added per unit of relative budget overflow
    chunk_penalty: float = 0.3  # weight of a chunk's own share of the overflow, scaled by the batch's infeasible share
    seed: int = 0
    progress: bool | None = None  # a progress bar; None = only on a terminal
    refine: int = 0  # rounds of hill climbing after the gradient steps (`hill_climb`); 0 = DAS as in the papers


@dataclass
class DasResult:
    """The best feasible design found, and how the search got there."""

    design: DesignGraph
    choices: np.ndarray  # [K] its choice vector
    objective: float  # its objective value (lower is better)
    evaluations: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def _budgets(target: Target) -> dict[str, float]:
    if isinstance(target, FpgaTarget):
        return {"dsp": target.dsp, "bram18k": target.bram18k, "lut": target.lut, "ff": target.ff}
    return {"area_mm2": target.area_mm2} if target.area_mm2 is not None else {}


def overflow(cost: BatchCost, target: Target) -> torch.Tensor:
    """[B] relative budget overflow summed over resources (0 when everything fits)."""
    total = torch.zeros_like(cost.cycles_per_frame)
    for key, budget in _budgets(target).items():
        total += torch.relu(cost.resources[key] / budget - 1.0)
    return total


def slot_overflow(cost: BatchCost, target: Target) -> torch.Tensor:
    """[B, S] each chunk's share of its design's budget overflow (by its share of each resource)."""
    total = None
    for key, budget in _budgets(target).items():
        use = cost.slot_resources[key]
        share = use / cost.resources[key].clamp_min(1e-30)[:, None]
        part = torch.relu(cost.resources[key] / budget - 1.0)[:, None] * share
        total = part if total is None else total + part
    return total if total is not None else torch.zeros_like(cost.layer_cycles[:, :1])


def check_objective(objective: str, target: Target) -> None:
    allowed = OBJECTIVES[target.KIND]
    if objective not in allowed:
        raise BudgetError("-", "--objective", f"{objective!r} is not an objective for {target.name} "
                          f"(choose from: {', '.join(allowed)})")


class Das:
    """The search state for one workload on one target."""

    def __init__(self, workload: Workload, target: Target, config: DasConfig = DasConfig(),
                 frozen: dict[int, int] | None = None) -> None:
        check_objective(config.objective, target)
        self.space = DesignSpace(workload, target)
        self.target = target
        self.config = config
        self.logits = KnobLogits(self.space, frozen)
        kinds = [k.kind for k in self.space.knobs]
        self.knob_layer = np.full(self.space.n_knobs, -1)
        self.knob_slot = np.full(self.space.n_knobs, -1)
        for li in range(len(self.space.layers)):
            self.knob_layer[self.space.i_assign[li]] = li
            self.knob_layer[self.space.i_rf[li]] = li
            self.knob_layer[self.space.i_gb[li]] = li
        for s in range(self.space.n_slots):
            for idx in (self.space.i_noc[s:s + 1], self.space.i_unroll[s], self.space.i_order[s].ravel(),
                        self.space.i_buf[s]):
                self.knob_slot[idx] = s
        assert all((self.knob_layer[i] >= 0) == (kinds[i] in _LAYER_KINDS) for i in range(len(kinds)))
        assert all((self.knob_slot[i] >= 0) == (kinds[i] in _SLOT_KINDS) for i in range(len(kinds)))
        self.learnable = torch.ones(self.space.n_knobs, dtype=torch.float64)
        if frozen:
            self.learnable[list(frozen)] = 0.0

    # ------------------------------------------------------------------ costs
    def _charges(self, batch: DesignBatch, cost: BatchCost) -> torch.Tensor:
        """[B, K] the normalized cost charged to every knob draw."""
        cfg = self.config

        def standard(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
            finite = torch.where(torch.isfinite(x), x, torch.zeros_like(x))
            mean = finite.mean(dim, keepdim=True)
            std = finite.std(dim, keepdim=True).clamp_min(1e-9)
            return (finite - mean) / std

        design = torch.log(cost.raw(cfg.objective).clamp_min(1e-30)) + cfg.penalty * overflow(cost, self.target)
        design = design + cfg.penalty * (~torch.as_tensor(batch.fits)).to(torch.float64)
        g = standard(design)  # [B]
        # a layer's time; in a pipeline, where every chunk shares DRAM and the frame period is at
        # least the frame's traffic time, also its traffic against a 1/L share of the bandwidth
        n_layers = cost.layer_cycles.shape[1]
        share = torch.as_tensor(batch.arch == 0, dtype=torch.float64)[:, None] * n_layers
        layer = torch.log((cost.layer_cycles + share * cost.layer_bytes / cost.dram_bytes_per_cycle).clamp_min(1.0))
        if cfg.objective in ("energy", "edp"):
            layer = layer + torch.log(cost.layer_energy_pj.clamp_min(1e-9))
        layer_adv = standard(layer)  # [B, L]
        slot = torch.as_tensor(batch.slot)
        chunk = torch.zeros(batch.size, batch.n_slots, dtype=torch.float64).scatter_add_(1, slot, cost.layer_cycles)
        used = torch.as_tensor(batch.used_slots())
        # a chunk's own cost: its cycles per frame, and its share of any budget it overruns
        # (only while the batch is mostly over budget: then the chunks that overrun it must shrink;
        # once designs fit, the chunk's speed is what matters)
        infeasible = 1.0 - float(cost.feasible.to(torch.float64).mean())
        own = torch.log(chunk.clamp_min(1.0)) + cfg.chunk_penalty * infeasible * cfg.penalty * slot_overflow(
            cost, self.target)
        chunk_log = torch.where(used, own, torch.zeros_like(chunk))
        n_used = used.sum(0, keepdim=True).clamp_min(1)
        mean = chunk_log.sum(0, keepdim=True) / n_used
        var = (((chunk_log - mean) * used) ** 2).sum(0, keepdim=True) / n_used
        slot_adv = torch.where(used, (chunk_log - mean) / var.sqrt().clamp_min(1e-9), torch.zeros_like(chunk_log))
        local = torch.zeros(batch.size, self.space.n_knobs, dtype=torch.float64)
        kl = torch.as_tensor(self.knob_layer)
        ks = torch.as_tensor(self.knob_slot)
        local[:, kl >= 0] = layer_adv[:, kl[kl >= 0]]
        local[:, ks >= 0] = slot_adv[:, ks[ks >= 0]]
        return g[:, None] + cfg.local_weight * local

    # ------------------------------------------------------------------ search
    def refine(self, choice: np.ndarray, value: float, rounds: int) -> tuple[np.ndarray, float, int]:
        """`hill_climb` from a design of this search over its learnable knobs (frozen ones stay)."""
        mutable = np.flatnonzero((self.learnable.numpy() > 0) & (self.space.n_choices > 1))
        return hill_climb(self.space, self.target, self.config.objective, choice, value, rounds=rounds,
                          batch=self.config.batch, mutable=mutable, rng=np.random.default_rng(self.config.seed))

    def run(self) -> DasResult:
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = torch.optim.Adam(self.logits.parameters(), lr=cfg.lr)
        best_value, best_choice = math.inf, None
        history: list[dict[str, float]] = []
        show = sys.stderr.isatty() if cfg.progress is None else cfg.progress
        start = time.perf_counter()
        evaluations = 0
        bar = tqdm(range(cfg.steps), desc=f"DAS {self.space.workload.name}", disable=not show, leave=False)
        for step in bar:
            tau = cfg.tau0 * (cfg.tau_end / cfg.tau0) ** (step / max(1, cfg.steps - 1))
            sample = self.logits.sample(cfg.batch, tau, gen)
            batch = decode(self.space, sample.choices)
            cost = evaluate(batch, self.target)
            evaluations += batch.size
            value = cost.objective(cfg.objective)
            i = int(value.argmin())
            if float(value[i]) < best_value:
                best_value, best_choice = float(value[i]), sample.choices[i].copy()
            charges = self._charges(batch, cost)
            loss = (charges * sample.relaxed * self.learnable).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            feasible = cost.feasible.to(torch.float64)
            history.append({"step": step, "tau": tau, "best": best_value,
                            "feasible": float(feasible.mean()),
                            "median": float(cost.raw(cfg.objective).median())})
            bar.set_postfix(best=f"{best_value:.4g}", feasible=f"{float(feasible.mean()):.2f}")
        # the most likely design is a candidate too
        mode = self.logits.mode()
        mb = decode(self.space, mode)
        mv = float(evaluate(mb, self.target).objective(cfg.objective)[0])
        evaluations += 1
        if mv < best_value:
            best_value, best_choice = mv, mode[0]
        if cfg.refine and best_choice is not None and math.isfinite(best_value):
            best_choice, best_value, n = self.refine(best_choice, best_value, cfg.refine)
            evaluations += n
        seconds = time.perf_counter() - start
        if best_choice is None or not math.isfinite(best_value):
            raise BudgetError(self.space.workload.source or self.space.workload.name, "budget",
                              f"no design of {self.space.workload.name} fits {_budget_text(self.target)} "
                              f"after {evaluations} evaluations")
        design = decode(self.space, best_choice[None]).to_design(0, self.target.name)
        design.meta.update({"search": "das", "objective": cfg.objective, "seed": cfg.seed})
        return DasResult(design, best_choice, best_value, evaluations, seconds, history)


def hill_climb(space: DesignSpace, target: Target, objective: str, choice: np.ndarray, value: float, *,
               rounds: int, batch: int, mutable: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, float, int]:
    """(choice, objective, evaluations) after `rounds` of hill climbing from `choice`: each round
    costs `batch` neighbours (one knob of `mutable` changed, a second one in half of them) and
    moves to the best if it is better -- the polish Timeloop's hybrid mapper gives its random
    search.  The gradient steps settle each knob by its average effect over a batch of designs;
    the interactions of a few knobs in one design, where the last percent lie, are what a
    neighbour search tries directly (`dnac bench das`, column das_refined)."""
    n_choices = space.n_choices
    evaluations = 0
    if mutable.size == 0:
        return choice, value, evaluations
    for _ in range(rounds):
        cand = np.repeat(choice[None], batch, axis=0)
        knobs = rng.choice(mutable, size=(batch, 2))
        for col, rows in enumerate((np.arange(batch), np.flatnonzero(rng.random(batch) < 0.5))):
            k = knobs[rows, col]
            cand[rows, k] = (cand[rows, k] + rng.integers(1, n_choices[k])) % n_choices[k]
        values = evaluate(decode(space, cand), target).objective(objective)
        evaluations += batch
        i = int(values.argmin())
        if float(values[i]) < value:
            choice, value = cand[i].copy(), float(values[i])
    return choice, value, evaluations


#: Knob families that the ablation freezes, one at a time, at a default.
ABLATIONS = ("loop_order", "chunk_assignment", "noc_style", "buffer_split")


def frozen_defaults(space: DesignSpace, family: str) -> dict[int, int]:
    """The knobs of `family` fixed at a default: loop orders N,K,C,R,S,P,Q at every level; every
    layer on its group's first chunk (one chunk per group); the first NoC style (K,P,Q); buffers
    split 3:3:2 among weights, inputs and outputs."""
    from dnac.compiler.das.space import SPLITS

    fix: dict[int, int] = {}
    if family == "loop_order":
        for s in range(space.n_slots):
            for lvl in range(space.i_order.shape[1]):
                fix.update({int(k): j for j, k in enumerate(space.i_order[s, lvl])})
    elif family == "chunk_assignment":
        fix.update({int(k): 0 for k in space.i_nchunks})
        fix.update({int(k): 0 for k in space.i_assign})
    elif family == "noc_style":
        fix.update({int(k): 0 for k in space.i_noc})
    elif family == "buffer_split":
        even = SPLITS.index((3, 3, 2))
        fix.update({int(k): even for k in space.i_buf[:, 1]})
        fix.update({int(k): even for k in space.i_buf[:, 3]})
    else:
        raise ValueError(f"unknown ablation {family!r} (known: {', '.join(ABLATIONS)})")
    return fix


def _budget_text(target: Target) -> str:
    if isinstance(target, FpgaTarget):
        return f"{target.name}'s {target.dsp} DSP / {target.bram18k} BRAM18K / {target.lut} LUT"
    assert isinstance(target, AsicTarget)
    return f"{target.area_mm2} mm^2" if target.area_mm2 is not None else target.name


def random_search(workload: Workload, target: Target, evaluations: int, *, objective: str, seed: int = 0,
                  chunk: int = 1024) -> tuple[float, np.ndarray | None]:
    """The best objective of `evaluations` uniformly random designs (the baselines DAS is held to)."""
    space = DesignSpace(workload, target)
    rng = np.random.default_rng(seed)
    best, best_choice = math.inf, None
    done = 0
    while done < evaluations:
        n = min(chunk, evaluations - done)
        ch = space.random_choices(n, rng)
        value = evaluate(decode(space, ch), target).objective(objective)
        i = int(value.argmin())
        if float(value[i]) < best:
            best, best_choice = float(value[i]), ch[i]
        done += n
    return best, best_choice
