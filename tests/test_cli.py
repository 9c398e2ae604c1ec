"""The command line: `dnac inspect`, `--version`, and the one-line error contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DATA

from dnac.compiler.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_version(capsys) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("dnac, version ")


def test_inspect_vgg16_shows_total(capsys) -> None:
    code, out, err = run(capsys, "inspect", "vgg16")
    assert code == 0 and err == ""
    assert "15.47 GMACs" in out
    assert "15,470,264,320 MACs" in out
    header = out.splitlines()[0].split()
    assert header == ["name", "op", "N", "K", "C", "R", "S", "P", "Q", "stride", "groups", "bits", "MACs", "params"]


def test_inspect_json(capsys) -> None:
    code, out, _ = run(capsys, "inspect", "resnet18", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"layers", "total_macs", "total_params"}
    assert data["total_macs"] == sum(layer["macs"] for layer in data["layers"])
    assert data["layers"][0]["name"] == "conv1" and data["layers"][0]["stride"] == [2, 2]


def test_inspect_model_yaml_and_torch(capsys) -> None:
    code, out, _ = run(capsys, "inspect", str(DATA / "models" / "small_resnet.yaml"), "--json")
    assert code == 0
    data = json.loads(out)
    ops = [layer["op"] for layer in data["layers"]]
    assert ops == ["conv", "conv", "conv", "add", "conv", "dwconv", "conv", "maxpool", "avgpool", "linear"]
    code, out, _ = run(capsys, "--trust-code", "inspect", str(DATA / "models" / "torch_block.yaml"), "--json")
    assert code == 0
    assert [layer["op"] for layer in json.loads(out)["layers"]] == ["conv", "conv", "add", "avgpool", "linear"]


def test_inspect_design_yaml(capsys, tmp_path: Path) -> None:
    from conftest import random_design

    from dnac.compiler.ir import design_yaml
    from dnac.compiler.workload import zoo

    path = tmp_path / "design.yaml"
    path.write_text(design_yaml.dump(random_design(zoo.get("tiny_mbv2"), 4)))
    code, out, _ = run(capsys, "inspect", str(path))
    assert code == 0 and "tiny_mbv2" in out


def test_usage_error_is_one_line(capsys) -> None:
    code, out, err = run(capsys, "inspect")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("dnac: error:")


def test_debug_shows_traceback() -> None:
    from dnac.compiler.errors import ModelError

    with pytest.raises(ModelError):
        main(["--debug", "inspect", "no_such_model"])


def test_inspect_space(capsys) -> None:
    code, out, _ = run(capsys, "inspect", "fbnet", "--space", "--json")
    assert code == 0
    space = json.loads(out)["space"]
    assert space["paper_log10_size"] == 27.35 and space["log10_size"] > space["paper_log10_size"]
    code, out, _ = run(capsys, "inspect", "tiny", "--space")
    assert "design space on zc706" in out and "2.24E+27" in out


def test_build_help_states_the_real_step_default(capsys) -> None:
    """`--steps` is looked up lazily (no torch import for --help), so its help text holds the
    default as a literal: it must be the search's."""
    from dnac.compiler.das.search import DasConfig

    code, out, _ = run(capsys, "build", "--help")
    assert code == 0 and f"[default: {DasConfig.steps}]" in " ".join(out.split()) and "DAS gradient steps" in out


def test_threads_default_option_and_environment(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """One thread unless `--threads` or DNAC_THREADS asks for more; bad values are one line."""
    import torch

    from dnac.compiler import threads

    monkeypatch.delenv(threads.ENV, raising=False)
    try:
        assert run(capsys, "inspect", "tiny")[0] == 0 and torch.get_num_threads() == threads.DEFAULT == 1
        assert run(capsys, "--threads", "2", "inspect", "tiny")[0] == 0 and torch.get_num_threads() == 2
        monkeypatch.setenv(threads.ENV, "3")
        assert run(capsys, "inspect", "tiny")[0] == 0 and torch.get_num_threads() == 3
        for args, env in ((["--threads", "0"], "1"), ([], "many")):
            monkeypatch.setenv(threads.ENV, env)
            code, out, err = run(capsys, *args, "inspect", "tiny")
            assert code == 2 and out == "" and err.count("\n") == 1 and "threads" in err.lower(), err
    finally:
        threads.apply(threads.DEFAULT)
