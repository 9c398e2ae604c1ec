"""Data-parallel co-search: 2 CPU processes (gloo on localhost) keep identical parameters."""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _digest(tensors: list[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from dnac.search.config import load_config
        from dnac.search.cosearch import CoSearch
        from dnac.search.distributed import DistContext

        cfg = load_config("tiny")
        # DNA: two sampled networks, so that each rank runs one DAS and the tables are gathered
        cfg = replace(cfg, search=replace(cfg.search, method="dna"), data=replace(cfg.data, limit_batches=2))
        cs = CoSearch(cfg, Path(out) / f"rank{rank}", dist=DistContext(rank, world), progress=False,
                      printer=lambda s: None)
        entry = cs._epoch()
        Path(out, f"rank{rank}.txt").write_text("\n".join([
            _digest(cs.net.weight_parameters()), _digest(cs.net.arch_parameters()),
            _digest(list(cs.net.buffers())), str(entry["hw_cost"]), str(float(cs.net.arch.alpha.abs().sum())),
            str(entry["steps"]),
        ]))
    finally:
        dist.destroy_process_group()


def test_two_ranks_stay_identical(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = (tmp_path / "rank0.txt").read_text().splitlines()
    r1 = (tmp_path / "rank1.txt").read_text().splitlines()
    assert r0 == r1  # weights, alpha/beta, buffers, the gathered hardware cost
    assert float(r0[4]) > 0  # alpha was updated
    assert int(r0[5]) == 2
