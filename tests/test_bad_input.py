"""Malformed inputs: each exits with status 2 and one line naming file, field and reason,
and writes nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import DATA
from test_cli import run

GOOD = """\
name: net
input_shape: [3, 16, 16]
layers:
  - {name: c1, op: conv, out_channels: 8, kernel: 3, padding: 1, activation: relu}
  - {name: c2, op: conv, out_channels: 8, kernel: 3, padding: 1}
  - {name: r, op: add, inputs: [c1, c2]}
  - {name: f, op: flatten}
  - {name: fc, op: linear, out_features: 10}
"""


def check_rejected(capsys, monkeypatch, tmp_path: Path, text: str | None, *patterns: str, arg: str | None = None,
                   options: tuple[str, ...] = ()) -> str:
    """Write `text` as model.yaml (unless None), run `dnac [options] inspect`, check the contract."""
    monkeypatch.chdir(tmp_path)
    if text is not None:
        (tmp_path / "model.yaml").write_text(text)
    before = sorted(os.listdir(tmp_path))
    code, out, err = run(capsys, *options, "inspect", arg or "model.yaml")
    assert code == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dnac: error: ")
    for pat in patterns:
        assert pat in lines[0], lines[0]
    assert sorted(os.listdir(tmp_path)) == before  # nothing written
    return lines[0]


def test_good_model_passes(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.yaml").write_text(GOOD)
    code, out, _ = run(capsys, "inspect", "model.yaml")
    assert code == 0 and "net: 5 layers" not in out and "net: 4 layers" in out


def test_yaml_syntax_error_gives_line_and_column(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("kernel: 3, padding: 1}", "kernel: 3, padding: 1", 1)
    check_rejected(capsys, monkeypatch, tmp_path, text, "model.yaml: line ", "column", "YAML syntax error")


def test_unknown_op(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("op: add", "op: concat")
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[2].op", "unknown op 'concat'", "known: conv")


def test_missing_field(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("out_channels: 8, kernel: 3, padding: 1, activation", "kernel: 3, padding: 1, activation")
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[0].out_channels", "missing required field")


def test_missing_top_level_field(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("input_shape: [3, 16, 16]\n", "")
    check_rejected(capsys, monkeypatch, tmp_path, text, "model.yaml: input_shape: missing required field")


def test_zero_dimension(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("[3, 16, 16]", "[3, 0, 16]")
    check_rejected(capsys, monkeypatch, tmp_path, text, "input_shape[1]", "zero or negative: 0")


def test_negative_kernel(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("kernel: 3, padding: 1, activation", "kernel: -3, padding: 1, activation")
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[0].kernel", "zero or negative: -3")


def test_non_integer_value(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("out_channels: 8, kernel: 3, padding: 1, activation", "out_channels: 8.5, kernel: 3, padding: 1, activation")
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[0].out_channels", "must be an integer, got 8.5")


def test_shape_mismatch_at_residual_add(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("{name: c2, op: conv, out_channels: 8", "{name: c2, op: conv, out_channels: 16")
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[2].inputs", "shape mismatch at residual add",
                   "c1 [8, 16, 16], c2 [16, 16, 16]")


def test_duplicate_layer_name(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("{name: c2,", "{name: c1,").replace("inputs: [c1, c2]", "inputs: [c1, c1]")
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[1].name", "duplicate layer name 'c1'")


def test_kernel_larger_than_padded_input(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("kernel: 3, padding: 1, activation", "kernel: 19, padding: 1, activation")
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[0].kernel", "kernel 19 is larger than its padded input 18")


def test_unknown_zoo_name(capsys, monkeypatch, tmp_path) -> None:
    check_rejected(capsys, monkeypatch, tmp_path, None, "vgg17", "not a file and not a zoo model", "vgg16", arg="vgg17")


def test_unknown_target(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("layers:\n", "target: {zc702: {dsp: 220}}\nlayers:\n")
    check_rejected(capsys, monkeypatch, tmp_path, text, "target.zc702", "unknown target 'zc702'", "zc706")


def test_unknown_target_override_key(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("layers:\n", "target: {zc706: {dsps: 220}}\nlayers:\n")
    check_rejected(capsys, monkeypatch, tmp_path, text, "target.zc706.dsps", "unknown key")


def test_bits_out_of_range(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("out_features: 10}", "out_features: 10, w_bits: 40}")
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[4].w_bits", "out of range: 40 (must be in [1, 32])")


def test_empty_layer_list(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.split("layers:")[0] + "layers: []\n"
    check_rejected(capsys, monkeypatch, tmp_path, text, "model.yaml: layers: the layer list is empty")


def test_file_not_found(capsys, monkeypatch, tmp_path) -> None:
    check_rejected(capsys, monkeypatch, tmp_path, None, "missing.yaml: file not found", arg="missing.yaml")


def test_directory_as_model(capsys, monkeypatch, tmp_path) -> None:
    (tmp_path / "models").mkdir()
    check_rejected(capsys, monkeypatch, tmp_path, None, "models: is a directory", arg="models/")


def test_unsupported_torch_op(capsys, monkeypatch, tmp_path) -> None:
    for name in ("torch_unsupported.yaml", "torch_factory.py"):
        shutil.copy(DATA / "models" / name, tmp_path / name)
    check_rejected(capsys, monkeypatch, tmp_path, None, "node 'sigmoid'", "unsupported op torch.sigmoid",
                   "torch_factory.py:", arg="torch_unsupported.yaml", options=("--trust-code",))


def test_model_yaml_is_data_not_code(capsys, monkeypatch, tmp_path) -> None:
    """A `torch:` factory is not imported, let alone called, without `--trust-code`."""
    (tmp_path / "evil.py").write_text("open('ran', 'w').close()\ndef net():\n    open('called', 'w').close()\n")
    text = "name: x\ninput_shape: [3, 8, 8]\ntorch: evil:net\n"
    monkeypatch.delenv("DNAC_TRUST_CODE", raising=False)
    check_rejected(capsys, monkeypatch, tmp_path, text, "model.yaml: torch: naming a PyTorch factory", "--trust-code")
    assert not (tmp_path / "ran").exists() and not (tmp_path / "called").exists()


def test_unknown_field_is_a_typo(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("padding: 1, activation", "pading: 1, activation", 1)
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[0].pading", "unknown field")


def test_input_names_unknown_layer(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("inputs: [c1, c2]", "inputs: [c1, c3]")
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[2].inputs[1]", "unknown tensor 'c3'")


def test_linear_without_flatten(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("  - {name: f, op: flatten}\n", "")
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[3].input", "add a flatten entry")


def test_unknown_activation(capsys, monkeypatch, tmp_path) -> None:
    text = GOOD.replace("activation: relu}", "activation: gelu}")
    check_rejected(capsys, monkeypatch, tmp_path, text, "layers[0].activation", "unknown activation 'gelu'")


def test_not_a_mapping(capsys, monkeypatch, tmp_path) -> None:
    check_rejected(capsys, monkeypatch, tmp_path, "- just\n- a list\n", "model.yaml: must be a mapping")


def test_broken_design_yaml_names_node(capsys, monkeypatch, tmp_path) -> None:
    from conftest import random_design

    from dnac.compiler.ir import design_yaml
    from dnac.compiler.workload import zoo

    text = design_yaml.dump(random_design(zoo.get("tiny"), 0))
    text = text.replace("dims: {N: 1, K: 16, C: 8, R: 3, S: 3, P: 8, Q: 8}", "dims: {N: 1, K: 16, C: 8, R: 3, S: 3, P: 7, Q: 8}")
    check_rejected(capsys, monkeypatch, tmp_path, text, "conv2.dims.P", "is 7 but")


def test_yaml_limits_before_parsing(capsys, monkeypatch, tmp_path: Path) -> None:
    """Deep nesting, duplicate keys, alias bombs and oversized files are one line each, found
    before the loader recurses or expands anything."""
    from dnac.compiler import yamlio

    deep = GOOD.replace("layers:\n", "junk: " + "[" * 5000 + "]" * 5000 + "\nlayers:\n")
    check_rejected(capsys, monkeypatch, tmp_path, deep, "model.yaml: line 3", f"deeper than {yamlio.MAX_DEPTH}")
    check_rejected(capsys, monkeypatch, tmp_path, GOOD + "name: other\n", "duplicate key 'name'")
    bomb = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 40)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    check_rejected(capsys, monkeypatch, tmp_path, bomb + GOOD, f"more than {yamlio.MAX_ALIASES} aliases")
    monkeypatch.setattr(yamlio, "MAX_BYTES", 100)
    check_rejected(capsys, monkeypatch, tmp_path, GOOD, "characters exceed the 100 a dnac YAML input may have")


def test_pool_padding_over_half_its_window(capsys, monkeypatch, tmp_path: Path) -> None:
    """A window of nothing but padding has no max and no average: refused as PyTorch does."""
    text = GOOD.replace("  - {name: f, op: flatten}\n",
                        "  - {name: p, op: maxpool, kernel: 2, stride: 2, padding: 2}\n  - {name: f, op: flatten}\n")
    check_rejected(capsys, monkeypatch, tmp_path, text, "model.yaml: layers[3].padding", "exceeds half")


@pytest.mark.parametrize("args,words", [
    (["--seed", "-1"], "--seed"),
    (["--budget", "nan"], "finite positive"),
    (["--budget", "inf"], "finite positive"),
    (["--steps", "0"], "--steps"),
    (["--steps", "100000000"], "--steps"),
    (["--refine", "-2"], "--refine"),
])
def test_build_options_out_of_range(capsys, tmp_path: Path, args: list[str], words: str) -> None:
    """Out-of-range options are one line and exit 2, before any search; nothing is written."""
    code, out, err = run(capsys, "build", "tiny", "--target", "zc706", "--out", str(tmp_path / "o"), *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "o").exists()


def test_debug_is_accepted_after_the_subcommand(capsys) -> None:
    code, out, err = run(capsys, "inspect", "tiny", "--debug")
    assert code == 0 and "5 layers" in out, err


def test_names_cannot_split_the_error_line(capsys, monkeypatch, tmp_path: Path) -> None:
    """A name with carriage returns, line separators or other controls stays on the one line,
    written as escapes."""
    bad = "c\\r\\u2028\\x1b[31mfake"
    text = GOOD.replace("name: c1,", f'name: "{bad}",', 1).replace("name: c2,", f'name: "{bad}",', 1)
    line = check_rejected(capsys, monkeypatch, tmp_path, text, "duplicate layer name", "\\r\\u2028\\x1b[31mfake")
    assert "\r" not in line and "\u2028" not in line and "\x1b" not in line


def test_out_that_cannot_exist_is_found_before_the_search(capsys, tmp_path: Path) -> None:
    """A 300-character --out (over the file system's name limit) is one line, before any search."""
    import time

    start = time.perf_counter()
    code, out, err = run(capsys, "build", "vgg16", "--target", "zc706", "--out", str(tmp_path / ("x" * 300)))
    assert code == 2 and out == "" and err.count("\n") == 1 and "--out: cannot write there" in err, err
    assert time.perf_counter() - start < 20  # VGG16's search would take longer: it never started


@pytest.mark.parametrize("edit,words", [
    (("out_channels: 8, kernel: 3, padding: 1, activation", "out_channels: 1000000000, kernel: 3, padding: 1, activation"),
     "layers[0].out_channels: 1000000000 is more than dnac supports (65536)"),
    (("input_shape: [3, 16, 16]", "input_shape: [3, 100000, 16]"), "input_shape: dimension 100000 is more than"),
    (("input_shape: [3, 16, 16]", "input_shape: [3, 16, 16]\nbatch: 100000000"), "batch: 100000000 is more than"),
    (("input_shape: [3, 16, 16]", "input_shape: [65536, 65536, 1]"), "input_shape: a tensor of 4,294,967,296"),
    (("out_features: 10", "out_features: 70000"), "layers[4].out_features: 70000 is more than"),
])
def test_sizes_are_bounded_before_anything_is_allocated(capsys, monkeypatch, tmp_path: Path, edit, words) -> None:
    """Huge dimensions or batches are one line within a second, not minutes of search or a
    memory error."""
    check_rejected(capsys, monkeypatch, tmp_path, GOOD.replace(*edit), words)


def test_a_network_the_boards_dram_cannot_hold(capsys, monkeypatch, tmp_path: Path) -> None:
    """Within the size bounds but over the ZC706's 1 GiB of DRAM: refused before the search."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.yaml").write_text(GOOD.replace("input_shape: [3, 16, 16]", "input_shape: [3, 512, 512]\nbatch: 512"))
    code, out, err = run(capsys, "build", "model.yaml", "--target", "zc706", "--out", "o")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "model.yaml: batch: the HLS project's DRAM image needs" in err and "ps_ddr3 holds 1,024 MiB" in err
    assert sorted(os.listdir(tmp_path)) == ["model.yaml"]


def test_layers_too_wide_for_the_engines_are_refused_before_the_search(capsys, monkeypatch, tmp_path: Path) -> None:
    """32-bit x 32-bit products (in the documented 1..32-bit range) need more than the 62-bit
    accumulator the HLS output stage takes: one line naming the layer, before any search (the
    ASIC target, which has no such stage, takes them)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.yaml").write_text(GOOD.replace("input_shape: [3, 16, 16]",
                                                      "input_shape: [3, 16, 16]\nprecision: {w_bits: 32, a_bits: 32}"))
    code, out, err = run(capsys, "build", "model.yaml", "--target", "zc706", "--out", "o")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "model.yaml: layers[0]: 'c1' (32-bit x 32-bit, 27 products per output) needs a 68-bit accumulator" in err
    assert sorted(os.listdir(tmp_path)) == ["model.yaml"]
    check_rejected(capsys, monkeypatch, tmp_path, GOOD.replace("kernel: 3, padding: 1}", "kernel: 3, padding: 1, w_bits: 33}"),
                   "layers[1].w_bits", "[1, 32]")


def test_hostile_model_names_in_summaries_and_plots(capsys, monkeypatch, tmp_path: Path) -> None:
    """A model name with `$` (matplotlib's mathtext), control characters and U+2028 used to end
    the build in a traceback; it is now shown literally: escaped on stdout, valid XML in the SVG."""
    import xml.etree.ElementTree as ET

    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.yaml").write_text(GOOD.replace("name: net", 'name: "n$e\\x1b[2J$\\\\frac{t\\u2028"'))
    code, out, err = run(capsys, "build", "model.yaml", "--target", "zc706", "--out", "o", "--steps", "2",
                         "--refine", "0")
    assert code == 0, err
    assert out.startswith("n$e\\x1b[2J$\\frac{t\\u2028 on zc706:") and "\x1b" not in out and "\u2028" not in out
    title = "".join(ET.parse(tmp_path / "o" / "search.svg").getroot().itertext())
    assert "n$e\\x1b[2J$\\frac{t\\u2028" in title
