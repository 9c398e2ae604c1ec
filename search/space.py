"""The searchable network space, as registered data.

Grammar (stated once, after mobile-vision's `meta_builder`): a space is a stem conv, a list of
stages and a head.  A `StageSpec(channels, stride, repeats, candidates)` stands for `repeats`
searchable layers of width `channels`; the first has stride `stride`, the others stride 1.
Each searchable layer picks one operator of `candidates` (names in `ops.OPS`) and one precision
of the space's `bits`.  `SearchSpace.layers()` expands the stages into one `LayerSlot` per
searchable layer once, before anything is built; a candidate that cannot exist at a position
(`skip` where the width or stride changes) is dropped there.

FBNet (Wu et al. 2019, Table 1): stem 16, stages (16, 1), (24, 4), (32, 4), (64, 4), (112, 4),
(184, 4), (352, 1) = 22 searchable layers, head 1x1 conv 1984, ImageNet strides
[1, 2, 2, 2, 1, 2, 1] after a stride-2 stem.  On CIFAR-10/100 DNA Sec. 4.1.2 uses the strides of
MobileNetV2 on CIFAR (Wang et al. 2019), [1, 1, 2, 2, 1, 2, 1], with a stride-1 stem; TRIPS
Sec. 4.1 states the same as "disable the first two down sampling operations".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dnac.search.errors import ConfigError
from dnac.search.ops import OPS
from dnac.search.precision import DEFAULT_BITS

#: The nine FBNet candidates (FBNet Table 2), in the order the papers list them.
FBNET_CANDIDATES: tuple[str, ...] = (
    "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
)
IMAGENET_STRIDES: tuple[int, ...] = (1, 2, 2, 2, 1, 2, 1)
CIFAR_STRIDES: tuple[int, ...] = (1, 1, 2, 2, 1, 2, 1)
FBNET_WIDTHS: tuple[int, ...] = (16, 24, 32, 64, 112, 184, 352)
FBNET_DEPTHS: tuple[int, ...] = (1, 4, 4, 4, 4, 4, 1)
FBNET_STEM, FBNET_HEAD = 16, 1984


@dataclass(frozen=True)
class StageSpec:
    """A run of searchable layers of one width."""

    channels: int  # output width of every layer of the stage
    stride: int  # stride of the stage's first layer (the others have stride 1)
    repeats: int  # searchable layers in the stage
    candidates: tuple[str, ...] = FBNET_CANDIDATES  # operator names (ops.OPS)


@dataclass(frozen=True)
class LayerSlot:
    """One searchable layer after expansion: where it is and what it may be."""

    index: int  # position among the searchable layers
    stage: int
    c_in: int
    c_out: int
    stride: int
    in_size: tuple[int, int]  # input rows, columns
    candidates: tuple[str, ...]  # the stage's candidates that exist here


@dataclass(frozen=True)
class SearchSpace:
    """A whole network space: stem, stages, head, and the precision choices."""

    name: str
    input_shape: tuple[int, int, int]  # C, H, W of one sample
    classes: int
    stem_channels: int
    stem_stride: int
    stages: tuple[StageSpec, ...]
    head_channels: int
    bits: tuple[int, ...] = DEFAULT_BITS  # precision choices of every searchable layer
    edge_bits: int = 16  # precision of the stem, the head conv and the classifier (not searched)
    _layers: tuple[LayerSlot, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_layers", self._expand())

    def _expand(self) -> tuple[LayerSlot, ...]:
        out: list[LayerSlot] = []
        h, w = self.input_shape[1:]
        h, w = -(-h // self.stem_stride), -(-w // self.stem_stride)
        c = self.stem_channels
        for si, st in enumerate(self.stages):
            for r in range(st.repeats):
                stride = st.stride if r == 0 else 1
                cands = tuple(op for op in st.candidates if OPS[op].fits(c, st.channels, stride))
                if not cands:
                    raise ConfigError("<space>", f"stages[{si}].candidates",
                                      f"no candidate exists at layer {len(out)} ({c} -> {st.channels}, stride {stride})")
                out.append(LayerSlot(len(out), si, c, st.channels, stride, (h, w), cands))
                h, w = -(-h // stride), -(-w // stride)
                c = st.channels
        return tuple(out)

    def layers(self) -> tuple[LayerSlot, ...]:
        return self._layers

    @property
    def n_layers(self) -> int:
        return len(self._layers)

    @property
    def max_candidates(self) -> int:
        return max(len(s.candidates) for s in self._layers)

    @property
    def last_channels(self) -> int:
        return self._layers[-1].c_out if self._layers else self.stem_channels

    def size_log10(self) -> float:
        """log10 of the networks x precisions the space holds."""
        import math

        return sum(math.log10(len(s.candidates) * len(self.bits)) for s in self._layers)


def scale_width(c: int, mult: float, divisor: int = 4) -> int:
    """c x mult rounded to a multiple of `divisor` (never below it), as mobile-vision rounds."""
    v = max(divisor, int(c * mult + divisor / 2) // divisor * divisor)
    return v + divisor if v < 0.9 * c * mult else v


def fbnet_space(
    name: str,
    input_shape: tuple[int, int, int],
    classes: int,
    *,
    strides: tuple[int, ...] = CIFAR_STRIDES,
    stem_stride: int = 1,
    width_mult: float = 1.0,
    depths: tuple[int, ...] = FBNET_DEPTHS,
    widths: tuple[int, ...] = FBNET_WIDTHS,
    stem_channels: int = FBNET_STEM,
    head_channels: int = FBNET_HEAD,
    candidates: tuple[str, ...] = FBNET_CANDIDATES,
    bits: tuple[int, ...] = DEFAULT_BITS,
    edge_bits: int = 16,
) -> SearchSpace:
    """The FBNet space (CIFAR strides by default), optionally thinner or shallower."""
    if not (len(strides) == len(depths) == len(widths)):
        raise ConfigError("<space>", "stages", f"strides ({len(strides)}), depths ({len(depths)}) and widths "
                          f"({len(widths)}) must have one entry per stage")
    stages = tuple(
        StageSpec(scale_width(c, width_mult), s, d, candidates) for c, s, d in zip(widths, strides, depths) if d > 0
    )
    return SearchSpace(name, input_shape, classes, scale_width(stem_channels, width_mult), stem_stride, stages,
                       scale_width(head_channels, width_mult), tuple(bits), edge_bits)
