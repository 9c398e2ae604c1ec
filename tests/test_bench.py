"""`dnac bench` at tiny sizes: the tables, the JSON beside them and the figure (smoke; the
measurements themselves are the README's "Measured" section)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from dnac.compiler import bench


def test_bench_das_on_the_tiny_model_writes_table_json_and_figure(tmp_path: Path) -> None:
    text, path = bench.run("das", tmp_path, models=("tiny",), random_pool=512, refine=2)
    assert path == tmp_path / "bench_das.json"
    rows = json.loads(path.read_text())["rows"]
    assert [(r["target"], r["model"]) for r in rows] == [("zc706", "tiny"), ("asic", "tiny")]
    for r in rows:
        assert r["das"] > 0 and r["evaluations"] > 512 and r["gain_vs_equal"] > 0
        assert r["das_refined"] <= r["das"] and r["refined_evaluations"] == r["evaluations"] + 2 * 64
        assert r["das_seconds_loaded"] > 0  # the same search beside a CPU-bound process
        assert all(r[f"frozen_{f}"] > 0 for f in ("loop_order", "chunk_assignment", "noc_style", "buffer_split"))
    fpga = rows[0]
    assert fpga["das"] >= fpga["bound"] and fpga["random_equal"] >= fpga["bound"]  # a lower bound indeed
    assert "gain_vs_equal" in text.splitlines()[0]
    assert ET.parse(tmp_path / "bench_das.svg").getroot().tag.endswith("svg")


def test_bench_costmodel_counts_layer_evaluations(tmp_path: Path) -> None:
    _, path = bench.run("costmodel", tmp_path, model="tiny", batches=(1, 8), seconds=0.05)
    rows = json.loads(path.read_text())["rows"]
    assert [(r["target"], r["B"]) for r in rows] == [("zc706", 1), ("zc706", 8), ("asic", 1), ("asic", 8)]
    assert all(r["layer_evals_per_s_idle"] > 0 and r["layer_evals_per_s_loaded"] > 0 for r in rows)
    assert not (tmp_path / "bench_costmodel.svg").exists()


def test_cpu_load_takes_a_core_and_stops() -> None:
    """The bench's load is a process that burns CPU while the block runs and is gone after it."""
    import os
    import time

    def cpu_ticks(pid: int) -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    with bench.cpu_load() as proc:
        assert proc.poll() is None
        if Path(f"/proc/{proc.pid}/stat").exists():
            before = cpu_ticks(proc.pid)
            time.sleep(0.5)
            assert (cpu_ticks(proc.pid) - before) / os.sysconf("SC_CLK_TCK") > 0.2  # busy, not asleep
    assert proc.returncode is not None
