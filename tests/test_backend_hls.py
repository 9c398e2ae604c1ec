"""The Vivado HLS back-end: golden tree, structure of the generated C++, and C simulation.

`make csim` (g++ against the ap_types headers of the hls4ml wheel) must print PASS, bit-exact
against the integer reference model, for the tiny model, for tiny_mbv2 (depthwise, stride 2,
residual add; a 4-chunk pipeline design) and for a network with hostile layer names, a grouped
conv, batch 2 and partial-sum spills; and FAIL once one weight bit is flipped in the data.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from backend_util import check_golden, design, write
from conftest import random_design
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dnac.compiler import refmodel
from dnac.compiler.backends import BACKENDS, HlsBackend
from dnac.compiler.backends.hls import project
from dnac.compiler.errors import DesignError
from dnac.compiler.targets import load_target
from dnac.compiler.timeloop.to_ir import import_case
from dnac.compiler.vocab import ArchStyle, Dim
from dnac.compiler.workload import zoo

ZC706 = load_target("zc706")
#: (model, seed) of the C-simulated designs: tiny; tiny_mbv2 as a 4-chunk pipeline (DATAFLOW,
#: stage skew); the hostile network (grouped conv, batch 2, biases, partial-sum spills); the
#: widest operands (24/32 bits, 60-bit accumulators).
CSIM = [("tiny", 0), ("tiny_mbv2", 2), ("odd", 1), ("wide", 0)]

needs_csim = pytest.mark.skipif(
    shutil.which("g++") is None or shutil.which("make") is None or importlib.util.find_spec("hls4ml") is None,
    reason="make csim needs g++, make and the hls4ml wheel (ap_types headers)")


def _make(hls: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "-j2", f"PYTHON={sys.executable}", *args], cwd=hls, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    """Each CSIM design written once (its hls/ folder)."""
    out = {}
    for model, seed in CSIM:
        root = tmp_path_factory.mktemp(f"{model}_{seed}")
        write(design(model, seed, "zc706"), "zc706", root, seed)
        out[(model, seed)] = root / "hls"
    return out


def test_golden_tree_tiny(tmp_path: Path) -> None:
    """Same inputs and seed, same bytes: the tiny model's project equals tests/golden/tiny_zc706."""
    files = write(design("tiny", 0, "zc706"), "zc706", tmp_path, 0)
    assert files == sorted(files) and all(f.is_relative_to(tmp_path / "hls") for f in files)
    check_golden(tmp_path, "tiny_zc706")


def test_registry() -> None:
    assert BACKENDS["fpga"] is HlsBackend and HlsBackend.template_dir == "hls"


@needs_csim
@pytest.mark.slow
@pytest.mark.parametrize("case", CSIM, ids=[f"{m}-{s}" for m, s in CSIM])
def test_csim_bit_exact(built: dict[tuple[str, int], Path], case: tuple[str, int]) -> None:
    r = _make(built[case])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert re.search(r"^PASS: \d+ outputs bit-exact$", r.stdout, re.MULTILINE), r.stdout
    assert "warning" not in r.stderr, r.stderr[-3000:]


def _flip_weight(model: str, seed: int) -> int:
    """Index (in weights.bin) of a weight of the last MAC layer whose bit flip changes an output."""
    g = design(model, seed, "zc706")
    proj = project(g, ZC706, seed=seed)
    w = g.workload()
    gold = proj.golden
    outs = w.outputs
    layer = [ctx for ctx in proj.context["layers"] if ctx["kind"] == "conv"][-1]
    name = layer["name"]
    for i in range(gold.weights[name].size):
        flipped = {k: v.copy() for k, v in gold.weights.items()}
        flat = flipped[name].reshape(-1)
        bits = layer["w_bits"]
        u = (int(flat[i]) & ((1 << bits) - 1)) ^ (1 << (bits - 2))
        flat[i] = u - (1 << bits) if u >= 1 << (bits - 1) else u
        got = refmodel.forward(w, gold, weights=flipped)
        if any(not np.array_equal(got[o], gold.tensors[o]) for o in outs):
            return layer["w_off"] + i
    raise AssertionError("no single-bit weight flip changes the outputs")


