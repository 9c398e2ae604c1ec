"""Build a `Workload` layer by layer, inferring and checking every shape.

One builder serves the model.yaml parser, the zoo and the torch.fx importer, so that a shape
rule or an error message exists once.  Errors name the file and the entry (`layers[3]`) with
the field and the reason, as the CLI contract requires.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NoReturn

from dnac.compiler.errors import ModelError
from dnac.compiler.vocab import Activation, OpKind
from dnac.compiler.workload.layer import INPUT, Layer, Workload, out_extent

#: Widths a layer may use; 1-bit (binary) up to 32-bit integer arithmetic.
MIN_BITS, MAX_BITS = 1, 32

# Size bounds, checked as each entry is read and before anything is allocated for it, so that a
# mistyped `out_channels: 1e9` is one line instead of minutes of search or a memory error.  Each
# sits far above any published CNN (VGG16: 15.5 GMAC, 4096 features, 224x224 inputs; the
# largest ImageNet nets: ~5,000 channels, ~1,000 layers), so a real network never meets one.
MAX_EXTENT = 1 << 16  # any channel count, feature count, spatial extent, kernel, stride or padding
MAX_BATCH = 4096  # samples per inference
MAX_TENSOR = 1 << 28  # elements of one sample's tensor (flattened features included)
MAX_MACS = 1 << 40  # multiply-accumulates of one sample through the whole network
MAX_LAYERS = 4096  # entries of a model


@dataclass(frozen=True)
class _Tensor:
    """A named tensor the next entries can read: a layer output, a flatten view, the input."""

    producer: str  # the layer (or INPUT) whose output this is
    shape: tuple[int, ...]  # (C, H, W), or (F,) once flattened


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class ModelBuilder:
    """Appends layers to a network under construction.

    Each method takes the entry's `name` and, optionally, `input` (default: the previous
    entry's output).  Layers read the activation width of the layer before them unless told.
    """

    def __init__(
        self,
        name: str,
        input_shape: tuple[int, int, int],
        *,
        batch: int = 1,
        w_bits: int = 16,
        a_bits: int = 16,
        file: str = "<python>",
    ) -> None:
        self.file = file
        self.name = name
        self.batch = batch
        self.w_bits = w_bits
        self.a_bits = a_bits
        self._layers: list[Layer] = []
        self._tensors: dict[str, _Tensor] = {INPUT: _Tensor(INPUT, tuple(input_shape))}
        self._last = INPUT
        self._entry = 0  # index of the entry being added, for `layers[i]` in messages
        self.input_shape = tuple(input_shape)
        self._check_shape_positive(self.input_shape, "input_shape")
        self._check_bits(w_bits, "precision.w_bits")
        self._check_bits(a_bits, "precision.a_bits")
        if batch < 1:
            self.fail("batch", f"must be a positive integer, got {batch}")
        if batch > MAX_BATCH:
            self.fail("batch", f"{batch} is more than dnac supports ({MAX_BATCH})")
        self._check_tensor(self.input_shape, "input_shape")
        self._macs = 0

    # ------------------------------------------------------------------ errors
    def fail(self, field: str, reason: str) -> NoReturn:
        raise ModelError(self.file, field, reason)

    def _where(self, field: str) -> str:
        return f"layers[{self._entry}].{field}" if field else f"layers[{self._entry}]"

    def _check_shape_positive(self, shape: tuple[int, ...], field: str) -> None:
        for v in shape:
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                self.fail(field, f"dimensions must be positive integers, got {list(shape)}")
            if v > MAX_EXTENT:
                self.fail(field, f"dimension {v} is more than dnac supports ({MAX_EXTENT})")

    def _check_tensor(self, shape: tuple[int, ...], field: str) -> None:
        size = 1
        for v in shape:
            size *= v
        if size > MAX_TENSOR:
            self.fail(field, f"a tensor of {size:,} elements per sample ({list(shape)}) is more than dnac "
                             f"supports ({MAX_TENSOR:,})")

    def _check_bits(self, bits: int, field: str) -> None:
        if not isinstance(bits, int) or isinstance(bits, bool) or not MIN_BITS <= bits <= MAX_BITS:
            self.fail(field, f"bit width must be an integer in [{MIN_BITS}, {MAX_BITS}], got {bits!r}")

    def _check_positive(self, value: object, field: str, *, allow_zero: bool = False) -> int:
        if isinstance(value, (list, tuple)):
            for v in value:
                self._check_positive(v, field, allow_zero=allow_zero)
            return 0
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(self._where(field), f"must be an integer, got {value!r}")
        lo = 0 if allow_zero else 1
        if value < lo:  # type: ignore[operator]
            kind = "non-negative" if allow_zero else "positive"
            self.fail(self._where(field), f"must be a {kind} integer, got {value}")
        if value > MAX_EXTENT:  # type: ignore[operator]
            self.fail(self._where(field), f"{value} is more than dnac supports ({MAX_EXTENT})")
        return value  # type: ignore[return-value]

    # ------------------------------------------------------------------ plumbing
    def _begin(self, name: str, input: str | None) -> _Tensor:
        if not isinstance(name, str) or not name.strip():
            self.fail(self._where("name"), f"must be a non-empty string, got {name!r}")
        if name == INPUT:
            self.fail(self._where("name"), f"'{INPUT}' is reserved for the network input")
        if name in self._tensors:
            self.fail(self._where("name"), f"duplicate layer name '{name}'")
        return self._resolve(self._last if input is None else input, "input")

    def _resolve(self, ref: str, field: str) -> _Tensor:
        if not isinstance(ref, str) or ref not in self._tensors:
            known = ", ".join(list(self._tensors)[-5:])
            self.fail(self._where(field), f"unknown tensor {ref!r} (defined so far, latest: {known})")
        return self._tensors[ref]

    def _spatial(self, t: _Tensor, field: str = "input") -> tuple[int, int, int]:
        if len(t.shape) != 3:
            self.fail(self._where(field), f"needs a (C, H, W) tensor but '{t.producer}' is flattened to {list(t.shape)}")
        return t.shape  # type: ignore[return-value]

    def _bits(self, w_bits: int | None, a_bits: int | None) -> tuple[int, int]:
        w = self.w_bits if w_bits is None else w_bits
        a = self.a_bits if a_bits is None else a_bits
        self._check_bits(w, self._where("w_bits"))
        self._check_bits(a, self._where("a_bits"))
        return w, a

    def _add(self, layer: Layer) -> str:
        if len(self._layers) >= MAX_LAYERS:
            self.fail("layers", f"more than {MAX_LAYERS} layers")
        self._check_tensor(layer.out_shape, self._where(""))
        self._macs += layer.macs
        if self._macs > MAX_MACS:
            self.fail(self._where(""), f"the network reaches {self._macs:,} MACs per sample here, more than dnac "
                                       f"supports ({MAX_MACS:,})")
        self._layers.append(layer)
        self._tensors[layer.name] = _Tensor(layer.name, layer.out_shape)
        self._last = layer.name
        self._entry += 1
        return layer.name

    def _window(
        self, h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
    ) -> tuple[int, int]:
        for axis, size in ((0, h), (1, w)):
            if kernel[axis] > size + 2 * padding[axis]:
                self.fail(
                    self._where("kernel"),
                    f"kernel {kernel[axis]} is larger than its padded input {size + 2 * padding[axis]}"
                    f" ({size} + 2x{padding[axis]} padding)",
                )
            if padding[axis] >= kernel[axis] and kernel[axis] > 1:
                self.fail(self._where("padding"), f"padding {padding[axis]} must be smaller than the kernel {kernel[axis]}")
        return (out_extent(h, kernel[0], stride[0], padding[0]), out_extent(w, kernel[1], stride[1], padding[1]))

    # ------------------------------------------------------------------ layers
    def conv(
        self,
        name: str,
        out_channels: int,
        kernel: int | tuple[int, int],
        *,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = False,
        activation: Activation | str = Activation.NONE,
        input: str | None = None,
        w_bits: int | None = None,
        a_bits: int | None = None,
        source: str = "",
    ) -> str:
        """A 2-D convolution; `groups == in_channels == out_channels` makes it depthwise."""
        t = self._begin(name, input)
        c, h, w = self._spatial(t)
        self._check_positive(out_channels, "out_channels")
        self._check_positive(kernel, "kernel")
        self._check_positive(stride, "stride")
        self._check_positive(padding, "padding", allow_zero=True)
        self._check_positive(groups, "groups")
        k2, s2, p2 = _pair(kernel), _pair(stride), _pair(padding)
        if c % groups or out_channels % groups:
            self.fail(
                self._where("groups"),
                f"groups={groups} must divide in_channels={c} and out_channels={out_channels}",
            )
        p, q = self._window(h, w, k2, s2, p2)
        op = OpKind.DWCONV if groups == c and groups > 1 and out_channels == c else OpKind.CONV
        if groups == c and groups > 1 and out_channels != c:
            self.fail(
                self._where("out_channels"),
                f"a depthwise conv (groups == in_channels == {c}) must keep {c} channels;"
                " channel multipliers are not supported",
            )
        wb, ab = self._bits(w_bits, a_bits)
        return self._add(
            Layer(
                name=name, op=op, N=self.batch, K=out_channels, C=c, R=k2[0], S=k2[1], P=p, Q=q,
                H=h, W=w, stride=s2, padding=p2, groups=groups, bias=bool(bias),
                activation=self._act(activation), w_bits=wb, a_bits=ab, inputs=(t.producer,),
                source=source,
            )
        )

    def linear(
        self,
        name: str,
        out_features: int,
        *,
        bias: bool = False,
        activation: Activation | str = Activation.NONE,
        input: str | None = None,
        w_bits: int | None = None,
        a_bits: int | None = None,
        source: str = "",
    ) -> str:
        """A fully connected layer over a flattened input (or a 1x1 spatial tensor)."""
        t = self._begin(name, input)
        if len(t.shape) == 3 and t.shape[1:] != (1, 1):
            self.fail(
                self._where("input"),
                f"linear needs a flattened input; '{t.producer}' has shape {list(t.shape)} (add a flatten entry)",
            )
        features = t.shape[0]
        self._check_positive(out_features, "out_features")
        wb, ab = self._bits(w_bits, a_bits)
        return self._add(
            Layer(
                name=name, op=OpKind.LINEAR, N=self.batch, K=out_features, C=features, R=1, S=1, P=1, Q=1,
                H=1, W=1, bias=bool(bias), activation=self._act(activation), w_bits=wb, a_bits=ab,
                inputs=(t.producer,), source=source,
            )
        )

    def pool(
        self,
        name: str,
        op: OpKind | str,
        kernel: int | tuple[int, int] | None,
        *,
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        activation: Activation | str = Activation.NONE,
        input: str | None = None,
        a_bits: int | None = None,
        source: str = "",
    ) -> str:
        """Max or average pooling; `kernel=None` pools the whole plane (global pooling)."""
        t = self._begin(name, input)
        c, h, w = self._spatial(t)
        op = OpKind(op)
        if kernel is not None:
            self._check_positive(kernel, "kernel")
        if stride is not None:
            self._check_positive(stride, "stride")
        k2 = (h, w) if kernel is None else _pair(kernel)
        s2 = k2 if stride is None else _pair(stride)
        self._check_positive(padding, "padding", allow_zero=True)
        p2 = _pair(padding)
        if p2[0] > k2[0] // 2 or p2[1] > k2[1] // 2:  # PyTorch's rule; so that no window is all padding
            self.fail(self._where("padding"), f"{list(p2)} exceeds half the {list(k2)} window (a pooling "
                      "window made only of padding has no value)")
        p, q = self._window(h, w, k2, s2, p2)
        _, ab = self._bits(None, a_bits)
        return self._add(
            Layer(
                name=name, op=op, N=self.batch, K=c, C=c, R=k2[0], S=k2[1], P=p, Q=q, H=h, W=w,
                stride=s2, padding=p2, groups=c, activation=self._act(activation), w_bits=ab,
                a_bits=ab, inputs=(t.producer,), source=source,
            )
        )

    def add(
        self,
        name: str,
        inputs: list[str] | tuple[str, ...],
        *,
        activation: Activation | str = Activation.NONE,
        a_bits: int | None = None,
        source: str = "",
    ) -> str:
        """Element-wise sum of two or more tensors of one shape (a residual connection)."""
        self._begin(name, None)
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            self.fail(self._where("inputs"), f"add needs a list of at least two input names, got {inputs!r}")
        tensors = [self._resolve(ref, f"inputs[{i}]") for i, ref in enumerate(inputs)]
        shapes = [t.shape for t in tensors]
        if any(s != shapes[0] for s in shapes):
            listing = ", ".join(f"{ref} {list(s)}" for ref, s in zip(inputs, shapes))
            self.fail(self._where("inputs"), f"shape mismatch at residual add: {listing}")
        c, h, w = self._spatial(tensors[0], "inputs")
        _, ab = self._bits(None, a_bits)
        return self._add(
            Layer(
                name=name, op=OpKind.ADD, N=self.batch, K=c, C=c, R=1, S=1, P=h, Q=w, H=h, W=w,
                groups=c, activation=self._act(activation), w_bits=ab, a_bits=ab,
                inputs=tuple(t.producer for t in tensors), source=source,
            )
        )

    def flatten(self, name: str, *, input: str | None = None) -> str:
        """A view: (C, H, W) -> (C*H*W,).  It moves no data, so it is not a layer."""
        t = self._begin(name, input)
        size = 1
        for v in t.shape:
            size *= v
        self._check_tensor((size,), self._where(""))
        self._tensors[name] = _Tensor(t.producer, (size,))
        self._last = name
        self._entry += 1
        return name

    def activation(self, act: Activation | str, *, input: str | None = None) -> None:
        """Fuse an activation into the layer that produced `input` (default: the last)."""
        t = self._resolve(self._last if input is None else input, "input")
        if t.producer == INPUT:
            self.fail(self._where("activation"), "an activation needs a preceding layer to fuse into")
        idx = next(i for i, layer in enumerate(self._layers) if layer.name == t.producer)
        old = self._layers[idx]
        act = self._act(act)
        if old.activation is not Activation.NONE and old.activation is not act:
            self.fail(self._where("activation"), f"layer '{old.name}' already ends in {old.activation}")
        self._layers[idx] = replace(old, activation=act)

    def _act(self, act: Activation | str) -> Activation:
        try:
            return Activation(act)
        except ValueError:
            known = ", ".join(a.value for a in Activation)
            self.fail(self._where("activation"), f"unknown activation {act!r} (known: {known})")

    # ------------------------------------------------------------------ result
    @property
    def last(self) -> str:
        return self._last

    def shape_of(self, ref: str) -> tuple[int, ...]:
        return self._resolve(ref, "input").shape

    def build(self, *, target_overrides: dict[str, dict[str, float]] | None = None, source: str = "") -> Workload:
        if not self._layers:
            self.fail("layers", "the model has no layers")
        return Workload(
            name=self.name,
            input_shape=self.input_shape,  # type: ignore[arg-type]
            batch=self.batch,
            layers=tuple(self._layers),
            target_overrides=dict(target_overrides or {}),
            source=source or self.file,
        )
