"""Atomic output folders: a build appears complete or not at all, and never clobbers a user's folder.

`atomic_output(out, force=...)` hands out a fresh temporary folder next to `out` (same file
system, so the final move is a rename).  Only when the `with` body finishes without an exception
is a marker file `.dnac` written into it and the folder moved into place; on any error the
temporary folder is removed and `out` is left as it was.  The marker is how a later build knows
that an existing `out` is dnac's own and may be replaced; a folder without it (a user's files, or
the wrong `--out`) is replaced only with `force=True`.  An empty folder holds nothing to lose and
is always replaced.

A run killed at any moment (kill -9) leaves at most its temporary folders beside `out`, named
`.<out>.tmp-<pid>-*` / `.<out>.old-<pid>-*`; the next run into the same `out` removes those whose
process is gone, and if the kill fell between moving the previous `out` aside and moving the new
one in, it puts the previous one back first.  So `out` is always either absent or complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dnac.compiler.errors import OutputError

#: Name of the marker file that identifies folders dnac wrote.
MARKER = ".dnac"
#: Its content (constant, so that two builds of the same inputs give the same bytes).
MARKER_TEXT = "This folder was written by dnac; `dnac build` may replace it.\n"
_FIELD = "--out"


def written_by_dnac(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def check_target(out: Path, force: bool) -> None:
    """`out` may be (re)written: not a file or link, and dnac's own, empty, or `force`."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputError(str(out), _FIELD, "exists and is not a folder")
    if out.is_dir() and not force and not written_by_dnac(out) and any(out.iterdir()):
        raise OutputError(str(out), _FIELD, "exists and was not written by dnac; pass --force")


#: A temporary folder without a process id in its name (an older dnac's) is stale after this long.
_STALE_SECONDS = 600


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _sweep(out: Path, parent: Path) -> None:
    """Remove the temporary folders that killed runs left beside `out` (see the module docstring)."""
    if not parent.is_dir():
        return
    for kind in ("old", "tmp"):  # an aside previous output first: it may have to go back into place
        prefix = f".{out.name}.{kind}-"
        for entry in parent.iterdir():
            if not entry.name.startswith(prefix) or not entry.is_dir():
                continue
            pid_text = entry.name[len(prefix):].split("-", 1)[0]
            if pid_text.isdigit():
                if _alive(int(pid_text)):
                    continue
            elif time.time() - entry.stat().st_mtime < _STALE_SECONDS:
                continue
            prev = entry / "prev"
            if kind == "old" and prev.is_dir() and not out.exists():
                os.rename(prev, out)
            shutil.rmtree(entry, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    """Flush every file so that a crash right after the rename leaves complete files."""
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def preflight(out: Path, *, force: bool) -> None:
    """Check, before any long work, that `atomic_output(out, force=force)` can succeed: `out` may
    be replaced and its parent takes a folder.  Raises `OutputError` (file `out`, field `--out`)."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        check_target(out, force)
        parent.mkdir(parents=True, exist_ok=True)
        Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=parent)).rmdir()
    except OSError as exc:
        raise OutputError(str(out), _FIELD, f"cannot write there: {exc.strerror or exc}") from None


@contextmanager
def atomic_output(out: Path, *, force: bool) -> Iterator[Path]:
    """Yield a temporary folder; move it to `out` when the block succeeds (see the module docstring).

    Raises `OutputError` (file `out`, field `--out`) when `out` must not be replaced or its parent
    cannot be written."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        _sweep(out, parent)
    except OSError:
        pass  # leftovers are untidy, not wrong: the checks below still hold
    preflight(out, force=force)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    except OSError as exc:
        raise OutputError(str(out), _FIELD, f"cannot write there: {exc.strerror or exc}") from None
    try:
        yield tmp
        (tmp / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        _fsync_tree(tmp)
        check_target(out, force)  # the world may have changed while we wrote
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=parent))
            os.rename(out, old / "prev")
        try:
            os.rename(tmp, out)
        except OSError:
            if old is not None:
                os.rename(old / "prev", out)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(str(out), _FIELD, f"cannot write there: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
