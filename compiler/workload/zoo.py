"""The built-in model zoo, as registered data.

Each model is one small function that describes the network with `ModelBuilder` and is
registered under its name (the timm habit: one tiny registered function per variant).
MAC counts are checked against the published figures in tests/test_zoo.py.
"""

from __future__ import annotations

from collections.abc import Callable

from dnac.compiler.errors import ModelError
from dnac.compiler.workload.builder import ModelBuilder
from dnac.compiler.workload.layer import Workload

ModelFactory = Callable[..., Workload]
_REGISTRY: dict[str, ModelFactory] = {}


def register(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register a zoo model under `name`; registering a name twice is a bug."""

    def deco(fn: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"zoo model '{name}' registered twice")
        _REGISTRY[name] = fn
        return fn

    return deco


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str, *, batch: int = 1, w_bits: int | None = None, a_bits: int | None = None) -> Workload:
    """Build zoo model `name` (at its own default precision unless bits are given); an unknown
    name is a user error listing the known ones."""
    if name not in _REGISTRY:
        raise ModelError(name, "", f"unknown zoo model (known: {', '.join(names())})")
    bits = {k: v for k, v in (("w_bits", w_bits), ("a_bits", a_bits)) if v is not None}
    return _REGISTRY[name](batch=batch, **bits)


def _builder(name: str, input_shape: tuple[int, int, int], batch: int, w_bits: int, a_bits: int) -> ModelBuilder:
    return ModelBuilder(name, input_shape, batch=batch, w_bits=w_bits, a_bits=a_bits, file=f"zoo:{name}")


@register("tiny")
def tiny(*, batch: int = 1, w_bits: int = 8, a_bits: int = 8) -> Workload:
    """A 3-conv, 1-linear network on 3x16x16 inputs for tests and quick end-to-end runs."""
    b = _builder("tiny", (3, 16, 16), batch, w_bits, a_bits)
    b.conv("conv1", 8, 3, padding=1, activation="relu")
    b.conv("conv2", 16, 3, stride=2, padding=1, activation="relu")
    b.pool("pool", "maxpool", 2)
    b.conv("conv3", 16, 1, activation="relu")
    b.flatten("flatten")
    b.linear("fc", 10)
    return b.build(source="zoo:tiny")


# ---------------------------------------------------------------------------- shared helpers
# Each helper appends one block after the builder's last tensor and leaves its output as the
# new last tensor.  BatchNorm is folded into the conv before it, so it is never a layer.


def _mlp_head(b: ModelBuilder, layers: list[tuple[str, int]]) -> None:
    """Flatten, then linear layers with bias; ReLU after every one but the last (dropout omitted)."""
    b.flatten("flatten")
    for i, (name, width) in enumerate(layers):
        b.linear(name, width, bias=True, activation="relu" if i < len(layers) - 1 else "none")


def _pool_classifier(b: ModelBuilder, classes: int = 1000) -> None:
    """Global average pool, flatten, one linear classifier with bias."""
    b.pool("avgpool", "avgpool", None)
    _mlp_head(b, [("fc", classes)])


def _basic_block(b: ModelBuilder, name: str, planes: int, stride: int) -> None:
    """ResNet basic block: 3x3 (stride) -> 3x3, plus identity or 1x1 downsample, then add + ReLU."""
    x = b.last
    c_in = b.shape_of(x)[0]
    b.conv(f"{name}.conv1", planes, 3, stride=stride, padding=1, activation="relu")
    main = b.conv(f"{name}.conv2", planes, 3, padding=1)
    _residual(b, name, x, main, c_in, planes, stride)


def _bottleneck(b: ModelBuilder, name: str, planes: int, stride: int) -> None:
    """ResNet v1.5 bottleneck: 1x1 -> 3x3 (stride) -> 1x1 (x4), plus shortcut, then add + ReLU."""
    x = b.last
    c_in = b.shape_of(x)[0]
    b.conv(f"{name}.conv1", planes, 1, activation="relu")
    b.conv(f"{name}.conv2", planes, 3, stride=stride, padding=1, activation="relu")
    main = b.conv(f"{name}.conv3", 4 * planes, 1)
    _residual(b, name, x, main, c_in, 4 * planes, stride)


def _residual(b: ModelBuilder, name: str, x: str, main: str, c_in: int, c_out: int, stride: int) -> None:
    """The ResNet shortcut: a 1x1 strided conv where the shape changes, else identity; add + ReLU."""
    shortcut = x
    if stride != 1 or c_in != c_out:
        shortcut = b.conv(f"{name}.downsample.0", c_out, 1, stride=stride, input=x)
    b.add(f"{name}.add", [main, shortcut], activation="relu")


def _resnet(
    name: str, block: Callable[..., None], depths: tuple[int, ...], batch: int, w_bits: int, a_bits: int
) -> Workload:
    """torchvision's ResNet on 3x224x224: stem, four stages of `block`, global pool, fc 1000."""
    b = _builder(name, (3, 224, 224), batch, w_bits, a_bits)
    b.conv("conv1", 64, 7, stride=2, padding=3, activation="relu")
    b.pool("maxpool", "maxpool", 3, stride=2, padding=1)
    for stage, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths), start=1):
        for i in range(depth):
            block(b, f"layer{stage}.{i}", planes, 2 if stage > 1 and i == 0 else 1)
    _pool_classifier(b)
    return b.build(source=f"zoo:{name}")


