"""Atomic output folders and the --force rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnac.compiler.errors import OutputError
from dnac.compiler.output import MARKER, atomic_output


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def test_success_moves_a_complete_folder_into_place(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out"
    with atomic_output(out, force=False) as tmp:
        assert tmp.parent == out.parent and not out.exists()
        (tmp / "a.txt").write_text("a")
    assert (out / "a.txt").read_text() == "a" and (out / MARKER).is_file()
    assert _leftovers(out.parent) == []


def test_failure_leaves_the_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_output(out, force=False) as tmp:
        (tmp / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_output(out, force=False) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("boom")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "old.txt"]
    assert _leftovers(tmp_path) == []


def test_dnac_folder_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for content in ("one", "two"):
        with atomic_output(out, force=False) as tmp:
            (tmp / content).write_text(content)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "two"]
    assert _leftovers(tmp_path) == []


def test_foreign_folder_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(OutputError) as err, atomic_output(out, force=False):
        pytest.fail("must not start")
    assert (err.value.file, err.value.field) == (str(out), "--out") and "--force" in err.value.reason
    assert (out / "thesis.tex").read_text() == "precious"
    with atomic_output(out, force=True) as tmp:
        (tmp / "x").write_text("x")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "x"]


def test_empty_folder_is_fine_and_file_is_not(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    with atomic_output(out, force=False) as tmp:
        (tmp / "x").write_text("x")
    assert (out / "x").exists()
    f = tmp_path / "file"
    f.write_text("f")
    with pytest.raises(OutputError, match="not a folder"), atomic_output(f, force=True):
        pass
    assert f.read_text() == "f"


def test_unwritable_parent(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OutputError, match="cannot write") as err, atomic_output(blocker / "sub" / "out", force=False):
        pass
    assert err.value.field == "--out"


def test_the_next_run_clears_what_a_killed_run_left(tmp_path: Path) -> None:
    """kill -9 at any moment: during the write (a stray temporary folder), or between moving the
    previous output aside and the new one in (the previous output is put back); a folder of a
    live process is left alone."""
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    with atomic_output(out, force=False) as tmp:
        (tmp / "v1.txt").write_text("1")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    pid = int(dead.stdout)
    (tmp_path / f".out.tmp-{pid}-abc").mkdir()  # killed while writing
    os.rename(out, tmp_path / "aside")
    (tmp_path / f".out.old-{pid}-def").mkdir()
    os.rename(tmp_path / "aside", tmp_path / f".out.old-{pid}-def" / "prev")  # killed between the renames
    live = tmp_path / f".out.tmp-{os.getpid()}-ghi"
    live.mkdir()
    with atomic_output(out, force=False) as tmp:
        assert (out / "v1.txt").read_text() == "1"  # the previous output is back before anything else
        (tmp / "v2.txt").write_text("2")
    assert (out / "v2.txt").is_file() and not (out / "v1.txt").exists()
    assert _leftovers(tmp_path) == [live.name]


def test_a_full_disk_is_refused_before_the_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    from dnac.compiler import output

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 40, (1 << 40) - (3 << 20), 3 << 20))
    with pytest.raises(OutputError, match="only 3 MiB free there; dnac needs 64 MiB") as err:
        output.preflight(tmp_path / "out", force=False)
    assert err.value.field == "--out" and not (tmp_path / "out").exists()
