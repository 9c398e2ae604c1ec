"""The design space (GADS) and decoding choice vectors into designs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnac.compiler.das.decode import F_DRAM, F_GB, F_RF, F_SPATIAL, _orders, decode
from dnac.compiler.das.space import SPLITS, DesignSpace, KnobKind, tile_candidates
from dnac.compiler.ir.footprint import footprints
from dnac.compiler.ir.validate import violations
from dnac.compiler.targets import load_target
from dnac.compiler.vocab import DIMS, ArchStyle
from dnac.compiler.workload import zoo


@pytest.fixture(scope="module")
def zc706():
    return load_target("zc706")


def test_tile_candidates_include_divisors_and_powers_of_two() -> None:
    assert tile_candidates(1) == (1,)
    assert tile_candidates(14) == (1, 2, 4, 7, 8, 14)
    assert tile_candidates(13) == (1, 2, 4, 8, 13)


def test_splits_cover_every_eighths_allocation() -> None:
    assert len(SPLITS) == 21 and all(sum(s) == 8 and min(s) >= 1 for s in SPLITS)


def test_knobs_cover_every_parameter_of_dna_table_1(zc706) -> None:
    sp = DesignSpace(zoo.get("tiny_mbv2"), zc706)
    kinds = {k.kind for k in sp.knobs}
    assert kinds == set(KnobKind)
    # depthwise layers form their own group, so they never share a chunk with convolutions
    assert {g.depthwise for g in sp.groups} == {False, True}
    assert sum(len(g.layers) for g in sp.groups) == len(zoo.get("tiny_mbv2").compute_layers)


def test_precision_groups_keep_precisions_apart(zc706) -> None:
    from dnac.compiler.workload import ModelBuilder

    b = ModelBuilder("mixed", (3, 8, 8))
    b.conv("a", 8, 3, padding=1, w_bits=8, a_bits=8)
    b.conv("b", 8, 3, padding=1, w_bits=16, a_bits=16)
    b.conv("c", 8, 3, padding=1, w_bits=8, a_bits=8)
    sp = DesignSpace(b.build(), zc706)
    assert sorted((g.w_bits, len(g.layers)) for g in sp.groups) == [(8, 2), (16, 1)]
    batch = decode(sp, sp.random_choices(64, np.random.default_rng(0)))
    for i in range(64):
        g = batch.to_design(i, "zc706")
        for c in g.chunks.values():
            assert len({(g.node(n).layer.w_bits) for n in c.layers}) == 1 or g.arch is ArchStyle.MULTI_CYCLE


def test_space_size_is_reported(zc706) -> None:
    sp = DesignSpace(zoo.get("fbnet"), zc706)
    # DNA/TRIPS quote 2.24E+27 for their FBNet space; ours also searches per-layer loop sizes
    assert sp.size_log10() > math.log10(2.24e27)


def test_orders_are_permutations() -> None:
    rng = np.random.default_rng(1)
    picks = rng.integers(0, 7, size=(500, 3, 7))
    out = _orders(picks)
    assert (np.sort(out, axis=-1) == np.arange(7)).all()
    # a pick of a free dim is kept as is
    assert (out[..., 0] == picks[..., 0]).all()


@pytest.mark.parametrize("model", ["tiny", "tiny_mbv2", "resnet18"])
def test_random_designs_decode_valid(zc706, model: str) -> None:
    sp = DesignSpace(zoo.get(model), zc706)
    batch = decode(sp, sp.random_choices(256, np.random.default_rng(7)))
    assert batch.fits.all()
    for i in range(0, 256, 32):
        g = batch.to_design(i, "zc706")
        assert violations(g) == [], [v.line() for v in violations(g)][:3]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_decoded_factorizations_cover_every_bound(seed: int) -> None:
    sp = DesignSpace(zoo.get("tiny_mbv2"), load_target("zc706"))
    batch = decode(sp, sp.random_choices(32, np.random.default_rng(seed)))
    f = batch.factors
    covered = f.prod(axis=2)
    assert (covered >= sp.bounds[None]).all()
    # the outermost non-unit factor is needed: no iteration is all padding
    chain = f[:, :, [F_DRAM, F_GB, F_SPATIAL, F_RF]]
    for b in range(f.shape[0]):
        for li in range(f.shape[1]):
            for j in range(len(DIMS)):
                c = chain[b, li, :, j]
                outer = next((x for x in c if x > 1), 1)
                assert outer == 1 or covered[b, li, j] // outer < sp.bounds[li, j]
    # spatial factors stay within the chunk's unroll, tiles within its buffers
    u = np.take_along_axis(batch.unroll, batch.slot[:, :, None], axis=1)
    assert (f[:, :, F_SPATIAL] <= u).all()
    dw = np.array([layer.is_depthwise for layer in sp.layers])
    stride = np.array([layer.stride for layer in sp.layers])
    rf_fp = np.stack(footprints(f[:, :, F_RF], stride[None], dw[None]), -1)
    rf_cap = np.take_along_axis(batch.rf, batch.slot[:, :, None], axis=1)
    assert (rf_fp <= rf_cap).all()


def test_multi_cycle_puts_each_kind_on_one_engine(zc706) -> None:
    sp = DesignSpace(zoo.get("tiny_mbv2"), zc706)
    ch = sp.random_choices(16, np.random.default_rng(3))
    ch[:, sp.i_arch] = 1
    batch = decode(sp, ch)
    for i in range(16):
        g = batch.to_design(i, "zc706")
        assert g.arch is ArchStyle.MULTI_CYCLE
        assert sorted(c.depthwise for c in g.chunks.values()) == [False, True]
        assert violations(g) == []


def test_decoding_is_deterministic(zc706) -> None:
    sp = DesignSpace(zoo.get("tiny"), zc706)
    ch = sp.random_choices(64, np.random.default_rng(11))
    a, b = decode(sp, ch), decode(sp, ch.copy())
    assert (a.factors == b.factors).all() and (a.order == b.order).all()


@pytest.mark.parametrize("model", ["tiny", "tiny_mbv2"])
def test_encode_inverts_to_design(zc706, model: str) -> None:
    from dnac.compiler.das.batch import encode

    sp = DesignSpace(zoo.get(model), zc706)
    batch = decode(sp, sp.random_choices(8, np.random.default_rng(5)))
    for i in range(8):
        g = batch.to_design(i, "zc706")
        again = encode(g).to_design(0, "zc706")
        assert again == g
        one = encode(g)
        assert (one.factors[0] == batch.factors[i]).all()
