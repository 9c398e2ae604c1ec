"""torch.fx import: torchvision-style ResNet / MobileNetV2 blocks, op variants, and errors.

The blocks are written out here (torchvision is not a dependency) in the torchvision style, so
the traced graphs look like the ones users bring.  Everything runs on the CPU in well under a
second per test, resnet18 at 224x224 included.
"""

from __future__ import annotations

import operator
import sys
import textwrap
from collections.abc import Iterator
from functools import reduce
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dnac.compiler.errors import ModelError
from dnac.compiler.vocab import Activation, OpKind
from dnac.compiler.workload import zoo
from dnac.compiler.workload.fx_import import from_torch, load_factory, module_from_spec
from dnac.compiler.workload.layer import INPUT, Workload

THIS_FILE = Path(__file__).name


def _line_of(marker: str) -> int:
    """Line number of the source line in this file tagged with `# <marker>`."""
    lines = Path(__file__).read_text().splitlines()
    hits = [i + 1 for i, text in enumerate(lines) if f"# {marker}" in text]
    assert len(hits) == 1, hits
    return hits[0]


# --------------------------------------------------------------------------- torchvision-style blocks
def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.conv1(x)  # SRC-CONV1
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


def basic_block(inplanes: int, planes: int, stride: int = 1) -> BasicBlock:
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
    return BasicBlock(inplanes, planes, stride, downsample)


