"""`dnac map`'s search: the best mapping of one layer onto a frozen Timeloop architecture.

The hardware is exactly what the architecture states (levels, capacities, fan-outs, energies);
only the mapping knobs move: each dim's prime factors over the temporal loops of every level and
the spatial loops (mesh X or Y) of every fan-out, the loop order of every level, the order of the
spatial loops (which PEs are mesh neighbours decides link transfers), and which tensors each
level keeps where the architecture and the constraints allow.  Every candidate is priced by the
exact model (`model.evaluate`, Timeloop v3.0.3's own counts), so the mapping found is the one
`timeloop-model` prices, number for number.

The search, per layer, for a budget of priced mappings (`anneal`):

1. *Spatial candidates*: a beam search over the fan-outs' mesh axes, each taking a near-largest
   product of the layer's prime factors that fits it (`spatial_candidates`): the assignments
   that keep the most PEs busy, in several shapes.
2. *Orderings* (30% of the budget): LOMA's allocation (Symons et al., 2021) on each pair of a
   spatial candidate and a keep-set variant: the temporal primes in some order fill the levels
   from the innermost outwards, as far as every buffer holding them allows (`ordered`); random
   orders, successive halving over the pairs.
3. *Annealing* (the rest) from the best point, with moves of one or two primes to another slot,
   a dim to another place in a level's order, the spatial order, and bypass where it is free;
   back to the best point when it stalls.

It is deterministic for a seed.  `random_search` (the baseline of `dnac bench map`) draws
independent mappings; `exhaustive` enumerates the whole space of small layers, for the
optimality gap.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import combinations, permutations, product

from dnac.compiler.errors import DesignError
from dnac.compiler.timeloop.model import evaluate
from dnac.compiler.timeloop.nest import TL_TENSORS, Compute, LevelMapping, Nest, NestStats, Problem, Storage
from dnac.compiler.timeloop.tiles import box_size

#: Objectives: lower is better.
OBJECTIVES = ("edp", "energy", "latency")

#: Loop-order and fill preferences (Timeloop dim names): reduction dims innermost.
_INNER_FIRST = ("S", "R", "C", "Q", "P", "M", "G", "N")
_SPATIAL_FIRST = ("M", "G", "C", "Q", "P", "S", "R", "N")
#: Name hints for a level too small to keep every tensor (only the greedy start uses them).
_HINTS = {"Weights": ("weight", "filter", "wt"), "Inputs": ("input", "ifmap", "act", "in_"),
          "Outputs": ("output", "psum", "accu", "ofmap", "out")}


@dataclass(frozen=True)
class Hardware:
    """A frozen architecture: storage outermost first and the MACs."""

    storage: tuple[Storage, ...]
    compute: Compute
    name: str = "arch"

    def check(self, file: str) -> None:
        """One `DesignError` naming the level whose instances or meshX do not divide the next
        inner level's (Timeloop needs whole fan-outs; no mapping could run on such an array)."""
        inner = [*self.storage[1:], self.compute]
        for s, nxt in zip(self.storage, inner):
            if nxt.instances % s.instances or nxt.mesh_x % s.mesh_x or nxt.mesh_y % s.mesh_y:
                raise DesignError(file, f"architecture.{nxt.name}",
                                  f"{nxt.instances} instances (meshX {nxt.mesh_x}) do not split evenly under "
                                  f"{s.name}'s {s.instances} (meshX {s.mesh_x}): a fan-out must be whole")

    def fanout(self, lvl: int) -> tuple[int, int]:
        """(X, Y) instances each instance of level `lvl` feeds."""
        s = self.storage[lvl]
        inner = self.storage[lvl + 1] if lvl + 1 < len(self.storage) else self.compute
        return inner.mesh_x // s.mesh_x, inner.mesh_y // s.mesh_y


@dataclass(frozen=True)
class LevelRule:
    """What constraints.yaml fixes at one level (Timeloop dim names)."""

    keep: frozenset[str] | None = None
    temporal: dict[str, int] = field(default_factory=dict)  # fixed factors
    spatial: dict[str, int] = field(default_factory=dict)
    innermost: tuple[str, ...] = ()  # these dims innermost, in this order (outermost first)


