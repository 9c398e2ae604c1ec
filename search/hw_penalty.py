"""The hardware-cost penalty of co-search: per-candidate costs on DAS-optimized accelerators.

Network search is layer-wise but an accelerator is shared by the whole network (DNA Sec. 3.2),
so each epoch the penalty builds a `CostTable`: the cost of every candidate (layer l,
operator k, precision j) on accelerators that DAS optimized for networks likely to be derived.

- DNA (Alg. 1, Eq. 4-5): sample M networks (operators and precisions) from the current
  alpha, beta; DAS optimizes an accelerator for each; the cost of every candidate is its cost
  averaged over the M accelerators, and the penalty is sum_l sum_k alpha_lk C_lk (Eq. 5), with
  alpha_lk the step's Gumbel-softmax weights.
- TRIPS (Eq. 8): the accelerator DAS optimized for the current single-path network (the most
  likely one, re-optimized every epoch); the gradient reaching alpha_li (beta_lj) is the cost
  of the operator (precision) the step activated, 1(GS_hard(alpha_li) = 1) L_cost.
- FLOPs (the sequential baseline's NAS): MACs, no accelerator.

"The cost of candidate (l, k, j) on accelerator m": the candidate block's conv layers are
mapped onto the chunk hardware of m that runs the same layer position in m's network (the chunk
of its expansion, depthwise or projection conv; the nearest such layer when that block is a
skip), with every hardware knob of the chunk frozen (NoC, unrolls, loop orders, buffer sizes and
splits) and only the layer's own mapping knobs free (its RF and GB loop sizes: `probe_draws`
random draws, each grown into the buffers by `decode`, the best kept per layer).  A candidate at
another precision than the chunk's keeps the chunk's resources: its datapath is rebuilt at the
candidate's width, so its PE count scales with what one MAC costs at that width (DSP48s, or
LUTs in DSP equivalents, on the ZC706; MAC area on the ASIC) and its buffers hold more or fewer
words.  Costs are additive per layer: cycles (FPS and latency objectives; the pipeline period
is approximated by the layer sum), energy, or both (EDP = energy x latency, penalized as
log E + log D).  Residual adds and pools are left out: every candidate has the same ones.

Speed: DAS runs are warm-started (the logits of knobs with the same name and choices carry
over from every earlier run, so DAS continues across epochs as TRIPS Sec. 3.4 updates gamma
alongside omega), cached per sampled genotype, and the mapped candidate layers are cached per
(chunk hardware, layer shape, precision).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import torch

from dnac.compiler.cost.model import Target, evaluate
from dnac.compiler.das.decode import decode
from dnac.compiler.das.search import Das, DasConfig
from dnac.compiler.das.space import UNROLL_CHOICES, UNROLL_DIMS, DesignSpace
from dnac.compiler.errors import BudgetError
from dnac.compiler.targets import FpgaTarget, load_target
from dnac.compiler.vocab import Dim
from dnac.compiler.workload.builder import ModelBuilder
from dnac.compiler.workload.layer import Layer, Workload
from dnac.search.genotype import Genotype
from dnac.search.ops import OPS
from dnac.search.space import SearchSpace

log = logging.getLogger("dnac.search")

#: The additive per-layer metrics each objective is penalized by.
METRICS: dict[str, tuple[str, ...]] = {
    "fps": ("cycles",), "latency": ("cycles",), "energy": ("energy",), "edp": ("energy", "cycles"),
    "flops": ("macs",),
}
_K = UNROLL_DIMS.index(Dim.K)



def _plain(x: Any) -> Any:
    """`x` with enums as their values and numpy scalars as Python numbers, so that the caches
    hold only what a weights-only checkpoint may contain."""
    if isinstance(x, Enum):
        return x.value
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, tuple):
        return tuple(_plain(v) for v in x)
    return x

@dataclass
class CostTable:
    """Per-candidate costs for one epoch."""

    metrics: tuple[str, ...]
    block: dict[str, torch.Tensor]  # metric -> [L, K, J] (skip and absent candidates: 0)
    fixed: dict[str, float]  # metric -> cost of stem, head and classifier
    accelerators: list[dict[str, Any]] = field(default_factory=list)  # what each was optimized for

    def network(self, ops: list[int], bits: list[int]) -> dict[str, float]:
        """The cost of one single-path network."""
        idx = torch.arange(len(ops))
        return {m: self.fixed[m] + float(self.block[m][idx, torch.as_tensor(ops), torch.as_tensor(bits)].sum())
                for m in self.metrics}

    def expected(self, op_w: torch.Tensor, bit_w: torch.Tensor) -> dict[str, torch.Tensor]:
        """sum_l sum_k sum_j a_lk b_lj C_lkj + fixed (DNA Eq. 5, with the precision weights)."""
        return {m: self.fixed[m] + torch.einsum("lk,lj,lkj->", op_w.double(), bit_w.double(),
                                                self.block[m].to(op_w.device))
                for m in self.metrics}

    def as_dict(self) -> dict[str, Any]:
        return {"metrics": list(self.metrics), "fixed": dict(self.fixed),
                "block": {m: v.tolist() for m, v in self.block.items()}, "accelerators": list(self.accelerators)}


def dna_loss(table: CostTable, op_w: torch.Tensor, bit_w: torch.Tensor) -> torch.Tensor:
    """L_hw of DNA Eq. 5 (per-operator costs weighted by the sample), as sum over metrics of
    log(expected cost): the gradient is relative, so lambda does not depend on the unit."""
    return sum(torch.log(v.clamp_min(1e-12)) for v in table.expected(op_w, bit_w).values())  # type: ignore[return-value]


def trips_loss(table: CostTable, alpha: torch.Tensor, beta: torch.Tensor, ops: list[int], bits: list[int]) -> torch.Tensor:
    """A surrogate whose gradient is TRIPS Eq. 8: d/d alpha_li = 1(i active) C_l / C_net (and the
    same for beta), the active block's share of the single-path network's cost."""
    L = len(ops)
    idx = torch.arange(L)
    o, b = torch.as_tensor(ops), torch.as_tensor(bits)
    loss = alpha.new_zeros((), dtype=torch.float64)
    for m in table.metrics:
        c = table.block[m][idx, o, b].to(alpha.device)
        total = table.fixed[m] + float(c.sum())
        share = c / max(total, 1e-12)
        loss = loss + ((alpha[idx, o].double() + beta[idx, b].double()) * share).sum()
    return loss


def pe_ratio(target: Target, from_bits: int, to_bits: int) -> float:
    """How many more MACs per cycle the same resources give at `to_bits` than at `from_bits`."""
    if isinstance(target, FpgaTarget):
        def cost(b: int) -> float:  # DSP48 equivalents per MAC
            return target.dsp_per_mac(b) if target.uses_dsp(b) else target.lut_per_mac(b) * target.dsp / target.lut
    else:
        def cost(b: int) -> float:
            return target.mac(b).area_um2
    return cost(from_bits) / max(cost(to_bits), 1e-12)


def _nearest_unroll(value: float) -> int:
    """Index of the K unroll choice closest to `value` (in ratio)."""
    choices = UNROLL_CHOICES[Dim.K]
    return int(np.argmin([abs(math.log(c / max(value, 1.0))) for c in choices]))


@dataclass
class _Unit:
    """What one accelerator contributes to an epoch's table, and the state it learned."""

    block: dict[str, np.ndarray]
    fixed: dict[str, float]
    summary: dict[str, Any]
    das: tuple[tuple[tuple[str, int], ...], np.ndarray, float] | None = None  # (genotype key, choices, objective)
    warm: dict[str, tuple[tuple[Any, ...], np.ndarray]] = field(default_factory=dict)
    probes: dict[tuple[Any, ...], tuple[float, float]] = field(default_factory=dict)


