"""`dnac build`: the documented output folder and report.json keys, re-emitting a design.yaml,
and budgets that cannot be met."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_cli import run

REPORT_KEYS = {"model", "target", "fps", "latency_ms", "cycles_per_frame", "throughput_gops", "resources",
               "energy_pj", "edp", "search", "layers"}
STEPS = ["--steps", "6"]


@pytest.mark.parametrize("target, folder, resources", [
    ("zc706", "hls", {"dsp", "bram18k"}),
    ("asic", "timeloop", {"area_mm2"}),
])
def test_build_tiny_writes_the_documented_files(capsys, tmp_path: Path, target: str, folder: str,
                                                resources: set[str]) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "build", "tiny", "--target", target, "--out", str(out), *STEPS)
    assert code == 0, err
    assert "tiny on" in stdout and str(out) in stdout
    assert (out / "design.yaml").is_file() and (out / folder).is_dir()
    report = json.loads((out / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert resources <= set(report["resources"])
    assert {"method", "evaluations", "seconds"} <= set(report["search"]) and report["search"]["method"] == "das"
    assert report["feasible"] is True
    macs = [layer for layer in report["layers"] if layer["macs"] > 0]
    assert macs and all({"name", "chunk", "macs", "cycles", "energy_pj"} <= set(layer) for layer in report["layers"])
    assert all(layer["cycles"] > 0 for layer in macs)
    if target == "asic":
        assert report["energy_pj"] > 0 and report["edp"] > 0
    else:  # what the HLS project declares is what the model counted, and it fits the board
        declared = report["hls_resources"]
        assert (declared["dsp"], declared["bram18k"]) == (report["resources"]["dsp"], report["resources"]["bram18k"])
        assert declared["dsp"] <= report["budget"]["dsp"] and declared["bram18k"] <= report["budget"]["bram18k"]
        assert sum(a["bram18k"] for a in declared["arrays"]) == declared["bram18k"]
    # the same inputs and seed give the same bytes
    again = tmp_path / "again"
    run(capsys, "build", "tiny", "--target", target, "--out", str(again), *STEPS)
    assert (out / "design.yaml").read_bytes() == (again / "design.yaml").read_bytes()
    # the search's convergence figure, also byte-stable
    assert ET.parse(out / "search.svg").getroot().tag.endswith("svg")
    assert (out / "search.svg").read_bytes() == (again / "search.svg").read_bytes()


def test_build_design_yaml_recosts_without_search(capsys, tmp_path: Path) -> None:
    first = tmp_path / "first"
    assert run(capsys, "build", "tiny", "--target", "zc706", "--out", str(first), *STEPS)[0] == 0
    second = tmp_path / "second"
    code, _, err = run(capsys, "build", str(first / "design.yaml"), "--target", "zc706", "--out", str(second))
    assert code == 0, err
    a = json.loads((first / "report.json").read_text())
    b = json.loads((second / "report.json").read_text())
    assert b["search"]["evaluations"] == 1 and b["search"]["method"].startswith("none")
    assert a["cycles_per_frame"] == b["cycles_per_frame"] and a["layers"] == b["layers"]
    assert (first / "design.yaml").read_text() == (second / "design.yaml").read_text()
    assert not (second / "search.svg").exists()  # nothing was searched
    # over a (lower) budget it is an error, not a report with feasible: false; nothing is written
    third = tmp_path / "third"
    code, out, err = run(capsys, "build", str(first / "design.yaml"), "--target", "zc706", "--out", str(third),
                         "--budget", "10")
    assert code == 2 and out == "" and "exceeds zc706's budget: dsp" in err and err.count("\n") == 1, err
    assert not third.exists()


def test_build_refine_climbs_after_das(capsys, tmp_path: Path) -> None:
    plain, refined = tmp_path / "plain", tmp_path / "refined"
    assert run(capsys, "build", "tiny", "--target", "zc706", "--out", str(plain), *STEPS)[0] == 0
    code, _, err = run(capsys, "build", "tiny", "--target", "zc706", "--out", str(refined), *STEPS, "--refine", "2")
    assert code == 0, err
    a = json.loads((plain / "report.json").read_text())
    b = json.loads((refined / "report.json").read_text())
    assert a["search"]["refine"] == 0 and b["search"]["refine"] == 2
    assert b["search"]["evaluations"] == a["search"]["evaluations"] + 2 * 64
    assert b["cycles_per_frame"] <= a["cycles_per_frame"]


@pytest.mark.parametrize("args, message", [
    (["--target", "zc706", "--refine", "-1"], "Invalid value for '--refine'"),
    (["--target", "zc706", "--budget", "0"], "--budget: must be a finite positive number"),
    (["--target", "zc706", "--budget", "2.5"], "a DSP budget is a whole number"),
    (["--target", "zc706", "--budget", "5000"], "exceed the 900"),
    (["--target", "asic", "--budget", "0.00001"], "too small for one PE"),
    (["--target", "zc706", "--objective", "edp"], "'edp' is not an objective for zc706"),
    (["--target", "tpu"], "unknown target 'tpu'"),
])
def test_bad_build_requests_are_one_line_errors(capsys, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "build", "tiny", "--out", str(out), *args)
    assert code == 2 and stdout == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_existing_folder_needs_force(capsys, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _, err = run(capsys, "build", "tiny", "--target", "zc706", "--out", str(out), *STEPS)
    assert code == 2 and "was not written by dnac" in err
    assert (out / "notes.txt").read_text() == "keep me"