class ResNet(nn.Module):
    """torchvision's ResNet for BasicBlock, written out."""

    def __init__(self, layers: list[int], num_classes: int = 1000, width: int = 64) -> None:
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        layers = [basic_block(self.inplanes, planes, stride)]
        self.inplanes = planes
        layers += [basic_block(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)
        return x


class ConvBNReLU6(nn.Sequential):
    """torchvision's Conv2dNormActivation with ReLU6."""

    def __init__(self, inp: int, oup: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(inp, oup, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(oup),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden_dim = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden_dim, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class TinyResNet(nn.Module):
    """Stem, an identity block, a downsampling block, global pool, fc on 3x16x16."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv3x3(3, 8)
        self.bn = nn.BatchNorm2d(8)
        self.block1 = basic_block(8, 8)
        self.block2 = basic_block(8, 16, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.stem(x)))
        x = self.block2(self.block1(x))
        x = self.pool(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


class TinyMobileNet(nn.Module):
    """MobileNetV2-style: stem, three inverted residuals (two with a residual), head, classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            ConvBNReLU6(3, 16, stride=2),
            InvertedResidual(16, 16, 1, 6),
            InvertedResidual(16, 24, 2, 6),
            InvertedResidual(24, 24, 1, 6),
            ConvBNReLU6(24, 64, kernel_size=1),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


def _dims(w: Workload, name: str) -> tuple[int, ...]:
    layer = w.layer(name)
    return (layer.K, layer.C, layer.R, layer.S, layer.P, layer.Q)


# --------------------------------------------------------------------------- ResNet BasicBlock
def test_tiny_resnet_layers_edges_and_macs() -> None:
    w = from_torch(TinyResNet(), (3, 16, 16), name="tiny_resnet", w_bits=8, a_bits=8, file="model.py")
    assert w.name == "tiny_resnet" and w.input_shape == (3, 16, 16)
    assert [layer.name for layer in w] == [
        "stem",
        "block1.conv1", "block1.conv2", "block1.add",
        "block2.conv1", "block2.conv2", "block2.downsample.0", "block2.add",
        "pool", "fc",
    ]  # fmt: skip
    ops = {layer.name: layer.op for layer in w}
    assert ops["stem"] is OpKind.CONV and ops["block1.add"] is OpKind.ADD
    assert ops["pool"] is OpKind.AVGPOOL and ops["fc"] is OpKind.LINEAR
    # no BatchNorm layers: they are folded, giving their conv a bias
    assert not any("bn" in layer.name for layer in w)
    assert all(w.layer(n).bias for n in ("stem", "block1.conv1", "block2.conv2", "block2.downsample.0"))
    assert w.layer("fc").bias

    assert _dims(w, "stem") == (8, 3, 3, 3, 16, 16)
    assert _dims(w, "block2.conv1") == (16, 8, 3, 3, 8, 8)
    assert w.layer("block2.conv1").stride == (2, 2) and w.layer("block2.conv1").padding == (1, 1)
    assert _dims(w, "block2.downsample.0") == (16, 8, 1, 1, 8, 8)
    assert w.layer("block2.downsample.0").stride == (2, 2)
    assert _dims(w, "pool") == (16, 16, 8, 8, 1, 1)
    assert _dims(w, "fc") == (10, 16, 1, 1, 1, 1)

    acts = {layer.name: layer.activation for layer in w}
    assert acts["stem"] is Activation.RELU  # F.relu fused
    assert acts["block1.conv1"] is Activation.RELU and acts["block1.conv2"] is Activation.NONE
    assert acts["block1.add"] is Activation.RELU and acts["block2.add"] is Activation.RELU
    assert acts["block2.downsample.0"] is Activation.NONE and acts["fc"] is Activation.NONE

    assert w.layer("stem").inputs == (INPUT,)
    assert w.layer("block1.conv1").inputs == ("stem",)
    assert w.layer("block1.add").inputs == ("block1.conv2", "stem")  # identity shortcut
    assert w.layer("block2.conv1").inputs == ("block1.add",)
    assert w.layer("block2.downsample.0").inputs == ("block1.add",)
    assert w.layer("block2.add").inputs == ("block2.conv2", "block2.downsample.0")
    assert w.layer("fc").inputs == ("pool",)  # the flatten view is not a layer
    assert w.outputs == ("fc",)
    assert all(layer.w_bits == 8 and layer.a_bits == 8 for layer in w)

    macs = (
        8 * 3 * 9 * 16 * 16  # stem
        + 2 * (8 * 8 * 9 * 16 * 16)  # block1
        + 16 * 8 * 9 * 8 * 8 + 16 * 16 * 9 * 8 * 8 + 16 * 8 * 8 * 8  # block2 + downsample
        + 16 * 10  # fc
    )
    assert w.total_macs == macs == 579_744


def test_source_lines_point_at_the_forward() -> None:
    w = from_torch(TinyResNet(), (3, 16, 16))
    for layer in w:
        assert layer.source.split(":")[0].endswith(THIS_FILE), layer.source
    conv1 = w.layer("block1.conv1").source
    assert conv1.endswith(f":{_line_of('SRC-CONV1')}")


def test_resnet18_at_224_matches_published_macs() -> None:
    w = from_torch(ResNet([2, 2, 2, 2]), (3, 224, 224), name="resnet18")
    # conv + fc: 118,013,952 (conv1) + 462,422,016 (layer1) + 3 x 411,041,792 (layer2-4)
    # + 512,000 (fc).  The 1,814,073,856 sometimes quoted is 512 more (one op per output of
    # the global average pool, which is not a MAC); see tests/test_zoo.py.
    assert w.total_macs == 1_814_073_344
    assert len(w.compute_layers) == 21  # 20 convs + fc
    assert sum(layer.op is OpKind.ADD for layer in w) == 8
    assert _dims(w, "conv1") == (64, 3, 7, 7, 112, 112)
    assert _dims(w, "maxpool") == (64, 64, 3, 3, 56, 56)
    assert w.layer("maxpool").padding == (1, 1) and w.layer("maxpool").stride == (2, 2)
    assert _dims(w, "layer4.1.conv2") == (512, 512, 3, 3, 7, 7)
    assert _dims(w, "avgpool") == (512, 512, 7, 7, 1, 1)
    assert w.layer("layer2.0.add").inputs == ("layer2.0.conv2", "layer2.0.downsample.0")
    assert w.layer("layer2.1.add").inputs == ("layer2.1.conv2", "layer2.0.add")
    assert w.layer("fc").inputs == ("avgpool",)


def test_resnet18_matches_the_zoo_layer_by_layer() -> None:
    def key(layer):  # type: ignore[no-untyped-def]
        fields = ("name", "op", "dims", "stride", "padding", "groups", "activation", "inputs")
        return tuple(getattr(layer, f) for f in fields)

    traced = from_torch(ResNet([2, 2, 2, 2]), (3, 224, 224))
    assert [key(layer) for layer in traced] == [key(layer) for layer in zoo.get("resnet18")]


def test_batch_scales_macs() -> None:
    one = from_torch(TinyResNet(), (3, 16, 16))
    four = from_torch(TinyResNet(), (3, 16, 16), batch=4)
    assert four.batch == 4 and four.total_macs == 4 * one.total_macs


# --------------------------------------------------------------------------- MobileNetV2 InvertedResidual
def test_tiny_mobilenet_inverted_residuals() -> None:
    w = from_torch(TinyMobileNet(), (3, 32, 32))
    names = [layer.name for layer in w]
    assert names == [
        "features.0.0",
        "features.1.conv.0.0", "features.1.conv.1.0", "features.1.conv.2", "features.1.add",
        "features.2.conv.0.0", "features.2.conv.1.0", "features.2.conv.2",
        "features.3.conv.0.0", "features.3.conv.1.0", "features.3.conv.2", "features.3.add",
        "features.4.0",
        "adaptive_avg_pool2d",
        "classifier.1",
    ]  # fmt: skip
    expand, dw, project = (w.layer(f"features.1.conv.{i}") for i in ("0.0", "1.0", "2"))
    assert expand.op is OpKind.CONV and _dims(w, expand.name) == (96, 16, 1, 1, 16, 16)
    assert dw.op is OpKind.DWCONV and dw.groups == 96 and _dims(w, dw.name) == (96, 96, 3, 3, 16, 16)
    assert project.op is OpKind.CONV and _dims(w, project.name) == (16, 96, 1, 1, 16, 16)
    assert expand.activation is Activation.RELU6 and dw.activation is Activation.RELU6
    assert project.activation is Activation.NONE  # linear bottleneck
    assert w.layer("features.1.add").inputs == ("features.0.0", "features.1.conv.2")
    assert w.layer("features.1.add").activation is Activation.NONE
    assert w.layer("features.3.add").inputs == ("features.2.conv.2", "features.3.conv.2")

    dw2 = w.layer("features.2.conv.1.0")
    assert dw2.op is OpKind.DWCONV and dw2.stride == (2, 2) and _dims(w, dw2.name) == (96, 96, 3, 3, 8, 8)
    assert w.layer("features.3.conv.0.0").inputs == ("features.2.conv.2",)  # no add in block 2
    assert w.layer("adaptive_avg_pool2d").op is OpKind.AVGPOOL
    assert _dims(w, "adaptive_avg_pool2d") == (64, 64, 8, 8, 1, 1)
    assert w.layer("classifier.1").inputs == ("adaptive_avg_pool2d",)  # Dropout skipped

    macs = (
        16 * 3 * 9 * 16 * 16  # stem, stride 2
        + 96 * 16 * 256 + 96 * 9 * 256 + 16 * 96 * 256  # block 1
        + 96 * 16 * 256 + 96 * 9 * 64 + 24 * 96 * 64  # block 2 (stride 2 in the depthwise)
        + 144 * 24 * 64 + 144 * 9 * 64 + 24 * 144 * 64  # block 3
        + 64 * 24 * 64  # head
        + 64 * 10  # classifier
    )
    assert w.total_macs == macs == 2_338_432


def test_import_restores_training_flags() -> None:
    net = TinyMobileNet()
    net.train()
    net.classifier.eval()
    from_torch(net, (3, 32, 32))
    assert net.training and net.features[1].conv[0][1].training
    assert not net.classifier.training and not net.classifier[0].training


# --------------------------------------------------------------------------- op variants
class _Head(nn.Module):
    """conv(3->4, 3x3) on 3x8x8, then a flatten variant and a linear."""

    def __init__(self, flatten) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.flat = flatten if isinstance(flatten, nn.Module) else None
        self.flatten_fn = flatten
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = self.flat(x) if self.flat is not None else self.flatten_fn(x)
        return self.fc(x)


@pytest.mark.parametrize(
    "flatten",
    [
        lambda x: x.view(x.size(0), -1),
        lambda x: x.reshape(x.shape[0], -1),
        lambda x: x.view(x.size()[0], -1),
        lambda x: torch.reshape(x, (x.size(0), -1)),
        lambda x: x.view(-1, 4 * 8 * 8),
        lambda x: x.flatten(1),
        lambda x: torch.flatten(x, 1),
        nn.Flatten(),
    ],
    ids=[
        "view-size", "reshape-shape", "view-size()", "torch.reshape", "view-minus1",
        "Tensor.flatten", "torch.flatten", "nn.Flatten",
    ],
)
def test_flatten_variants(flatten) -> None:  # type: ignore[no-untyped-def]
    w = from_torch(_Head(flatten), (3, 8, 8))
    assert [layer.name for layer in w] == ["conv", "fc"]
    assert w.layer("fc").inputs == ("conv",) and w.layer("fc").C == 256
    assert w.layer("conv").bias and w.total_macs == 4 * 3 * 9 * 64 + 5 * 256


class _Fn(nn.Module):
    """A 1x1 conv (3->4) on 3x8x8 followed by `fn`."""

    def __init__(self, fn, extra: nn.Module | None = None) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)
        self.extra = extra if extra is not None else nn.Identity()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, self.conv(x))


@pytest.mark.parametrize(
    ("fn", "act"),
    [
        (lambda m, y: F.relu(y), Activation.RELU),
        (lambda m, y: torch.relu(y), Activation.RELU),
        (lambda m, y: y.relu(), Activation.RELU),
        (lambda m, y: F.relu(y, inplace=True), Activation.RELU),
        (lambda m, y: F.relu6(y), Activation.RELU6),
        (lambda m, y: F.hardtanh(y, 0.0, 6.0), Activation.RELU6),
        (lambda m, y: nn.functional.dropout(F.relu(y), 0.5, training=False), Activation.RELU),
    ],
)
def test_activation_variants_fuse(fn, act: Activation) -> None:  # type: ignore[no-untyped-def]
    w = from_torch(_Fn(fn), (3, 8, 8))
    assert [layer.name for layer in w] == ["conv"] and w.layer("conv").activation is act


@pytest.mark.parametrize(
    ("module", "act"),
    [(nn.ReLU(), Activation.RELU), (nn.ReLU6(), Activation.RELU6), (nn.Hardtanh(0.0, 6.0), Activation.RELU6)],
)
def test_activation_modules_fuse(module: nn.Module, act: Activation) -> None:
    w = from_torch(_Fn(lambda m, y: m.extra(y), module), (3, 8, 8))
    assert [layer.name for layer in w] == ["conv"] and w.layer("conv").activation is act


@pytest.mark.parametrize(
    ("fn", "op", "dims", "stride", "padding"),
    [
        (lambda m, y: F.max_pool2d(y, 2), OpKind.MAXPOOL, (4, 4, 2, 2, 4, 4), (2, 2), (0, 0)),
        (lambda m, y: torch.max_pool2d(y, 3, 2, 1), OpKind.MAXPOOL, (4, 4, 3, 3, 4, 4), (2, 2), (1, 1)),
        (lambda m, y: F.avg_pool2d(y, 3, stride=2, padding=1), OpKind.AVGPOOL, (4, 4, 3, 3, 4, 4), (2, 2), (1, 1)),
        (lambda m, y: F.adaptive_avg_pool2d(y, 2), OpKind.AVGPOOL, (4, 4, 4, 4, 2, 2), (4, 4), (0, 0)),
        (lambda m, y: F.adaptive_avg_pool2d(y, 1), OpKind.AVGPOOL, (4, 4, 8, 8, 1, 1), (8, 8), (0, 0)),
        (lambda m, y: m.extra(y), OpKind.AVGPOOL, (4, 4, 2, 2, 4, 4), (2, 2), (0, 0)),
    ],
)
def test_pool_variants(fn, op: OpKind, dims: tuple[int, ...], stride, padding) -> None:  # type: ignore[no-untyped-def]
    extra = nn.AvgPool2d(2)
    w = from_torch(_Fn(fn, extra), (3, 8, 8))
    pool = w.layers[1]
    assert pool.op is op and _dims(w, pool.name) == dims
    assert pool.stride == stride and pool.padding == padding and pool.inputs == ("conv",)


def test_adaptive_pool_to_input_size_is_identity() -> None:
    w = from_torch(_Fn(lambda m, y: F.relu(m.extra(y)), nn.AdaptiveAvgPool2d((8, 8))), (3, 8, 8))
    assert [layer.name for layer in w] == ["conv"] and w.layer("conv").activation is Activation.RELU


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, y: y + m.extra(y),
        lambda m, y: torch.add(y, m.extra(y)),
        lambda m, y: y.add(m.extra(y)),
    ],
)
def test_add_variants(fn) -> None:  # type: ignore[no-untyped-def]
    w = from_torch(_Fn(fn, nn.Conv2d(4, 4, 1)), (3, 8, 8))
    add = w.layers[-1]
    assert add.op is OpKind.ADD and add.inputs == ("conv", "extra") and _dims(w, add.name) == (4, 4, 1, 1, 8, 8)


