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

`exclusive(out)` is held around a whole run (build or search): a second run into the same `out`
stops with one line instead of interleaving its files with the first's.  It is an advisory
`flock` on `.<out>.lock` beside `out`, so the kernel drops it when the holder dies, even by
kill -9.

`DNAC_TEST_KILL_AT=<point>` makes the process kill itself (SIGKILL) at that point of the final
write; the fault tests use it to hit the narrow windows that a timed kill would rarely find.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
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


#: Points where `DNAC_TEST_KILL_AT` may kill the process (see the module docstring).
FAULT_POINTS = ("written", "aside", "swapped", "file-written")


def _fault(point: str) -> None:
    if os.environ.get("DNAC_TEST_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _lock_holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return "another dnac run"
    return f"another dnac run (pid {pid})" if pid.isdigit() else "another dnac run"


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold the lock of `out` for the block (see the module docstring); `OutputError` if another
    live run holds it.  Where the platform has no `flock`, runs unlocked."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    lock = parent / f".{out.name}.lock"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputError(str(out), _FIELD, f"{_lock_holder(lock)} is writing this folder; "
                                  "wait for it or choose another --out") from None
            try:  # the previous holder may have removed the file between our open and our lock
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    except OSError as exc:
        raise OutputError(str(out), _FIELD, f"cannot write there: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        try:
            os.unlink(lock)  # while still locked, so that no one else holds a lock on a removed file
        except OSError:
            pass
        os.close(fd)


def write_atomic(path: Path, payload: str | bytes | Callable[[Path], None]) -> None:
    """Write one file through a temporary beside it and an atomic rename: a reader (or a run
    killed midway) sees the old file or the new one, never a part.  The temporary is named
    `.<name>.tmp-<pid>`; `sweep_files` removes those of dead processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if callable(payload):
            payload(tmp)
        elif isinstance(payload, bytes):
            tmp.write_bytes(payload)
        else:
            tmp.write_text(payload, encoding="utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _fault("file-written")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sweep_files(folder: Path) -> None:
    """Remove the `write_atomic` temporaries in `folder` whose process is gone."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        name = entry.name
        if not name.startswith(".") or ".tmp-" not in name or not entry.is_file():
            continue
        pid_text = name.rsplit(".tmp-", 1)[1]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            entry.unlink(missing_ok=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


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


def sweep(out: Path) -> None:
    """Remove the temporary folders that killed runs left beside `out`, putting back a previous
    `out` that a kill left aside (see the module docstring)."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
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


#: Free space below which an output folder is refused up front, so that a full disk is one line
#: before the search rather than an error after it.  A floor, not an estimate: a small build
#: writes 0.1 MiB, a zoo build's HLS weight image up to hundreds of MiB; a write that still
#: runs out of room fails atomically (the previous output stays) with one line.
MIN_FREE_BYTES = 64 << 20


def preflight(out: Path, *, force: bool) -> None:
    """Check, before any long work, that `atomic_output(out, force=force)` can succeed: `out` may
    be replaced, its parent takes a folder and has room.  Raises `OutputError` (file `out`, field
    `--out`)."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        check_target(out, force)
        parent.mkdir(parents=True, exist_ok=True)
        Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=parent)).rmdir()
        free = shutil.disk_usage(parent).free
    except OSError as exc:
        raise OutputError(str(out), _FIELD, f"cannot write there: {exc.strerror or exc}") from None
    if free < MIN_FREE_BYTES:
        raise OutputError(str(out), _FIELD, f"only {free >> 20} MiB free there; dnac needs "
                          f"{MIN_FREE_BYTES >> 20} MiB")


@contextmanager
def atomic_output(out: Path, *, force: bool, replacing: Collection[str] | None = None) -> Iterator[Path]:
    """Yield a temporary folder; move it to `out` when the block succeeds (see the module docstring).

    With `replacing` (top-level names), the temporary folder starts as a copy of `out` without
    those names, so the block writes them and keeps the rest: the search swaps in its final
    products beside its checkpoint this way.  The copies are hard links where the file system
    allows, so the block must only write the names it replaces.

    Raises `OutputError` (file `out`, field `--out`) when `out` must not be replaced or its parent
    cannot be written."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        sweep(out)
    except OSError:
        pass  # leftovers are untidy, not wrong: the checks below still hold
    preflight(out, force=force)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
        if replacing is not None and out.is_dir():
            skip = set(replacing) | {MARKER}
            shutil.copytree(out, tmp, symlinks=True, copy_function=_link_or_copy, dirs_exist_ok=True,
                            ignore=lambda d, names: [n for n in names if d == str(out) and n in skip])
    except OSError as exc:
        raise OutputError(str(out), _FIELD, f"cannot write there: {exc.strerror or exc}") from None
    try:
        yield tmp
        (tmp / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        _fsync_tree(tmp)
        _fault("written")
        check_target(out, force)  # the world may have changed while we wrote
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=parent))
            os.rename(out, old / "prev")
            _fault("aside")
        try:
            os.rename(tmp, out)
        except OSError:
            if old is not None:
                os.rename(old / "prev", out)
            raise
        _fault("swapped")
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(str(out), _FIELD, f"cannot write there: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