def _inverted_residual(
    b: ModelBuilder,
    name: str,
    out: int,
    *,
    kernel: int = 3,
    stride: int = 1,
    expansion: int = 6,
    groups: int = 1,
    activation: str = "relu6",
    bias: bool = False,
) -> None:
    """MobileNetV2 / FBNet inverted residual: 1x1 expand (+act) -> kxk depthwise (+act) ->
    1x1 linear projection, plus a residual add when stride is 1 and the width is kept.

    The expansion conv is omitted when it would not widen (expansion 1), as in torchvision's
    MobileNetV2 and mobile-vision's IRFBlock.  `groups` makes both 1x1 convs grouped (FBNet's
    `_g2`); the channel shuffle between them is a free permutation, not a layer.
    """
    x = b.last
    c_in = b.shape_of(x)[0]
    mid = c_in * expansion
    if mid != c_in:
        b.conv(f"{name}.pw", mid, 1, groups=groups, bias=bias, activation=activation)
    b.conv(
        f"{name}.dw", mid, kernel, stride=stride, padding=kernel // 2, groups=mid, bias=bias, activation=activation
    )
    main = b.conv(f"{name}.pwl", out, 1, groups=groups, bias=bias)
    if stride == 1 and c_in == out:
        b.add(f"{name}.add", [main, x])


# ---------------------------------------------------------------------------- ImageNet models


@register("alexnet")
def alexnet(*, batch: int = 1, w_bits: int = 16, a_bits: int = 16) -> Workload:
    """AlexNet as torchvision defines it (Krizhevsky et al. 2012, one-GPU variant of
    Krizhevsky 2014): 61,100,840 params, 0.71 GMACs.  The adaptive 6x6 avgpool is an identity
    at 224 and dropout is omitted; names follow torchvision's `features.i` / `classifier.i`."""
    b = _builder("alexnet", (3, 224, 224), batch, w_bits, a_bits)
    b.conv("features.0", 64, 11, stride=4, padding=2, bias=True, activation="relu")
    b.pool("features.2", "maxpool", 3, stride=2)
    b.conv("features.3", 192, 5, padding=2, bias=True, activation="relu")
    b.pool("features.5", "maxpool", 3, stride=2)
    b.conv("features.6", 384, 3, padding=1, bias=True, activation="relu")
    b.conv("features.8", 256, 3, padding=1, bias=True, activation="relu")
    b.conv("features.10", 256, 3, padding=1, bias=True, activation="relu")
    b.pool("features.12", "maxpool", 3, stride=2)
    _mlp_head(b, [("classifier.1", 4096), ("classifier.4", 4096), ("classifier.6", 1000)])
    return b.build(source="zoo:alexnet")


