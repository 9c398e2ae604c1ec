"""The batched torch evaluator against the scalar Timeloop model on random canonical nests."""

from __future__ import annotations

import math

import pytest
import torch

from dnac.compiler.errors import DesignError
from dnac.compiler.timeloop import (
    TL_TENSORS,
    Compute,
    LevelMapping,
    Nest,
    Problem,
    ShapeKind,
    Storage,
    evaluate,
)
from dnac.compiler.timeloop.batched import VGG16, dram_counts, evaluate_batch, random_canonical

DNAC_DIMS = "NKCRSPQ"
LEVELS = ("DRAM", "GB", "RF")

#: Layers with prime dims, strides 2, 1x1, FC-like, depthwise (C = 1 per group, K channels).
LAYERS = [
    ((1, 7, 3, 3, 3, 13, 13), (1, 1), False),
    ((2, 5, 11, 3, 3, 7, 7), (2, 2), False),
    ((1, 16, 8, 3, 3, 8, 8), (2, 2), False),
    ((1, 13, 7, 1, 1, 11, 11), (1, 1), False),
    ((1, 32, 3, 7, 7, 8, 8), (2, 2), False),
    ((2, 10, 64, 1, 1, 1, 1), (1, 1), False),
    ((1, 5, 3, 5, 5, 17, 17), (1, 1), False),
    ((1, 24, 1, 3, 3, 14, 14), (1, 1), True),
    ((2, 8, 1, 3, 3, 8, 8), (2, 2), True),
    ((1, 17, 1, 5, 5, 13, 13), (1, 2), True),
] + [VGG16[1], VGG16[8]]


def _spec(batch: int, seed: int, mesh: tuple[int, int]) -> dict:
    spec = random_canonical(batch, LAYERS, seed, mesh)
    g = torch.Generator().manual_seed(seed)
    spec["energy"] = torch.rand(batch, 3, 3, 2, dtype=torch.float64, generator=g) * 100
    spec["mac_pJ"] = torch.rand(batch, dtype=torch.float64, generator=g)
    spec["block_size"] = torch.tensor([[8, 4, 1]] * batch)
    bw = torch.full((batch, 3, 3), math.inf, dtype=torch.float64)
    bw[:, 0, 2] = torch.randint(1, 9, (batch,), generator=g).double()  # DRAM shared
    bw[:, 1, 0] = torch.randint(4, 65, (batch,), generator=g).double()  # GB read / write
    bw[:, 1, 1] = torch.randint(4, 65, (batch,), generator=g).double()
    bw[:, 2, :2] = torch.where(torch.rand(batch, 1, generator=g) < 0.5, 2.0, math.inf)  # RF read / write
    spec["bandwidth"] = bw
    spec["dilations"] = torch.randint(1, 3, (batch, 2), generator=g) * (torch.rand(batch, 1, generator=g) < 0.2)
    spec["dilations"].clamp_(min=1)
    return spec


def to_nest(spec: dict, b: int) -> Nest:
    """Row `b` of a batch as the scalar model's `Nest` (padded problem, partitioned GB/RF)."""
    f = spec["factors"][b].tolist()
    dw = bool(spec["depthwise"][b])
    names = {d: ("G" if dw and d == "K" else "M" if d == "K" else d) for d in DNAC_DIMS}
    padded = {names[d]: math.prod(f[s][i] for s in range(4)) for i, d in enumerate(DNAC_DIMS)}
    if dw:
        padded["M"] = 1
    kind = ShapeKind.DEPTHWISE if dw else ShapeKind.CONV
    sw, sh = spec["strides"][b].tolist()
    dw_, dh_ = spec["dilations"][b].tolist() if "dilations" in spec else (1, 1)
    problem = Problem(kind, padded, wstride=sw, hstride=sh, wdilation=dw_, hdilation=dh_)
    extra = ("M",) if dw else ()

    def level(slot: int, perm_row: int | None) -> LevelMapping:
        temporal = {names[d]: f[slot][i] for i, d in enumerate(DNAC_DIMS) if f[slot][i] > 1}
        perm = extra + tuple(names[DNAC_DIMS[i]] for i in spec["perms"][b][perm_row].tolist())
        return LevelMapping(temporal, perm)

    sx = spec["spatial_x"][b].tolist()
    xs = tuple(names[d] for i, d in enumerate(DNAC_DIMS) if sx[i])
    ys = extra + tuple(names[d] for i, d in enumerate(DNAC_DIMS) if not sx[i])
    spatial = {names[d]: f[2][i] for i, d in enumerate(DNAC_DIMS) if f[2][i] > 1}
    gb_map = level(1, 1)
    gb_map = LevelMapping(gb_map.temporal, gb_map.temporal_perm, spatial, ys + xs, len(xs))
    mx, my = spec["mesh"][b].tolist()
    en = spec["energy"][b].tolist()
    blk = spec["block_size"][b].tolist()
    bw = [[None if math.isinf(v) else v for v in row] for row in spec["bandwidth"][b].tolist()]
    caps = {t: 1 << 40 for t in TL_TENSORS}
    storage = tuple(
        Storage(name, 1 if name != "RF" else mx * my, 1 if name != "RF" else mx, None, blk[i], 16,
                bw[i][0], bw[i][1], bw[i][2], capacities=None if name == "DRAM" else caps,
                tensor_pJ={t: (en[i][j][0], en[i][j][1]) for j, t in enumerate(TL_TENSORS)})
        for i, name in enumerate(LEVELS))
    mac = Compute("mac", mx * my, mx, float(spec["mac_pJ"][b]))
    return Nest(problem, storage, mac, (level(0, 0), gb_map, level(3, 2)))


