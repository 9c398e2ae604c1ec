"""`dnac search` / `dnac train` end to end on the tiny preset, resume, and bad configurations."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dnac.compiler import cli as compiler_cli
from dnac.compiler.frontend import load_model
from dnac.compiler.ir import design_yaml
from dnac.compiler.ir.validate import check
from dnac.search.cli import search, train
from dnac.search.config import load_config, parse_config, with_overrides
from dnac.search.cosearch import CoSearch
from dnac.search.errors import ConfigError


@pytest.fixture
def dnac(capsys):
    """Run `dnac ARGS...` through the real entry point with the search commands registered."""
    added = []
    for cmd in (search, train):
        if cmd.name not in compiler_cli.cli.commands:
            compiler_cli.cli.add_command(cmd)
            added.append(cmd.name)

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            compiler_cli.main(list(args))
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err

    yield run
    for name in added:
        compiler_cli.cli.commands.pop(name)


def _strip(log: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in log]


def test_search_then_train(dnac, tmp_path: Path) -> None:
    out = tmp_path / "s"
    code, stdout, err = dnac("search", "tiny", "--out", str(out), "--no-progress")
    assert code == 0, err
    assert "network:" in stdout and "epoch 2/2" in err
    for name in ("model.yaml", "design.yaml", "report.json", "search_log.json", "checkpoint.pt", "search.svg"):
        assert (out / name).is_file()
    assert ET.parse(out / "search.svg").getroot().tag.endswith("svg")
    w = load_model(str(out / "model.yaml")).workload
    g = design_yaml.load(out / "design.yaml")
    check(g, "design.yaml")
    assert [layer.name for layer in g.workload().layers] == [layer.name for layer in w.layers]
    report = json.loads((out / "report.json").read_text())
    assert {"model", "target", "fps", "latency_ms", "resources", "search", "layers", "cosearch"} <= set(report)
    assert report["cosearch"]["method"] == "trips" and len(report["cosearch"]["network"]) == 3
    log = json.loads((out / "search_log.json").read_text())["epochs"]
    assert [e["epoch"] for e in log] == [0, 1]
    e = log[-1]
    assert len(e["alpha"]) == 3 and all(abs(sum(r) - 1) < 1e-4 for r in e["alpha"] + e["beta"])
    assert e["tau"] == pytest.approx(5.0 * 0.9) and e["hw_cost"]["cycles"] > 0
    assert {"train_loss", "arch_ce", "hw_loss", "seconds"} <= set(e)
    code, stdout, err = dnac("train", str(out / "model.yaml"), "--epochs", "1", "--limit-batches", "2", "--no-progress")
    assert code == 0, err
    assert "top-1" in stdout
    quant = json.loads((out / "model.quant.json").read_text())
    assert set(quant["layers"]) == {layer.name for layer in w.compute_layers}
    assert (out / "model.weights.pt").is_file()


def test_resume_ends_like_an_uninterrupted_run(dnac, tmp_path: Path) -> None:
    cfg = with_overrides(load_config("tiny"), epochs=3)
    full = CoSearch(cfg, tmp_path / "full", progress=False, printer=lambda s: None).run()
    assert CoSearch(cfg, tmp_path / "cut", progress=False, printer=lambda s: None).run(stop_after=1) is None
    code, _, err = dnac("search", "tiny", "--epochs", "3", "--out", str(tmp_path / "cut"), "--resume", "--no-progress")
    assert code == 0, err
    a = json.loads((tmp_path / "full" / "search_log.json").read_text())
    b = json.loads((tmp_path / "cut" / "search_log.json").read_text())
    assert _strip(a["epochs"]) == _strip(b["epochs"])
    for name in ("model.yaml", "design.yaml"):
        assert (tmp_path / "full" / name).read_bytes() == (tmp_path / "cut" / name).read_bytes()
    rb = json.loads((tmp_path / "cut" / "report.json").read_text())
    assert rb["fps"] == full.report["fps"] and rb["cosearch"]["network"] == full.report["cosearch"]["network"]
    # a checkpoint does not resume under another config, nor where there is none
    code, _, err = dnac("search", "tiny", "--epochs", "3", "--seed", "5", "--out", str(tmp_path / "cut"), "--resume")
    assert code == 2 and "seed" in err and err.count("\n") == 1
    code, _, err = dnac("search", "tiny", "--out", str(tmp_path / "none"), "--resume")
    assert code == 2 and "no checkpoint" in err
    # a checkpoint is data: one that would run code when unpickled is refused, and runs nothing
    import os

    import torch

    marker = tmp_path / "ran"
    ckpt = tmp_path / "cut" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    state["log"] = _Exploit(str(marker))
    torch.save(state, ckpt)
    code, _, err = dnac("search", "tiny", "--epochs", "3", "--out", str(tmp_path / "cut"), "--resume")
    assert code == 2 and "unreadable checkpoint" in err and err.count("\n") == 1 and not os.path.exists(marker)
    # damaged ones are one line too: truncated, a key missing, a tensor of the wrong shape
    good = state | {"log": []}
    for damaged, words in ((None, "unreadable checkpoint"), ({k: v for k, v in good.items() if k != "w_opt"},
                                                              "w_opt: damaged checkpoint: missing"),
                           (good | {"net": {k: v.reshape(-1)[:1] for k, v in good["net"].items()}}, "damaged checkpoint: ")):
        if damaged is None:
            torch.save(good, ckpt)
            ckpt.write_bytes(ckpt.read_bytes()[:1000])
        else:
            torch.save(damaged, ckpt)
        code, _, err = dnac("search", "tiny", "--epochs", "3", "--out", str(tmp_path / "cut"), "--resume")
        assert code == 2 and words in err and err.count("\n") == 1, err


class _Exploit:
    """Pickles as a call that would create a file (if a loader ran it)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


