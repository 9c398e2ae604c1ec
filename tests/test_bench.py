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
        assert all(r[f"frozen_{f}"] > 0 for f in ("loop_order", "chunk_assignment", "noc_style", "buffer_split"))
    fpga = rows[0]
    assert fpga["das"] >= fpga["bound"] and fpga["random_equal"] >= fpga["bound"]  # a lower bound indeed
    assert "gain_vs_equal" in text.splitlines()[0]
    assert ET.parse(tmp_path / "bench_das.svg").getroot().tag.endswith("svg")


def test_bench_costmodel_counts_layer_evaluations(tmp_path: Path) -> None:
    _, path = bench.run("costmodel", tmp_path, model="tiny", batches=(1, 8), seconds=0.05)
    rows = json.loads(path.read_text())["rows"]
    assert [(r["target"], r["B"]) for r in rows] == [("zc706", 1), ("zc706", 8), ("asic", 1), ("asic", 8)]
    assert all(r["layer_evals_per_s"] > 0 for r in rows)
    assert not (tmp_path / "bench_costmodel.svg").exists()
