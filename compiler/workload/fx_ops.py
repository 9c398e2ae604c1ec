"""One small handler per PyTorch op the torch.fx importer understands, and the dispatch tables.

Each handler receives the importer, the fx node and the module (or function) it calls, and
either emits one `ModelBuilder` entry, folds / fuses the node into the value before it, or
refuses it with a message naming the op and the user's source line.
"""

from __future__ import annotations

import builtins
import math
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from dnac.compiler.vocab import Activation, OpKind
from dnac.compiler.workload.fx_import import (
    SUPPORTED,
    Handler,
    _bind,
    _DimOf,
    _Importer,
    _ShapeOf,
    _show,
    _Value,
    describe,
)
from dnac.compiler.workload.layer import INPUT


# --------------------------------------------------------------------------- handlers
def input_handler(cx: _Importer, node: fx.Node, _: Any) -> None:
    cx.env[node] = _Value(INPUT, "input", (node,))


def _conv(cx: _Importer, node: fx.Node, m: nn.Conv2d) -> None:
    where = cx.where(node)
    if tuple(m.dilation) != (1, 1):
        cx.fail(node, f"dilated conv (dilation={tuple(m.dilation)}) is not supported{where}")
    if m.padding_mode != "zeros":
        cx.fail(node, f"conv with padding_mode={m.padding_mode!r} is not supported (only 'zeros'){where}")
    padding: Any = m.padding
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        if any(k % 2 == 0 for k in m.kernel_size):
            kernel = tuple(m.kernel_size)
            cx.fail(node, f"padding='same' with the even kernel {kernel} pads unevenly; not supported{where}")
        padding = tuple((k - 1) // 2 for k in m.kernel_size)
    v = cx.tensor(node, node.args[0])
    name = cx.b.conv(
        cx.name(node), m.out_channels, tuple(m.kernel_size), stride=tuple(m.stride), padding=tuple(padding),
        groups=m.groups, bias=m.bias is not None or _feeds_bn(cx, node), input=v.ref, source=cx.source(node),
    )
    cx.env[node] = _Value(name, "conv", (node,))


def _linear(cx: _Importer, node: fx.Node, m: nn.Linear) -> None:
    v = cx.tensor(node, node.args[0])
    meta = node.args[0].meta.get("tensor_meta")  # type: ignore[union-attr]
    if hasattr(meta, "shape") and len(meta.shape) != 2:
        cx.fail(
            node,
            f"Linear on a {len(meta.shape)}-D tensor {list(meta.shape)}{cx.where(node)};"
            " dnac needs (batch, features): flatten first",
        )
    name = cx.b.linear(
        cx.name(node), m.out_features, bias=m.bias is not None or _feeds_bn(cx, node), input=v.ref,
        source=cx.source(node),
    )
    cx.env[node] = _Value(name, "linear", (node,))


def _feeds_bn(cx: _Importer, node: fx.Node) -> bool:
    """A BatchNorm folded into this layer gives it a per-channel bias."""
    users = list(node.users)
    return (
        len(users) == 1
        and users[0].op == "call_module"
        and type(cx.module(users[0])) in (nn.BatchNorm1d, nn.BatchNorm2d)
    )


def _batchnorm(cx: _Importer, node: fx.Node, m: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
    v = cx.tensor(node, node.args[0])
    want = "linear" if isinstance(m, nn.BatchNorm1d) else "conv"
    what = f"{type(m).__name__} (module '{node.target}')"
    hint = f"; it can only be folded into a {'Linear' if want == 'linear' else 'Conv2d'} right before it"
    if v.kind != want or len(v.chain) != 1 or v.folded_bn or v.activated:
        src = v.chain[-1]
        after = "the network input" if v.kind == "input" else f"'{src.name}' ({describe(cx.root, src)})"
        cx.fail(node, f"{what}{cx.where(node)} follows {after}{hint}")
    if not m.track_running_stats:
        cx.fail(
            node,
            f"{what} has track_running_stats=False: it normalizes with batch statistics"
            f" and cannot be folded{cx.where(node)}",
        )
    channels = cx.shape(v)[0]
    if m.num_features != channels:
        cx.fail(node, f"{what} has num_features={m.num_features} but its input has {channels} channels{cx.where(node)}")
    cx.exclusive(node, v, what, verb="fold")
    cx.env[node] = v.then(node, folded_bn=True)


def _identity(cx: _Importer, node: fx.Node, _: Any) -> None:
    cx.env[node] = cx.tensor(node, node.args[0]).then(node)


def _activation(act: Activation) -> Handler:
    def handler(cx: _Importer, node: fx.Node, _: Any) -> None:
        cx.emit_activation(node, act, node.args[0] if node.args else node.kwargs.get("input"))

    return handler


def _hardtanh_module(cx: _Importer, node: fx.Node, m: nn.Hardtanh) -> None:
    _hardtanh(cx, node, float(m.min_val), float(m.max_val), node.args[0])


def _hardtanh_function(cx: _Importer, node: fx.Node, _: Any) -> None:
    a = _bind(node, ("input", "min_val", "max_val", "inplace"), min_val=-1.0, max_val=1.0)
    _hardtanh(cx, node, float(a["min_val"]), float(a["max_val"]), a["input"])


def _hardtanh(cx: _Importer, node: fx.Node, lo: float, hi: float, x: Any) -> None:
    if (lo, hi) != (0.0, 6.0):
        cx.fail(node, f"Hardtanh({lo:g}, {hi:g}) is not supported, only Hardtanh(0, 6) (= ReLU6){cx.where(node)}")
    cx.emit_activation(node, Activation.RELU6, x)


def _maxpool_module(cx: _Importer, node: fx.Node, m: nn.MaxPool2d) -> None:
    cx.emit_pool(
        node, OpKind.MAXPOOL, node.args[0], m.kernel_size, m.stride, m.padding,
        dilation=m.dilation, ceil_mode=m.ceil_mode, return_indices=m.return_indices,
    )


def _avgpool_module(cx: _Importer, node: fx.Node, m: nn.AvgPool2d) -> None:
    cx.emit_pool(node, OpKind.AVGPOOL, node.args[0], m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)


def _maxpool_function(cx: _Importer, node: fx.Node, _: Any) -> None:
    a = _bind(
        node, ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
        stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
    )
    cx.emit_pool(
        node, OpKind.MAXPOOL, a["input"], a["kernel_size"], a["stride"], a["padding"],
        dilation=a["dilation"], ceil_mode=a["ceil_mode"], return_indices=a["return_indices"],
    )


def _avgpool_function(cx: _Importer, node: fx.Node, _: Any) -> None:
    a = _bind(node, ("input", "kernel_size", "stride", "padding", "ceil_mode"), stride=None, padding=0, ceil_mode=False)
    cx.emit_pool(
        node, OpKind.AVGPOOL, a["input"], a["kernel_size"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"]
    )


def _adaptive_module(op: OpKind) -> Handler:
    def handler(cx: _Importer, node: fx.Node, m: nn.Module) -> None:
        cx.emit_adaptive(node, op, node.args[0], m.output_size)  # type: ignore[attr-defined]

    return handler


def _adaptive_function(op: OpKind) -> Handler:
    def handler(cx: _Importer, node: fx.Node, _: Any) -> None:
        a = _bind(node, ("input", "output_size", "return_indices"), return_indices=False)
        if a["return_indices"]:
            cx.fail(node, f"{describe(cx.root, node)} with return_indices=True is not supported{cx.where(node)}")
        cx.emit_adaptive(node, op, a["input"], a["output_size"])

    return handler


def _add(cx: _Importer, node: fx.Node, _: Any) -> None:
    a = _bind(node, ("input", "other"), alpha=1)
    if a.get("out") is not None:
        cx.fail(node, f"{describe(cx.root, node)} with out= is not supported{cx.where(node)}")
    cx.emit_add(node, a["input"], a["other"], a["alpha"])


def _flatten_module(cx: _Importer, node: fx.Node, m: nn.Flatten) -> None:
    _flatten(cx, node, node.args[0], m.start_dim, m.end_dim)


def _flatten_call(cx: _Importer, node: fx.Node, _: Any) -> None:
    a = _bind(node, ("input", "start_dim", "end_dim"), start_dim=0, end_dim=-1)
    _flatten(cx, node, a["input"], a["start_dim"], a["end_dim"])


def _flatten(cx: _Importer, node: fx.Node, x: Any, start: Any, end: Any) -> None:
    v = cx.tensor(node, x)
    meta = x.meta.get("tensor_meta")
    ndim = len(meta.shape) if hasattr(meta, "shape") else len(cx.shape(v)) + 1  # with the batch
    if start != 1 or end not in (-1, ndim - 1):
        cx.fail(
            node,
            f"{describe(cx.root, node)}(start_dim={start}, end_dim={end}) is not a per-sample flatten{cx.where(node)};"
            " use torch.flatten(x, 1)",
        )
    cx.emit_flatten(node, v)


def _view(cx: _Importer, node: fx.Node, _: Any) -> None:
    """`x.view(x.size(0), -1)` / `x.reshape(x.shape[0], -1)` / `x.view(-1, C*H*W)` as a flatten."""
    x = node.args[0] if node.args else node.kwargs.get("input")
    shape: Any = node.args[1:] if node.args else ()
    if "shape" in node.kwargs or "size" in node.kwargs:
        shape = node.kwargs.get("shape", node.kwargs.get("size"))
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    v = cx.tensor(node, x)
    flat = math.prod(cx.shape(v))
    ok = len(shape) == 2 and (
        (_is_batch(cx, shape[0]) and shape[1] in (-1, flat)) or (shape[0] == -1 and shape[1] == flat)
    )
    if not ok:
        cx.fail(
            node,
            f"{describe(cx.root, node)}{_show(tuple(shape))}{cx.where(node)} is not a flatten;"
            " dnac supports only x.view(x.size(0), -1) style reshapes",
        )
    cx.emit_flatten(node, v)


def _is_batch(cx: _Importer, arg: Any) -> bool:
    value = cx.env.get(arg) if isinstance(arg, fx.Node) else None
    return isinstance(value, _DimOf) and value.index == 0


_SHAPE_USERS = {("call_method", "view"), ("call_method", "reshape"), ("call_function", torch.reshape)}


def _shape_value(cx: _Importer, node: fx.Node, value: _ShapeOf | _DimOf) -> None:
    """Shape queries may only feed a flatten (or, for a whole shape, an index into it)."""
    allowed = set(_SHAPE_USERS)
    if isinstance(value, _ShapeOf):
        allowed.add(("call_function", operator.getitem))
    for user in node.users:
        if (user.op, user.target) not in allowed:
            cx.fail(
                node,
                f"{describe(cx.root, node)}{cx.where(node)} feeds '{user.name}' ({describe(cx.root, user)});"
                " tensor shapes are only supported as the batch size of a flatten, x.view(x.size(0), -1)",
            )
    cx.env[node] = value


def _size(cx: _Importer, node: fx.Node, _: Any) -> None:
    a = _bind(node, ("input", "dim"), dim=None)
    cx.tensor(node, a["input"])
    dim = a["dim"]
    _shape_value(cx, node, _ShapeOf(a["input"]) if dim is None else _DimOf(a["input"], int(dim)))


def _getattr(cx: _Importer, node: fx.Node, _: Any) -> None:
    obj, attr = node.args[0], node.args[1]
    if attr != "shape":
        cx.fail(node, f"unsupported op {describe(cx.root, node)}{cx.where(node)}; supported: {SUPPORTED}")
    cx.tensor(node, obj)
    _shape_value(cx, node, _ShapeOf(obj))  # type: ignore[arg-type]


def _getitem(cx: _Importer, node: fx.Node, _: Any) -> None:
    obj, index = node.args[0], node.args[1]
    value = cx.env.get(obj) if isinstance(obj, fx.Node) else None
    if not isinstance(value, _ShapeOf) or not isinstance(index, int):
        cx.fail(
            node,
            f"unsupported op indexing ({describe(cx.root, node)}){cx.where(node)}; supported: {SUPPORTED}",
        )
    _shape_value(cx, node, _DimOf(value.tensor, index))


# --------------------------------------------------------------------------- dispatch tables
MODULE_HANDLERS: dict[type[nn.Module], Handler] = {
    nn.Conv2d: _conv,
    nn.Linear: _linear,
    nn.BatchNorm1d: _batchnorm,
    nn.BatchNorm2d: _batchnorm,
    nn.ReLU: _activation(Activation.RELU),
    nn.ReLU6: _activation(Activation.RELU6),
    nn.Hardtanh: _hardtanh_module,
    nn.MaxPool2d: _maxpool_module,
    nn.AvgPool2d: _avgpool_module,
    nn.AdaptiveAvgPool2d: _adaptive_module(OpKind.AVGPOOL),
    nn.AdaptiveMaxPool2d: _adaptive_module(OpKind.MAXPOOL),
    nn.Flatten: _flatten_module,
    nn.Dropout: _identity,
    nn.Dropout1d: _identity,
    nn.Dropout2d: _identity,
    nn.Identity: _identity,
}

FUNCTION_HANDLERS: dict[Any, Handler] = {
    F.relu: _activation(Activation.RELU),
    torch.relu: _activation(Activation.RELU),
    torch.relu_: _activation(Activation.RELU),
    F.relu6: _activation(Activation.RELU6),
    F.hardtanh: _hardtanh_function,
    F.max_pool2d: _maxpool_function,
    torch.max_pool2d: _maxpool_function,
    F.avg_pool2d: _avgpool_function,
    F.adaptive_avg_pool2d: _adaptive_function(OpKind.AVGPOOL),
    F.adaptive_max_pool2d: _adaptive_function(OpKind.MAXPOOL),
    operator.add: _add,
    operator.iadd: _add,
    torch.add: _add,
    torch.flatten: _flatten_call,
    torch.reshape: _view,
    F.dropout: _identity,
    F.dropout1d: _identity,
    F.dropout2d: _identity,
    builtins.getattr: _getattr,
    operator.getitem: _getitem,
}

METHOD_HANDLERS: dict[str, Handler] = {
    "relu": _activation(Activation.RELU),
    "relu_": _activation(Activation.RELU),
    "add": _add,
    "add_": _add,
    "flatten": _flatten_call,
    "view": _view,
    "reshape": _view,
    "size": _size,
    "contiguous": _identity,
}
