"""Search and training configuration: typed, frozen dataclasses, validated from YAML.

A CONFIG is a YAML file or the name of a built-in preset (`search/presets/<name>.yaml`:
`cifar10`, `cifar10-dna`, `fashion-mnist`, `tiny`).  Every field has a default, so a file
states only what differs; unknown keys, wrong types and impossible values are a `ConfigError`
that names the file, the field path and the reason (exit status 2 on the command line).

    name: my-search
    seed: 0
    data:     {dataset: fashion-mnist, data_dir: null, batch_size: 64, limit_batches: null}
    space:    {width_mult: 1.0, depths: [1,4,4,4,4,4,1], strides: [1,1,2,2,1,2,1], stem_stride: 1,
               candidates: [k3_e1, ..., skip], bits: [4,6,8,12,16], edge_bits: 16}
    search:   {method: trips, sampling: single_path, precision: heterogeneous, top_k: 2, epochs: 90,
               tau0: 5.0, tau_decay: 0.975, warmup_epochs: 0, weight_lr: 0.025, momentum: 0.9,
               weight_decay: 0.0003, arch_lr: 0.0003, arch_weight_decay: 0.001}
    hardware: {target: zc706, objective: latency, lambda: 0.1, samples: 10,
               das: {steps: 20, batch: 32}, final_das: {steps: 100, batch: 128}, probe_draws: 4}
    train:    {epochs: 600, lr: 0.1, momentum: 0.9, weight_decay: 0.0003, batch_size: 96}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from dnac.compiler.cost.model import OBJECTIVES
from dnac.compiler.errors import DnacError
from dnac.compiler.targets import known_targets, load_target
from dnac.compiler.workload.builder import MAX_BATCH, MAX_EXTENT
from dnac.compiler.yamlio import Fields, check_int, parse_yaml, read_yaml
from dnac.search.errors import ConfigError
from dnac.search.ops import OPS
from dnac.search.precision import PrecisionMode
from dnac.search.sampling import SamplingMode
from dnac.search.space import (
    CIFAR_STRIDES,
    FBNET_CANDIDATES,
    FBNET_DEPTHS,
    FBNET_HEAD,
    FBNET_STEM,
    FBNET_WIDTHS,
    SearchSpace,
    fbnet_space,
)

#: Co-search methods: DNA Alg. 1 (per-operator cost averaged over M DAS accelerators) or
#: TRIPS Eq. 8 (the single-path network's cost on its DAS accelerator); `flops` charges MACs
#: only (the FLOPs-aware NAS of the sequential baseline).
METHODS = ("dna", "trips", "flops")
#: The objective per target kind when a config names none (TRIPS Sec. 4.1: latency for the FPGA,
#: whose metric is FPS; EDP for the ASIC).
DEFAULT_OBJECTIVE = {"fpga": "latency", "asic": "edp"}
# Bounds on a config's counts, far above the papers' settings (90 epochs, batch 64, 10 samples),
# so that a typo is one line rather than a run that never ends.
MAX_EPOCHS = 100_000
MAX_DRAWS = 10_000  # hardware samples and probe draws per step
MAX_DAS = 10_000  # DAS steps and batch


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "fashion-mnist"  # fashion-mnist, mnist, digits, cifar10, cifar100, imagefolder, synthetic
    data_dir: str | None = None  # where the files are (required for cifar*/imagefolder)
    batch_size: int = 64  # per process
    limit_batches: int | None = None  # cap on batches per epoch (per split), None = all


@dataclass(frozen=True)
class SpaceConfig:
    width_mult: float = 1.0  # FBNet widths x this (rounded to multiples of 4)
    depths: tuple[int, ...] = FBNET_DEPTHS  # searchable layers per stage (22 in FBNet)
    widths: tuple[int, ...] = FBNET_WIDTHS  # stage widths before width_mult
    strides: tuple[int, ...] = CIFAR_STRIDES  # first-layer stride per stage
    stem_channels: int = FBNET_STEM
    stem_stride: int = 1  # 2 on ImageNet
    head_channels: int = FBNET_HEAD
    candidates: tuple[str, ...] = FBNET_CANDIDATES
    bits: tuple[int, ...] = (4, 6, 8, 12, 16)  # precision choices of every searchable layer
    edge_bits: int = 16  # precision of stem, head conv and classifier


@dataclass(frozen=True)
class SearchSettings:
    method: str = "trips"  # dna | trips | flops
    sampling: SamplingMode = SamplingMode.SINGLE_PATH  # single_path (TRIPS) | soft (DNA)
    precision: PrecisionMode = PrecisionMode.HETEROGENEOUS  # heterogeneous | hard | all_paths
    top_k: int = 2  # paths activated in the backward pass (TRIPS Eq. 7)
    epochs: int = 90
    tau0: float = 5.0  # Gumbel-softmax temperature at epoch 0 ...
    tau_decay: float = 0.975  # ... times this every epoch
    warmup_epochs: int = 0  # epochs that train the weights only (alpha, beta frozen)
    weight_lr: float = 0.025  # SGD, cosine-annealed over the epochs
    momentum: float = 0.9
    weight_decay: float = 3e-4
    arch_lr: float = 3e-4  # Adam on alpha and beta
    arch_weight_decay: float = 1e-3


@dataclass(frozen=True)
class DasSettings:
    steps: int = 20
    batch: int = 32


@dataclass(frozen=True)
class HardwareConfig:
    target: str = "zc706"
    objective: str = "latency"  # fps | latency (FPGA); edp | latency | energy (ASIC)
    lam: float = 0.1  # lambda of DNA Eq. 1 / TRIPS Eq. 1
    samples: int = 10  # M networks sampled per epoch (DNA Alg. 1)
    das: DasSettings = DasSettings()  # DAS per sampled network per epoch (warm-started)
    final_das: DasSettings = DasSettings(100, 128)  # DAS for the derived network
    probe_draws: int = 4  # random mappings tried per candidate layer on a fixed accelerator


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 600
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 3e-4
    batch_size: int = 96


@dataclass(frozen=True)
class SearchConfig:
    name: str = "search"
    seed: int = 0
    data: DataConfig = DataConfig()
    space: SpaceConfig = SpaceConfig()
    search: SearchSettings = SearchSettings()
    hardware: HardwareConfig = HardwareConfig()
    train: TrainConfig = TrainConfig()
    source: str = field(default="<python>", compare=False)  # file or preset it came from

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        d["hardware"]["lambda"] = d["hardware"].pop("lam")
        return _plain(d)

    def build_space(self, input_shape: tuple[int, int, int], classes: int) -> SearchSpace:
        """The supernet space for this input; a space that cannot be built is this config's
        error (its file, `space.<field>`), whether found at load time or once the data is known."""
        s = self.space
        try:
            return fbnet_space(self.name, input_shape, classes, strides=s.strides, stem_stride=s.stem_stride,
                               width_mult=s.width_mult, depths=s.depths, widths=s.widths,
                               stem_channels=s.stem_channels, head_channels=s.head_channels,
                               candidates=s.candidates, bits=s.bits, edge_bits=s.edge_bits)
        except DnacError as exc:
            raise ConfigError(self.source, f"space.{exc.field}" if exc.field else "space", exc.reason) from None


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "value") and isinstance(v.value, str):
        return v.value
    return v


# ---------------------------------------------------------------------------- presets
def presets() -> list[str]:
    root = resources.files("dnac.search").joinpath("presets")
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_config(spec: str) -> SearchConfig:
    """A preset name or a YAML file, validated."""
    if not isinstance(spec, str) or not spec:
        raise ConfigError("-", "CONFIG", f"give a YAML file or a preset ({', '.join(presets())})")
    looks_like_file = spec.endswith((".yaml", ".yml")) or "/" in spec or Path(spec).exists()
    if not looks_like_file:
        if spec not in presets():
            raise ConfigError(spec, "", f"not a file and not a preset (presets: {', '.join(presets())})")
        text = resources.files("dnac.search").joinpath("presets", f"{spec}.yaml").read_text(encoding="utf-8")
        return parse_config(parse_yaml(text, f"preset:{spec}", ConfigError), f"preset:{spec}")
    return parse_config(read_yaml(spec, ConfigError), spec)


# ---------------------------------------------------------------------------- validation
def _float(f: Fields, key: str, default: float, *, lo: float | None = None, hi: float | None = None,
           open_lo: bool = False) -> float:
    v = f.raw(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        f.fail(key, f"must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):  # NaN passes every comparison below and would end up in report.json
        f.fail(key, f"must be a finite number, got {v}")
    if lo is not None and (v < lo or (open_lo and v == lo)):
        f.fail(key, f"must be {'>' if open_lo else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        f.fail(key, f"must be <= {hi}, got {v}")
    return v


def _opt_int(f: Fields, key: str, default: int | None, *, min: int = 1) -> int | None:
    v = f.raw(key, default)
    return None if v is None else f.int_(key, min=min)


def _ints(f: Fields, key: str, default: tuple[int, ...], *, min: int = 1, max: int | None = None) -> tuple[int, ...]:
    v = f.raw(key, default)
    if isinstance(v, tuple):
        return v
    if not isinstance(v, list) or not v:
        f.fail(key, f"must be a non-empty list of integers, got {v!r}")
    sub = Fields({}, f.file, f.sub(key), f.error)
    return tuple(check_int(x, sub, i, min=min, max=max) for i, x in enumerate(v))


def _enum(f: Fields, key: str, enum: type, default: Any) -> Any:
    v = f.raw(key, default)
    try:
        return enum(v)
    except ValueError:
        f.fail(key, f"unknown value {v!r} (choose from: {', '.join(e.value for e in enum)})")


def _choice(f: Fields, key: str, default: str, choices: tuple[str, ...] | list[str]) -> str:
    v = f.str_(key, default)
    if v not in choices:
        f.fail(key, f"unknown value {v!r} (choose from: {', '.join(choices)})")
    return v


def _das(f: Fields, key: str, default: DasSettings) -> DasSettings:
    if not f.has(key):
        return default
    d = f.map_(key)
    d.only({"steps", "batch"})
    return DasSettings(d.int_("steps", default.steps, max=MAX_DAS), d.int_("batch", default.batch, min=2, max=MAX_DAS))


def parse_config(data: Any, file: str) -> SearchConfig:
    top = Fields(data, file, error=ConfigError)
    top.only({"name", "seed", "data", "space", "search", "hardware", "train"})
    d0, s0, x0, h0, t0 = DataConfig(), SpaceConfig(), SearchSettings(), HardwareConfig(), TrainConfig()

    f = top.map_("data", {})
    f.only(set(DataConfig.__dataclass_fields__))
    data_cfg = DataConfig(
        dataset=f.str_("dataset", d0.dataset),
        data_dir=f.str_("data_dir", None) if f.raw("data_dir", None) is not None else None,
        batch_size=f.int_("batch_size", d0.batch_size, max=MAX_BATCH),
        limit_batches=_opt_int(f, "limit_batches", None),
    )

    f = top.map_("space", {})
    f.only(set(SpaceConfig.__dataclass_fields__))
    cands = f.raw("candidates", list(s0.candidates))
    if not isinstance(cands, list) or not cands or not all(isinstance(c, str) for c in cands):
        f.fail("candidates", f"must be a non-empty list of operator names, got {cands!r}")
    for i, c in enumerate(cands):
        if c not in OPS:
            f.fail(f"candidates[{i}]", f"unknown operator {c!r} (known: {', '.join(OPS.names())})")
    space_cfg = SpaceConfig(
        width_mult=_float(f, "width_mult", s0.width_mult, lo=0.0, hi=8.0, open_lo=True),
        depths=_ints(f, "depths", s0.depths, min=0, max=64),
        widths=_ints(f, "widths", s0.widths, max=MAX_EXTENT),
        strides=_ints(f, "strides", s0.strides, max=4),
        stem_channels=f.int_("stem_channels", s0.stem_channels, max=MAX_EXTENT),
        stem_stride=f.int_("stem_stride", s0.stem_stride, max=4),
        head_channels=f.int_("head_channels", s0.head_channels, max=MAX_EXTENT),
        candidates=tuple(cands),
        bits=_ints(f, "bits", s0.bits, min=2, max=16),
        edge_bits=f.int_("edge_bits", s0.edge_bits, min=2, max=16),
    )
    if not (len(space_cfg.depths) == len(space_cfg.widths) == len(space_cfg.strides)):
        f.fail("depths", f"depths ({len(space_cfg.depths)}), widths ({len(space_cfg.widths)}) and strides "
               f"({len(space_cfg.strides)}) need one entry per stage")
    if sum(space_cfg.depths) == 0:
        f.fail("depths", "the space has no searchable layer")
    if len(set(space_cfg.bits)) != len(space_cfg.bits):
        f.fail("bits", f"precision choices repeat: {list(space_cfg.bits)}")

    f = top.map_("search", {})
    f.only(set(SearchSettings.__dataclass_fields__))
    search_cfg = SearchSettings(
        method=_choice(f, "method", x0.method, METHODS),
        sampling=_enum(f, "sampling", SamplingMode, x0.sampling.value),
        precision=_enum(f, "precision", PrecisionMode, x0.precision.value),
        top_k=f.int_("top_k", x0.top_k),
        epochs=f.int_("epochs", x0.epochs, max=MAX_EPOCHS),
        tau0=_float(f, "tau0", x0.tau0, lo=0.0, open_lo=True),
        tau_decay=_float(f, "tau_decay", x0.tau_decay, lo=0.0, hi=1.0, open_lo=True),
        warmup_epochs=f.int_("warmup_epochs", x0.warmup_epochs, min=0, max=MAX_EPOCHS),
        weight_lr=_float(f, "weight_lr", x0.weight_lr, lo=0.0, open_lo=True),
        momentum=_float(f, "momentum", x0.momentum, lo=0.0, hi=1.0),
        weight_decay=_float(f, "weight_decay", x0.weight_decay, lo=0.0),
        arch_lr=_float(f, "arch_lr", x0.arch_lr, lo=0.0, open_lo=True),
        arch_weight_decay=_float(f, "arch_weight_decay", x0.arch_weight_decay, lo=0.0),
    )

    f = top.map_("hardware", {})
    f.only({"target", "objective", "lambda", "samples", "das", "final_das", "probe_draws"})
    target = f.str_("target", h0.target)
    if target not in known_targets():
        f.fail("target", f"unknown target {target!r} (known: {', '.join(known_targets())})")
    kind = load_target(target).KIND
    objective = f.str_("objective", DEFAULT_OBJECTIVE[kind])
    if objective not in OBJECTIVES[kind]:
        f.fail("objective", f"{objective!r} is not an objective for {target} (choose from: {', '.join(OBJECTIVES[kind])})")
    hw_cfg = HardwareConfig(
        target=target, objective=objective, lam=_float(f, "lambda", h0.lam, lo=0.0),
        samples=f.int_("samples", h0.samples, max=MAX_DRAWS), das=_das(f, "das", h0.das), final_das=_das(f, "final_das", h0.final_das),
        probe_draws=f.int_("probe_draws", h0.probe_draws, max=MAX_DRAWS),
    )

    f = top.map_("train", {})
    f.only(set(TrainConfig.__dataclass_fields__))
    train_cfg = TrainConfig(
        epochs=f.int_("epochs", t0.epochs, max=MAX_EPOCHS), lr=_float(f, "lr", t0.lr, lo=0.0, open_lo=True),
        momentum=_float(f, "momentum", t0.momentum, lo=0.0, hi=1.0),
        weight_decay=_float(f, "weight_decay", t0.weight_decay, lo=0.0),
        batch_size=f.int_("batch_size", t0.batch_size, max=MAX_BATCH),
    )
    name = top.str_("name", Path(file).stem if not file.startswith("preset:") else file.split(":", 1)[1])
    cfg = SearchConfig(name=name, seed=top.int_("seed", 0, min=0, max=2**32 - 1), data=data_cfg, space=space_cfg,
                       search=search_cfg, hardware=hw_cfg, train=train_cfg, source=file)
    if search_cfg.warmup_epochs >= search_cfg.epochs and search_cfg.method != "flops":
        top.fail("search.warmup_epochs", f"{search_cfg.warmup_epochs} warm-up epochs leave no search epoch "
                 f"(epochs: {search_cfg.epochs})")
    _check_space(cfg)
    return cfg


#: The input a config's space is checked against at load time, before its dataset is known (the
#: command line may still change it): errors that do not depend on the input (widths, candidates,
#: bits, depths) surface here; the real input is checked when the data is loaded.
NOMINAL_INPUT: tuple[tuple[int, int, int], int] = ((1, 32, 32), 10)


def _check_space(cfg: SearchConfig) -> None:
    cfg.build_space(*NOMINAL_INPUT)


def with_overrides(cfg: SearchConfig, **kw: Any) -> SearchConfig:
    """Command-line flags over a config: dataset, data_dir, target, epochs, limit_batches, seed."""
    data, hw, search, train = cfg.data, cfg.hardware, cfg.search, cfg.train
    if kw.get("dataset") is not None:
        data = replace(data, dataset=kw["dataset"])
    if kw.get("data_dir") is not None:
        data = replace(data, data_dir=kw["data_dir"])
    if kw.get("limit_batches") is not None:
        data = replace(data, limit_batches=kw["limit_batches"])
    if kw.get("target") is not None:
        t = kw["target"]
        if t not in known_targets():
            raise ConfigError("-", "--target", f"unknown target {t!r} (known: {', '.join(known_targets())})")
        kind = load_target(t).KIND
        # another kind of target gets that kind's objective of the papers (FPGA latency, ASIC EDP)
        objective = hw.objective if kind == load_target(hw.target).KIND else DEFAULT_OBJECTIVE[kind]
        hw = replace(hw, target=t, objective=objective)
    if kw.get("objective") is not None:
        kind = load_target(hw.target).KIND
        if kw["objective"] not in OBJECTIVES[kind]:
            raise ConfigError("-", "--objective", f"{kw['objective']!r} is not an objective for {hw.target} "
                              f"(choose from: {', '.join(OBJECTIVES[kind])})")
        hw = replace(hw, objective=kw["objective"])
    if kw.get("epochs") is not None:
        search = replace(search, epochs=kw["epochs"])
        if search.warmup_epochs >= search.epochs and search.method != "flops":
            search = replace(search, warmup_epochs=0)
    if kw.get("train_epochs") is not None:
        train = replace(train, epochs=kw["train_epochs"])
    seed = cfg.seed if kw.get("seed") is None else kw["seed"]
    return replace(cfg, data=data, hardware=hw, search=search, train=train, seed=seed)