@pytest.mark.parametrize("seed,mesh", [(1, (16, 16)), (2, (8, 4)), (3, (14, 12))])
def test_batched_equals_scalar(seed: int, mesh: tuple[int, int]) -> None:
    """>= 500 random nests in all (3 x 200): every count and cycle exact, energy to 1e-9."""
    spec = _spec(200, seed, mesh)
    got = evaluate_batch(**spec)
    assert bool(got.valid.all())
    for b in range(200):
        ref = evaluate(to_nest(spec, b), link_transfers=False)
        assert int(got.compute_cycles[b]) == ref.compute_cycles
        assert int(got.cycles[b]) == ref.cycles, b
        assert int(got.macs[b]) == ref.computes
        assert float(got.utilization[b]) == pytest.approx(ref.utilization, rel=1e-12)
        assert float(got.energy_pJ[b]) == pytest.approx(ref.energy_pJ, rel=1e-9)
        for i, lv in enumerate(ref.levels):
            assert int(got.level_cycles[b, i]) == lv.cycles, (b, lv.name)
            assert float(got.level_energy_pJ[b, i]) == pytest.approx(lv.energy_pJ, rel=1e-9, abs=1e-9)
            for j, t in enumerate(TL_TENSORS):
                ts = lv.tensors[t]
                row = (got.reads[b, i, j], got.fills[b, i, j], got.updates[b, i, j], got.tile[b, i, j],
                       got.partition[b, i, j], got.instances[b, i])
                assert tuple(int(v) for v in row) == (ts.reads, ts.fills, ts.updates, ts.utilized_capacity,
                                                      ts.partition_size, ts.utilized_instances), (b, lv.name, t)


def test_batched_vgg16_equals_scalar() -> None:
    """Large layers (VGG16, as in `bench`): no overflow in the int32 loop geometry."""
    spec = random_canonical(60, VGG16, 5, (32, 16))
    spec["energy"] = torch.rand(60, 3, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    spec["block_size"] = (4, 4, 1)
    got = evaluate_batch(**spec)
    full = {**spec, "mac_pJ": torch.ones(60, dtype=torch.float64), "block_size": torch.tensor([[4, 4, 1]] * 60),
            "bandwidth": torch.full((60, 3, 3), math.inf, dtype=torch.float64)}
    for b in range(60):
        ref = evaluate(to_nest(full, b), link_transfers=False)
        assert int(got.cycles[b]) == ref.cycles
        assert float(got.energy_pJ[b]) == pytest.approx(ref.energy_pJ, rel=1e-9)
        for i, lv in enumerate(ref.levels):
            for j, t in enumerate(TL_TENSORS):
                ts = lv.tensors[t]
                assert (int(got.reads[b, i, j]), int(got.fills[b, i, j]), int(got.updates[b, i, j])) == \
                    (ts.reads, ts.fills, ts.updates), (b, lv.name, t)


def test_batched_capacity_flag_matches_scalar() -> None:
    spec = _spec(100, 7, (16, 16))
    full = evaluate_batch(**spec)
    cap = (full.tile[:, 1:, :].float().mean(0)).long()  # about half the tiles overflow somewhere
    spec["gb_capacity"] = cap[0].expand(100, 3)
    spec["rf_capacity"] = cap[1].expand(100, 3)
    got = evaluate_batch(**spec)
    assert 0 < int(got.fits.sum()) < 100
    for b in range(100):
        nest = to_nest(spec, b)
        caps = {"GB": dict(zip(TL_TENSORS, cap[0].tolist())), "RF": dict(zip(TL_TENSORS, cap[1].tolist()))}
        storage = tuple(s if s.name == "DRAM" else Storage(**{**s.__dict__, "capacities": caps[s.name]})
                        for s in nest.storage)
        nest = Nest(nest.problem, storage, nest.compute, nest.mappings)
        if bool(got.fits[b]):
            evaluate(nest)
        else:
            with pytest.raises(DesignError, match="exceeds its capacity"):
                evaluate(nest)


def test_batched_validity_flags() -> None:
    spec = _spec(50, 11, (16, 16))
    spec["mesh"] = torch.tensor([[2, 2]] * 50)
    spec["bounds"] = spec["bounds"] * 2
    got = evaluate_batch(**spec)
    assert not bool(got.valid.any())
    assert bool(got.fits.all())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dram_only_analysis_equals_the_full_one(seed: int) -> None:
    """The FPGA model's DRAM-only walk gives exactly the full analysis's DRAM reads and tiles
    (strided, dilated, depthwise and padded nests included)."""
    spec = _spec(256, seed, (16, 16))
    full = evaluate_batch(**spec)
    reads, part = dram_counts(spec["factors"], spec["perms"], strides=spec["strides"],
                              dilations=spec["dilations"], depthwise=spec["depthwise"])
    assert torch.equal(reads, full.reads[:, 0])
    assert torch.equal(part, full.partition[:, 0])
