"""`dnac bench search --only memory` on the tiny space: constant memory for TRIPS' sampling."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dnac.search.cli import bench_search


def test_memory_table(tmp_path: Path) -> None:
    r = CliRunner().invoke(bench_search, ["--only", "memory", "--config", "tiny", "--memory-space", "config",
                                          "--memory-batch", "4", "--out", str(tmp_path), "--no-progress"])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "bench_search.json").read_text())["memory"]
    ratio = {(row["mode"], row["choices"]): row["ratio_vs_1"] for row in rows}
    assert ratio[("heterogeneous", 3)] <= 1.15 and ratio[("heterogeneous", 5)] <= 1.15
    assert ratio[("all_paths", 5)] > ratio[("all_paths", 3)] > 1.5
    assert "precision sampling" in r.output
