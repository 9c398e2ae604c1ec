"""What every back-end is: a name, a template folder and `write`.

A back-end turns a mapped `DesignGraph` into the files of one target kind, under its own
subfolder of the build's output (`hls/` for an FPGA target, `timeloop/` for an ASIC one).  The
caller (`dnac build`) creates the output folder (a temporary one, moved into place atomically)
and writes design.yaml and report.json itself; `write` only adds the target's tree, and leaves
in `report` what report.json should say of it (the HLS back-end: `hls_resources`, the resources
its project declares, counted from what it emitted).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from dnac.compiler.ir.design import DesignGraph
from dnac.compiler.targets import Target


class Backend(ABC):
    """One target kind's emitter."""

    name: ClassVar[str]  # short name ("hls", "timeloop"); also the subfolder it writes
    template_dir: ClassVar[str]  # its folder under templates/ (mirrors this module's name)

    def __init__(self) -> None:
        self.report: dict[str, Any] = {}  # report.json sections about the last tree written

    @abstractmethod
    def write(self, design: DesignGraph, target: Target, out_dir: Path, *, seed: int) -> list[Path]:
        """Write this back-end's tree into `out_dir/<name>/` (`out_dir` exists); return the files
        written, sorted.  The same design, target and seed give the same bytes."""


def write_files(root: Path, files: dict[str, str | bytes]) -> list[Path]:
    """Write `{relative posix path: content}` under `root` in sorted order; text as UTF-8 with
    `\\n` line ends.  Paths are produced by the back-ends from sanitized names only."""
    written = []
    for rel in sorted(files):
        path = root / rel
        if root.resolve() not in path.resolve().parents:
            raise ValueError(f"refusing to write outside {root}: {rel!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        content = files[rel]
        if isinstance(content, str):
            path.write_bytes(content.encode("utf-8"))
        else:
            path.write_bytes(content)
        written.append(path)
    return written
