"""`dnac build --weights`: a network trained by `dnac train`, as the integer network the HLS
engines run, with its accuracy accounted.

`load_trained` reads `<stem>.weights.pt` (tensors only, `weights_only=True`) with the
`<stem>.quant.json` and `<stem>.train.json` that `dnac train` wrote beside it, checks that they
belong to the model being built (same name, same layers and bit widths, every tensor of the
right shape) and returns the trained `QuantNet`.  `deploy` converts it (`integer.to_integer`),
runs the integer reference model and the QAT network over the whole test split of the dataset
the weights were trained on, and picks the first N test images for the testbench.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dnac.compiler.errors import first_line
from dnac.compiler.workload.layer import Workload
from dnac.search import data as datasets
from dnac.search.errors import DataError
from dnac.search.integer import IntegerNetwork, logits_both, to_integer, top1
from dnac.search.train import QuantNet, check_fit

_FIELD = "--weights"


def companions(weights: Path) -> tuple[Path, Path]:
    """The quant.json and train.json `dnac train` wrote beside `weights`."""
    name = weights.name
    stem = name[: -len(".weights.pt")] if name.endswith(".weights.pt") else weights.stem
    return weights.with_name(f"{stem}.quant.json"), weights.with_name(f"{stem}.train.json")


def _json_object(path: Path) -> dict[str, Any]:
    """A JSON file `dnac train` wrote: an object, else `DataError` naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(str(path), _FIELD, f"unreadable: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise DataError(str(path), _FIELD, f"not a dnac train file: a JSON {type(data).__name__}, not an object")
    return data


def load_trained(w: Workload, weights: Path) -> tuple[QuantNet, dict[str, Any]]:
    """The trained network for `w` from `weights`, and its train.json; `DataError` (file, field,
    reason) when anything does not match."""
    quant_path, train_path = companions(weights)
    for path in (weights, quant_path, train_path):
        if not path.is_file():
            raise DataError(str(path), _FIELD, "not found (dnac train writes <model>.weights.pt, .quant.json and "
                            ".train.json together)")
    try:
        blob = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise DataError(str(weights), _FIELD, f"unreadable weights file: {first_line(exc)}") from None
    quant, info = (_json_object(path) for path in (quant_path, train_path))
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict):
        raise DataError(str(weights), _FIELD, "not a dnac train weights file")
    for what, name in (("weights", blob.get("model")), ("quant.json", quant.get("model")),
                       ("train.json", info.get("model"))):
        if name != w.name:
            raise DataError(str(weights), _FIELD, f"the {what} belong to model {name!r}, not {w.name!r}")
    layers = quant.get("layers")
    if not isinstance(layers, dict):
        raise DataError(str(quant_path), "layers", "missing, or not a mapping of layer names")
    for layer in w.compute_layers:
        got = layers.get(layer.name)
        if not isinstance(got, dict):
            raise DataError(str(quant_path), f"layers.{layer.name}", "missing: the weights were trained for "
                            "another network")
        if (got.get("w_bits"), got.get("a_bits")) != (layer.w_bits, layer.a_bits):
            raise DataError(str(quant_path), f"layers.{layer.name}", f"trained at w{got.get('w_bits')}/"
                            f"a{got.get('a_bits')}, the model says w{layer.w_bits}/a{layer.a_bits}")
    net = QuantNet(w)
    _check_tensors(net, blob["state_dict"], str(weights))
    try:
        net.load_state_dict(blob["state_dict"], strict=True)
    except (RuntimeError, TypeError, KeyError) as exc:
        raise DataError(str(weights), _FIELD, f"does not fit the model: {first_line(exc)}") from None
    if not all(bool(torch.isfinite(t).all()) for t in blob["state_dict"].values() if isinstance(t, torch.Tensor)):
        raise DataError(str(weights), _FIELD, "holds NaN or infinite values")
    return net.eval(), info


def _check_tensors(net: QuantNet, state: dict[str, Any], file: str) -> None:
    """Every tensor the model needs, of its shape, and nothing else, named by layer."""
    layer_of = {key: name for name, key in net.keys.items()}

    def where(key: str) -> str:
        parts = key.split(".")
        return f"'{key}' (layer '{layer_of[parts[1]]}')" if len(parts) > 2 and parts[1] in layer_of else f"'{key}'"

    need = net.state_dict()
    for key, t in need.items():
        if key not in state:
            raise DataError(file, _FIELD, f"does not fit the model: missing tensor {where(key)}")
        got = state[key]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(t.shape):
            shape = list(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise DataError(file, _FIELD, f"does not fit the model: tensor {where(key)} is {shape}, the model "
                            f"needs {list(t.shape)}")
    extra = sorted(set(state) - set(need))
    if extra:
        raise DataError(file, _FIELD, f"does not fit the model: unexpected tensor {where(extra[0])}")


@dataclass
class Deployment:
    """What `dnac build --weights` hands the HLS back-end and writes into report.json."""

    integer: IntegerNetwork
    images: np.ndarray  # the testbench's N integer images (N, C, H, W)
    labels: np.ndarray  # their classes
    report: dict[str, Any]  # report.json's `deploy` section


def deploy(w: Workload, weights: Path, n_images: int, model: str) -> Deployment:
    """Load, convert and measure (see the module docstring)."""
    net, info = load_trained(w, weights)
    dataset, data_dir = str(info.get("dataset")), info.get("data_dir")
    splits = datasets.load(dataset, data_dir if isinstance(data_dir, str) else None)
    check_fit(w, splits, model)
    test = splits.test
    if n_images > len(test):
        raise DataError(str(weights), "--images", f"{n_images} is more than the {len(test):,} test images of {dataset}")
    integer = to_integer(net)
    qat_l, int_l = logits_both(net, integer, test.images)
    labels = test.labels.numpy()
    n = n_images
    report = {
        "weights": str(weights), "dataset": dataset, "test_images": len(test), "images": n,
        "qat_top1": top1(qat_l, labels), "integer_top1": top1(int_l, labels),
        "agreement": top1(int_l, qat_l.argmax(1)),
        "qat_top1_images": top1(qat_l[:n], labels[:n]), "integer_top1_images": top1(int_l[:n], labels[:n]),
        "agreement_images": top1(int_l[:n], qat_l[:n].argmax(1)),
        "trained_top1": info.get("top1"),
    }
    return Deployment(integer, integer.quantize_input(test.images[:n].numpy()), labels[:n], report)