class HardwarePenalty:
    """Builds the epoch's `CostTable` for one space, target and method."""

    def __init__(self, space: SearchSpace, *, method: str, target: str, objective: str, samples: int,
                 das_steps: int, das_batch: int, probe_draws: int, seed: int) -> None:
        self.space = space
        self.method = method
        self.target: Target | None = None if method == "flops" else load_target(target)
        self.objective = objective
        self.metrics = METRICS["flops" if method == "flops" else objective]
        self.samples = samples
        self.das_steps, self.das_batch, self.probe_draws = das_steps, das_batch, probe_draws
        self.seed = seed
        self.das_cache: dict[tuple[tuple[str, int], ...], tuple[np.ndarray, float]] = {}
        self.warm: dict[str, tuple[tuple[Any, ...], np.ndarray]] = {}
        self.probes: dict[tuple[Any, ...], tuple[float, float]] = {}
        self._blocks = self._block_layers()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The caches, as plain data and tensors only (checkpoints load with weights_only=True)."""
        return {
            "das_cache": {_plain(k): (torch.as_tensor(c), float(v)) for k, (c, v) in self.das_cache.items()},
            "warm": {k: (_plain(c), torch.as_tensor(g)) for k, (c, g) in self.warm.items()},
            "probes": {_plain(k): tuple(float(x) for x in v) for k, v in self.probes.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.das_cache = {k: (c.numpy(), v) for k, (c, v) in state["das_cache"].items()}
        self.warm = {k: (c, g.numpy()) for k, (c, g) in state["warm"].items()}
        self.probes = {k: tuple(v) for k, v in state["probes"].items()}  # type: ignore[misc]

    # ------------------------------------------------------------------ the candidates
    def _block_layers(self) -> dict[tuple[int, int, int], list[tuple[str, Layer]]]:
        """(l, k, j) -> the candidate block's conv layers with their roles (none for skip)."""
        out = {}
        for s in self.space.layers():
            for k, op in enumerate(s.candidates):
                plan = OPS[op].layer_plan(s.c_in, s.c_out, s.stride)
                for j, bits in enumerate(self.space.bits):
                    if not plan:
                        out[(s.index, k, j)] = []
                        continue
                    b = ModelBuilder("probe", (s.c_in, *s.in_size), w_bits=bits, a_bits=bits)
                    for p in plan:
                        b.conv(p.role, p.out_channels, p.kernel, stride=p.stride, padding=p.kernel // 2,
                               groups=p.groups, bias=True)
                    out[(s.index, k, j)] = [(layer.name, layer) for layer in b.build().layers]
        return out

    def _sample_genotypes(self, epoch: int, op_probs: np.ndarray, bit_probs: np.ndarray) -> list[Genotype]:
        if self.method == "trips":
            return [Genotype.of(self.space, list(op_probs.argmax(-1)), list(bit_probs.argmax(-1)))]
        rng = np.random.default_rng([self.seed, epoch, 17])
        out = []
        for _ in range(self.samples):
            ops = [int(rng.choice(len(p), p=p / p.sum())) for p in op_probs]
            bits = [int(rng.choice(len(p), p=p / p.sum())) for p in bit_probs]
            out.append(Genotype.of(self.space, ops, bits))
        return out

    # ------------------------------------------------------------------ one epoch
    def refresh(self, epoch: int, op_probs: np.ndarray, bit_probs: np.ndarray, *, rank: int = 0, world: int = 1,
                gather: Callable[[Any], list[Any]] | None = None) -> CostTable:
        """The epoch's table.  With `world` > 1 the sampled networks are shared out among the
        ranks and `gather` (all_gather_object) collects them; every unit starts from the state of
        the epoch's start and the updates are applied in sample order, so the table and the
        state do not depend on the number of ranks."""
        if self.method == "flops":
            return self._macs_table()
        genos = self._sample_genotypes(epoch, op_probs, bit_probs)
        mine = {i: self._unit(g, seed=self.seed * 1000 + epoch * 31 + i) for i, g in enumerate(genos) if i % world == rank}
        units: dict[int, _Unit] = {}
        if world > 1 and gather is not None:
            for part in gather(mine):
                units.update(part)
        else:
            units = mine
        done = [units[i] for i in sorted(units) if units[i] is not None]
        for u in done:  # state updates in sample order
            if u.das is not None:
                key, choices, value = u.das
                self.das_cache[key] = (choices, value)
            self.warm.update(u.warm)
            self.probes.update(u.probes)
        if not done:
            raise BudgetError(self.space.name, "hardware", f"no sampled network fits {self.target.name}")  # type: ignore[union-attr]
        block = {m: torch.as_tensor(np.mean([u.block[m] for u in done], axis=0)) for m in self.metrics}
        fixed = {m: float(np.mean([u.fixed[m] for u in done])) for m in self.metrics}
        return CostTable(self.metrics, block, fixed, [u.summary for u in done])

    def _macs_table(self) -> CostTable:
        L, K, J = self.space.n_layers, self.space.max_candidates, len(self.space.bits)
        block = np.zeros((L, K, J))
        for (l, k, j), layers in self._blocks.items():
            block[l, k, j] = sum(layer.macs for _, layer in layers)
        g = Genotype.of(self.space, [0] * L, [0] * L).to_workload()
        fixed = sum(layer.macs for layer in g.layers if not layer.name.startswith("blocks."))
        return CostTable(("macs",), {"macs": torch.as_tensor(block)}, {"macs": float(fixed)}, [])

    # ------------------------------------------------------------------ one accelerator
    def _unit(self, g: Genotype, *, seed: int) -> _Unit | None:
        assert self.target is not None
        w = g.to_workload()
        cached = self.das_cache.get(g.key())
        unit_warm: dict[str, tuple[tuple[Any, ...], np.ndarray]] = {}
        das_record = None
        if cached is None:
            das = Das(w, self.target, DasConfig(objective=self.objective, steps=self.das_steps, batch=self.das_batch,
                                                seed=seed, progress=False))
            self._warm_start(das)
            try:
                res = das.run()
            except BudgetError as exc:
                log.warning("co-search: %s", exc.line())
                return None
            gamma = das.logits.gamma.detach().numpy()
            for i, knob in enumerate(das.space.knobs):
                unit_warm[knob.name] = (_plain(knob.choices), gamma[i, : knob.n].copy())
            choices, value, space = res.choices, res.objective, das.space
            das_record = (g.key(), choices, value)
        else:
            choices, value = cached
            space = DesignSpace(w, self.target)
        unit = self._probe(g, space, choices)
        unit.das, unit.warm = das_record, unit_warm
        unit.summary = {"network": g.describe(), "objective": value, "cached": cached is not None}
        return unit

    def _warm_start(self, das: Das) -> None:
        if not self.warm:
            return
        with torch.no_grad():
            for i, knob in enumerate(das.space.knobs):
                hit = self.warm.get(knob.name)
                if hit is not None and hit[0] == _plain(knob.choices):
                    das.logits.gamma[i, : knob.n] = torch.as_tensor(hit[1], dtype=das.logits.gamma.dtype)

    def _source_slots(self, g: Genotype, space: DesignSpace, slot: np.ndarray) -> dict[tuple[int, str], int]:
        """(searchable layer, role) -> chunk slot of the accelerator that runs that conv."""
        by_name = {layer.name: int(slot[i]) for i, layer in enumerate(space.layers)}
        dw_of = {layer.name: layer.is_depthwise for layer in space.layers}
        have: dict[tuple[int, str], int] = {}
        for name, s in by_name.items():
            parts = name.split(".")
            if parts[0] == "blocks":
                have[(int(parts[1]), parts[2])] = s
        any_kind = {}
        for name, s in by_name.items():
            any_kind.setdefault(dw_of[name], s)
        out = {}
        L = self.space.n_layers
        for l in range(L):
            for role in ("pw", "dw", "pwl"):
                accept = (role,) if role == "dw" else (role, "pwl" if role == "pw" else "pw")
                found = None
                for d in sorted(range(-L, L + 1), key=lambda x: (abs(x), -x)):
                    for r in accept:
                        if (l + d, r) in have:
                            found = have[(l + d, r)]
                            break
                    if found is not None:
                        break
                if found is None:
                    found = any_kind.get(role == "dw", next(iter(by_name.values())))
                out[(l, role)] = found
        return out

    def _probe(self, g: Genotype, space: DesignSpace, choices: np.ndarray) -> _Unit:
        """Cost every candidate on the accelerator (space, choices)."""
        assert self.target is not None
        batch = decode(space, choices[None])
        cost = evaluate(batch, self.target)
        slot = batch.slot[0]
        src = self._source_slots(g, space, slot)
        metrics = self.metrics
        # the fixed layers, as DAS mapped them
        fixed = {m: 0.0 for m in metrics}
        for i, layer in enumerate(space.layers):
            if not layer.name.startswith("blocks."):
                fixed["cycles"] = fixed.get("cycles", 0.0) + float(cost.layer_cycles[0, i])
                fixed["energy"] = fixed.get("energy", 0.0) + float(cost.layer_energy_pj[0, i])
        fixed = {m: fixed[m] for m in metrics}

        def hw_key(s: int) -> tuple[int, ...]:
            idx = np.concatenate([[space.i_noc[s]], space.i_unroll[s], space.i_order[s].ravel(), space.i_buf[s]])
            return tuple(int(x) for x in choices[idx]) + tuple(int(x) for x in space.slot_bits[s])

        def layer_key(layer: Layer) -> tuple[Any, ...]:
            return (tuple(layer.bounds.values()), layer.stride, layer.is_depthwise, layer.w_bits)

        # the candidate layers, each with the slot whose hardware runs it
        needed: dict[tuple[Any, ...], tuple[Layer, int]] = {}
        entries: list[tuple[tuple[int, int, int], list[tuple[Any, ...]]]] = []
        for (l, k, j), layers in self._blocks.items():
            keys = []
            for role, layer in layers:
                s = src[(l, role)]
                key = (hw_key(s), layer_key(layer))
                keys.append(key)
                if key not in self.probes and key not in needed:
                    needed[key] = (layer, s)
            entries.append(((l, k, j), keys))
        fresh = self._map_layers(space, choices, list(needed.items())) if needed else {}
        values = {**self.probes, **fresh}
        L, K, J = self.space.n_layers, self.space.max_candidates, len(self.space.bits)
        block = {m: np.zeros((L, K, J)) for m in metrics}
        for (l, k, j), keys in entries:
            for key in keys:
                cyc, energy = values[key]
                for m in metrics:
                    block[m][l, k, j] += cyc if m == "cycles" else energy
        return _Unit(block, fixed, {}, probes=fresh)

    def _map_layers(self, space: DesignSpace, choices: np.ndarray,
                    items: list[tuple[tuple[Any, ...], tuple[Layer, int]]]) -> dict[tuple[Any, ...], tuple[float, float]]:
        """Map each (layer, source slot) onto that slot's hardware at the layer's precision, with
        `probe_draws` random draws of its mapping knobs; the best draw per layer."""
        assert self.target is not None
        layers = [Layer(**{**layer.__dict__, "name": f"p{i}"}) for i, (_, (layer, _)) in enumerate(items)]
        probe_w = Workload("probe", (1, 1, 1), 1, tuple(layers))
        # the distinct source slots of each (depthwise, bits) group become that group's chunks
        group_src: dict[tuple[bool, int, int], list[int]] = {}
        for (_, (layer, s)), pl in zip(items, layers):
            lst = group_src.setdefault((pl.is_depthwise, pl.w_bits, pl.a_bits), [])
            if s not in lst:
                lst.append(s)
        probe = DesignSpace(probe_w, self.target, max_chunks=max(len(v) for v in group_src.values()))
        rng = np.random.default_rng([self.seed, len(items), int(choices.sum()) % (2**31)])
        ch = (rng.random((self.probe_draws, probe.n_knobs)) * probe.n_choices).astype(np.int64)
        ch[:, probe.i_arch] = 0  # a pipeline: every layer on its own slot's hardware
        for gi, grp in enumerate(probe.groups):
            sources = group_src[(grp.depthwise, grp.w_bits, grp.a_bits)]
            ch[:, probe.i_nchunks[gi]] = len(sources) - 1
            for t, s in enumerate(sources):
                ps = grp.first_slot + t
                ch[:, probe.i_noc[ps]] = choices[space.i_noc[s]]
                ch[:, probe.i_unroll[ps]] = choices[space.i_unroll[s]]
                ch[:, probe.i_order[ps]] = choices[space.i_order[s]]
                ch[:, probe.i_buf[ps]] = choices[space.i_buf[s]]
                b0 = int(space.slot_bits[s].max())
                if b0 != grp.w_bits:
                    u = UNROLL_CHOICES[Dim.K][int(choices[space.i_unroll[s, _K]])]
                    ch[:, probe.i_unroll[ps, _K]] = _nearest_unroll(u * pe_ratio(self.target, b0, grp.w_bits))
        for li, (_, (layer, s)) in enumerate(items):
            grp = probe.groups[probe.layer_group[li]]
            ch[:, probe.i_assign[li]] = group_src[(grp.depthwise, grp.w_bits, grp.a_bits)].index(s)
        cost = evaluate(decode(probe, ch), self.target)
        cyc = cost.layer_cycles.numpy()
        energy = np.nan_to_num(cost.layer_energy_pj.numpy(), nan=0.0)
        score = {"cycles": cyc, "energy": energy, "edp": cyc * np.maximum(energy, 1e-9)}
        metric = "edp" if self.objective == "edp" else ("energy" if self.objective == "energy" else "cycles")
        best = score[metric].argmin(0)
        return {key: (float(cyc[best[i], i]), float(energy[best[i], i])) for i, (key, _) in enumerate(items)}