def test_same_padding_grouped_conv_and_bn1d() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(4, 8, 5, padding="same", groups=2)
            self.b = nn.Conv2d(8, 8, 3, padding="valid")
            self.fc = nn.Linear(8 * 4 * 4, 16, bias=False)
            self.bn = nn.BatchNorm1d(16)
            self.act = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.b(self.a(x))
            return self.act(self.bn(self.fc(torch.flatten(x, 1))))

    w = from_torch(Net(), (4, 6, 6))
    a, b, fc = w.layers
    assert a.op is OpKind.CONV and a.groups == 2 and a.padding == (2, 2) and (a.P, a.Q) == (6, 6)
    assert a.macs == 8 * 2 * 25 * 36
    assert b.padding == (0, 0) and (b.P, b.Q) == (4, 4)
    assert fc.bias and fc.activation is Activation.RELU and fc.C == 128  # BN1d folded


# --------------------------------------------------------------------------- errors
def _raises(module: nn.Module, shape: tuple[int, int, int] = (3, 8, 8)) -> ModelError:
    with pytest.raises(ModelError) as info:
        from_torch(module, shape, file="model.py")
    assert info.value.file == "model.py"
    return info.value


class _Sigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))  # ERR-SIGMOID


class _Cat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], dim=1)  # ERR-CAT