@needs_csim
@pytest.mark.slow
def test_csim_detects_a_flipped_weight_bit(built: dict[tuple[str, int], Path], tmp_path: Path) -> None:
    hls = built[("tiny", 0)]
    if not (hls / "build" / "csim").exists():
        assert _make(hls, "build/csim").returncode == 0
    data = tmp_path / "data"
    shutil.copytree(hls / "data", data)
    raw = bytearray((data / "weights.bin").read_bytes())
    i = _flip_weight("tiny", 0)
    bits = 8
    raw[2 * i] ^= 1 << (bits - 2)  # 16-bit little-endian words: the low byte holds bit 6
    (data / "weights.bin").write_bytes(bytes(raw))
    r = subprocess.run([str(hls / "build" / "csim"), str(data)], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1, r.stdout
    assert re.search(r"^FAIL: [1-9]\d* mismatches", r.stdout, re.MULTILINE), r.stdout


# ----------------------------------------------------------------------------- structure


def _text(root: Path, rel: str) -> str:
    return (root / "hls" / rel).read_text()


@pytest.mark.parametrize("model,seed", [("tiny", 0), ("tiny_mbv2", 2), ("odd", 1), ("tiny_mbv2", 0)])
def test_engines_follow_the_ir(tmp_path: Path, model: str, seed: int) -> None:
    """One engine per chunk; unrolled loops bounded by the chunk's unroll (so by its PE array);
    PIPELINE II=1 in every engine's compute loop nest; buffers partitioned into their banks;
    DATAFLOW exactly in the pipeline style; run_hls.tcl names the target's part and clock."""
    g = design(model, seed, "zc706")
    write(g, "zc706", tmp_path, seed)
    for cid, chunk in g.chunks.items():
        src = _text(tmp_path, f"src/engine_c{cid}.cpp")
        consts = {m[1]: int(m[2]) for m in re.finditer(rf"c{cid}_U_([NKCRSPQ]) = (\d+);", src)}
        assert consts == {d.value: chunk.unroll_of(d) for d in (Dim.K, Dim.C, Dim.R, Dim.S, Dim.P, Dim.Q)}
        consts = {d: u for d, u in consts.items() if u > 1}
        unrolled = re.findall(rf"for \(int s([NKCRSPQ]) = 0; s\1 < c{cid}_U_\1; \+\+s\1\) {{\n#pragma HLS UNROLL", src)
        if f"for (int sK2 = 0; sK2 < c{cid}_U_K2; ++sK2) {{\n#pragma HLS UNROLL" in src:  # packed 8-bit MACs
            unrolled.append("K")
        assert sorted(unrolled) == sorted(consts)
        assert math_prod(consts.values()) <= chunk.pe_array[0] * chunk.pe_array[1]
        compute = src[src.index(f"static void c{cid}_compute"):src.index(f"void c{cid}_engine")]
        temporal = re.findall(r"for \(int [gr]([NKCRSPQ]) = 0", compute)
        if temporal:
            assert compute.count("#pragma HLS PIPELINE II=1") == 1
            last = list(re.finditer(r"for \(int [gr][NKCRSPQ] = 0[^\n]*\n(#pragma[^\n]*\n)+", compute))[-1]
            assert "PIPELINE II=1" in last.group(0)
        order = "".join(re.findall(r"nxt\[DNAC_([NKCRSPQ])\] \+= 1;", src))[::-1]  # the tile odometer
        assert order == "".join(d.value for d in chunk.loop_order["DRAM"] if any(
            n.mapping.factor("DRAM", d) > 1 for n in g.chunk_layers(cid)))
        for buf in ("w_buf", "i_buf", "o_buf"):
            for dim in (1, 2):
                assert f"ARRAY_PARTITION variable={buf} complete dim={dim}" in src
    top = _text(tmp_path, "src/dnac_top.cpp")
    assert ("#pragma HLS DATAFLOW" in top) == (g.arch is ArchStyle.PIPELINE)
    assert "port=return bundle=control" in top and "m_axi port=weights_c0" in top and "m_axi port=fmaps_c0" in top
    tcl = _text(tmp_path, "run_hls.tcl")
    assert f"set_part {ZC706.part}" in tcl and f"create_clock -period {1000 / ZC706.clock_mhz:g}" in tcl
    for flag in ("csim", "csynth", "cosim", "export"):
        assert f"$opt({flag})" in tcl
    types = _text(tmp_path, "src/dnac_types.h")
    for n in g.nodes():
        if n.layer.has_macs:
            assert f"typedef ap_int<{n.layer.w_bits}>" in types


def math_prod(xs) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def test_hostile_names_never_reach_code_or_paths(tmp_path: Path) -> None:
    g = design("odd", 1, "zc706")
    files = write(g, "zc706", tmp_path, 1)
    assert all(f.resolve().is_relative_to((tmp_path / "hls").resolve()) for f in files)
    assert all(f.name.isascii() for f in files)
    for f in files:
        if f.suffix == ".bin":  # golden data, binary words
            continue
        text = f.read_text(encoding="utf-8")
        assert text.isascii(), f
        for line in text.splitlines():
            assert not line.endswith("\\"), (f, line)  # no comment swallows the next line
            if "system(" in line and f.suffix in (".h", ".cpp"):  # only inside a comment or an escaped literal
                assert line.index("//") < line.index("system(") or 'system(\\"x\\")' in line, (f, line)
    types = (tmp_path / "hls" / "src" / "dnac_types.h").read_text()
    for ident in re.findall(r"typedef ap_int<\d+> (\w+);", types):
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,80}", ident) and "__" not in ident


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    g = design("tiny", 0, "zc706")
    a = write(g, "zc706", tmp_path / "a", 0)
    b = write(g, "zc706", tmp_path / "b", 0)
    write(g, "zc706", tmp_path / "c", 1)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert (tmp_path / "a/hls/data/weights.bin").read_bytes() != (tmp_path / "c/hls/data/weights.bin").read_bytes()