@dataclass
class MapResult:
    nest: Nest
    stats: NestStats  # the exact model's figures of `nest`
    value: float
    evaluations: int
    seconds: float


def objective_value(stats: NestStats, objective: str) -> float:
    if objective == "energy":
        return stats.energy_pJ
    if objective == "latency":
        return float(stats.cycles)
    return stats.energy_pJ * 1e-12 * stats.cycles


def _primes(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


# A slot: (kind, level) with kind 0 = temporal, 1 = spatial X, 2 = spatial Y.
Slot = tuple[int, int]


class Space:
    """The mapping knobs of one layer on one architecture, and their pricing."""

    def __init__(self, problem: Problem, hw: Hardware, rules: dict[str, LevelRule] | None = None, *,
                 objective: str = "edp", link_transfers: bool = True, source: str = "<map>") -> None:
        if objective not in OBJECTIVES:
            raise ValueError(objective)
        self.problem, self.hw, self.objective, self.link = problem, hw, objective, link_transfers
        self.source = source
        self.n = len(hw.storage)
        self.dims = problem.dims
        rules = rules or {}
        self.rules = [rules.get(s.name, LevelRule()) for s in hw.storage]
        self.caps = [hw.fanout(lvl) for lvl in range(self.n)]
        self.slots: list[Slot] = [(0, lvl) for lvl in range(self.n)]
        for lvl, (fx, fy) in enumerate(self.caps):
            if fx > 1:
                self.slots.append((1, lvl))
            if fy > 1:
                self.slots.append((2, lvl))
        # Pinned primes (fixed factors) and the movable ones, per dim.
        self.pinned: dict[str, list[tuple[int, Slot]]] = {d: [] for d in self.dims}
        self.locked: set[tuple[str, Slot]] = set()  # (dim, slot) whose factor is fixed
        rest = dict(problem.bounds)
        for lvl, rule in enumerate(self.rules):
            for kind, fixed in ((0, rule.temporal), (1, rule.spatial)):
                for d, f in fixed.items():
                    if d not in rest:
                        continue
                    if rest[d] % f:
                        raise DesignError(source, f"constraints.{hw.storage[lvl].name}.factors",
                                          f"{d}={f} does not divide the layer's {d}={problem.bounds[d]}")
                    rest[d] //= f
                    slot = (kind, lvl)
                    if kind == 1:
                        fx, fy = self.caps[lvl]
                        slot = (1, lvl) if f <= fx else (2, lvl)
                        if f > max(fx, fy):
                            raise DesignError(source, f"constraints.{hw.storage[lvl].name}.factors",
                                              f"spatial {d}={f} exceeds the fan-out {fx}x{fy}")
                    self.pinned[d] += [(p, slot) for p in _primes(f)]
                    self.locked.add((d, slot) if kind == 0 else (d, (1, lvl)))
                    if kind == 1:
                        self.locked.add((d, (2, lvl)))
        self.free: list[tuple[str, int]] = [(d, p) for d in self.dims for p in sorted(_primes(rest[d]), reverse=True)]
        self.keepable = [rule.keep is None and lvl > 0 for lvl, rule in enumerate(self.rules)]
        idx = {d: i for i, d in enumerate(self.dims)}
        self._ranks = {t: tuple(tuple((idx[d], c) for d, c in rank) for rank in problem.ranks(t)) for t in TL_TENSORS}
        self._indexes = {t: {d for rank in problem.ranks(t) for d, _ in rank} for t in TL_TENSORS}
        self.memo: dict[tuple, float] = {}
        self.best: tuple[float, tuple | None] = (math.inf, None)
        self.evaluations = 0

    # -- states --------------------------------------------------------------------------
    # A state: (slots of the free primes, per-level orders (outermost first), per-fan-out
    # spatial orders (outermost first), per-level keep sets).

    def factors(self, assign: tuple[Slot, ...]) -> tuple[list[dict[str, int]], list[dict[str, int]],
                                                          list[dict[str, int]]]:
        """(temporal, X, Y) factors per level."""
        out = [[{} for _ in range(self.n)] for _ in range(3)]
        for d, lst in self.pinned.items():
            for p, (k, lvl) in lst:
                out[k][lvl][d] = out[k][lvl].get(d, 1) * p
        for (d, p), (k, lvl) in zip(self.free, assign):
            out[k][lvl][d] = out[k][lvl].get(d, 1) * p
        return out[0], out[1], out[2]

    def legal(self, assign: tuple[Slot, ...]) -> bool:
        """Spatial products within the fan-out; a dim on one mesh axis per level."""
        _, xs, ys = self.factors(assign)
        for lvl, (fx, fy) in enumerate(self.caps):
            if math.prod(xs[lvl].values()) > fx or math.prod(ys[lvl].values()) > fy:
                return False
            if set(xs[lvl]) & set(ys[lvl]):
                return False
        return True

    def nest(self, state: tuple) -> Nest:
        assign, orders, sorders, keeps = state
        t, xs, ys = self.factors(assign)
        maps = []
        for lvl in range(self.n):
            spatial = {**xs[lvl], **ys[lvl]}
            xd = tuple(d for d in sorders[lvl] if d in xs[lvl])
            yd = tuple(d for d in sorders[lvl] if d in ys[lvl])
            units = tuple(d for d in self.dims if d not in spatial)
            maps.append(LevelMapping({d: f for d, f in t[lvl].items() if f > 1}, orders[lvl],
                                     {d: f for d, f in spatial.items() if f > 1}, units + yd + xd, len(xd),
                                     keeps[lvl]))
        return Nest(self.problem, self.hw.storage, self.hw.compute, tuple(maps), source=self.source)

    def price(self, state: tuple) -> float:
        """The objective of `state` (inf when a tile does not fit), memoized."""
        key = state
        if key in self.memo:
            return self.memo[key]
        self.evaluations += 1
        try:
            stats = evaluate(self.nest(state), link_transfers=self.link)
            value = objective_value(stats, self.objective)
        except DesignError:
            value = math.inf
        self.memo[key] = value
        if value < self.best[0]:
            self.best = (value, state)
        return value

    # -- starting points -------------------------------------------------------------------

    def _fits(self, assign: tuple[Slot, ...], keeps: tuple[frozenset[str], ...], lvl: int) -> bool:
        """Whether level `lvl`'s tile (its loops, the loops below it, the fan-outs at and below
        it) fits its capacity for the tensors it keeps."""
        cap = self.hw.storage[lvl].effective_size
        if cap is None:
            return True
        ext = {d: 1 for d in self.dims}
        for d, lst in self.pinned.items():
            for p, (_, at) in lst:
                if at >= lvl:
                    ext[d] *= p
        for (d, p), (_, at) in zip(self.free, assign):
            if at >= lvl:
                ext[d] *= p
        box = tuple(ext[d] for d in self.dims)
        return sum(box_size(box, self._ranks[t]) for t in keeps[lvl]) <= cap

    def default_keeps(self) -> tuple[frozenset[str], ...]:
        out = []
        for lvl, (s, rule) in enumerate(zip(self.hw.storage, self.rules)):
            if rule.keep is not None:
                out.append(rule.keep)
                continue
            cap = s.effective_size
            if lvl == 0 or cap is None or cap >= len(TL_TENSORS):
                out.append(frozenset(TL_TENSORS))
                continue
            name = s.name.lower()
            ranked = sorted(TL_TENSORS, key=lambda t: (not any(h in name for h in _HINTS[t]), TL_TENSORS.index(t)))
            out.append(frozenset(ranked[:cap]))
        return tuple(out)

    def default_orders(self) -> tuple[tuple[str, ...], ...]:
        inner = [d for d in _INNER_FIRST if d in self.dims]
        base = tuple(reversed(inner)) + tuple(d for d in self.dims if d not in inner)
        out = []
        for rule in self.rules:
            fixed = [d for d in rule.innermost if d in self.dims]
            out.append(tuple(d for d in base if d not in fixed) + tuple(fixed))
        return tuple(out)

    def default_sorders(self) -> tuple[tuple[str, ...], ...]:
        """Every level's spatial order (outermost first): output and input channels outermost."""
        base = tuple(d for d in _SPATIAL_FIRST if d in self.dims) + tuple(d for d in self.dims if d not in _SPATIAL_FIRST)
        return tuple(base for _ in range(self.n))

    def greedy(self) -> tuple:
        """Fan-outs filled first (largest primes first), then each level innermost first."""
        keeps = self.default_keeps()
        assign: list[Slot] = [(0, 0)] * len(self.free)
        order = sorted(range(len(self.free)), key=lambda i: (_SPATIAL_FIRST.index(self.free[i][0])
                                                              if self.free[i][0] in _SPATIAL_FIRST else 99,
                                                              -self.free[i][1]))
        for kind, lvl in self.slots:
            if kind == 0:
                continue
            for i in order:
                if assign[i] != (0, 0):
                    continue
                d = self.free[i][0]
                if (d, (kind, lvl)) in self.locked:
                    continue
                trial = list(assign)
                trial[i] = (kind, lvl)
                if self.legal(tuple(trial)):
                    assign = trial
        fill = sorted(range(len(self.free)), key=lambda i: (_INNER_FIRST.index(self.free[i][0])
                                                             if self.free[i][0] in _INNER_FIRST else 99,
                                                             self.free[i][1]))
        for lvl in range(self.n - 1, 0, -1):
            for i in fill:
                if assign[i] != (0, 0) or (self.free[i][0], (0, lvl)) in self.locked:
                    continue
                trial = list(assign)
                trial[i] = (0, lvl)
                if all(self._fits(tuple(trial), keeps, outer) for outer in range(1, lvl + 1)):
                    assign = trial
        sorders = self.default_sorders()
        return tuple(assign), self.default_orders(), sorders, keeps

    def random_state(self, rng: random.Random) -> tuple:
        """A uniformly drawn legal point (factor slots, orders, spatial orders; keeps where free)."""
        keeps = list(self.default_keeps())
        for lvl in range(1, self.n):
            if self.keepable[lvl]:
                keeps[lvl] = frozenset(t for t in TL_TENSORS if rng.random() < 0.5)
        for _ in range(100):
            assign = tuple(rng.choice(self.slots) for _ in self.free)
            if self.legal(assign):
                break
        else:
            assign = tuple((0, 0) for _ in self.free)
        orders = tuple(self._shuffled(rng, lvl) for lvl in range(self.n))
        sorders = tuple(tuple(rng.sample(self.dims, len(self.dims))) for _ in range(self.n))
        return assign, orders, sorders, tuple(keeps)

    def _shuffled(self, rng: random.Random, lvl: int) -> tuple[str, ...]:
        fixed = [d for d in self.rules[lvl].innermost if d in self.dims]
        rest = [d for d in self.dims if d not in fixed]
        rng.shuffle(rest)
        return tuple(rest) + tuple(fixed)

    def spatial_candidates(self, rng: random.Random, count: int = 8, beam: int = 24) -> list[tuple[Slot, ...]]:
        """Assignments of free primes to the fan-outs that use the most instances: a beam search
        over the spatial slots (outermost first), each slot taking a near-largest product of the
        remaining primes that fits it (the rest of each assignment is temporal, level 0)."""
        spatial = [slot for slot in self.slots if slot[0] != 0]
        start: list[tuple[float, tuple[Slot, ...]]] = [(0.0, tuple((0, 0) for _ in self.free))]
        for slot in spatial:
            kind, lvl = slot
            cap = self.caps[lvl][kind - 1]
            grown: dict[tuple[Slot, ...], float] = {}
            for score, assign in start:
                other = {self.free[i][0] for i, sl in enumerate(assign) if sl == (3 - kind, lvl)}
                for pick in self._slot_choices(assign, cap, other | {d for d in self.dims if (d, slot) in self.locked}):
                    new = list(assign)
                    used = 1
                    for i in pick:
                        new[i] = slot
                        used *= self.free[i][1]
                    grown[tuple(new)] = score + math.log(used)
            ranked = sorted(grown.items(), key=lambda kv: (-kv[1], rng.random()))
            start = [(v, a) for a, v in ranked[:beam]] or start
        return [a for _, a in start[:count]]

    def _slot_choices(self, assign: tuple[Slot, ...], cap: int, banned: set[str]) -> list[tuple[int, ...]]:
        """Sets of still-temporal free primes (indices) whose product fits `cap`, the largest few:
        per dim any divisor of what is left of it, combined over dims."""
        options: list[tuple[int, tuple[int, ...]]] = [(1, ())]
        for d in self.dims:
            if d in banned:
                continue
            by_prime: dict[int, list[int]] = {}
            for i, (dd, p) in enumerate(self.free):
                if dd == d and assign[i] == (0, 0):
                    by_prime.setdefault(p, []).append(i)
            if not by_prime:
                continue
            divisors = [(1, ())]
            for p, idx in by_prime.items():
                divisors = [(f * p ** k, chosen + tuple(idx[:k])) for f, chosen in divisors for k in range(len(idx) + 1)]
            options = [(prod * f, chosen + extra) for prod, chosen in options for f, extra in divisors if prod * f <= cap]
            options = sorted(options, key=lambda pc: -pc[0])[:64]
        top = options[0][0]
        return [chosen for prod, chosen in options if prod * 2 > top][:12]

    def ordered(self, spatial: tuple[Slot, ...], order: list[int], keeps: tuple[frozenset[str], ...],
                relevant: bool = False) -> tuple:
        """The state LOMA's allocation gives: the temporal primes in `order` (innermost first) fill
        the levels from the innermost outwards, each level as far as every buffer holding its loops
        allows; a level's loop order is the order its primes came in.  With `relevant`, a prime
        goes no lower than the innermost level keeping a tensor its dim indexes (LOMA allocates
        per tensor, so on a chain of one-tensor buffers a loop lands with the tensor it moves)."""
        assign = list(spatial)
        lvl = self.n - 1
        placed: list[list[str]] = [[] for _ in range(self.n)]
        for i in order:
            if spatial[i][0] != 0:
                continue
            d = self.free[i][0]
            at = lvl
            while at > 0:
                moves = any(d in self._indexes[t] for t in keeps[at])
                if (d, (0, at)) not in self.locked and (moves or not relevant):
                    assign[i] = (0, at)
                    if all(self._fits(tuple(assign), keeps, outer) for outer in range(1, at + 1)):
                        break
                    if at == lvl:
                        lvl -= 1  # a prime that moves this level's tiles does not fit: the level is full
                at -= 1
            if at == 0:
                assign[i] = (0, 0)
            if d not in placed[at]:
                placed[at].append(d)
        orders = []
        for lvl, rule in enumerate(self.rules):
            fixed = [d for d in rule.innermost if d in self.dims]
            inner = [d for d in placed[lvl] if d not in fixed]
            outer = [d for d in self.dims if d not in inner and d not in fixed]
            orders.append(tuple(outer) + tuple(reversed(inner)) + tuple(fixed))
        sorders = self.default_sorders()
        return tuple(assign), tuple(orders), sorders, keeps

    # -- moves -----------------------------------------------------------------------------

    def neighbour(self, state: tuple, rng: random.Random) -> tuple:
        assign, orders, sorders, keeps = state
        r = rng.random()
        if r < 0.5 and self.free:
            for _ in range(20):
                new = list(assign)
                i = rng.randrange(len(new))
                if r < 0.15 and len(new) > 1:  # two primes trade slots
                    j = rng.randrange(len(new))
                    new[i], new[j] = assign[j], assign[i]
                    moved: tuple[int, ...] = (i, j)
                else:
                    new[i] = rng.choice(self.slots)
                    moved = (i,)
                if any((self.free[k][0], new[k]) in self.locked for k in moved):
                    continue
                if tuple(new) != assign and self.legal(tuple(new)):
                    return tuple(new), orders, sorders, keeps
            return state
        if r < 0.8:
            lvl = rng.randrange(self.n)
            fixed = [d for d in self.rules[lvl].innermost if d in self.dims]
            movable = [d for d in orders[lvl] if d not in fixed]
            if len(movable) < 2:
                return state
            d = rng.choice(movable)
            movable.remove(d)
            movable.insert(rng.randrange(len(movable) + 1), d)
            new_orders = list(orders)
            new_orders[lvl] = tuple(movable) + tuple(fixed)
            return assign, tuple(new_orders), sorders, keeps
        if r < 0.9:
            lvl = rng.randrange(self.n)
            so = list(sorders[lvl])
            i, j = rng.randrange(len(so)), rng.randrange(len(so))
            so[i], so[j] = so[j], so[i]
            new_s = list(sorders)
            new_s[lvl] = tuple(so)
            return assign, orders, tuple(new_s), keeps
        levels = [lvl for lvl in range(self.n) if self.keepable[lvl]]
        if not levels:
            return state
        lvl = rng.choice(levels)
        t = rng.choice(TL_TENSORS)
        new_k = list(keeps)
        new_k[lvl] = keeps[lvl] ^ {t}
        return assign, orders, sorders, tuple(new_k)


def anneal(space: Space, evaluations: int = 800, seed: int = 0, *, explore_frac: float = 0.3,
           temp0: float = 0.2, realloc: float = 0.15) -> MapResult:
    """LOMA-style orderings on the best spatial assignments, then simulated annealing from the
    best of them (see the module docstring)."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    keeps = space.default_keeps()
    spatials = space.spatial_candidates(rng, count=8) or [tuple((0, 0) for _ in space.free)]
    variants = [keeps] + [keeps[:lvl] + (keeps[lvl] - {t},) + keeps[lvl + 1:]
                          for lvl in range(1, space.n) if space.keepable[lvl] for t in sorted(keeps[lvl])]
    temporal = list(range(len(space.free)))
    pref = sorted(temporal, key=lambda i: (_INNER_FIRST.index(space.free[i][0]) if space.free[i][0] in _INNER_FIRST
                                           else 9, space.free[i][1]))
    space.price(space.greedy())
    # Successive halving over (spatial assignment, keep sets): every surviving arm gets random
    # orderings, the better half goes on with twice as many.
    explore = int(evaluations * explore_frac)
    arms = [(sp, kp) for sp in spatials for kp in variants]
    score = {arm: space.price(space.ordered(arm[0], pref, arm[1])) for arm in arms}
    alive = sorted(arms, key=lambda a: score[a])[:max(1, len(arms) // 2)]
    rounds = max(1, math.ceil(math.log2(len(alive))) + 1)
    tries = 0
    for r in range(rounds):
        share = max(1, (explore - space.evaluations) // (len(alive) * (rounds - r)))
        for arm in alive:
            for k in range(share):
                tries += 1
                order = _chunked(space, rng) if k % 2 == 0 else rng.sample(temporal, len(temporal))
                state = space.ordered(arm[0], order, arm[1], relevant=rng.random() < 0.5)
                score[arm] = min(score[arm], space.price(state))
        alive = sorted(alive, key=lambda a: score[a])[:max(1, len(alive) // 2)]
    _polish(space, explore + evaluations // 20)
    cur, cur_v = space.best[1], space.best[0]
    if cur is None:  # nothing fits yet: any fitting random point
        for _ in range(200):
            cand = space.random_state(rng)
            if math.isfinite(space.price(cand)):
                break
        cur, cur_v = space.best[1], space.best[0]
        if cur is None:
            return _result(space, t0)
    temp1 = 0.001
    stall = 0
    seen, repeats = space.evaluations, 0
    polish = max(1, evaluations // 20)  # the last evaluations go to `_polish`
    while space.evaluations < evaluations - polish and tries < 50 * evaluations:
        tries += 1
        repeats = repeats + 1 if space.evaluations == seen else 0
        seen = space.evaluations
        if repeats > 300:  # every neighbour of the points visited is priced already: a small space, done
            break
        frac = space.evaluations / evaluations
        temp = temp0 * (temp1 / temp0) ** frac
        if rng.random() < realloc:  # a fresh LOMA allocation on the current spatial choice and keeps
            spatial = tuple(sl if sl[0] != 0 else (0, 0) for sl in cur[0])
            cand = space.ordered(spatial, _chunked(space, rng), cur[3], relevant=rng.random() < 0.5)
        else:
            cand = space.neighbour(cur, rng)
        v = space.price(cand)
        if not math.isfinite(v):
            continue
        if v <= cur_v or rng.random() < math.exp(-(math.log(v) - math.log(cur_v)) / temp):
            cur, cur_v = cand, v
        if v < space.best[0] * (1 - 1e-12):
            stall = 0
        else:
            stall += 1
            if stall > max(40, evaluations // 10):
                cur, cur_v, stall = space.best[1], space.best[0], 0
    _polish(space, evaluations)
    return _result(space, t0)


def _polish(space: Space, budget: int) -> None:
    """Coordinate descent on the loop orders of the best point: every level's live dims, each
    tried innermost and outermost among them, until no move helps (or the budget is spent)."""
    improved = True
    while improved and space.best[1] is not None and space.evaluations < budget:
        improved = False
        assign, orders, sorders, keeps = space.best[1]
        t, _, _ = space.factors(assign)
        for lvl in range(space.n):
            live = [d for d in orders[lvl] if t[lvl].get(d, 1) > 1 and d not in space.rules[lvl].innermost]
            for d in live:
                rest = [x for x in orders[lvl] if x != d]
                fixed = [x for x in rest if x in space.rules[lvl].innermost]
                rest = [x for x in rest if x not in fixed]
                for new in (rest + [d] + fixed, [d] + rest + fixed):
                    if space.evaluations >= budget:
                        return
                    cand = (assign, orders[:lvl] + (tuple(new),) + orders[lvl + 1:], sorders, keeps)
                    before = space.best[0]
                    space.price(cand)
                    if space.best[0] < before:
                        improved = True
                        break
                if improved or space.evaluations >= budget:
                    break
            if improved or space.evaluations >= budget:
                break


def _chunked(space: Space, rng: random.Random) -> list[int]:
    """A loop ordering in LOMA's style: each dim's primes in one to three runs (LOMA merges a
    layer's prime factors into a few loops), the runs shuffled."""
    runs: list[list[int]] = []
    for d in space.dims:
        idx = [i for i, (dd, _) in enumerate(space.free) if dd == d]
        if not idx:
            continue
        cuts = sorted(rng.sample(range(1, len(idx)), min(len(idx) - 1, rng.choice((0, 0, 1, 2)))))
        runs += [idx[a:b] for a, b in zip([0, *cuts], [*cuts, len(idx)])]
    rng.shuffle(runs)
    return [i for run in runs for i in run]


def random_search(space: Space, evaluations: int, seed: int = 0) -> MapResult:
    """The baseline: independent uniformly drawn mappings (factor slots, loop orders, spatial
    orders, keep sets), the best of `evaluations` priced points.  Points that overflow a buffer
    count, as they do for `anneal` (both pay the model for them); `MapResult.value` is inf when
    none fits."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    for _ in range(20 * evaluations):
        if space.evaluations >= evaluations:
            break
        space.price(space.random_state(rng))
    if space.best[1] is None:
        return MapResult(None, None, math.inf, space.evaluations, time.perf_counter() - t0)  # type: ignore[arg-type]
    return _result(space, t0)


def _divisor_splits(n: int, k: int) -> Iterator[tuple[int, ...]]:
    """Ordered factorizations of n into k factors."""
    if k == 1:
        yield (n,)
        return
    for f in range(1, n + 1):
        if n % f == 0:
            for rest in _divisor_splits(n // f, k - 1):
                yield (f,) + rest


def space_size(space: Space, limit: int | None = None) -> int:
    """Points `exhaustive` visits (factor splits x loop orders x spatial orders x keep sets); with
    `limit`, counting stops at limit + 1 (the spaces of real layers are astronomically large)."""
    if limit is not None:  # every all-temporal split is legal: a lower bound without enumerating
        temporal = sum(1 for kind, _ in space.slots if kind == 0)
        bound = 1
        for d in space.dims:
            exps: dict[int, int] = {}
            for dd, p in space.free:
                if dd == d:
                    exps[p] = exps.get(p, 0) + 1
            bound *= math.prod(math.comb(e + temporal - 1, temporal - 1) for e in exps.values())
        if bound > limit:
            return limit + 1
    n = 0
    for _ in _exhaustive_states(space):
        n += 1
        if limit is not None and n > limit:
            break
    return n


def _exhaustive_states(space: Space) -> Iterator[tuple]:
    slots = space.slots
    per_dim = []
    for d in space.dims:
        primes = [i for i, (dd, _) in enumerate(space.free) if dd == d]
        n = math.prod(space.free[i][1] for i in primes)
        splits = list(_divisor_splits(n, len(slots)))
        per_dim.append((d, primes, splits))
    keep_choices = [[kp] if not space.keepable[lvl] else
                    [frozenset(c) for r in range(4) for c in combinations(TL_TENSORS, r)]
                    for lvl, kp in enumerate(space.default_keeps())]
    for choice in product(*(splits for _, _, splits in per_dim)):
        fac = {(d, slot): f for (d, _, _), split in zip(per_dim, choice) for slot, f in zip(slots, split)}
        ok = True
        for lvl, (fx, fy) in enumerate(space.caps):
            px = math.prod(fac.get((d, (1, lvl)), 1) for d in space.dims)
            py = math.prod(fac.get((d, (2, lvl)), 1) for d in space.dims)
            both = any(fac.get((d, (1, lvl)), 1) > 1 and fac.get((d, (2, lvl)), 1) > 1 for d in space.dims)
            if px > fx or py > fy or both:
                ok = False
        if not ok:
            continue
        assign = _assign_of(space, fac)
        if assign is None:
            continue
        t, xs, ys = space.factors(assign)
        order_sets = []
        for lvl in range(space.n):
            live = [d for d in space.dims if t[lvl].get(d, 1) > 1]
            order_sets.append([tuple(d for d in space.dims if d not in live) + p for p in permutations(live)])
        sorder_sets = []
        for lvl in range(space.n):
            live = [d for d in space.dims if xs[lvl].get(d, 1) > 1 or ys[lvl].get(d, 1) > 1]
            sorder_sets.append([tuple(d for d in space.dims if d not in live) + p for p in permutations(live)])
        for orders in product(*order_sets):
            for sorders in product(*sorder_sets):
                for keeps in product(*keep_choices):
                    yield assign, orders, sorders, keeps


def _assign_of(space: Space, fac: dict[tuple[str, Slot], int]) -> tuple[Slot, ...] | None:
    """Slots of the free primes that realize the factors `fac` (primes largest first)."""
    need = {key: _primes(f) for key, f in fac.items() if f > 1}
    out = []
    for d, p in space.free:
        slot = next((s for (dd, s), lst in need.items() if dd == d and p in lst), None)
        if slot is None:
            return None
        need[(d, slot)].remove(p)
        out.append(slot)
    return tuple(out)


def exhaustive(space: Space, limit: int = 200_000) -> MapResult:
    """The true optimum over the whole space (refuses spaces over `limit` points)."""
    t0 = time.perf_counter()
    size = space_size(space, limit)
    if size > limit:
        raise ValueError(f"more than {limit} mappings")
    for state in _exhaustive_states(space):
        space.price(state)
    return _result(space, t0)


def _result(space: Space, t0: float) -> MapResult:
    value, state = space.best
    if state is None:
        raise DesignError(space.source, "mapping", "no mapping of the layer fits the architecture's buffers")
    stats = evaluate(space.nest(state), link_transfers=space.link)
    return MapResult(space.nest(state), stats, value, space.evaluations, time.perf_counter() - t0)
