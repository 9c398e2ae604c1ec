"""`dnac train`: quantization-aware training of a network from scratch at its bit widths.

Any workload trains, a derived model.yaml as much as a hand-written one: `QuantNet` runs the
layers in order, each conv / linear with the quantizers of `precision.py` fixed at the layer's
`w_bits` / `a_bits` (straight-through gradients), a BatchNorm after every conv (the model.yaml
conv with `bias: true` is that conv with the BatchNorm folded in), pools and residual adds as
the workload states them.  SGD with momentum and a cosine schedule (DNA Sec. 4.1.2: lr 0.01;
TRIPS App. A: lr 0.1; 600 epochs on CIFAR), top-1 on the test split.  The weights and the
quantization scales are saved beside the model: `<stem>.weights.pt` (state dict) and
`<stem>.quant.json` (per layer: bits, activation scale, per-channel weight scales).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from dnac.compiler.output import write_atomic
from dnac.compiler.vocab import Activation, OpKind
from dnac.compiler.workload.layer import INPUT, Workload
from dnac.search import data as datasets
from dnac.search.config import TrainConfig
from dnac.search.errors import DataError
from dnac.search.precision import PrecisionSample, QConv2d, QLinear, weight_scale


class QuantNet(nn.Module):
    """A workload as a quantized PyTorch network (each layer at its own precision)."""

    def __init__(self, w: Workload) -> None:
        super().__init__()
        self.workload = w
        self.mods = nn.ModuleDict()
        self.bns = nn.ModuleDict()
        self.keys: dict[str, str] = {}
        for i, layer in enumerate(w.layers):
            key = f"l{i}"  # module names may not contain dots
            self.keys[layer.name] = key
            signed = layer.inputs[0] == INPUT or w.layer(layer.inputs[0]).activation is Activation.NONE
            if layer.op in (OpKind.CONV, OpKind.DWCONV):
                self.mods[key] = QConv2d(layer.C, layer.K, layer.R, stride=layer.stride[0], padding=layer.padding[0],
                                         groups=layer.groups, signed_input=signed)
                self.bns[key] = nn.BatchNorm2d(layer.K)
            elif layer.op is OpKind.LINEAR:
                self.mods[key] = QLinear(layer.C, layer.K, bias=layer.bias, signed_input=signed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t: dict[str, torch.Tensor] = {INPUT: x}
        y = x
        for layer in self.workload.layers:
            key = self.keys[layer.name]
            src = t[layer.inputs[0]]
            if layer.op in (OpKind.CONV, OpKind.DWCONV):
                y = self.bns[key](self.mods[key](src, _fixed(layer.w_bits, layer.a_bits, x.device)))
            elif layer.op is OpKind.LINEAR:
                y = self.mods[key](src.flatten(1), _fixed(layer.w_bits, layer.a_bits, x.device))
            elif layer.op is OpKind.MAXPOOL:
                y = F.max_pool2d(src, layer.R, layer.stride, layer.padding)
            elif layer.op is OpKind.AVGPOOL:
                y = F.avg_pool2d(src, (layer.R, layer.S), layer.stride, layer.padding)
            else:  # add
                y = sum(t[name] for name in layer.inputs)  # type: ignore[assignment]
            if layer.activation is Activation.RELU:
                y = torch.relu(y)
            elif layer.activation is Activation.RELU6:
                y = F.relu6(y)
            t[layer.name] = y
        return y.flatten(1)

    def quant_params(self) -> dict[str, Any]:
        """Per layer: bits, the activation scale and the per-output-channel weight scales."""
        out = {}
        for layer in self.workload.layers:
            key = self.keys[layer.name]
            if key in self.mods:
                m = self.mods[key]
                out[layer.name] = {"w_bits": layer.w_bits, "a_bits": layer.a_bits, "signed_input": m.signed_input,
                                   "act_scale": float(m.act_scale),
                                   "weight_scale": weight_scale(m.weight).flatten().tolist()}
        return out


def _fixed(w_bits: int, a_bits: int, device: torch.device) -> PrecisionSample:
    """One precision for a layer; QAT uses the wider of its weight and activation widths for the
    conv's activation quantizer when they differ (dnac's search gives both the same width)."""
    return PrecisionSample((max(w_bits, a_bits),) if w_bits != a_bits else (w_bits,), torch.ones(1, device=device))


@dataclass
class TrainResult:
    top1: float
    epochs: int
    seconds: float
    history: list[dict[str, float]]
    files: dict[str, str]


def check_fit(w: Workload, splits: datasets.Splits, model: str, batch_size: int | None = None,
              config: str = "") -> None:
    """Can `w` be trained on `splits` (in batches of `batch_size`, from `config`)?  `DataError` if not."""
    if batch_size is not None and batch_size > len(splits.train):
        raise DataError(config or model, "train.batch_size", f"{batch_size} is more than the {len(splits.train):,} training "
                        f"images of {splits.name}: no batch would be drawn")
    for lyr in w.layers:
        if min(lyr.w_bits, lyr.a_bits) < 2:
            raise DataError(model, lyr.source or f"layers.{lyr.name}", "a 1-bit layer cannot be trained: the "
                            "integer pipeline's signed 1-bit values are only -1 and 0 (use 2 bits or more)")
    if tuple(w.input_shape) != splits.train.shape:
        raise DataError(model, "input_shape", f"the model reads {list(w.input_shape)} but {splits.name} images are "
                        f"{list(splits.train.shape)}")
    last = w.layers[-1]
    if last.op is not OpKind.LINEAR or last.K != splits.train.classes:
        raise DataError(model, last.source or f"layers.{last.name}", f"the model must end in a linear layer with "
                        f"{splits.train.classes} outputs for {splits.name} (it ends in {last.op.value} with {last.K})")


def evaluate(net: nn.Module, split: datasets.ArrayData, batch_size: int, device: torch.device,
             limit: int | None = None) -> float:
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in datasets.batches(split, batch_size, seed=0, epoch=0, shuffle=False, limit=limit):
            correct += int((net(x.to(device)).argmax(1).cpu() == y).sum())
            total += len(y)
    net.train()
    return correct / max(total, 1)


def train(w: Workload, cfg: TrainConfig, splits: datasets.Splits, *, seed: int = 0, limit_batches: int | None = None,
          out: Path | None = None, stem: str = "model", device: torch.device | None = None,
          progress: bool | None = None, printer: Callable[[str], None] | None = None) -> TrainResult:
    """Train `w` from scratch on splits.train; top-1 on splits.test; save beside `out/stem`."""
    device = device or torch.device("cpu")
    show = sys.stderr.isatty() if progress is None else progress
    say = printer or (lambda s: print(s, file=sys.stderr, flush=True))
    torch.manual_seed(seed)
    net = QuantNet(w).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    history = []
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        steps = datasets.n_batches(splits.train, cfg.batch_size, limit_batches)
        it = datasets.batches(splits.train, cfg.batch_size, seed=seed, epoch=epoch, stream=7, limit=limit_batches)
        bar = tqdm(it, total=steps, desc=f"train {epoch + 1}/{cfg.epochs}", disable=not show, leave=False,
                   file=sys.stderr)
        loss_sum = acc_sum = 0.0
        n = 0
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            loss_sum += loss.item()
            acc_sum += float((logits.argmax(1) == y).float().mean())
            n += 1
            bar.set_postfix(loss=f"{loss_sum / n:.3f}")
        sched.step()
        history.append({"epoch": epoch, "loss": loss_sum / max(n, 1), "train_acc": acc_sum / max(n, 1)})
        say(f"train epoch {epoch + 1}/{cfg.epochs}: loss {loss_sum / max(n, 1):.3f} acc {acc_sum / max(n, 1):.3f}")
    top1 = evaluate(net, splits.test, 256, device)
    seconds = time.perf_counter() - start
    files: dict[str, str] = {}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        wpath, qpath, rpath = out / f"{stem}.weights.pt", out / f"{stem}.quant.json", out / f"{stem}.train.json"
        state = {k: v.cpu() for k, v in net.state_dict().items()}
        write_atomic(wpath, lambda p: torch.save({"model": w.name, "layer_keys": net.keys, "state_dict": state}, p))
        write_atomic(qpath, json.dumps({"model": w.name, "layers": net.quant_params()}, indent=1))
        report = {"model": w.name, "dataset": splits.name, "top1": top1, "epochs": cfg.epochs, "seed": seed,
                  "limit_batches": limit_batches, "seconds": round(seconds, 3), "config": cfg.__dict__,
                  "history": history, "macs": w.total_macs,
                  "bits": sorted({(layer.w_bits, layer.a_bits) for layer in w.compute_layers})}
        write_atomic(rpath, json.dumps(report, indent=1))
        files = {"weights": str(wpath), "quant": str(qpath), "report": str(rpath)}
    return TrainResult(top1, cfg.epochs, seconds, history, files)
