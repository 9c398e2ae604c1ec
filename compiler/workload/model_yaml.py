"""model.yaml -> Workload.

The schema (documented with a complete example in README.md):

    name: <str>                          # model name
    input_shape: [C, H, W]               # one sample
    batch: <int>                         # optional, default 1
    precision: {w_bits: 16, a_bits: 16}  # optional defaults for every layer
    target: {zc706: {dsp: 600}}          # optional per-target overrides (budgets, clock)
    layers:                              # in order; each reads the previous entry unless `input:`
      - {name: c1, op: conv, out_channels: 16, kernel: 3, stride: 1, padding: 1,
         groups: 1, bias: false, activation: relu, w_bits: 8, a_bits: 8, input: <name>}
      - {name: dw, op: dwconv, kernel: 3, stride: 2, padding: 1}   # groups = channels
      - {name: p1, op: maxpool | avgpool, kernel: 2, stride: 2, padding: 0}  # kernel: global
      - {name: r1, op: add, inputs: [a, b], activation: relu}
      - {name: f, op: flatten}
      - {name: fc, op: linear, out_features: 10, bias: true}
    # instead of `layers`, a PyTorch module factory traced with torch.fx:
    torch: package.module:factory
    torch_kwargs: {num_classes: 10}      # optional keyword arguments for the factory

Parsing is a thin validator over `ModelBuilder`: this module checks types and field names,
the builder checks shapes, so errors are uniform (file, `layers[i].field`, reason).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dnac.compiler.workload.builder import MAX_BITS, ModelBuilder
from dnac.compiler.workload.layer import Workload
from dnac.compiler.yamlio import Fields, int_list, int_or_pair, read_yaml

TOP_KEYS = {"name", "input_shape", "batch", "precision", "target", "layers", "torch", "torch_kwargs"}
_COMMON = {"name", "op", "input"}
_BITS = {"w_bits", "a_bits"}


def _conv_entry(b: ModelBuilder, f: Fields, name: str, inp: str | None, *, depthwise: bool) -> None:
    """conv and dwconv entries; a depthwise conv's groups (and default width) are its channels."""
    extra = set() if depthwise else {"groups"}
    f.only(_COMMON | _BITS | extra | {"out_channels", "kernel", "stride", "padding", "bias", "activation"})
    channels = b.shape_of(b.last if inp is None else inp)[0] if depthwise else None
    b.conv(
        name,
        f.int_("out_channels", channels) if depthwise else f.int_("out_channels"),
        int_or_pair(f, "kernel"),
        stride=int_or_pair(f, "stride", 1),
        padding=int_or_pair(f, "padding", 0, min=0),
        groups=channels if depthwise else f.int_("groups", 1),
        bias=f.bool_("bias", False),
        activation=f.str_("activation", "none"),
        input=inp,
        w_bits=f.int_("w_bits", None, max=MAX_BITS),
        a_bits=f.int_("a_bits", None, max=MAX_BITS),
        source=f.path,
    )


def _conv(b: ModelBuilder, f: Fields, name: str, inp: str | None) -> None:
    _conv_entry(b, f, name, inp, depthwise=False)


def _dwconv(b: ModelBuilder, f: Fields, name: str, inp: str | None) -> None:
    _conv_entry(b, f, name, inp, depthwise=True)


def _linear(b: ModelBuilder, f: Fields, name: str, inp: str | None) -> None:
    f.only(_COMMON | _BITS | {"out_features", "bias", "activation"})
    b.linear(
        name,
        f.int_("out_features"),
        bias=f.bool_("bias", False),
        activation=f.str_("activation", "none"),
        input=inp,
        w_bits=f.int_("w_bits", None, max=MAX_BITS),
        a_bits=f.int_("a_bits", None, max=MAX_BITS),
        source=f.path,
    )


def _pool(op: str) -> Callable[[ModelBuilder, Fields, str, str | None], None]:
    def handler(b: ModelBuilder, f: Fields, name: str, inp: str | None) -> None:
        f.only(_COMMON | {"kernel", "stride", "padding", "activation", "a_bits"})
        kernel = None if f.raw("kernel", "global") == "global" else int_or_pair(f, "kernel")
        b.pool(
            name,
            op,
            kernel,
            stride=int_or_pair(f, "stride", None),
            padding=int_or_pair(f, "padding", 0, min=0),
            activation=f.str_("activation", "none"),
            input=inp,
            a_bits=f.int_("a_bits", None, max=MAX_BITS),
            source=f.path,
        )

    return handler


