"""Faults survived by real runs: kill -9 at several points of a build and a search, two runs into
one --out, a disk that fills up.  Each case runs the `dnac` command in a subprocess and checks
the contract of `dnac.compiler.output`: `--out` is absent, the previous complete output, or the
new complete output, and the next run clears what the killed one left."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dnac.compiler.errors import OutputError
from dnac.compiler.output import MARKER, exclusive, sweep

DNAC = [sys.executable, "-c", "from dnac.compiler.cli import main; main()"]
ENV = {**os.environ, "DNAC_THREADS": "1"}


def _run(args: list[str], kill_at: str | None = None, **kw) -> subprocess.CompletedProcess:
    env = dict(ENV, DNAC_TEST_KILL_AT=kill_at) if kill_at else ENV
    return subprocess.run(DNAC + args, capture_output=True, text=True, env=env, timeout=300, check=False, **kw)


def _build(design: Path, out: Path) -> list[str]:
    return ["build", str(design), "--target", "zc706", "--out", str(out)]


def _stray(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def _complete_build(out: Path) -> bool:
    return ((out / MARKER).is_file() and (out / "hls" / "Makefile").is_file()
            and json.loads((out / "report.json").read_text())["feasible"])


@pytest.fixture(scope="module")
def design(tmp_path_factory) -> Path:
    """A searched design.yaml: re-costing it is the fastest whole build."""
    out = tmp_path_factory.mktemp("seed") / "b"
    r = _run(["build", "tiny", "--target", "zc706", "--steps", "2", "--refine", "0", "--out", str(out)])
    assert r.returncode == 0, r.stderr
    return out / "design.yaml"


@pytest.mark.parametrize("point", ["written", "aside", "swapped"])
def test_build_killed_in_its_final_write(design: Path, tmp_path: Path, point: str) -> None:
    out = tmp_path / "out"
    assert _run(_build(design, out)).returncode == 0
    before = (out / "report.json").stat().st_ino
    r = _run(_build(design, out), kill_at=point)
    assert r.returncode == -signal.SIGKILL
    if point == "aside":  # killed between the two renames: no output until the next run puts it back
        assert not out.exists()
        sweep(out)
    assert _complete_build(out)
    assert ((out / "report.json").stat().st_ino == before) == (point != "swapped")
    assert _stray(tmp_path)  # the killed run's temporaries (or its lock file) are still there
    assert _run(_build(design, out)).returncode == 0
    assert _complete_build(out) and _stray(tmp_path) == []


def test_build_killed_at_random_moments(design: Path, tmp_path: Path) -> None:
    """Timed kills land anywhere (loading, costing, emitting); the contract holds at each."""
    out = tmp_path / "out"
    assert _run(_build(design, out)).returncode == 0
    for delay in (0.3, 1.2, 1.8, 2.4):
        p = subprocess.Popen(DNAC + _build(design, out), env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        sweep(out)
        assert _complete_build(out), delay
    assert _run(_build(design, out)).returncode == 0
    assert _stray(tmp_path) == []


def test_two_runs_into_one_out_do_not_interleave(design: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = subprocess.Popen(DNAC + ["build", "tiny", "--target", "zc706", "--steps", "30", "--out", str(out)],
                             env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / ".out.lock"
    deadline = time.monotonic() + 60
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = _run(_build(design, out))
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.returncode == 2, second.stderr
    assert second.stderr.count("\n") == 1 and f"pid {first.pid}" in second.stderr
    assert json.loads((out / "report.json").read_text())["search"]["method"] == "das"  # the first run's
    assert _stray(tmp_path) == []


def test_lock_is_per_run_and_released(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with exclusive(out):
        with pytest.raises(OutputError, match="is writing this folder") as err, exclusive(out):
            pass
        assert err.value.field == "--out"
    with exclusive(out):  # released, and the lock file gone with it
        pass
    assert _stray(tmp_path) == []


def _no_space(limit: int):
    def apply() -> None:  # a file-size limit stands in for a full disk: writes past it fail
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_during_the_write_keeps_the_previous_output(design: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _run(_build(design, out)).returncode == 0
    before = (out / "report.json").read_bytes()
    r = _run(_build(design, out), preexec_fn=_no_space(2048))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"dnac: error: {out}: --out: cannot write there: File too large")
    assert (out / "report.json").read_bytes() == before and _stray(tmp_path) == []


def test_search_killed_while_saving(tmp_path: Path) -> None:
    """A search killed while writing a file (its first: the epoch's log) keeps the previous one;
    killed while swapping in its final products, it keeps the previous products (beside its own
    newer checkpoint); the next search into the folder clears the temporaries."""
    out = tmp_path / "s"
    args = ["search", "tiny", "--no-progress", "--out", str(out)]
    assert _run(args).returncode == 0
    products = {n: (out / n).read_bytes() for n in ("model.yaml", "design.yaml", "report.json", "checkpoint.pt")}
    for point in ("file-written", "written"):  # the run's first file write; the products' swap
        r = _run(args + ["--seed", "7"], kill_at=point)
        assert r.returncode == -signal.SIGKILL
        sweep(out)
        for name, data in products.items():
            if point == "file-written" or name != "checkpoint.pt":
                assert (out / name).read_bytes() == data, (point, name)
        if point == "file-written":  # its temporary stays until the next run into the folder
            assert any(".tmp-" in p.name for p in out.iterdir())
    assert _run(args + ["--seed", "7"]).returncode == 0
    assert (out / "model.yaml").read_bytes() != products["model.yaml"] or \
        (out / "report.json").read_bytes() != products["report.json"]
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [MARKER]
    assert _stray(tmp_path) == []
    shutil.rmtree(out)
