"""Quantizers and TRIPS' heterogeneous precision sampling (composite operands, Eq. 4)."""

from __future__ import annotations

import pytest
import torch

from dnac.search.bench import SavedBytes
from dnac.search.precision import (
    PrecisionMode,
    PrecisionSample,
    QConv2d,
    composite_activation,
    quantize_values,
    sample_precisions,
)

BITS = (4, 8, 16)


def test_quantizer_levels_and_clipping() -> None:
    x = torch.linspace(-2, 2, 101)
    q = quantize_values(x, 4, torch.tensor(1.0), True)
    assert q.unique().numel() == 15  # -7..7 steps of 1/7
    assert float(q.max()) == pytest.approx(1.0) and float(q.min()) == pytest.approx(-1.0)
    u = quantize_values(x, 2, torch.tensor(1.0), False)
    assert sorted(u.unique().tolist()) == pytest.approx([0, 1 / 3, 2 / 3, 1])


def test_composite_forward_is_weighted_sum_and_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    p = torch.tensor([0.2, 0.5, 0.3], requires_grad=True)
    scale = torch.tensor(1.5)
    a = composite_activation(x, PrecisionSample(BITS, p), scale, True)
    ref = sum(p[j].detach() * quantize_values(x.detach(), b, scale, True) for j, b in enumerate(BITS))
    assert torch.allclose(a, ref, atol=1e-6)
    g = torch.randn_like(a)
    a.backward(g)
    inside = (x.detach().abs() <= scale).float()
    assert torch.allclose(x.grad, g * inside, atol=1e-6)  # straight-through, masked to the range
    expect = torch.stack([(g * quantize_values(x.detach(), b, scale, True)).sum() for b in BITS])
    assert torch.allclose(p.grad, expect, atol=1e-4)


def test_composite_gradient_reaches_only_grad_paths() -> None:
    x = torch.randn(4, 4)
    p = torch.tensor([0.0, 1.0, 0.0], requires_grad=True)
    a = composite_activation(x, PrecisionSample(BITS, p, grad_paths=(1, 2)), torch.tensor(2.0), True)
    a.sum().backward()
    assert p.grad[0] == 0 and p.grad[1] != 0 and p.grad[2] != 0
    assert torch.equal(a, quantize_values(x, 8, torch.tensor(2.0), True))  # one-hot: the 8-bit value


def test_heterogeneous_sampling_soft_for_weights_hard_for_beta() -> None:
    beta = torch.zeros(3, len(BITS), requires_grad=True)
    g = torch.Generator().manual_seed(0)
    p, paths = sample_precisions(beta, 1.0, g, updating_arch=False, mode=PrecisionMode.HETEROGENEOUS)
    assert not p.requires_grad and paths is None
    assert torch.allclose(p.sum(-1), torch.ones(3)) and bool(((p > 0) & (p < 1)).all())  # soft
    p, paths = sample_precisions(beta, 1.0, g, updating_arch=True, mode=PrecisionMode.HETEROGENEOUS, top_k=2)
    assert p.requires_grad and set(p.detach().unique().tolist()) == {0.0, 1.0}  # hard one-hot
    assert paths is not None and all(len(t) == 2 and int(p[i].argmax()) == t[0] for i, t in enumerate(paths))
    p, _ = sample_precisions(beta, 1.0, g, updating_arch=False, mode=PrecisionMode.HARD)
    assert set(p.unique().tolist()) == {0.0, 1.0}


def _saved_bytes(conv: QConv2d, x: torch.Tensor, prec: PrecisionSample) -> int:
    rec = SavedBytes()
    with torch.autograd.graph.saved_tensors_hooks(rec.pack, lambda t: t):
        out = conv(x, prec)
    out.sum().backward()
    return rec.total


def test_composite_memory_constant_all_paths_grows() -> None:
    torch.manual_seed(0)
    conv = QConv2d(8, 8, 3, padding=1)
    x = torch.randn(4, 8, 16, 16)
    one = _saved_bytes(conv, x, PrecisionSample((8,), torch.ones(1)))
    five_bits = (4, 6, 8, 12, 16)
    soft = torch.full((5,), 0.2)
    hetero = _saved_bytes(conv, x, PrecisionSample(five_bits, soft))
    allp = _saved_bytes(conv, x, PrecisionSample(five_bits, soft, all_paths=True))
    assert hetero <= 1.15 * one
    assert allp >= 3 * one


def test_qconv_float_and_fixed_precision() -> None:
    torch.manual_seed(0)
    conv = QConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 6, 6)
    assert torch.allclose(conv(x), torch.nn.functional.conv2d(x, conv.weight, None, 1, 1))
    y16 = conv(x, PrecisionSample.fixed(16))
    y4 = conv(x, PrecisionSample.fixed(4))
    ref = conv(x)
    assert (y16 - ref).abs().max() < (y4 - ref).abs().max()
    assert float(conv.act_scale) > 0  # tracked in training mode
