"""`dnac train`: quantization-aware training of a network from scratch at its bit widths.

Any workload trains, a derived model.yaml as much as a hand-written one: `QuantNet` runs the
layers in order, each conv / linear with its weights quantized per output channel at the
layer's `w_bits` (straight-through gradients), a BatchNorm after every conv (the model.yaml conv
with `bias: true` is that conv with the BatchNorm folded in), pools and residual adds as the
workload states them, and every tensor on the signed integer grid the HLS engines store it on
(`dnac.search.integer`: the integer network `to_integer` derives computes the same values).  SGD
with momentum and a cosine schedule (DNA Sec. 4.1.2: lr 0.01; TRIPS App. A: lr 0.1; 600 epochs
on CIFAR), top-1 on the test split, of the QAT network and of its integer network.  Saved
beside the model: `<stem>.weights.pt` (state dict), `<stem>.quant.json` (bits, grid step and
scale group of every tensor; per-channel weight scales) and `<stem>.train.json`.
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

from dnac.compiler import refmodel
from dnac.compiler.output import write_atomic
from dnac.compiler.vocab import Activation, OpKind
from dnac.compiler.workload.layer import INPUT, MAX_BIAS, Layer, Workload
from dnac.search import data as datasets
from dnac.search.config import TrainConfig
from dnac.search.errors import DataError
from dnac.search.integer import ScaleTracker, fake_quant, grid_clamp, logits_both, scale_groups, to_integer
from dnac.search.integer import top1 as top1_of
from dnac.search.precision import ste, weight_scale


class QuantNet(nn.Module):
    """A workload as a quantized PyTorch network whose every step an integer network can take
    (`dnac.search.integer`): each layer at its own weight precision, every tensor on a signed
    grid of its `refmodel.tensor_bits`, scales shared where the integer adds and pools need
    them, rounding half up.  `integer.to_integer(net)` turns a trained one into that network."""

    def __init__(self, w: Workload) -> None:
        super().__init__()
        self.workload = w
        self.bits = refmodel.tensor_bits(w)
        group = scale_groups(w)
        group_bits: dict[str, int] = {}
        for t, g in group.items():
            group_bits[g] = min(group_bits.get(g, 64), self.bits[t])
        order = [INPUT] + [layer.name for layer in w.layers]
        names = sorted(group_bits, key=order.index)
        self.group_key = {g: f"g{i}" for i, g in enumerate(names)}  # module names may not contain dots
        self.tensor_group = {t: self.group_key[g] for t, g in group.items()}
        self.trackers = nn.ModuleDict({self.group_key[g]: ScaleTracker(group_bits[g]) for g in names})
        self.mods = nn.ModuleDict()
        self.bns = nn.ModuleDict()
        self.keys: dict[str, str] = {}
        for i, layer in enumerate(w.layers):
            key = f"l{i}"
            self.keys[layer.name] = key
            if layer.op in (OpKind.CONV, OpKind.DWCONV):
                self.mods[key] = nn.Conv2d(layer.C, layer.K, (layer.R, layer.S), stride=layer.stride,
                                           padding=layer.padding, groups=layer.groups, bias=False)
                self.bns[key] = nn.BatchNorm2d(layer.K)
            elif layer.op is OpKind.LINEAR:
                self.mods[key] = nn.Linear(layer.C, layer.K, bias=layer.bias)

    def step(self, tensor: str) -> torch.Tensor:
        """The grid of `tensor` (INPUT or a layer name)."""
        return self.trackers[self.tensor_group[tensor]].step

    def _quant(self, tensor: str, x: torch.Tensor, act: Activation, observe: bool = True) -> torch.Tensor:
        tracker = self.trackers[self.tensor_group[tensor]]
        if observe:
            tracker.observe(x)
        step = tracker.step
        lo, hi = grid_clamp(self.bits[tensor], act, float(step))
        return fake_quant(x, step, lo, hi)

    def weight(self, layer: Layer) -> tuple[torch.Tensor, torch.Tensor]:
        """(integer weights, per-output-channel step) of a MAC layer: symmetric, round half to
        even, as `precision.quantize_values`."""
        w = self.mods[self.keys[layer.name]].weight
        n = (1 << (layer.w_bits - 1)) - 1
        step = weight_scale(w) / n
        return torch.div(w, step).round().clamp(-n, n), step

    def folded(self, layer: Layer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(gain, value of one accumulator unit, integer bias) per output channel of a MAC
        layer in eval mode: its BatchNorm (or a linear layer's bias) folded, `integer` module
        docstring; float64."""
        key = self.keys[layer.name]
        _, w_step = self.weight(layer)
        with torch.no_grad():
            if layer.op is OpKind.LINEAR:
                gain = torch.ones(layer.K, dtype=torch.float64)
                b = self.mods[key].bias
                shift = b.double() if b is not None else torch.zeros(layer.K, dtype=torch.float64)
            else:
                bn = self.bns[key]
                gain = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
                shift = bn.bias.double() - gain * bn.running_mean.double()
            eff = gain * self.step(layer.inputs[0]).double() * w_step.double().reshape(-1)
            safe = torch.where(eff == 0, torch.ones_like(eff), eff)
            b_int = torch.where(eff == 0, torch.zeros_like(eff), torch.round(shift / safe)).clamp(-MAX_BIAS, MAX_BIAS)
        return gain, eff, b_int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tensors(x)[self.workload.layers[-1].name].flatten(1)

    def tensors(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every tensor of the network (INPUT and each layer's output) for images `x`."""
        t: dict[str, torch.Tensor] = {INPUT: self._quant(INPUT, x, Activation.NONE)}
        for layer in self.workload.layers:
            key = self.keys[layer.name]
            src = t[layer.inputs[0]]
            observe = True
            if layer.has_macs:
                q, step = self.weight(layer)
                wq = ste(self.mods[key].weight, q * step)
                if self.training:  # BatchNorm on batch statistics
                    if layer.op is OpKind.LINEAR:
                        y = F.linear(src.flatten(1), wq.reshape(layer.K, -1), self.mods[key].bias)
                    else:
                        conv = self.mods[key]
                        y = self.bns[key](F.conv2d(src, wq, None, conv.stride, conv.padding, 1, conv.groups))
                else:  # folded, the bias rounded to accumulator units: what the integer network holds
                    gain, eff, b_int = self.folded(layer)
                    if layer.op is OpKind.LINEAR:
                        y = F.linear(src.flatten(1), wq.reshape(layer.K, -1)) + (eff * b_int).to(src.dtype)
                    else:
                        conv = self.mods[key]
                        y = (F.conv2d(src, wq, None, conv.stride, conv.padding, 1, conv.groups)
                             * gain.to(src.dtype).reshape(1, -1, 1, 1) + (eff * b_int).to(src.dtype).reshape(1, -1, 1, 1))
            elif layer.op is OpKind.MAXPOOL:
                y, observe = F.max_pool2d(src, (layer.R, layer.S), layer.stride, layer.padding), False
            elif layer.op is OpKind.AVGPOOL:
                y, observe = self._avgpool(src, layer), False
            else:  # add: the inputs share one grid
                y = sum(t[name] for name in layer.inputs)  # type: ignore[assignment]
            if layer.activation is Activation.RELU:
                y = torch.relu(y)
            elif layer.activation is Activation.RELU6:
                y = F.relu6(y)
            t[layer.name] = self._quant(layer.name, y, layer.activation, observe)
        return t

    def _avgpool(self, src: torch.Tensor, layer: Layer) -> torch.Tensor:
        """The average rounded half up on the input's grid, exactly as the integer pool
        (`refmodel.pool_out`); the gradient of the plain average."""
        window = (layer.R, layer.S)
        avg = F.avg_pool2d(src, window, layer.stride, layer.padding)
        step = self.step(layer.inputs[0]).double()
        with torch.no_grad():
            n = layer.R * layer.S
            q = torch.round(src.double() / step)
            total = torch.round(F.avg_pool2d(q, window, layer.stride, layer.padding) * n).to(torch.int64)
            exact = torch.div(2 * total + n, 2 * n, rounding_mode="floor").double() * step
        return avg + (exact.to(avg.dtype) - avg).detach()

    def quant_params(self) -> dict[str, Any]:
        """Per tensor its bits, grid step and scale group; per MAC layer its weight bits and
        per-output-channel weight scales."""
        tensors = {t: {"bits": self.bits[t], "step": float(self.step(t)), "group": self.tensor_group[t]}
                   for t in self.tensor_group}
        layers = {}
        for layer in self.workload.layers:
            key = self.keys[layer.name]
            if key in self.mods:
                layers[layer.name] = {"w_bits": layer.w_bits, "a_bits": layer.a_bits,
                                      "weight_scale": weight_scale(self.mods[key].weight).flatten().tolist()}
        return {"tensors": tensors, "layers": layers}


@dataclass
class TrainResult:
    top1: float
    epochs: int
    seconds: float
    history: list[dict[str, float]]
    files: dict[str, str]
    net: QuantNet | None = None  # the trained network (eval mode)
    integer_top1: float | None = None  # of the integer network the HLS project runs (`integer.to_integer`)


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
          out: Path | None = None, stem: str = "model", device: torch.device | None = None, data_dir: str | None = None,
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
    net.eval()
    qat_l, int_l = logits_both(net.cpu(), to_integer(net), splits.test.images)
    labels = splits.test.labels.numpy()
    int_top1 = top1_of(int_l, labels)
    agreement = top1_of(int_l, qat_l.argmax(1))
    say(f"test top-1 {top1:.4f} (QAT), {int_top1:.4f} as the integer network the HLS project runs "
        f"(same class on {agreement:.2%} of the images)")
    files: dict[str, str] = {}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        wpath, qpath, rpath = out / f"{stem}.weights.pt", out / f"{stem}.quant.json", out / f"{stem}.train.json"
        state = {k: v.cpu() for k, v in net.state_dict().items()}
        write_atomic(wpath, lambda p: torch.save({"model": w.name, "layer_keys": net.keys, "state_dict": state}, p))
        write_atomic(qpath, json.dumps({"model": w.name, **net.quant_params()}, indent=1))
        report = {"model": w.name, "dataset": splits.name, "data_dir": data_dir, "top1": top1,
                  "integer_top1": int_top1, "agreement": agreement, "epochs": cfg.epochs, "seed": seed,
                  "limit_batches": limit_batches, "seconds": round(seconds, 3), "config": cfg.__dict__,
                  "history": history, "macs": w.total_macs,
                  "bits": sorted({(layer.w_bits, layer.a_bits) for layer in w.compute_layers})}
        write_atomic(rpath, json.dumps(report, indent=1))
        files = {"weights": str(wpath), "quant": str(qpath), "report": str(rpath)}
    return TrainResult(top1, cfg.epochs, seconds, history, files, net, int_top1)