def test_sigmoid_names_op_and_line() -> None:
    err = _raises(_Sigmoid())
    assert err.field == "node 'sigmoid'"
    assert "unsupported op torch.sigmoid" in err.reason
    assert f"{THIS_FILE}:{_line_of('ERR-SIGMOID')}" in err.reason
    assert "`return torch.sigmoid(self.conv(x))" in err.reason
    assert "supported: Conv2d, Linear" in err.reason
    assert str(err).startswith("model.py: node 'sigmoid': unsupported op torch.sigmoid at ")


def test_cat_names_op_and_line() -> None:
    err = _raises(_Cat())
    assert err.field == "node 'cat'"
    assert "unsupported op torch.cat" in err.reason
    assert f"{THIS_FILE}:{_line_of('ERR-CAT')}" in err.reason


class _BnAfterAdd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.a(x) + self.b(x))  # ERR-BN-ADD


def test_bn_after_add_is_an_error() -> None:
    err = _raises(_BnAfterAdd())
    assert err.field == "node 'bn'"
    assert "BatchNorm2d" in err.reason and "'add'" in err.reason and "folded" in err.reason
    assert f"{THIS_FILE}:{_line_of('ERR-BN-ADD')}" in err.reason


@pytest.mark.parametrize(
    ("fn", "extra", "field", "words"),
    [
        # the conv's raw output also feeds the add: neither BN nor ReLU can rewrite it
        (lambda m, y: m.extra(y) + y, nn.BatchNorm2d(4), "node 'extra'", ["cannot fold", "'add'"]),
        (lambda m, y: F.relu(y) + y, None, "node 'relu'", ["cannot fuse", "'add'"]),
        (lambda m, y: m.extra(F.relu(y)), nn.BatchNorm2d(4), "node 'extra'", ["follows", "relu"]),
        (lambda m, y: F.relu(m.extra(y)), nn.Upsample(scale_factor=2), "node 'extra'", ["unsupported op nn.Upsample"]),
        (lambda m, y: m.extra(y), nn.Sigmoid(), "node 'extra'", ["unsupported op nn.Sigmoid (module 'extra')"]),
        (lambda m, y: m.extra(y), nn.Conv2d(4, 4, 3, dilation=2, padding=2), "node 'extra'", ["dilated conv"]),
        (lambda m, y: m.extra(y), nn.MaxPool2d(3, ceil_mode=True), "node 'extra'", ["ceil_mode=True"]),
        (lambda m, y: m.extra(y), nn.AdaptiveAvgPool2d(3), "node 'extra'", ["8x8 to 3x3", "uneven"]),
        (lambda m, y: m.extra(y), nn.Hardtanh(-1.0, 1.0), "node 'extra'", ["Hardtanh(-1, 1)"]),
        (lambda m, y: y * 2, None, "node 'mul'", ["unsupported op operator.mul"]),
        (lambda m, y: F.relu(F.relu6(y)), None, "node 'relu'", ["already ends in relu6 (activation)"]),
        (lambda m, y: y + 1, None, "node 'add'", ["add of a tensor and 1"]),
        (lambda m, y: torch.add(y, y, alpha=2), None, "node 'add'", ["alpha=2"]),
        (lambda m, y: y.view(y.size(0), y.size(1), -1), None, "node 'view'", ["not a flatten"]),
        (lambda m, y: torch.flatten(y), None, "node 'flatten'", ["start_dim=0"]),
        (lambda m, y: F.max_pool2d(y, y.shape[2]), None, "node 'getitem'", ["batch size of a flatten"]),
        (lambda m, y: y[:, :2], None, "node 'getitem'", ["indexing"]),
        (lambda m, y: F.relu(m.extra.weight) + y, nn.Conv2d(4, 4, 1), "node 'extra_weight'", ["get_attr"]),
    ],
)
def test_unsupported_and_unfusable(fn, extra, field: str, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    err = _raises(_Fn(fn, extra))
    assert err.field == field, err
    for word in words:
        assert word in err.reason, err
    assert THIS_FILE in err.reason  # every node-level error points at the user's line


def test_untraceable_model_and_bad_input_shape() -> None:
    class Branchy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    err = _raises(Branchy())
    assert err.field == "torch" and "torch.fx cannot trace Branchy" in err.reason

    err = _raises(TinyResNet(), (4, 16, 16))
    assert err.field == "input_shape" and "[4, 16, 16]" in err.reason

    err = _raises(TinyResNet(), (3, 16))  # type: ignore[arg-type]
    assert err.field == "input_shape"
    with pytest.raises(ModelError, match="expected an nn.Module"):
        from_torch(42, (3, 8, 8))  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="precision.w_bits"):
        from_torch(TinyResNet(), (3, 16, 16), w_bits=0)


