"""Import a PyTorch `nn.Module` as a dnac `Workload` with torch.fx.

Why torch.fx: symbolic tracing turns `forward` into a flat graph of calls (module calls with
their paths such as `layer1.0.conv1`, torch functions, tensor methods) in execution order,
with the edges a residual connection needs and, with `record_stack_traces`, the user's source
line for every call.  Shape propagation on a zeros input then gives every tensor's shape, so
the importer only translates each call into one `ModelBuilder` entry and lets the builder own
the shape rules and messages; the propagated shapes double as a cross-check of the builder.

Why BatchNorm is folded: at inference a BatchNorm is a per-channel scale and shift, which folds
exactly into the weights and bias of the conv / linear right before it.  An accelerator never
runs it as a layer, so it adds no layer (the producer gains a bias) -- but only where folding
is exact: directly after a conv / linear whose raw output nobody else reads.

Why activations fuse: ReLU / ReLU6 are applied by the layer's output stage as data leaves the
PE array (`Layer.activation`), not as a pass over memory, so they become an attribute of the
producing layer -- again only when no other consumer needs the value before the activation.

Everything else is refused with a `ModelError` whose field names the fx node and whose reason
names the op and the user's source line.  One small handler per op kind, found through the
dispatch tables of `fx_ops`.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import math
import operator
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from dnac.compiler.errors import ModelError, first_line
from dnac.compiler.vocab import Activation, OpKind
from dnac.compiler.workload.builder import ModelBuilder
from dnac.compiler.workload.layer import INPUT, Workload

__all__ = ["SUPPORTED", "from_torch", "load_factory", "module_from_spec"]

from dnac.compiler.workload.module_spec import load_factory, module_from_spec

#: What the importer understands, for the "supported: ..." part of error messages.
SUPPORTED = (
    "Conv2d, Linear, BatchNorm1d/BatchNorm2d (folded into the conv/linear before it), "
    "ReLU/ReLU6/Hardtanh(0, 6) (fused into the layer before it), MaxPool2d, AvgPool2d, "
    "AdaptiveAvgPool2d, residual add of two tensors, flatten (torch.flatten(x, 1), nn.Flatten, "
    "x.view(x.size(0), -1)), Dropout/Identity (skipped)"
)

_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_FRAME = re.compile(
    r'File "(?P<file>[^"]+)", line (?P<line>\d+), in [^\n]*'
    r'(?:\n(?P<code>[ \t]+(?![ \t])(?!File ")[^\n]*))?'  # the code line, absent for exec'd code
)


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class _Value:
    """What an fx node that yields a tensor stands for in the builder."""

    ref: str  # builder tensor name (a layer, a flatten view or INPUT)
    kind: str  # what made the tensor: "input", "conv", "linear", "pool", "add", "flatten"
    chain: tuple[fx.Node, ...]  # the node that made it, then the aliases applied since
    folded_bn: bool = False
    activated: bool = False

    def then(self, node: fx.Node, **changes: bool) -> _Value:
        return replace(self, chain=self.chain + (node,), **changes)


@dataclass(frozen=True)
class _ShapeOf:
    """`x.shape` / `x.size()`: only good for picking out the batch size of a flatten."""

    tensor: fx.Node


@dataclass(frozen=True)
class _DimOf:
    """`x.size(i)` / `x.shape[i]`."""

    tensor: fx.Node
    index: int


# --------------------------------------------------------------------------- the importer
class _Importer:
    """Walks the traced graph once, in order, feeding a `ModelBuilder`."""

    def __init__(self, root: nn.Module, builder: ModelBuilder, file: str) -> None:
        self.root = root
        self.b = builder
        self.file = file
        self.env: dict[fx.Node, Any] = {}
        self.names: set[str] = {INPUT}

    # ---------------------------------------------------------------- errors and places
    def fail(self, node: fx.Node, reason: str) -> NoReturn:
        raise ModelError(self.file, f"node '{node.name}'", reason)

    def where(self, node: fx.Node) -> str:
        """` at file:line (`code`)` for messages, or "" when fx recorded no stack."""
        loc, code = _user_frame(node)
        if not loc:
            return ""
        return f" at {loc} (`{code}`)" if code else f" at {loc}"

    def source(self, node: fx.Node) -> str:
        return _user_frame(node)[0]

    # ---------------------------------------------------------------- arguments
    def tensor(self, node: fx.Node, arg: Any) -> _Value:
        """The builder tensor behind an argument that must be a tensor."""
        value = self.env.get(arg) if isinstance(arg, fx.Node) else None
        if not isinstance(value, _Value):
            self.fail(node, f"{describe(self.root, node)} expects a tensor, got {_show(arg)}{self.where(node)}")
        return value

    def shape(self, value: _Value) -> tuple[int, ...]:
        return self.b.shape_of(value.ref)

    def module(self, node: fx.Node) -> nn.Module:
        return self.root.get_submodule(str(node.target))

    # ---------------------------------------------------------------- naming
    def name(self, node: fx.Node) -> str:
        """Module path for module calls (`layer1.0.conv1`), `<enclosing module>.<op>` otherwise."""
        if node.op == "call_module":
            base = str(node.target)
        else:
            op = re.sub(r"_\d+$", "", node.name)
            scope = _scope(node)
            base = f"{scope}.{op}" if scope else op
        name, i = base, 0
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    # ---------------------------------------------------------------- fusion rules
    def exclusive(self, node: fx.Node, value: _Value, what: str, verb: str = "fuse") -> None:
        """`what` may rewrite `value`'s producer only if nobody else reads the raw output."""
        for n in value.chain:
            others = [u.name for u in n.users if u is not node and u not in value.chain]
            if others:
                self.fail(
                    node,
                    f"cannot {verb} {what} into '{value.ref}'{self.where(node)}: its output"
                    f" ('{n.name}') is also read by {', '.join(repr(o) for o in others)}",
                )

    # ---------------------------------------------------------------- emitters
    def emit_pool(
        self, node: fx.Node, op: OpKind, x: Any, kernel: Any, stride: Any, padding: Any,
        *, dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False,
    ) -> None:
        what = describe(self.root, node)
        if ceil_mode:
            self.fail(node, f"{what} with ceil_mode=True is not supported{self.where(node)}")
        if _pair(dilation) != (1, 1):
            self.fail(node, f"{what} with dilation={_show(dilation)} is not supported{self.where(node)}")
        if return_indices:
            self.fail(node, f"{what} with return_indices=True is not supported{self.where(node)}")
        v = self.tensor(node, x)
        k2 = _pair(kernel)
        s2 = k2 if stride is None or (isinstance(stride, (list, tuple)) and not stride) else _pair(stride)
        name = self.b.pool(
            self.name(node), op, k2, stride=s2, padding=_pair(padding), input=v.ref, source=self.source(node)
        )
        self.env[node] = _Value(name, "pool", (node,))

    def emit_adaptive(self, node: fx.Node, op: OpKind, x: Any, output_size: Any) -> None:
        v = self.tensor(node, x)
        shape = self.shape(v)
        if len(shape) != 3:
            what = describe(self.root, node)
            self.fail(node, f"{what} needs a (C, H, W) tensor, got {list(shape)}{self.where(node)}")
        _, h, w = shape
        oh, ow = _pair(output_size) if not isinstance(output_size, (list, tuple)) else tuple(output_size)
        oh, ow = h if oh is None else int(oh), w if ow is None else int(ow)
        if (oh, ow) == (h, w):
            self.env[node] = v.then(node)  # the identity
            return
        if (oh, ow) == (1, 1):
            kernel = None  # global pooling
        elif h % oh == 0 and w % ow == 0:
            kernel = (h // oh, w // ow)
        else:
            self.fail(
                node,
                f"{describe(self.root, node)} from {h}x{w} to {oh}x{ow} has uneven windows;"
                f" dnac supports output 1, the input size, or a size that divides it{self.where(node)}",
            )
        name = self.b.pool(self.name(node), op, kernel, input=v.ref, source=self.source(node))
        self.env[node] = _Value(name, "pool", (node,))

    def emit_flatten(self, node: fx.Node, v: _Value) -> None:
        if len(self.shape(v)) == 1:  # already flat: a no-op
            self.env[node] = v.then(node)
            return
        name = self.b.flatten(self.name(node), input=v.ref)
        self.env[node] = _Value(name, "flatten", (node,))

    def emit_activation(self, node: fx.Node, act: Activation, x: Any) -> None:
        v = self.tensor(node, x)
        if v.kind in ("input", "flatten"):
            what = "the network input" if v.kind == "input" else f"the flatten view '{v.ref}'"
            self.fail(
                node,
                f"{describe(self.root, node)} on {what} has no layer to fuse into{self.where(node)};"
                " dnac fuses activations into the conv/linear/pool/add right before them",
            )
        self.exclusive(node, v, describe(self.root, node))
        self.b.activation(act, input=v.ref)
        self.env[node] = v.then(node, activated=True)

    def emit_add(self, node: fx.Node, a: Any, b: Any, alpha: Any = 1) -> None:
        if alpha not in (1, None):
            self.fail(node, f"{describe(self.root, node)} with alpha={alpha!r} is not supported{self.where(node)}")
        for arg in (a, b):
            if not isinstance(self.env.get(arg) if isinstance(arg, fx.Node) else None, _Value):
                self.fail(
                    node,
                    f"{describe(self.root, node)} of a tensor and {_show(arg)} is not supported{self.where(node)};"
                    " dnac supports residual adds of two tensors",
                )
        va, vb = self.env[a], self.env[b]
        name = self.b.add(self.name(node), [va.ref, vb.ref], source=self.source(node))
        self.env[node] = _Value(name, "add", (node,))

    # ---------------------------------------------------------------- the walk
    def run(self, graph: fx.Graph) -> None:
        for node in graph.nodes:
            if node.op == "output":
                continue
            handler, target = self.lookup(node)
            if handler is None:
                self.fail(node, f"unsupported op {describe(self.root, node)}{self.where(node)}; supported: {SUPPORTED}")
            try:
                handler(self, node, target)
            except ModelError as e:
                if e.field.startswith("node '"):
                    raise
                # a builder error: say which node, keep what the builder found (its
                # `layers[i]` entry index means nothing to a torch user)
                field = re.sub(r"^layers\[\d+\]\.?", "", e.field)
                note = f" ({field})" if field else ""
                self.fail(node, f"{describe(self.root, node)}{self.where(node)}: {e.reason}{note}")
            self.check_shape(node)

    def lookup(self, node: fx.Node) -> tuple[Handler | None, Any]:
        from dnac.compiler.workload.fx_ops import FUNCTION_HANDLERS, METHOD_HANDLERS, MODULE_HANDLERS, input_handler

        if node.op == "placeholder":
            return input_handler, None
        if node.op == "call_module":
            m = self.module(node)
            return MODULE_HANDLERS.get(type(m)), m
        if node.op == "call_function":
            return FUNCTION_HANDLERS.get(node.target), node.target  # type: ignore[call-overload]
        if node.op == "call_method":
            return METHOD_HANDLERS.get(str(node.target)), node.target
        return None, None  # get_attr: a parameter or buffer used directly

    def check_shape(self, node: fx.Node) -> None:
        """Cross-check the builder's shape against the one torch propagated."""
        value = self.env.get(node)
        meta = node.meta.get("tensor_meta")
        if not isinstance(value, _Value) or not hasattr(meta, "shape"):
            return
        ours, torch_shape = tuple(self.shape(value)), tuple(int(d) for d in meta.shape[1:])
        if len(torch_shape) == 1 and len(ours) == 3 and ours[1:] == (1, 1):
            ours = ours[:1]  # a linear layer's (K, 1, 1) is torch's (K,)
        if ours != torch_shape:
            self.fail(
                node,
                f"{describe(self.root, node)}{self.where(node)}: dnac infers shape {list(ours)}"
                f" but torch computes {list(torch_shape)}; this use of the op is not supported",
            )


Handler = Callable[[_Importer, fx.Node, Any], None]


# --------------------------------------------------------------------------- helpers
def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return (int(value[0]), int(value[0]))
        return (int(value[0]), int(value[1]))
    return (int(value), int(value))


def _bind(node: fx.Node, names: tuple[str, ...], **defaults: Any) -> dict[str, Any]:
    """Positional and keyword arguments of a call_function / call_method node by name."""
    bound = dict(defaults)
    bound.update(zip(names, node.args))
    bound.update(node.kwargs)
    return bound


def _show(arg: Any) -> str:
    if isinstance(arg, fx.Node):
        return f"'{arg.name}'"
    if isinstance(arg, (list, tuple)):
        return "(" + ", ".join(_show(a) for a in arg) + ("," if len(arg) == 1 else "") + ")"
    return repr(arg)


def _scope(node: fx.Node) -> str:
    """The path of the innermost module whose forward made `node` ("" at the top)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    key, val = list(stack.items())[-1]
    return str(val[0] if isinstance(val, tuple) else key)


def _display_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


def _user_frame(node: fx.Node) -> tuple[str, str]:
    """("file:line", code) of the last stack frame outside torch itself, or ("", "")."""
    trace = node.stack_trace or ""
    best: tuple[str, str] = ("", "")
    for m in _FRAME.finditer(trace):
        path = m.group("file")
        if os.path.abspath(path).startswith(_TORCH_DIR):
            continue
        best = (f"{_display_path(path)}:{m.group('line')}", (m.group("code") or "").strip())
    return best


def _function_name(fn: Any) -> str:
    spaces = (("torch", torch), ("F", F), ("operator", operator), ("math", math), ("", builtins))
    name = getattr(fn, "__name__", None)
    for prefix, ns in spaces:
        if name and getattr(ns, name, None) is fn:
            return f"{prefix}.{name}" if prefix else name
    for prefix, ns in spaces:
        for attr, val in vars(ns).items():
            if val is fn:
                return f"{prefix}.{attr}" if prefix else attr
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def describe(root: nn.Module, node: fx.Node) -> str:
    """How an error message names the op of `node`."""
    if node.op == "call_module":
        m = root.get_submodule(str(node.target))
        cls = type(m)
        prefix = "nn." if cls.__module__.startswith("torch.nn") else f"{cls.__module__}."
        return f"{prefix}{cls.__name__} (module '{node.target}')"
    if node.op == "call_function":
        if node.target is builtins.getattr and len(node.args) > 1:
            return f"getattr(..., {node.args[1]!r})"
        return _function_name(node.target)
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "get_attr":
        return f"get_attr '{node.target}' (a parameter or buffer used directly in forward)"
    return node.op



# --------------------------------------------------------------------------- public API
class _Tracer(fx.Tracer):
    """The default tracer (torch.nn modules are leaves) that records each node's stack."""

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True


def from_torch(
    module: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    name: str | None = None,
    batch: int = 1,
    w_bits: int = 16,
    a_bits: int = 16,
    file: str = "<torch>",
) -> Workload:
    """Trace `module` with torch.fx and translate it into a `Workload`.

    `input_shape` is one sample's (C, H, W).  Shapes are propagated on a zeros input of batch 1
    in eval mode without gradients; the module's train/eval flags are restored afterwards.
    """
    if not isinstance(module, nn.Module):
        raise ModelError(file, "torch", f"expected an nn.Module, got {type(module).__name__}")
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or any(not isinstance(d, int) or isinstance(d, bool) or d <= 0 for d in input_shape)
    ):
        raise ModelError(file, "input_shape", f"must be three positive integers (C, H, W), got {input_shape!r}")
    model_name = name or type(module).__name__
    builder = ModelBuilder(model_name, tuple(input_shape), batch=batch, w_bits=w_bits, a_bits=a_bits, file=file)

    try:
        graph = _Tracer().trace(module)
    except Exception as e:  # user code runs here: any failure is the model's  # noqa: BLE001
        raise ModelError(
            file, "torch",
            f"torch.fx cannot trace {type(module).__name__}: {type(e).__name__}: {first_line(e)}"
            " (forward must not branch on tensor values)",
        ) from None
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        args = ", ".join(n.name for n in placeholders)
        raise ModelError(
            file, "torch", f"forward takes {len(placeholders)} inputs ({args}); dnac imports single-input networks"
        )

    gm = fx.GraphModule(module, graph)
    _propagate_shapes(gm, module, tuple(input_shape), file)
    importer = _Importer(module, builder, file)
    importer.run(graph)
    return builder.build()


def _propagate_shapes(gm: fx.GraphModule, module: nn.Module, input_shape: tuple[int, ...], file: str) -> None:
    params = [p for p in module.parameters() if p.is_floating_point()]
    dtype = params[0].dtype if params else torch.float32
    device = params[0].device if params else torch.device("cpu")
    modes = {m: m.training for m in list(module.modules()) + list(gm.modules())}
    try:
        gm.eval()
        # ShapeProp prints the traceback of a failing node before re-raising; keep it quiet
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(gm).propagate(torch.zeros((1, *input_shape), dtype=dtype, device=device))
    except Exception as exc:  # user code runs here too  # noqa: BLE001
        e = exc.__cause__ or exc
        raise ModelError(
            file, "input_shape",
            f"running the model on an input of shape {list(input_shape)} failed: {type(e).__name__}: {first_line(e)}",
        ) from None
    finally:
        for m, training in modes.items():
            m.training = training