def test_refuses_non_canonical_and_wrong_target(tmp_path: Path) -> None:
    case = Path(__file__).parent / "data" / "timeloop-golden" / "p_002_eyeriss_C16_w16_c1_C64M32P14"
    g = import_case(case, target="zc706")
    with pytest.raises(DesignError, match="canonical hierarchy"):
        HlsBackend().write(g, ZC706, tmp_path, seed=0)
    with pytest.raises(DesignError, match="FPGA target"):
        HlsBackend().write(random_design(zoo.get("tiny"), 0), load_target("asic"), tmp_path, seed=0)


# ----------------------------------------------------------------------------- reference model


def test_refmodel_conv_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    from backend_util import odd_workload

    w = odd_workload()
    gold = refmodel.generate(w, 3)
    tensors = {"input": gold.input, **gold.tensors}
    for layer in w.layers:
        if not layer.op.has_weights or layer.R * layer.S == 1 and layer.P * layer.Q == 1:
            continue
        x = tensors[layer.inputs[0]].reshape(layer.N, layer.C, layer.H, layer.W)
        got = refmodel.accumulate(layer, [x], gold.weights[layer.name], gold.biases.get(layer.name))
        ref = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64),
                                         torch.tensor(gold.weights[layer.name], dtype=torch.float64),
                                         stride=layer.stride, padding=layer.padding, groups=layer.groups)
        bias = gold.biases.get(layer.name)
        ref = ref.numpy() + (bias.reshape(1, -1, 1, 1) if bias is not None else 0)
        assert np.array_equal(got, ref.astype(np.int64)), layer.name