def test_two_input_forward_is_an_error() -> None:
    class Two(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return x + y

    err = _raises(Two())
    assert err.field == "torch" and "2 inputs (x, y)" in err.reason


# --------------------------------------------------------------------------- factories
@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("json", "malformed factory"),
        ("", "malformed factory"),
        ("json:dumps:x", "malformed factory"),
        ("json:", "malformed factory"),
        ("no_such_module_for_dnac_tests:make", "cannot import module 'no_such_module_for_dnac_tests'"),
        ("json.no_such_submodule_dnac:make", "cannot import module 'json.no_such_submodule_dnac'"),
        ("json:dumpz", "has no attribute 'dumpz' (did you mean dump, dumps?)"),
        ("math:pi", "is a float, not a callable"),
    ],
)
def test_load_factory_bad_specs(spec: str, words: str) -> None:
    with pytest.raises(ModelError) as info:
        load_factory(spec, "design.yaml")
    assert info.value.file == "design.yaml" and info.value.field == "torch"
    assert words in info.value.reason


def test_load_factory_resolves_without_calling() -> None:
    import json
    import os.path

    assert load_factory("json:dumps", "f") is json.dumps
    assert load_factory("os.path:join", "f") is os.path.join
    assert load_factory("json:JSONDecoder.decode", "f") is json.JSONDecoder.decode