@pytest.mark.parametrize("doc,field,reason", [
    ({"search": {"epoch": 3}}, "search.epoch", "unknown field"),
    ({"search": {"method": "nas"}}, "search.method", "choose from: dna, trips, flops"),
    ({"search": {"sampling": "hard"}}, "search.sampling", "single_path, soft"),
    ({"search": {"tau_decay": 1.5}}, "search.tau_decay", "<= 1.0"),
    ({"hardware": {"lambda": float("nan")}}, "hardware.lambda", "must be a finite number"),
    ({"search": {"tau0": float("inf")}}, "search.tau0", "must be a finite number"),
    ({"hardware": {"target": "zc702"}}, "hardware.target", "unknown target"),
    ({"hardware": {"target": "asic", "objective": "fps"}}, "hardware.objective", "not an objective for asic"),
    ({"space": {"bits": [8, 8]}}, "space.bits", "repeat"),
    ({"space": {"bits": "8"}}, "space.bits", "list of integers"),
    ({"space": {"candidates": ["k3_e1", "k9"]}}, "space.candidates[1]", "unknown operator"),
    ({"space": {"candidates": ["skip"]}}, "space.stages[1].candidates", "no candidate exists"),
    ({"space": {"depths": [1, 1]}}, "space.depths", "one entry per stage"),
    ({"data": {"batch_size": 0}}, "data.batch_size", "zero or negative"),
    ({"search": {"epochs": 10**8}}, "search.epochs", "must be in [1, 100000]"),  # sizes are bounded
    ({"hardware": {"samples": 10**8}}, "hardware.samples", "must be in [1, 10000]"),
    ({"space": {"widths": [10**6] * 7}}, "space.widths[0]", "65536"),
    ({"hardware": {"final_das": {"steps": 10**9}}}, "hardware.final_das.steps", "must be in [1, 10000]"),
    ({"seed": -1}, "seed", "must be in [0, 4294967295]"),
])
def test_bad_configs(doc: dict, field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(doc, "bad.yaml")
    assert exc.value.file == "bad.yaml" and exc.value.field == field and reason in exc.value.reason


def test_bad_config_files_exit_2(dnac, tmp_path: Path) -> None:
    code, _, err = dnac("search", "no-such-preset")
    assert code == 2 and "not a file and not a preset" in err and "fashion-mnist" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: {epochs: [}\n")
    code, _, err = dnac("search", str(bad))
    assert code == 2 and err.startswith(f"dnac: error: {bad}: line 1") and err.count("\n") == 1
    bad.write_text("search: {top_k: 0}\n")
    code, _, err = dnac("search", str(bad), "--out", str(tmp_path / "o"))
    assert code == 2 and "search.top_k" in err
    code, _, err = dnac("search", "tiny", "--dataset", "cifar10", "--out", str(tmp_path / "o"))
    assert code == 2 and "cifar10" in err and "--data-dir" in err
    code, _, err = dnac("search", "tiny", "--target", "zc707", "--out", str(tmp_path / "o"))
    assert code == 2 and "unknown target 'zc707'" in err


def test_presets_are_the_papers_settings() -> None:
    trips, dna = load_config("cifar10"), load_config("cifar10-dna")
    assert trips.space.strides == dna.space.strides == (1, 1, 2, 2, 1, 2, 1) and sum(trips.space.depths) == 22
    assert (trips.search.tau0, trips.search.tau_decay, trips.search.epochs) == (5.0, 0.975, 90)
    assert (dna.search.tau0, dna.search.tau_decay, dna.search.epochs, dna.hardware.samples) == (3.0, 0.92, 50, 10)
    assert trips.space.bits == (4, 6, 8, 12, 16) and trips.search.top_k == 2
    for c in (trips, dna):
        assert (c.search.weight_lr, c.search.momentum, c.search.arch_lr, c.data.batch_size) == (0.025, 0.9, 3e-4, 64)
    assert load_config("fashion-mnist").data.dataset == "fashion-mnist"
    # another kind of target takes that kind's objective: EDP on the ASIC, latency on the FPGA
    asic = with_overrides(load_config("tiny"), target="asic")
    assert asic.hardware.objective == "edp"
    assert with_overrides(asic, target="zc706").hardware.objective == "latency"
    with pytest.raises(ConfigError, match="not an objective for zc706"):
        with_overrides(load_config("tiny"), objective="edp")


def test_search_out_is_guarded_like_build(dnac, tmp_path: Path) -> None:
    """A user's folder is not written into without --force; a failing search leaves no folder;
    dnac's own folder (marker) is reused."""
    user = tmp_path / "mine"
    user.mkdir()
    (user / "report.json").write_text("my notes")
    code, _, err = dnac("search", "tiny", "--epochs", "1", "--out", str(user), "--no-progress")
    assert code == 2 and "not written by dnac; pass --force" in err and err.count("\n") == 1
    assert sorted(p.name for p in user.iterdir()) == ["report.json"] and (user / "report.json").read_text() == "my notes"
    fresh = tmp_path / "new" / "out"
    code, _, err = dnac("search", "tiny", "--dataset", "mnist", "--data-dir", str(tmp_path / "nowhere"),
                        "--epochs", "1", "--out", str(fresh), "--no-progress")
    assert code == 2 and not fresh.exists(), err
    code, _, err = dnac("search", "tiny", "--epochs", "1", "--out", str(fresh), "--no-progress")
    assert code == 0 and (fresh / ".dnac").is_file() and (fresh / "model.yaml").is_file(), err
    code, _, err = dnac("search", "tiny", "--epochs", "1", "--out", str(fresh), "--no-progress")
    assert code == 0, err  # its own folder
    code, _, err = dnac("search", "tiny", "--epochs", "1", "--out", str(user), "--no-progress", "--force")
    assert code == 0 and (user / "model.yaml").is_file(), err


def test_training_inputs_are_checked_before_any_work(dnac, tmp_path: Path) -> None:
    """A batch larger than the data, or a 1-bit layer, is one line and exit 2 (it used to
    "train" on no batch at all, or on NaN scales), and nothing is written."""
    cfg = tmp_path / "big_batch.yaml"
    cfg.write_text("name: big\ndata: {dataset: synthetic, batch_size: 1000}\nspace: {bits: [4, 8]}\n"
                   "hardware: {target: zc706, objective: latency}\n")
    code, out, err = dnac("search", str(cfg), "--out", str(tmp_path / "s"), "--no-progress")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"{cfg}: data.batch_size: 1000 is more than the 256 images of each half" in err
    assert not (tmp_path / "s").exists()

    model = tmp_path / "m.yaml"
    model.write_text("name: m\ninput_shape: [3, 16, 16]\nlayers:\n"
                     "  - {name: c, op: conv, out_channels: 8, kernel: 3, w_bits: 1}\n"
                     "  - {name: f, op: flatten}\n  - {name: fc, op: linear, out_features: 10}\n")
    code, out, err = dnac("train", str(model), "--dataset", "synthetic", "--epochs", "1", "--no-progress")
    assert code == 2 and err.count("\n") == 1 and f"{model}: layers[0]: a 1-bit layer cannot be trained" in err, err
    tcfg = tmp_path / "train.yaml"
    tcfg.write_text("data: {dataset: synthetic}\ntrain: {batch_size: 4096}\n")
    code, out, err = dnac("train", str(model), "--config", str(tcfg), "--epochs", "1")
    assert code == 2 and f"{tcfg}: train.batch_size: 4096 is more than the 512 training images" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big_batch.yaml", "m.yaml", "train.yaml"]