@register("alexnet_caffe")
def alexnet_caffe(*, batch: int = 1, w_bits: int = 16, a_bits: int = 16) -> Workload:
    """The original two-GPU AlexNet as BVLC Caffe ships it (Krizhevsky et al. 2012; Caffe's
    `models/bvlc_alexnet/deploy.prototxt`): 227x227 input, 96 conv1 filters, grouped (g=2) conv2,
    conv4 and conv5; 0.72 GMACs.  LRN is omitted (no MACs).  DNNBuilder and the FPGA papers
    DNA Tab. 5 quotes build this network from Caffe, so the FPGA calibration uses it."""
    b = _builder("alexnet_caffe", (3, 227, 227), batch, w_bits, a_bits)
    b.conv("conv1", 96, 11, stride=4, bias=True, activation="relu")
    b.pool("pool1", "maxpool", 3, stride=2)
    b.conv("conv2", 256, 5, padding=2, groups=2, bias=True, activation="relu")
    b.pool("pool2", "maxpool", 3, stride=2)
    b.conv("conv3", 384, 3, padding=1, bias=True, activation="relu")
    b.conv("conv4", 384, 3, padding=1, groups=2, bias=True, activation="relu")
    b.conv("conv5", 256, 3, padding=1, groups=2, bias=True, activation="relu")
    b.pool("pool5", "maxpool", 3, stride=2)
    _mlp_head(b, [("fc6", 4096), ("fc7", 4096), ("fc8", 1000)])
    return b.build(source="zoo:alexnet_caffe")


#: VGG-16 (configuration "D"): conv widths, "M" for a 2x2 stride-2 maxpool.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


@register("vgg16")
def vgg16(*, batch: int = 1, w_bits: int = 16, a_bits: int = 16) -> Workload:
    """VGG-16, configuration D of Simonyan & Zisserman 2015, as torchvision's `vgg16` (no BN):
    138,357,544 params, 15.47 GMACs.  The adaptive 7x7 avgpool is an identity at 224."""
    b = _builder("vgg16", (3, 224, 224), batch, w_bits, a_bits)
    idx = 0  # torchvision's index in `features` (a conv is followed by its ReLU)
    for v in _VGG16:
        if v == "M":
            b.pool(f"features.{idx}", "maxpool", 2, stride=2)
            idx += 1
        else:
            b.conv(f"features.{idx}", int(v), 3, padding=1, bias=True, activation="relu")
            idx += 2
    _mlp_head(b, [("classifier.0", 4096), ("classifier.3", 4096), ("classifier.6", 1000)])
    return b.build(source="zoo:vgg16")


@register("resnet18")
def resnet18(*, batch: int = 1, w_bits: int = 16, a_bits: int = 16) -> Workload:
    """ResNet-18 (He et al. 2016) as torchvision's `resnet18`: basic blocks [2, 2, 2, 2], 1.82 GMACs."""
    return _resnet("resnet18", _basic_block, (2, 2, 2, 2), batch, w_bits, a_bits)


@register("resnet50")
def resnet50(*, batch: int = 1, w_bits: int = 16, a_bits: int = 16) -> Workload:
    """ResNet-50 (He et al. 2016) as torchvision's `resnet50` (v1.5: stride in the 3x3 conv),
    bottlenecks [3, 4, 6, 3], 4.1 GMACs."""
    return _resnet("resnet50", _bottleneck, (3, 4, 6, 3), batch, w_bits, a_bits)


#: MobileNetV2 inverted-residual settings (t expansion, c width, n repeats, s first stride).
_MOBILENET_V2 = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


@register("mobilenet_v2")
def mobilenet_v2(*, batch: int = 1, w_bits: int = 16, a_bits: int = 16) -> Workload:
    """MobileNetV2 width 1.0 (Sandler et al. 2018) as torchvision's `mobilenet_v2`: 0.30 GMACs.
    Blocks are `features.1`..`features.17`; dropout is omitted."""
    b = _builder("mobilenet_v2", (3, 224, 224), batch, w_bits, a_bits)
    b.conv("features.0", 32, 3, stride=2, padding=1, activation="relu6")
    idx = 1
    for t, c, n, s in _MOBILENET_V2:
        for i in range(n):
            _inverted_residual(b, f"features.{idx}", c, stride=s if i == 0 else 1, expansion=t)
            idx += 1
    b.conv(f"features.{idx}", 1280, 1, activation="relu6")
    _pool_classifier(b)
    return b.build(source="zoo:mobilenet_v2")


