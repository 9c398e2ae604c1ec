"""Names from input files become safe path segments and valid C++ identifiers."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dnac.compiler.backends.render import cpp_comment, cpp_string, environment
from dnac.compiler.naming import CPP_KEYWORDS, MAX_LEN, cpp_ident, safe_path_segment, unique

HOSTILE = ["../../x", 'a"; system("x"); //', "conv é 層", "n" * 300, "", ".", "..", "/", "\\", "CON", "nul.txt",
           "int", "class", "main", "1abc", "__x", "_X", "a\nb", "a*/b", "a??/b", "-rf", ".hidden", "a.b", "a-b", "a b",
           "a_b", "\x00", "layer1.0.conv1", "layer1_0_conv1"]
IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@pytest.mark.parametrize("name", HOSTILE)
def test_cpp_ident_is_valid(name: str) -> None:
    s = cpp_ident(name)
    assert IDENT.fullmatch(s) and "__" not in s and len(s) <= MAX_LEN and s not in CPP_KEYWORDS
    assert cpp_ident(name) == s  # deterministic


@pytest.mark.parametrize("name", HOSTILE)
def test_path_segment_is_safe(name: str, tmp_path: Path) -> None:
    s = safe_path_segment(name)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", s) and len(s) <= MAX_LEN and s not in (".", "..")
    assert s.split(".")[0].lower() not in ("con", "nul", "prn", "aux")
    assert (tmp_path / s).resolve().parent == tmp_path.resolve()
    (tmp_path / s).mkdir()


def test_ordinary_names_are_kept() -> None:
    assert cpp_ident("conv1") == "conv1" and cpp_ident("fc_2") == "fc_2"
    assert safe_path_segment("layer1.0.conv1") == "layer1.0.conv1" and safe_path_segment("fc") == "fc"


def test_distinct_names_stay_distinct() -> None:
    idents = unique(HOSTILE, cpp_ident)
    assert len(set(idents.values())) == len(set(HOSTILE))
    paths = unique(HOSTILE, safe_path_segment, fold_case=True)
    assert len({p.lower() for p in paths.values()}) == len(set(HOSTILE))
    with pytest.raises(ValueError, match="sanitize to the same"):
        unique(["a", "b"], lambda _: "same")


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_identifiers_and_literals_compile(tmp_path: Path) -> None:
    """Every sanitized name declares a variable; every name survives as a string literal and as a
    comment (no trigraph, no `*/`, no line continuation) under -std=c++14 (trigraphs on)."""
    lines = ["int main() {", "  int total = 0;"]
    for i, name in enumerate(HOSTILE):
        lines.append(f"  int {cpp_ident(name)} = {i}; total += {cpp_ident(name)};  // {cpp_comment(name)}")
        lines.append(f"  /* {cpp_comment(name)} */ total += (int)sizeof({cpp_string(name)}) - 1;")
    expected = sum(range(len(HOSTILE))) + sum(len(n.encode()) for n in HOSTILE)
    lines += [f"  return total == {expected} ? 0 : 1;", "}"]
    src = tmp_path / "names.cpp"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "names"
    r = subprocess.run(["g++", "-std=c++14", "-Wall", "-Werror", "-Wno-unused-variable", "-o", str(exe), str(src)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert subprocess.run([str(exe)], check=False).returncode == 0


def test_environment_is_strict() -> None:
    env = environment()
    assert env.undefined.__name__ == "StrictUndefined" and env.keep_trailing_newline
    assert {"cpp_ident", "tojson", "cpp_comment", "cpp_string"} <= set(env.filters)
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ nothing }}").render()
    assert env.from_string("{{ x | tojson }}").render(x='a"é\n') == '"a\\"\\u00e9\\n"'
