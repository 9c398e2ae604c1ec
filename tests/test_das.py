"""DAS: sampling, budgets, determinism, and that it beats random search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dnac.compiler.cost.model import evaluate
from dnac.compiler.das.decode import decode, remaining, slots, unrolls
from dnac.compiler.das.gumbel import KnobLogits
from dnac.compiler.das.search import Das, DasConfig, hill_climb, random_search
from dnac.compiler.das.space import DesignSpace
from dnac.compiler.errors import BudgetError
from dnac.compiler.targets import load_target
from dnac.compiler.workload import zoo

ZC706 = load_target("zc706")
ASIC = load_target("asic")
FAST = DasConfig(steps=8, batch=32, progress=False)


def test_samples_are_legal_permutations_and_factorizations() -> None:
    space = DesignSpace(zoo.get("tiny_mbv2"), ZC706)
    logits = KnobLogits(space)
    with torch.no_grad():
        logits.gamma.normal_(0, 2, generator=torch.Generator().manual_seed(0))
    s = logits.sample(256, 1.0, torch.Generator().manual_seed(1))
    picks = s.choices[:, space.i_order]  # [B, S, 3, 7]: n picks without replacement
    assert (np.sort(picks, axis=-1) == np.arange(7)).all()
    _, slot = slots(space, s.choices)
    _, rem = remaining(space, slot, unrolls(space, s.choices))
    rf = np.take_along_axis(space.cand[None], s.choices[:, space.i_rf][..., None], -1)[..., 0]
    gb = np.take_along_axis(space.cand[None], s.choices[:, space.i_gb][..., None], -1)[..., 0]
    assert (rf <= rem).all() and (gb <= -(-rem // rf)).all()  # among the factors that remain
    assert torch.allclose(s.relaxed.detach(), torch.ones_like(s.relaxed))
    s.relaxed.sum().backward()  # the straight-through sample carries gradient to gamma
    assert logits.gamma.grad is not None and logits.gamma.grad.abs().sum() > 0


def test_deterministic_under_a_seed() -> None:
    a = Das(zoo.get("tiny"), ZC706, FAST).run()
    b = Das(zoo.get("tiny"), ZC706, FAST).run()
    assert (a.choices == b.choices).all() and a.objective == b.objective
    c = Das(zoo.get("tiny"), ZC706, DasConfig(steps=8, batch=32, progress=False, seed=1)).run()
    assert c.history != a.history


@settings(max_examples=4, deadline=None)
@given(st.sampled_from([8, 24, 60, 150, 400]), st.sampled_from(["fps", "latency"]))
def test_returned_designs_fit_the_budget(dsp: int, objective: str) -> None:
    target = ZC706.with_overrides(dsp=dsp)
    r = Das(zoo.get("tiny"), target, DasConfig(steps=8, batch=32, objective=objective, progress=False)).run()
    space = DesignSpace(zoo.get("tiny"), target)
    cost = evaluate(decode(space, r.choices[None]), target)
    assert bool(cost.feasible[0])
    assert float(cost.resources["dsp"][0]) <= dsp
    assert float(cost.resources["bram18k"][0]) <= target.bram18k


def test_asic_area_budget_holds() -> None:
    target = ASIC.with_overrides(area_mm2=1.0)
    r = Das(zoo.get("tiny"), target, DasConfig(steps=8, batch=32, objective="edp", progress=False)).run()
    cost = evaluate(decode(DesignSpace(zoo.get("tiny"), target), r.choices[None]), target)
    assert bool(cost.feasible[0]) and float(cost.resources["area_mm2"][0]) <= 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_das_beats_equal_budget_random_search(seed: int) -> None:
    """On a small model under a tight budget, where most random designs do not fit."""
    w, target = zoo.get("tiny_mbv2"), ZC706.with_overrides(dsp=32)
    r = Das(w, target, DasConfig(steps=60, batch=64, seed=seed, progress=False)).run()
    best_random, _ = random_search(w, target, r.evaluations, objective="fps", seed=seed)
    assert r.objective < best_random


def test_refinement_never_worsens_counts_its_evaluations_and_keeps_frozen_knobs() -> None:
    w, target = zoo.get("tiny_mbv2"), ZC706.with_overrides(dsp=64)
    space = DesignSpace(w, target)
    frozen = {int(k): 0 for k in space.i_noc}  # every chunk's NoC style fixed
    plain = Das(w, target, FAST, frozen=frozen).run()
    cfg = DasConfig(steps=8, batch=32, progress=False, refine=6)
    refined = Das(w, target, cfg, frozen=frozen).run()
    again = Das(w, target, cfg, frozen=frozen).run()
    assert refined.objective <= plain.objective
    assert refined.evaluations == plain.evaluations + 6 * 32
    assert (refined.choices == again.choices).all()  # deterministic under the seed
    assert all(refined.choices[k] == 0 for k in frozen)
    cost = evaluate(decode(space, refined.choices[None]), target)
    assert bool(cost.feasible[0]) and float(cost.objective("fps")[0]) == refined.objective


def test_hill_climb_moves_only_to_better_neighbours() -> None:
    """From a random design, every accepted move lowers the objective and changes one or two
    mutable knobs."""
    w = zoo.get("tiny")
    space = DesignSpace(w, ZC706)
    rng = np.random.default_rng(0)
    start = space.random_choices(1, rng)[0]
    value = float(evaluate(decode(space, start[None]), ZC706).objective("fps")[0])
    mutable = np.flatnonzero(space.n_choices > 1)[::2]
    choice, climbed, n = hill_climb(space, ZC706, "fps", start, value, rounds=1, batch=16, mutable=mutable, rng=rng)
    assert n == 16 and climbed <= value
    changed = np.flatnonzero(choice != start)
    assert set(changed) <= set(mutable) and len(changed) <= 2
    assert (len(changed) > 0) == (climbed < value)


def test_no_feasible_design_is_a_budget_error() -> None:
    with pytest.raises(BudgetError, match="no design of tiny fits"):
        Das(zoo.get("tiny"), ZC706.with_overrides(dsp=1, bram18k=1), DasConfig(steps=3, batch=16, progress=False)).run()


def test_unknown_objective_is_a_user_error() -> None:
    with pytest.raises(BudgetError, match="not an objective for zc706"):
        Das(zoo.get("tiny"), ZC706, DasConfig(objective="edp"))
