"""Helpers shared by the back-end tests: fixed designs, golden trees, the odd hostile network."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from conftest import random_design

from dnac.compiler.backends import BACKENDS
from dnac.compiler.backends.hls_check import check_project
from dnac.compiler.cost.model import cost_design
from dnac.compiler.ir.design import DesignGraph
from dnac.compiler.targets import FpgaTarget, load_target
from dnac.compiler.workload import zoo
from dnac.compiler.workload.builder import ModelBuilder
from dnac.compiler.workload.layer import Workload

GOLDEN = Path(__file__).parent / "golden"
#: Set to 1 to rewrite tests/golden/ from the current back-ends (then review the diff).
UPDATE_ENV = "DNAC_UPDATE_GOLDEN"

HOSTILE = ("../../x", 'a"; system("x"); //', "dw é ü 層", "n" * 300)


def odd_workload(batch: int = 2) -> Workload:
    """Everything the tiny zoo nets lack: hostile layer names, batch 2, mixed precision, a grouped
    conv, asymmetric kernel/stride/padding, biases, ReLU6, pools with padding, an add with ReLU."""
    b = ModelBuilder("odd net/..", (6, 11, 9), batch=batch, w_bits=6, a_bits=7)
    b.conv(HOSTILE[0], 8, (3, 1), stride=(2, 1), padding=(1, 0), activation="relu", bias=True)
    b.conv(HOSTILE[1], 8, 3, padding=1, groups=2, activation="relu6", w_bits=4, a_bits=5)
    b.conv(HOSTILE[2], 8, 3, stride=2, padding=1, groups=8, activation="relu")
    x = b.last
    b.conv(HOSTILE[3], 8, 1, bias=True)
    b.add("add", [b.last, x], activation="relu")
    b.pool("mp", "maxpool", 3, stride=2, padding=1)
    b.pool("ap", "avgpool", (2, 1), stride=1, padding=(1, 0))
    b.flatten("fl")
    b.linear("fc", 5, bias=True)
    return b.build()


def wide_workload() -> Workload:
    """The widest layers the engines take: 24- and 32-bit operands, biases beyond 32 bits,
    accumulators near `hls.MAX_ACC_BITS` (the requant multiplier narrows to fit)."""
    b = ModelBuilder("wide", (4, 8, 8), w_bits=24, a_bits=24)
    b.conv("c24", 8, 3, bias=True, activation="relu")
    b.conv("c8x32", 8, 3, padding=1, w_bits=8, a_bits=32, bias=True)
    b.add("sum", [b.last, b.last], a_bits=32)
    b.pool("gap", "avgpool", None)
    b.flatten("fl")
    b.linear("fc", 3, w_bits=16, a_bits=16)
    return b.build()


def design(model: str, seed: int, target: str) -> DesignGraph:
    w = {"odd": odd_workload, "wide": wide_workload}.get(model, lambda: zoo.get(model))()
    return random_design(w, seed, target)


def write(g: DesignGraph, target: str, out: Path, seed: int) -> list[Path]:
    """Emit `g`'s tree; an HLS project must pass the static synthesizability check and declare
    exactly the DSPs and BRAM18K that the cost model counts for the design."""
    t = load_target(target)
    out.mkdir(parents=True, exist_ok=True)
    backend = BACKENDS[t.KIND]()
    files = backend.write(g, t, out, seed=seed)
    if isinstance(t, FpgaTarget):
        assert check_project(out / "hls", g) == []
        declared, modelled = backend.report["hls_resources"], cost_design(g, t).resources
        assert (declared["dsp"], declared["bram18k"]) == (modelled["dsp"], modelled["bram18k"])
    return files


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def check_golden(got_root: Path, name: str) -> None:
    """Compare a written tree with tests/golden/<name>/ byte for byte (or rewrite it)."""
    golden = GOLDEN / name
    got = tree(got_root)
    if os.environ.get(UPDATE_ENV) == "1":
        shutil.rmtree(golden, ignore_errors=True)
        for rel, data in got.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_bytes(data)
    want = tree(golden)
    assert sorted(got) == sorted(want), f"file sets differ; rerun with {UPDATE_ENV}=1 if intended"
    for rel in want:
        assert got[rel] == want[rel], f"{name}/{rel} differs from the golden file; rerun with {UPDATE_ENV}=1 if intended"