FACTORY_MODULE = "dnac_fx_import_test_factories"
FACTORY_SOURCE = """
    from torch import nn

    def make_net(channels=4):
        return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())

    def not_a_module():
        return 42

    def broken():
        raise RuntimeError("boom")
"""


@pytest.fixture
def factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / f"{FACTORY_MODULE}.py").write_text(textwrap.dedent(FACTORY_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, FACTORY_MODULE, raising=False)
    yield FACTORY_MODULE
    sys.modules.pop(FACTORY_MODULE, None)


def test_module_from_spec(factories: str) -> None:
    net = module_from_spec(f"{factories}:make_net", "design.yaml", kwargs={"channels": 6})
    assert isinstance(net, nn.Sequential)
    w = from_torch(net, (3, 8, 8), file=f"torch:{factories}:make_net")
    assert [layer.name for layer in w] == ["0"]
    conv = w.layer("0")
    assert (conv.K, conv.C, conv.P) == (6, 3, 8) and conv.bias and conv.activation is Activation.RELU
    assert w.source == f"torch:{factories}:make_net"
    assert w.total_macs == reduce(operator.mul, (6, 3, 3, 3, 8, 8))


def test_module_from_spec_search_path(tmp_path: Path) -> None:
    name = "dnac_fx_import_search_path_factories"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(FACTORY_SOURCE))
    before = list(sys.path)
    try:
        with pytest.raises(ModelError, match=f"cannot import module '{name}'"):
            load_factory(f"{name}:make_net", "model.yaml")
        net = module_from_spec(f"{name}:make_net", "model.yaml", search_path=tmp_path)
        assert isinstance(net, nn.Sequential) and sys.path == before
    finally:
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("attr", "kwargs", "words"),
    [
        ("not_a_module", None, "returned an int, not an nn.Module"),
        ("broken", None, "RuntimeError: boom"),
        ("make_net", {"width": 3}, "TypeError"),
    ],
)
def test_module_from_spec_errors(factories: str, attr: str, kwargs: dict | None, words: str) -> None:
    with pytest.raises(ModelError) as info:
        module_from_spec(f"{factories}:{attr}", "design.yaml", kwargs=kwargs)
    assert info.value.field == "torch" and words in info.value.reason