def _add(b: ModelBuilder, f: Fields, name: str, inp: str | None) -> None:
    f.only({"name", "op", "inputs", "activation", "a_bits"})
    inputs = f.list_("inputs")
    b.add(name, inputs, activation=f.str_("activation", "none"), a_bits=f.int_("a_bits", None, max=MAX_BITS), source=f.path)


def _flatten(b: ModelBuilder, f: Fields, name: str, inp: str | None) -> None:
    f.only(_COMMON)
    b.flatten(name, input=inp)


OPS: dict[str, Callable[[ModelBuilder, Fields, str, str | None], None]] = {
    "conv": _conv,
    "dwconv": _dwconv,
    "linear": _linear,
    "fc": _linear,
    "maxpool": _pool("maxpool"),
    "avgpool": _pool("avgpool"),
    "add": _add,
    "flatten": _flatten,
}


def load_model_yaml(path: str | Path) -> Workload:
    """Read and validate a model.yaml file."""
    file = str(path)
    data = read_yaml(path)
    return parse_model(data, file, base_dir=Path(path).parent)


def parse_model(data: Any, file: str, base_dir: Path | None = None) -> Workload:
    top = Fields(data, file)
    top.only(TOP_KEYS)
    name = top.str_("name")
    c, h, w = int_list(top, "input_shape", 3)
    batch = top.int_("batch", 1)
    prec = top.map_("precision", {})
    prec.only({"w_bits", "a_bits"})
    w_bits = prec.int_("w_bits", 16, max=MAX_BITS)
    a_bits = prec.int_("a_bits", 16, max=MAX_BITS)
    overrides = _overrides(top)
    if top.has("torch"):
        if top.has("layers"):
            top.fail("torch", "give either `layers` or `torch`, not both")
        return _from_torch(top, name, (c, h, w), batch, w_bits, a_bits, overrides, base_dir)
    b = ModelBuilder(name, (c, h, w), batch=batch, w_bits=w_bits, a_bits=a_bits, file=file)
    entries = top.list_("layers")
    if not entries:
        top.fail("layers", "the layer list is empty")
    for f in top.items("layers"):
        op = f.str_("op")
        if op not in OPS:
            f.fail("op", f"unknown op {op!r} (known: {', '.join(OPS)})")
        name_ = f.str_("name")
        inp = f.str_("input", None)
        OPS[op](b, f, name_, inp)
    return b.build(target_overrides=overrides, source=file)


def _overrides(top: Fields) -> dict[str, dict[str, float]]:
    """`target: {<target name>: {<key>: <value>}}`, each section checked against its target."""
    from dnac.compiler.targets import apply_overrides, known_targets, load_target

    if not top.has("target"):
        return {}
    t = top.map_("target")
    out: dict[str, dict[str, float]] = {}
    for name, section in t.data.items():
        if name not in known_targets():
            t.fail(str(name), f"unknown target {name!r} (known: {', '.join(known_targets())})")
        apply_overrides(load_target(name), section, file=top.file, field_prefix=t.sub(str(name)))
        out[str(name)] = dict(section)
    return out


def _from_torch(
    top: Fields,
    name: str,
    shape: tuple[int, int, int],
    batch: int,
    w_bits: int,
    a_bits: int,
    overrides: dict[str, dict[str, float]],
    base_dir: Path | None,
) -> Workload:
    from dnac.compiler.workload.fx_import import from_torch, module_from_spec  # torch is heavy
    from dnac.compiler.workload.module_spec import TRUST_ENV, code_trusted

    spec = top.str_("torch")
    if not code_trusted():  # before anything is imported: a model.yaml is data, not code
        top.fail("torch", f"naming a PyTorch factory ({spec!r}) runs its module's code; for a file you trust, "
                          f"allow it with `dnac --trust-code ...` or {TRUST_ENV}=1")
    kwargs = top.map_("torch_kwargs", {}).data
    module = module_from_spec(spec, top.file, kwargs=kwargs, search_path=base_dir)
    wl = from_torch(module, shape, name=name, batch=batch, w_bits=w_bits, a_bits=a_bits, file=top.file)
    return Workload(wl.name, wl.input_shape, wl.batch, wl.layers, overrides, f"torch:{spec}")
