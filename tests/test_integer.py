"""A trained network as integers: the QAT forward and the integer reference model agree, the HLS
project runs the trained network bit-exactly on real images, and bad weights are one line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_design
from test_backend_hls import _make, needs_csim
from test_cli import run

from dnac.compiler.backends.hls import HlsBackend
from dnac.compiler.targets import load_target
from dnac.compiler.workload.builder import ModelBuilder
from dnac.compiler.workload.layer import Workload
from dnac.search import data as datasets
from dnac.search.config import TrainConfig
from dnac.search.integer import requant_pair, scale_groups, to_integer
from dnac.search.train import QuantNet, train

ROOT = Path(__file__).resolve().parents[1]


def every_kind() -> Workload:
    """Every layer kind the trainer supports, at mixed precision: conv, residual add with ReLU,
    depthwise with ReLU6, max pooling, grouped conv, global average pooling, linear with bias."""
    b = ModelBuilder("every_kind", (1, 8, 8), w_bits=8, a_bits=8)
    b.conv("c1", 8, 3, padding=1, activation="relu")
    b.conv("c2", 8, 3, padding=1, w_bits=4, a_bits=6)
    b.add("r", ["c1", "c2"], activation="relu")
    b.conv("dw", 8, 3, padding=1, groups=8, activation="relu6")
    b.pool("mp", "maxpool", 2)
    b.conv("c3", 16, 3, padding=1, groups=2, activation="relu", w_bits=6, a_bits=6)
    b.pool("ap", "avgpool", None)
    b.flatten("f")
    b.linear("fc", 4, bias=True, w_bits=12, a_bits=12)
    return b.build()


@pytest.fixture(scope="module")
def trained() -> tuple[QuantNet, datasets.Splits]:
    torch.manual_seed(0)
    s = datasets.synthetic()
    res = train(every_kind(), TrainConfig(epochs=3, lr=0.05, batch_size=32), s, seed=0, progress=False,
                printer=lambda m: None)
    assert res.net is not None and res.top1 > 0.8
    return res.net, s


def test_scale_groups_tie_what_integer_adds_and_pools_need() -> None:
    g = scale_groups(every_kind())
    assert g["c1"] == g["c2"] != g["r"]  # an add sums raw integers: one grid for its inputs
    assert g["dw"] == g["mp"] and g["c3"] == g["ap"]  # pools keep their input's grid
    assert len({g["input"], g["r"], g["dw"], g["c3"], g["fc"]}) == 5


def test_requant_pair() -> None:
    for m in (0.7310585, -0.0123, 3.5, 1e-9):
        mult, shift = requant_pair(m, 1 << 20)
        assert abs(mult) < 1 << 15 and abs(mult / 2**shift - m) <= abs(m) * 2**-13 + 2**-62
    mult, shift = requant_pair(0.5, (1 << 61))  # a wide accumulator narrows the multiplier
    assert abs(mult) * (1 << 61) < 1 << 62 and mult / 2**shift == 0.5


def test_integer_network_equals_the_qat_forward(trained) -> None:
    """Layer by layer, the integer reference model computes the QAT network's values on its
    grids: exactly for most elements, within a few units in the last place for the rest (the
    15-bit multipliers and rounded biases), and the same class for every test image."""
    net, s = trained
    iq = to_integer(net)
    x = s.test.images
    with torch.no_grad():
        qat = net.tensors(x)
    xi = iq.quantize_input(x.numpy())
    assert np.array_equal(np.round(qat["input"].numpy() / float(net.step("input"))).astype(np.int64), xi)
    g = iq.golden(xi)
    for layer in iq.workload.layers:
        got = g.tensors[layer.name]
        want = np.round(qat[layer.name].numpy() / float(net.step(layer.name))).astype(np.int64).reshape(got.shape)
        diff = np.abs(got - want)
        qmax = (1 << (net.bits[layer.name] - 1)) - 1
        assert diff.max() <= 0.05 * qmax, (layer.name, diff.max(), qmax)  # within 5% of the range
        if net.bits[layer.name] <= 8:  # at the grids of the hardware's narrow tensors: mostly exact
            assert (diff <= 1).mean() >= 0.95 and (diff == 0).mean() >= 0.85, (layer.name, (diff == 0).mean())
    first = iq.workload.layers[0].name
    assert (np.abs(g.tensors[first] - np.round(qat[first].numpy() / float(net.step(first))).reshape(
        g.tensors[first].shape)) == 0).mean() > 0.999  # one layer deep: only rounding ties differ
    logits_q = qat["fc"].numpy().reshape(len(x), -1)
    agree = (logits_q.argmax(1) == g.tensors["fc"].reshape(len(x), -1).argmax(1)).mean()
    assert agree >= 0.97, agree
    # BatchNorm folded into biases in accumulator units; the accumulators widen for them
    assert all(iq.workload.layer(n).bias and iq.workload.layer(n).bias_bound >= int(np.abs(b).max())
               for n, b in iq.biases.items())


@needs_csim
@pytest.mark.parametrize("seed", [0, 3])
def test_the_hls_project_classifies_real_images_bit_exactly(trained, tmp_path: Path, seed: int) -> None:
    net, s = trained
    iq = to_integer(net)
    n = 12
    xi = iq.quantize_input(s.test.images[:n].numpy())
    labels = s.test.labels.numpy()[:n]
    d = random_design(iq.workload, seed)
    HlsBackend().write(d, load_target("zc706"), tmp_path, seed=0, golden=iq.golden(xi), labels=labels)
    r = _make(tmp_path / "hls")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "warning" not in r.stderr, r.stderr[-3000:]
    want = int((iq.logits(xi).argmax(1) == labels).sum())
    assert re.search(rf"^PASS: {n}/{n} images bit-exact, top-1 {want}/{n} \(\d+\.\d%\)$", r.stdout, re.MULTILINE), r.stdout


def _trained_files(tmp_path: Path) -> Path:
    """A model.yaml trained by `dnac train` on the synthetic data: its folder."""
    (tmp_path / "m.yaml").write_text(
        "name: m\ninput_shape: [1, 8, 8]\nprecision: {w_bits: 8, a_bits: 8}\nlayers:\n"
        "  - {name: c1, op: conv, out_channels: 8, kernel: 3, padding: 1, activation: relu}\n"
        "  - {name: p, op: avgpool, kernel: global}\n  - {name: f, op: flatten}\n"
        "  - {name: fc, op: linear, out_features: 4, bias: true}\n")
    return tmp_path


def test_build_with_weights_end_to_end_and_bad_weights(capsys, tmp_path: Path) -> None:
    root = _trained_files(tmp_path)
    model = str(root / "m.yaml")
    code, out, err = run(capsys, "train", model, "--dataset", "synthetic", "--epochs", "2", "--no-progress")
    assert code == 0, err
    info = json.loads((root / "m.train.json").read_text())
    assert info["dataset"] == "synthetic" and 0 <= info["integer_top1"] <= 1 and "as integers" in out
    weights = root / "m.weights.pt"
    code, out, err = run(capsys, "build", model, "--target", "zc706", "--weights", str(weights), "--images", "5",
                         "--out", str(root / "b"), "--steps", "2")
    assert code == 0, err
    dep = json.loads((root / "b" / "report.json").read_text())["deploy"]
    assert dep["dataset"] == "synthetic" and dep["images"] == 5 and dep["test_images"] == 128
    assert {"qat_top1", "integer_top1", "agreement", "qat_top1_images", "integer_top1_images",
            "agreement_images"} <= set(dep)
    assert (root / "b" / "hls" / "data" / "labels.bin").stat().st_size == 5 * 4
    # its design.yaml keeps the trained biases' bound, so re-costing it gives the same hardware
    assert "bias_bound: " in (root / "b" / "design.yaml").read_text()
    code, _, err = run(capsys, "build", str(root / "b" / "design.yaml"), "--target", "zc706", "--out", str(root / "b3"))
    assert code == 0, err
    a, b = (json.loads((root / d / "report.json").read_text()) for d in ("b", "b3"))
    assert a["resources"] == b["resources"] and a["hls_resources"] == b["hls_resources"]
    shutil.rmtree(root / "b3")
    # bad weights: one line, exit 2, nothing written
    before = sorted(p.name for p in root.iterdir())
    bad = root / "bad.weights.pt"
    for name in ("bad.quant.json", "bad.train.json"):
        shutil.copy(root / name.replace("bad", "m"), root / name)
    cases = [
        (lambda: bad.write_bytes(weights.read_bytes()[:300]), "unreadable weights file"),  # truncated
        (lambda: torch.save({"model": "m", "state_dict": {}}, bad), "does not fit the model: missing tensor 'trackers.g0.scale'"),
        (lambda: torch.save({"model": "other", "state_dict": {}}, bad), "belong to model 'other', not 'm'"),
    ]
    state = torch.load(weights, weights_only=True)
    wrong = dict(state, state_dict=dict(state["state_dict"], **{"mods.l0.weight": torch.zeros(8, 1, 5, 5)}))
    shape_error = "tensor 'mods.l0.weight' (layer 'c1') is [8, 1, 5, 5], the model needs [8, 1, 3, 3]"
    cases.append((lambda: torch.save(wrong, bad), shape_error))
    for make, words in cases:
        make()
        code, out, err = run(capsys, "build", model, "--target", "zc706", "--weights", str(bad),
                             "--out", str(root / "b2"))
        assert code == 2 and out == "" and err.count("\n") == 1 and words in err, err
        assert err.startswith(f"dnac: error: {bad}: --weights: "), err
    torch.save(state, bad)  # good weights, damaged companions: valid JSON of the wrong kind
    (root / "bad.quant.json").write_text("[1, 2]")
    code, _, err = run(capsys, "build", model, "--target", "zc706", "--weights", str(bad), "--out", str(root / "b2"))
    assert code == 2 and err.count("\n") == 1 and "bad.quant.json: --weights: not a dnac train file" in err, err
    (root / "bad.quant.json").write_text('{"model": "m", "layers": 5}')
    code, _, err = run(capsys, "build", model, "--target", "zc706", "--weights", str(bad), "--out", str(root / "b2"))
    assert code == 2 and "bad.quant.json: layers: missing, or not a mapping" in err, err
    (root / "bad.quant.json").unlink()
    code, _, err = run(capsys, "build", model, "--target", "zc706", "--weights", str(bad), "--out", str(root / "b2"))
    assert code == 2 and "bad.quant.json: --weights: not found" in err
    code, _, err = run(capsys, "build", model, "--target", "asic", "--weights", str(weights), "--out", str(root / "b2"))
    assert code == 2 and "needs an FPGA target" in err
    code, _, err = run(capsys, "build", model, "--target", "zc706", "--images", "3", "--out", str(root / "b2"))
    assert code == 2 and "--images: needs --weights" in err
    assert sorted(p.name for p in root.iterdir()) == sorted(before + ["bad.train.json", "bad.weights.pt"])


@needs_csim
def test_readme_end_to_end_example(tmp_path: Path) -> None:
    """The README's search -> train -> build --weights -> csim example, on the `tiny` preset."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    example = next(b for b in blocks if "--weights" in b)
    env = dict(os.environ, PRESET="tiny", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               MAKEFLAGS=f"PYTHON={sys.executable}")
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", example], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert re.search(r"^PASS: 100/100 images bit-exact, top-1 \d+/100", r.stdout, re.MULTILINE), r.stdout[-2000:]
