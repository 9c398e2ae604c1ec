"""The HLS engines' on-chip buffers are the hardware the cost model priced (`fpga_buffers`).

- the banking is conflict-free: in every cycle the PE lanes read distinct banks, for strided,
  depthwise and haloed tiles, and every tile element has its own (bank, address);
- `bank_need` is exactly the fullest bank the loaders fill;
- DAS only produces designs whose tiles fit their banks, and grouped layers keep K tiles inside
  one group;
- the static synthesizability check finds what Vivado would refuse;
- C simulation is bit-exact with the largest unrolls the space allows on a stride-2 conv and
  depthwise layers (every NoC style).

(Every project the back-end tests emit also passes `check_project` and declares exactly the DSPs
and BRAM18K of the cost model: `backend_util.write`.)
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from backend_util import odd_workload, write
from test_backend_hls import _make, needs_csim

from dnac.compiler.backends.hls_check import check_project
from dnac.compiler.cost import fpga_buffers
from dnac.compiler.cost.fpga import tiles_fit
from dnac.compiler.das.batch import F_GB, F_RF, F_SPATIAL
from dnac.compiler.das.decode import decode
from dnac.compiler.das.space import UNROLL_CHOICES, DesignSpace
from dnac.compiler.targets import load_target
from dnac.compiler.vocab import DIMS, Dim, NocStyle
from dnac.compiler.workload import zoo
from dnac.compiler.workload.builder import ModelBuilder

ZC706 = load_target("zc706")
_K, _C, _P, _R = (DIMS.index(d) for d in (Dim.K, Dim.C, Dim.P, Dim.R))


def _bank(x: int, block: int, cycle: int) -> int:  # dnac_bank in dnac_ops.h
    return (x // block) % cycle


def _addr(x: int, block: int, cycle: int) -> int:  # dnac_addr in dnac_ops.h
    return (x // (block * cycle)) * block + x % block


@pytest.mark.parametrize("mode", ["out", "red"])
def test_block_cyclic_rows_are_conflict_free(mode: str) -> None:
    """Input rows (columns alike) for P (or R) unrolled: every cycle's lanes hit distinct banks,
    the engine's rotated per-bank addresses are the lanes' addresses, placement is injective and
    the fullest bank holds exactly `block_extent` rows."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        stride, rf_o, sp_o, gb_o = (int(rng.integers(1, hi)) for hi in (4, 4, 9, 4))
        rf_r, sp_r, gb_r = int(rng.integers(1, 4)), int(rng.integers(1, 8)), int(rng.integers(1, 3))
        if mode == "out":
            sp_r = 1
            block, cycle = rf_o * stride, sp_o
        else:
            sp_o = 1
            block, cycle = rf_r, sp_r
        t_out, t_red = gb_o * sp_o * rf_o, gb_r * sp_r * rf_r
        rows = (t_out - 1) * stride + t_red
        placed = {(_bank(h, block, cycle), _addr(h, block, cycle)) for h in range(rows)}
        assert len(placed) == rows
        assert max(a for _, a in placed) + 1 == fpga_buffers.block_extent(rows, block, cycle)
        for g_o, r_o, g_r, r_r in itertools.product(range(gb_o), range(rf_o), range(gb_r), range(rf_r)):
            rows_of = [(((g_o * sp_o + s_o) * rf_o + r_o) * stride + (g_r * sp_r + s_r) * rf_r + r_r)
                       for s_o in range(sp_o) for s_r in range(sp_r)]
            lanes = rows_of  # one of sp_o, sp_r is 1: the lanes of the unrolled dim, in order
            banks = [_bank(h, block, cycle) for h in lanes]
            assert sorted(banks) == list(range(cycle))  # one read per bank
            x = lanes[0]  # the engine: rotation and per-bank address from lane 0's row
            blk, off = divmod(x, block)
            rot = blk % cycle
            for j in range(cycle):
                lane = (j - rot) % cycle
                assert banks[lane] == j and ((blk + lane) // cycle) * block + off == _addr(lanes[lane], block, cycle)


def test_bank_need_is_the_fullest_bank() -> None:
    """`bank_need` equals the most words the loaders put in one bank, for random tiles of
    strided, depthwise and haloed layers on random PE arrays (lanes bank W, O and channels)."""
    rng = np.random.default_rng(1)
    for _ in range(60):
        dw = bool(rng.integers(0, 2))
        unroll = np.ones(7, dtype=np.int64)
        noc = [(Dim.K, Dim.P, Dim.Q), (Dim.K, Dim.C, Dim.R, Dim.S), (Dim.K, Dim.R, Dim.Q)][int(rng.integers(0, 3))]
        for d in noc:
            unroll[DIMS.index(d)] = int(rng.integers(1, 5))
        sp = np.array([int(rng.integers(1, u + 1)) for u in unroll])
        if dw:
            sp[_C] = 1
        f_gb, f_rf = rng.integers(1, 3, 7), rng.integers(1, 3, 7)
        if dw:
            f_gb[_C] = f_rf[_C] = 1
        stride = rng.integers(1, 3, 2)
        need = fpga_buffers.bank_need(f_gb, sp, f_rf, unroll, stride, dw)
        t = f_gb * sp * f_rf

        def lane(d: int, x: int, f_rf: np.ndarray = f_rf, sp: np.ndarray = sp) -> tuple[int, int]:
            return _bank(x, int(f_rf[d]), int(sp[d])), _addr(x, int(f_rf[d]), int(sp[d]))

        w_fill: dict[tuple[int, ...], set[int]] = {}
        for k, c in itertools.product(range(t[_K]), range(t[_C])):
            for r, s in itertools.product(range(t[_R]), range(t[DIMS.index(Dim.S)])):
                idx = [lane(_K, k), lane(_C, c), lane(_R, r), lane(DIMS.index(Dim.S), s)]
                w_fill.setdefault(tuple(b for b, _ in idx), set()).add(tuple(a for _, a in idx))
        assert max(len(v) for v in w_fill.values()) == need[0]
        ch_dim = _K if dw else _C
        i_fill: dict[tuple[int, ...], set[tuple[int, ...]]] = {}
        axes = []
        for out, red, st in ((_P, _R, stride[0]), (DIMS.index(Dim.Q), DIMS.index(Dim.S), stride[1])):
            if unroll[out] > 1:
                axes.append((int(f_rf[out] * st), int(sp[out])))
            elif unroll[red] > 1:
                axes.append((int(f_rf[red]), int(sp[red])))
            else:
                axes.append((1, 1))
        rows = (t[_P] - 1) * stride[0] + t[_R]
        cols = (t[DIMS.index(Dim.Q)] - 1) * stride[1] + t[DIMS.index(Dim.S)]
        for n, ch, h, w in itertools.product(range(t[0]), range(t[ch_dim]), range(rows), range(cols)):
            cb, ca = lane(ch_dim, ch)
            key = (cb, _bank(h, *axes[0]), _bank(w, *axes[1]))
            i_fill.setdefault(key, set()).add((n, ca, _addr(h, *axes[0]), _addr(w, *axes[1])))
        # the loader's address is ((n * a_ch + ca) * ah + row) * aw + col: its extents bound each part
        ah, aw = (fpga_buffers.block_extent(x, *a) for x, a in ((rows, axes[0]), (cols, axes[1])))
        most = max(max(a[2] for a in v) for v in i_fill.values()) + 1
        assert most == ah and need[1] == t[0] * f_gb[ch_dim] * f_rf[ch_dim] * ah * aw
        assert max(len(v) for v in i_fill.values()) <= need[1]


@pytest.mark.parametrize("model", ["tiny_mbv2", "odd"])
def test_decoded_designs_fit_their_banks(model: str) -> None:
    """Decoding places every feasible design's tiles in its banks (the cost model agrees), and
    grouped layers' K tiles divide their group."""
    space = DesignSpace(odd_workload() if model == "odd" else zoo.get(model), ZC706)
    batch = decode(space, space.random_choices(64, np.random.default_rng(3)))
    assert batch.fits.any()
    assert (tiles_fit(batch) | ~batch.fits).all()
    f = batch.factors
    t_k = f[:, :, F_GB, _K] * f[:, :, F_SPATIAL, _K] * f[:, :, F_RF, _K]
    grouped = space.table.grouped
    assert (space.table.k_per_group[grouped][None] % t_k[:, grouped] == 0).all()
    assert grouped.any() == (model == "odd")


def _max_unroll_design(noc: NocStyle, bits: int = 8):  # type: ignore[no-untyped-def]
    """A stride-2 conv and two depthwise layers (stride 1 and 2) on PE arrays with the largest
    unroll of every dim of `noc`, as a pipeline (8 bits: packed DSP MACs; 4 bits: LUT MACs)."""
    b = ModelBuilder("maxu", (8, 17, 17), batch=1, w_bits=bits, a_bits=bits)
    b.conv("s2", 24, 3, stride=2, padding=1, activation="relu", bias=True)
    b.conv("dw1", 24, 3, padding=1, groups=24, activation="relu")
    b.conv("dw2", 24, 5, stride=2, padding=2, groups=24)
    b.conv("pw", 16, 1)
    w = b.build()
    space = DesignSpace(w, ZC706)
    rng = np.random.default_rng(7)
    for _ in range(200):
        ch = space.random_choices(1, rng)
        ch[0, space.i_arch] = 0  # pipeline
        ch[0, space.i_noc] = list(NocStyle).index(noc)
        for j, d in enumerate(UNROLL_CHOICES):
            ch[0, space.i_unroll[:, j]] = len(UNROLL_CHOICES[d]) - 1
        ch[0, space.i_buf[:, 0]] = len(space.gb_kib) - 1  # the largest GB: big tiles, many banks
        batch = decode(space, ch)
        if batch.fits[0] and tiles_fit(batch)[0]:
            return batch.to_design(0, "zc706")
    raise AssertionError("no design found")


@needs_csim
@pytest.mark.parametrize("noc,bits", [(noc, 8) for noc in NocStyle] + [(NocStyle.KPQ, 4)])
def test_max_unroll_stride2_and_depthwise_bit_exact(tmp_path: Path, noc: NocStyle, bits: int) -> None:
    g = _max_unroll_design(noc, bits)
    assert any(c.unroll_of(d) == max(UNROLL_CHOICES[d]) for c in g.chunks.values() for d in noc.dims)
    write(g, "zc706", tmp_path, 0)
    run = _make(tmp_path / "hls", "csim")
    assert run.returncode == 0 and "PASS" in run.stdout, run.stdout + run.stderr


def test_static_check_finds_what_vivado_refuses(tmp_path: Path) -> None:
    g = _max_unroll_design(NocStyle.KPQ)
    write(g, "zc706", tmp_path, 0)
    hls = tmp_path / "hls"
    engine = hls / "src" / "engine_c0.cpp"
    good = engine.read_text()
    assert check_project(hls, g) == []
    mutations = {
        "static c0_wgt_t w_buf[2][c0_WB][c0_WD];": "static c0_wgt_t w_buf[2][c0_WB][c0_WD * 2];",  # oversized
        "for (int bk = 0; bk < c0_U_K;": "for (int bk = 0; bk < 100;",  # unroll beyond the PE array
        "#pragma HLS LOOP_TRIPCOUNT min=1 max=": "#pragma HLS LOOP_TRIPCOUNT min=1 max=1",  # wrong maximum
        "#pragma HLS ARRAY_PARTITION variable=w_buf complete dim=2": "#pragma HLS ARRAY_PARTITION variable=w_buf complete dim=4",
    }
    for old, new in mutations.items():
        assert old in good
        engine.write_text(good.replace(old, new, 1))
        assert check_project(hls, g), new
    engine.write_text(good + "\nstatic int f(int x) { int *a = new int[x]; return a[0] + f(x - 1); }\n")
    found = check_project(hls, g)
    assert any("recursion" in p for p in found) and any("dynamic allocation" in p for p in found)
    engine.write_text(good.replace("#pragma HLS LOOP_TRIPCOUNT min=1 max=", "// ", 1))
    assert any("neither a constant bound" in p for p in check_project(hls, g))


@needs_csim
def test_packed_mac_is_exact_for_every_8bit_operand(tmp_path: Path) -> None:
    """dnac_mac2 (two MACs in one DSP48E1 multiply) against two plain products, for all 2^24
    (w0, w1, x) of 8-bit signed operands, compiled with the project's own headers."""
    import importlib.resources
    import subprocess

    ops = importlib.resources.files("dnac.templates") / "hls" / "lib" / "dnac_ops.h"
    (tmp_path / "dnac_ops.h").write_text(ops.read_text())
    (tmp_path / "t.cpp").write_text("""
#include <cstdio>
#include "dnac_ops.h"
int main() {
  long long bad = 0;
  for (int w0 = -128; w0 < 128; ++w0)
    for (int w1 = -128; w1 < 128; ++w1)
      for (int x = -128; x < 128; ++x) {
        ap_int<24> s0 = 0, s1 = 0;
        dnac_mac2(ap_int<8>(w0), ap_int<8>(w1), ap_int<8>(x), s0, s1);
        bad += (s0 != w0 * x) + (s1 != w1 * x);
      }
  std::printf("%lld\\n", bad);
  return bad != 0;
}
""")
    ap = importlib.resources.files("hls4ml") / "templates" / "vivado" / "ap_types"
    subprocess.run(["g++", "-std=c++14", "-O2", "-isystem", str(ap), "-I", str(tmp_path), "-o", str(tmp_path / "t"),
                    str(tmp_path / "t.cpp")], check=True, capture_output=True, timeout=300)
    run = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "0", run.stdout + run.stderr