def test_refmodel_rounding_and_clamps() -> None:
    q = refmodel.Requant(mult=1, shift=2, lo=-128, hi=127)
    # (acc + 2) >> 2: round half up, also for negatives (-6/4 = -1.5 -> -1, -7/4 -> -2)
    acc = np.array([6, 5, -6, -7, 2, -2, 1000, -1000]).reshape(-1, 1)  # [N, K=1]
    assert q.apply(acc).ravel().tolist() == [2, 1, -1, -2, 1, 0, 127, -128]
    # one (mult, shift) per output channel, negative multipliers included (a BatchNorm's sign)
    q = refmodel.Requant(mult=np.array([3, -3, 1]), shift=np.array([1, 1, 0]), lo=-128, hi=127)
    assert q.apply(np.array([[[1], [1], [200]], [[-1], [-1], [-5]]])).ravel().tolist() == [2, -1, 127, -1, 2, -5]
    assert refmodel.clamp_range(8, refmodel.Activation.RELU6) == (0, 96)
    assert refmodel.clamp_range(4, refmodel.Activation.RELU6) == (0, 6)
    assert refmodel.clamp_range(3, refmodel.Activation.RELU) == (0, 3)
    mult, shift = refmodel.choose_scale(np.array([1000, -1000, 3]), 127)
    assert 1 << 14 <= mult < 1 << 15 and abs(1000 * mult / 2**shift - 127) < 0.01


def test_refmodel_avgpool_rounds_half_up() -> None:
    from dnac.compiler.workload.builder import ModelBuilder

    b = ModelBuilder("p", (1, 2, 2), batch=1, w_bits=8, a_bits=8)
    b.pool("ap", "avgpool", 2)
    layer = b.build().layers[0]
    q = refmodel.Requant(1, 0, -128, 127)
    for vals, want in (([1, 1, 0, 0], 1), ([1, 0, 0, 0], 0), ([-1, -1, 0, 0], 0), ([-2, -1, 0, 0], -1)):
        x = np.array(vals, dtype=np.int64).reshape(1, 1, 2, 2)
        assert refmodel.pool_out(layer, x, q).item() == want, vals


def test_refmodel_deterministic() -> None:
    w = zoo.get("tiny_mbv2")
    a, b = refmodel.generate(w, 5), refmodel.generate(w, 5)
    assert np.array_equal(a.input, b.input) and a.quant == b.quant
    assert all(np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert refmodel.tensor_bits(w)["input"] == 8
    d = random_design(w, 0)
    assert d.chunks and all(c.unroll_of(Dim.K) >= 1 for c in d.chunks.values())


# ----------------------------------------------------------------------------- names into C++

_NAME = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() and s != "input")


@needs_csim
@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(_NAME, min_size=3, max_size=3, unique=True))
@example(names=["???/", "c0", "??=x\r"])  # trigraph continuation in a comment; an engine's own prefix
@example(names=["c0_wgt", "dnac_top", "a\u2028b */ \\"])  # generated identifiers; line separators, comment ends
def test_any_unicode_names_compile_and_csim(tmp_path_factory: pytest.TempPathFactory, names: list[str]) -> None:
    """Layer names of any Unicode reach the C++ only through the sanitizers: the project builds
    and C-simulates bit-exact whatever they are (trigraphs, comment terminators, names equal to
    identifiers the back-end generates)."""
    from dnac.compiler.workload.builder import ModelBuilder

    b = ModelBuilder("names", (4, 6, 6), batch=1, w_bits=8, a_bits=8)
    b.conv(names[0], 4, 3, padding=1, activation="relu")
    b.conv(names[1], 4, 3, padding=1, bias=True)
    b.add(names[2], [names[0], names[1]], activation="relu")
    root = tmp_path_factory.mktemp("names")
    write(random_design(b.build(), 0), "zc706", root, 0)
    run = _make(root / "hls", "csim")
    assert run.returncode == 0 and "PASS" in run.stdout, run.stdout + run.stderr