#: FBNet-B's 22 searched blocks as (op, out channels, stride): op "k{3,5}_e{1,3,6}[_g2]" or
#: "skip".  From facebookresearch/mobile-vision, mobile_cv/arch/fbnet_v2/
#: fbnet_modeldef_cls_fbnet.py, arch "fbnet_b" (Wu et al. 2019, Fig. 4 / Table 1 macro-space).
FBNET_B_BLOCKS: tuple[tuple[str, int, int], ...] = (
    ("k3_e1", 16, 1),
    ("k3_e6", 24, 2), ("k5_e1", 24, 1), ("k3_e1", 24, 1), ("k3_e1", 24, 1),
    ("k5_e6", 32, 2), ("k5_e3", 32, 1), ("k3_e6", 32, 1), ("k5_e6", 32, 1),
    ("k5_e6", 64, 2), ("k5_e6", 64, 1), ("skip", 64, 1), ("k5_e3", 64, 1),
    ("k5_e6", 112, 1), ("k3_e1", 112, 1), ("k5_e1", 112, 1), ("k5_e3", 112, 1),
    ("k5_e6", 184, 2), ("k5_e1", 184, 1), ("k5_e6", 184, 1), ("k5_e6", 184, 1),
    ("k3_e6", 352, 1),
)  # fmt: skip


def _fbnet_block(b: ModelBuilder, name: str, op: str, out: int, stride: int) -> None:
    """One FBNet block: "skip" (identity, no layers) or an inverted residual "k*_e*[_g2]"."""
    if op == "skip":
        if stride != 1 or b.shape_of(b.last)[0] != out:
            b.fail(name, f"a skip block cannot change stride or width (stride {stride}, width {out})")
        return
    kernel, expansion, *rest = op.split("_")
    groups = int(rest[0][1:]) if rest else 1
    _inverted_residual(
        b, name, out, kernel=int(kernel[1:]), stride=stride, expansion=int(expansion[1:]),
        groups=groups, activation="relu", bias=True,
    )


@register("fbnet")
def fbnet(*, batch: int = 1, w_bits: int = 16, a_bits: int = 16) -> Workload:
    """FBNet-B (Wu et al. 2019, "FBNet: Hardware-Aware Efficient ConvNet Design via
    Differentiable NAS"), ImageNet at 224: ~295 M MACs.  Block list from mobile-vision's
    `fbnet_b` (see `FBNET_B_BLOCKS`); its IRFBlock drops the 1x1 expansion when e == 1 and
    gives the block convs a bias.  Stem conv 16 s2, head 1x1 conv 1984, avgpool, fc 1000."""
    b = _builder("fbnet", (3, 224, 224), batch, w_bits, a_bits)
    b.conv("first", 16, 3, stride=2, padding=1, activation="relu")
    for i, (op, out, stride) in enumerate(FBNET_B_BLOCKS):
        _fbnet_block(b, f"blocks.{i}", op, out, stride)
    b.conv("last", 1984, 1, activation="relu")
    _pool_classifier(b)
    return b.build(source="zoo:fbnet")


@register("tiny_mbv2")
def tiny_mbv2(*, batch: int = 1, w_bits: int = 8, a_bits: int = 8) -> Workload:
    """A MobileNetV2-style test net (Sandler et al. 2018) on 3x16x16: a stride-2 stem, an
    inverted residual with a depthwise 3x3 and a residual add, a stride-2 inverted residual,
    a maxpool, global avgpool and a linear classifier; about 134 K MACs."""
    b = _builder("tiny_mbv2", (3, 16, 16), batch, w_bits, a_bits)
    b.conv("stem", 8, 3, stride=2, padding=1, activation="relu6")
    _inverted_residual(b, "block1", 8, expansion=6)
    _inverted_residual(b, "block2", 16, stride=2, expansion=6)
    b.pool("maxpool", "maxpool", 2, stride=2)
    _pool_classifier(b, classes=10)
    return b.build(source="zoo:tiny_mbv2")
