"""Shared fixtures: tiny workloads, random valid designs, a CLI runner."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dnac.compiler.ir.chunk import BufferAlloc, Chunk, canonical_hierarchy
from dnac.compiler.ir.design import DesignGraph, LayerNode
from dnac.compiler.ir.mapping import CANONICAL_LEVELS, LevelLoops, Mapping
from dnac.compiler.vocab import DIMS, ArchStyle, Dim, NocStyle
from dnac.compiler.workload.layer import Workload

DATA = Path(__file__).parent / "data"


def _split(bound: int, parts: int, rng: random.Random) -> list[int]:
    """Split `bound` into `parts` factors whose product covers it (sometimes with padding)."""
    factors = [1] * parts
    rest = bound
    for i in range(parts - 1):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        f = rng.choice(divisors)
        if rng.random() < 0.2 and rest > 2:  # a non-dividing factor: padding is allowed
            f = rng.randint(2, rest)
        factors[i] = f
        rest = math.ceil(rest / f)
    factors[-1] = rest
    return factors


def _minimal(chain: list[int], bound: int) -> list[int]:
    """Shrink outer factors until no outer iteration is all padding (the validator's rule)."""
    chain = list(chain)
    for i in range(len(chain)):
        if chain[i] > 1:
            inner = math.prod(chain[i + 1 :])
            chain[i] = math.ceil(bound / inner)
            if chain[i] > 1:
                break
    return chain


def random_design(w: Workload, seed: int, target: str = "zc706") -> DesignGraph:
    """A random design that passes the validator: one chunk per (depthwise, bits) group."""
    rng = random.Random(seed)
    arch = rng.choice(list(ArchStyle))
    g = DesignGraph.from_workload(w, target, arch)
    groups: dict[tuple[bool, int, int], list[str]] = {}
    for layer in w.compute_layers:
        key = (layer.is_depthwise, layer.w_bits, layer.a_bits)
        if arch is ArchStyle.MULTI_CYCLE:
            key = (layer.is_depthwise, 0, 0)
        groups.setdefault(key, []).append(layer.name)
    for cid, (key, names) in enumerate(sorted(groups.items())):
        noc = rng.choice(list(NocStyle))
        unroll = {d: rng.choice([1, 2, 4, 8]) for d in noc.dims}
        pes = math.prod(unroll.values())
        order = {lvl: tuple(rng.sample(DIMS, len(DIMS))) for lvl in CANONICAL_LEVELS}
        wb = max(w.layer(n).w_bits for n in names)
        ab = max(w.layer(n).a_bits for n in names)
        g.chunks[cid] = Chunk(
            id=cid, layers=tuple(names), noc=noc, unroll=unroll, pe_array=(pes, 1), loop_order=order,
            hierarchy=canonical_hierarchy(BufferAlloc(4096, 4096, 2048), BufferAlloc(16, 16, 8)),
            w_bits=wb, a_bits=ab, depthwise=key[0],
        )
        for name in names:
            layer = w.layer(name)
            temporal: dict = {lvl: {} for lvl in CANONICAL_LEVELS}
            spatial: dict[Dim, int] = {}
            for d, bound in layer.bounds.items():
                sp = min(unroll.get(d, 1), bound)
                sp = rng.choice([f for f in range(1, sp + 1)])
                rest = math.ceil(bound / sp)
                dram, gb, rf = _split(rest, 3, rng)
                # a minimal cover: the outermost non-unit factor must be needed
                dram, gb, sp, rf = _minimal([dram, gb, sp, rf], bound)
                temporal[CANONICAL_LEVELS[0]][d], temporal[CANONICAL_LEVELS[1]][d] = dram, gb
                temporal[CANONICAL_LEVELS[2]][d] = rf
                spatial[d] = sp
            m = Mapping({lvl: LevelLoops(order[lvl], temporal[lvl]) for lvl in CANONICAL_LEVELS}, spatial)
            g.set_node(LayerNode(layer, cid, m))
    return g


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def tests_on_path():
    """Make modules under tests/ importable (torch factories named from model.yaml)."""
    here = str(Path(__file__).parent)
    sys.path.insert(0, here)
    yield
    sys.path.remove(here)
