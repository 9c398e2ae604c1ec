"""Operator sampling (single-path forward, top-K backward; soft all-paths), the supernet and
its derivation, and the hardware-penalty terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dnac.search.config import load_config
from dnac.search.hw_penalty import HardwarePenalty, dna_loss, trips_loss
from dnac.search.precision import PrecisionMode
from dnac.search.sampling import SamplingMode, sample_ops
from dnac.search.supernet import ARCH_PREFIX, Supernet


@pytest.fixture(scope="module")
def space():
    return load_config("tiny").build_space((1, 8, 8), 4)


def test_parameters_kept_apart(space) -> None:
    net = Supernet(space)
    arch = {id(p) for p in net.arch_parameters()}
    weights = {id(p) for p in net.weight_parameters()}
    assert len(arch) == 2 and not arch & weights
    assert len(arch) + len(weights) == len(list(net.parameters()))
    assert all(n.startswith(ARCH_PREFIX) for n, p in net.named_parameters() if id(p) in arch)


def test_single_path_and_top_k(space) -> None:
    alpha = torch.zeros(space.n_layers, space.max_candidates, requires_grad=True)
    mask = Supernet(space).arch.mask
    g = torch.Generator().manual_seed(0)
    s = sample_ops(SamplingMode.SINGLE_PATH, alpha, mask, 1.0, g, updating_arch=False)
    assert s.paths == [[a] for a in s.active] and not s.weights.requires_grad
    s = sample_ops(SamplingMode.SINGLE_PATH, alpha, mask, 1.0, g, updating_arch=True, top_k=2)
    assert all(len(p) == 2 and p[0] == a for p, a in zip(s.paths, s.active))
    assert s.weights.requires_grad and set(s.weights.detach().unique().tolist()) == {0.0, 1.0}
    s = sample_ops(SamplingMode.SOFT, alpha, mask, 1.0, g, updating_arch=True)
    assert [len(p) for p in s.paths] == [int(m.sum()) for m in mask]
    assert torch.allclose(s.weights.sum(-1), torch.ones(space.n_layers))


def test_top_k_forward_is_the_single_path(space) -> None:
    """TRIPS Eq. 6-7: the multi-path backward leaves the forward value that of the single path,
    while alpha gets gradients through the K computed paths."""
    torch.manual_seed(0)
    net = Supernet(space, top_k=2).eval()
    x = torch.randn(2, *space.input_shape)
    s = net.sample(1.0, torch.Generator().manual_seed(3), updating_arch=True)
    out = net(x, s)
    single = net(x, net.fixed_sample(s.ops.active, s.active_bits))
    assert torch.allclose(out, single, atol=1e-5)
    out.sum().backward()
    assert net.arch.alpha.grad is not None and net.arch.alpha.grad.abs().sum() > 0
    assert net.arch.beta.grad is not None and net.arch.beta.grad.abs().sum() > 0


@pytest.mark.parametrize("sampling,precision", [(SamplingMode.SOFT, PrecisionMode.HETEROGENEOUS),
                                                (SamplingMode.SINGLE_PATH, PrecisionMode.ALL_PATHS),
                                                (SamplingMode.SINGLE_PATH, PrecisionMode.HARD)])
def test_modes_run_and_learn_gradients(space, sampling, precision) -> None:
    net = Supernet(space, sampling=sampling, precision=precision)
    x = torch.randn(3, *space.input_shape)
    g = torch.Generator().manual_seed(0)
    net(x, net.sample(2.0, g, updating_arch=False)).sum().backward()
    assert net.arch.alpha.grad is None
    net(x, net.sample(2.0, g, updating_arch=True)).sum().backward()
    assert net.arch.alpha.grad.abs().sum() > 0


def test_derive_is_argmax(space) -> None:
    net = Supernet(space)
    with torch.no_grad():
        net.arch.alpha[0, 2] = 3.0
        net.arch.alpha[1, 0] = 2.0
        net.arch.beta[:, 1] = 1.0
        net.arch.alpha[1, len(space.layers()[1].candidates)] = 9.0  # a masked entry never wins
    g = net.derive()
    assert [b.op for b in g.blocks][:2] == [space.layers()[0].candidates[2], space.layers()[1].candidates[0]]
    assert {b.bits for b in g.blocks} == {space.bits[1]}
    assert g.to_workload().layers[-1].K == space.classes


def _penalty(space, method: str) -> HardwarePenalty:
    return HardwarePenalty(space, method=method, target="zc706", objective="latency", samples=2, das_steps=2,
                           das_batch=8, probe_draws=2, seed=0)


def test_cost_table_and_losses(space) -> None:
    L, K, J = space.n_layers, space.max_candidates, len(space.bits)
    op_p = np.ones((L, K)) / K
    bit_p = np.ones((L, J)) / J
    pen = _penalty(space, "dna")
    table = pen.refresh(0, op_p, bit_p)
    c = table.block["cycles"]
    assert c.shape == (L, K, J) and len(table.accelerators) == 2
    for s in space.layers():
        for k, op in enumerate(s.candidates):
            if op == "skip":
                assert float(c[s.index, k].abs().sum()) == 0
            else:
                assert bool((c[s.index, k] > 0).all())
    assert float(c[..., 0].sum()) < float(c[..., 1].sum())  # 4 bits: more PEs on the same resources
    # DNA Eq. 5: the penalty pushes the operator weights towards cheaper operators
    w = torch.full((L, K), 1.0 / K, requires_grad=True)
    b = torch.full((L, J), 1.0 / J)
    dna_loss(table, w, b).backward()
    assert float(w.grad[0, 1]) > float(w.grad[0, 0])  # k3_e3 costs more than k3_e1
    # TRIPS Eq. 8: only the active operator and precision get a gradient, their cost share
    alpha = torch.zeros(L, K, requires_grad=True)
    beta = torch.zeros(L, J, requires_grad=True)
    trips_loss(table, alpha, beta, [1] * L, [0] * L).backward()
    assert int((alpha.grad != 0).sum()) == L and bool((alpha.grad[:, 1] > 0).all())
    assert torch.allclose(alpha.grad[:, 1], beta.grad[:, 0].float())
    assert float(alpha.grad[:, 1].sum()) < 1.0  # shares of the whole network's cost (with stem and head)
    flops = _penalty(space, "flops").refresh(0, op_p, bit_p)
    assert table.metrics == ("cycles",) and flops.metrics == ("macs",)
    assert float(flops.block["macs"][0, 0, 0]) == float(flops.block["macs"][0, 0, 1])  # MACs ignore bits


def test_trips_penalty_caches_das(space) -> None:
    pen = _penalty(space, "trips")
    L, K, J = space.n_layers, space.max_candidates, len(space.bits)
    t0 = pen.refresh(0, np.ones((L, K)), np.ones((L, J)))
    assert len(t0.accelerators) == 1 and not t0.accelerators[0]["cached"]
    t1 = pen.refresh(1, np.ones((L, K)), np.ones((L, J)))
    assert t1.accelerators[0]["cached"] and torch.equal(t0.block["cycles"], t1.block["cycles"])
    assert pen.warm  # DAS logits kept for the next run
