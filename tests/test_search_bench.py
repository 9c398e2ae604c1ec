"""`dnac bench search --only memory` on the tiny space: constant memory for TRIPS' sampling."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dnac.compiler.cli import cli


def test_memory_table(tmp_path: Path) -> None:
    """Through the front door: `dnac bench search` hands its own options to the co-search bench."""
    r = CliRunner().invoke(cli, ["bench", "search", "--out", str(tmp_path), "--only", "memory", "--config", "tiny",
                                 "--memory-space", "config", "--memory-batch", "4", "--no-progress"])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "search" / "bench_search.json").read_text())["memory"]
    ratio = {(row["mode"], row["choices"]): row["ratio_vs_1"] for row in rows}
    assert ratio[("heterogeneous", 3)] <= 1.15 and ratio[("heterogeneous", 5)] <= 1.15
    assert ratio[("all_paths", 5)] > ratio[("all_paths", 3)] > 1.5
    assert "precision sampling" in r.output
