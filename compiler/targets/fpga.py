"""FPGA targets: device budgets, BRAM18K geometry and the DSP/LUT cost of a MAC by precision.

The FPGA cost model, DAS budgets and the HLS back-end ask these questions of a target and never
hard-code a board fact: how many DSP48s a 6-bit MAC needs, how many BRAM18K a 3000 x 16 buffer
takes, how many bytes per cycle DRAM delivers.  The numbers come from `zc706.yaml` with a
`source:` each.  This module turns that file into a frozen `FpgaTarget` and applies a
model.yaml's budget overrides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ..errors import TargetError
from .schema import Fields


@dataclass(frozen=True)
class FpgaTarget:
    """An FPGA board: resource budgets, clock, DRAM bandwidth and arithmetic mapping rules.

    `dsp`/`bram18k`/`lut`/`ff` are the budgets a design must fit. They start at the device
    totals (`device_*`) and can only be lowered by `with_overrides`.
    """

    KIND: ClassVar[str] = "fpga"
    OVERRIDE_KEYS: ClassVar[tuple[str, ...]] = (
        "dsp", "bram18k", "lut", "ff", "clock_mhz", "dram_bandwidth_gbps")

    name: str  # registry name, e.g. "zc706"
    board: str  # human-readable board name
    part: str  # Vivado part name, e.g. "xc7z045ffg900-2" (goes into run_hls.tcl)
    dsp: int  # DSP48 budget
    bram18k: int  # RAMB18 budget
    lut: int  # LUT budget
    ff: int  # flip-flop budget
    clock_mhz: float  # accelerator clock
    dram_bandwidth_gbps: float  # usable off-chip bandwidth in GB/s (10^9 bytes per second)
    device_dsp: int  # physical totals of the part (upper bounds for overrides)
    device_bram18k: int
    device_lut: int
    device_ff: int
    dram_interface: str  # which interface dram_bandwidth_gbps was derived from
    dram_peak_gbps: float  # that interface's peak
    dram_bytes: int  # that interface's capacity: bounds the HLS project's DRAM image
    bram18k_bits: int = 18432  # bits per RAMB18 including parity
    bram18k_tdp: tuple[tuple[int, int], ...] = ()  # (width, depth) shapes, true dual-port
    bram18k_sdp: tuple[tuple[int, int], ...] = ()  # (width, depth) shapes, simple dual-port
    dsp_a_bits: int = 25  # multiplier port widths of one DSP slice
    dsp_b_bits: int = 18
    packed_max_bits: int = 8  # up to this precision, packed_macs_per_dsp MACs share one DSP
    packed_macs_per_dsp: int = 2
    lut_max_bits: int = 4  # up to this precision MACs are built from LUTs
    lut_per_mac_table: tuple[tuple[int, int], ...] = ()  # (bits, LUTs per MAC), bits 1..lut_max_bits
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # field -> source
    file: str = field(default="<python>", compare=False)  # the YAML it came from

    # -- arithmetic ------------------------------------------------------------------------

    @staticmethod
    def _bits(bits: int, act_bits: int | None) -> int:
        b = max(bits, act_bits) if act_bits is not None else bits
        if not isinstance(b, int) or isinstance(b, bool) or b < 1:
            raise ValueError(f"precision must be a positive integer number of bits, got {b!r}")
        return b

    def uses_dsp(self, bits: int, act_bits: int | None = None) -> bool:
        """Whether a MAC of this precision is mapped to DSP slices (else to LUTs)."""
        return self._bits(bits, act_bits) > self.lut_max_bits

    def dsp_per_mac(self, bits: int, act_bits: int | None = None) -> float:
        """DSP slices one MAC occupies: 0 in LUTs, 1/2 when packed, 1, or a cascade."""
        b = self._bits(bits, act_bits)
        if b <= self.lut_max_bits:
            return 0.0
        if b <= self.packed_max_bits:
            return 1.0 / self.packed_macs_per_dsp
        if b <= min(self.dsp_a_bits, self.dsp_b_bits):
            return 1.0
        return float(math.ceil(b / self.dsp_a_bits) * math.ceil(b / self.dsp_b_bits))

    def macs_per_dsp(self, bits: int, act_bits: int | None = None) -> float:
        """MACs per DSP slice per cycle (`math.inf` for LUT MACs, which use no DSP)."""
        per = self.dsp_per_mac(bits, act_bits)
        return math.inf if per == 0 else 1.0 / per

    def lut_per_mac(self, bits: int, act_bits: int | None = None) -> int:
        """LUTs one MAC costs when it is built from LUTs; 0 when it sits on DSPs.

        An estimate from the FINN-R cost model (see `arithmetic.lut_per_mac` in zc706.yaml)."""
        b = self._bits(bits, act_bits)
        if b > self.lut_max_bits:
            return 0
        return dict(self.lut_per_mac_table)[b]

    # -- memory ----------------------------------------------------------------------------

    @property
    def bram18k_widths(self) -> tuple[int, ...]:
        """Port widths a RAMB18 offers (simple dual-port adds 36)."""
        return tuple(sorted({w for w, _ in self.bram18k_sdp + self.bram18k_tdp}))

    def bram18k_for(self, depth_words: int, width_bits: int, *, true_dual_port: bool = False) -> int:
        """Fewest RAMB18 for a depth x width buffer over the legal aspect ratios."""
        if depth_words <= 0 or width_bits <= 0:
            return 0
        shapes = self.bram18k_tdp if true_dual_port else self.bram18k_sdp
        return min(math.ceil(width_bits / w) * math.ceil(depth_words / d) for w, d in shapes)

    @property
    def dram_bytes_per_cycle(self) -> float:
        """Usable DRAM bytes per accelerator clock cycle."""
        return self.dram_bandwidth_gbps * 1e3 / self.clock_mhz

    def source(self, name: str) -> str:
        """Where the value of field `name` comes from ("" if not recorded)."""
        return dict(self.sources).get(name, "")

    # -- overrides -------------------------------------------------------------------------

    def with_overrides(self, **kw: Any) -> FpgaTarget:
        """A copy with lowered budgets / other clock or bandwidth; see `apply_fpga_overrides`."""
        return apply_fpga_overrides(self, kw, file="<python>")


def apply_fpga_overrides(t: FpgaTarget, section: Mapping[str, Any], *, file: str,
                         field_prefix: str = "target") -> FpgaTarget:
    """Validate a model.yaml `target:` section (minus `name`) and return the overridden copy."""
    limits = {"dsp": t.device_dsp, "bram18k": t.device_bram18k, "lut": t.device_lut,
              "ff": t.device_ff}
    changes: dict[str, Any] = {}
    sources = dict(t.sources)
    for key, value in section.items():
        where = f"{field_prefix}.{key}"
        if key not in FpgaTarget.OVERRIDE_KEYS:
            raise TargetError(file, where, f"unknown key {key!r} for an FPGA target "
                                           f"(known: {', '.join(FpgaTarget.OVERRIDE_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                or not math.isfinite(value):
            raise TargetError(file, where, f"expected a positive number, got {value!r}")
        if key in limits:
            if value != int(value):
                raise TargetError(file, where, f"expected a whole number, got {value!r}")
            if value > limits[key]:
                raise TargetError(file, where, f"{int(value)} exceeds the {t.part}'s {limits[key]}")
            value = int(value)
        else:
            value = float(value)
        changes[key] = value
        sources[key] = f"override from {file}"
    return replace(t, **changes, sources=tuple(sorted(sources.items())))


def parse_fpga(f: Fields) -> FpgaTarget:
    """Validate an FPGA target document into an `FpgaTarget`."""
    name = f.check_header(FpgaTarget.KIND)
    src: dict[str, str] = {}

    def num(path: str, key: str, *, integer: bool = True) -> Any:
        value, src[key] = f.number(path, integer=integer)
        return value

    board, src["board"] = f.sourced("board")
    part, src["part"] = f.sourced("part")
    if not isinstance(part, str) or not isinstance(board, str):
        raise f.error("part.value", "expected a string")
    dsp = num("resources.dsp", "dsp")
    bram18k = num("resources.bram18k", "bram18k")
    bram36k = num("resources.bram36k", "bram36k")
    if bram18k != 2 * bram36k:
        raise f.error("resources.bram18k.value", f"{bram18k} != 2 x bram36k ({bram36k})")
    lut, ff = num("resources.lut", "lut"), num("resources.ff", "ff")
    clock = num("clock_mhz", "clock_mhz", integer=False)
    bits18 = num("bram18k.bits", "bram18k_bits")
    tdp, src["bram18k_tdp"] = f.int_map("bram18k.true_dual_port")
    sdp, src["bram18k_sdp"] = f.int_map("bram18k.simple_dual_port")
    for path, shapes in (("bram18k.true_dual_port", tdp), ("bram18k.simple_dual_port", sdp)):
        for w, d in shapes.items():
            if w * d > bits18:
                raise f.error(f"{path}.value", f"{d} x {w} exceeds {bits18} bits")
    a_bits, b_bits = num("arithmetic.dsp_a_bits", "dsp_a_bits"), num("arithmetic.dsp_b_bits", "dsp_b_bits")
    packed_max = num("arithmetic.packed_max_bits", "packed_max_bits")
    packed_n = num("arithmetic.packed_macs_per_dsp", "packed_macs_per_dsp")
    lut_max = num("arithmetic.lut_max_bits", "lut_max_bits")
    lut_table, src["lut_per_mac"] = f.int_map("arithmetic.lut_per_mac")
    missing = [b for b in range(1, lut_max + 1) if b not in lut_table]
    if missing:
        raise f.error("arithmetic.lut_per_mac.value", f"no LUT cost for {missing} bit(s) "
                                                      f"(lut_max_bits is {lut_max})")
    if not lut_max < packed_max <= min(a_bits, b_bits):
        raise f.error("arithmetic", "need lut_max_bits < packed_max_bits <= min(dsp_a_bits, dsp_b_bits)")

    iface = f.string("dram.default")
    fraction, src["dram_usable_fraction"] = f.number("dram.usable_fraction")
    if fraction > 1:
        raise f.error("dram.usable_fraction.value", f"must be <= 1, got {fraction}")
    base = f"dram.interfaces.{iface}"
    f.mapping(base)
    bus, _ = f.number(f"{base}.bus_bits", integer=True)
    rate, _ = f.number(f"{base}.data_rate_mtps")
    peak, src["dram_peak_gbps"] = f.number(f"{base}.peak_gbps")
    if abs(bus * rate / 8e3 - peak) > 0.01 * peak:
        raise f.error(f"{base}.peak_gbps.value", f"{peak} GB/s != {bus} bit x {rate} MT/s / 8")
    src["dram_bandwidth_gbps"] = f"derived: {iface} peak {peak} GB/s x usable fraction {fraction}"
    capacity, src["dram_bytes"] = f.number(f"{base}.capacity_bytes", integer=True)

    return FpgaTarget(
        name=name, board=board, part=part, dsp=dsp, bram18k=bram18k, lut=lut, ff=ff,
        clock_mhz=clock, dram_bandwidth_gbps=round(peak * fraction, 6),
        device_dsp=dsp, device_bram18k=bram18k, device_lut=lut, device_ff=ff,
        dram_interface=iface, dram_peak_gbps=peak, dram_bytes=capacity, bram18k_bits=bits18,
        bram18k_tdp=tuple(sorted(tdp.items())), bram18k_sdp=tuple(sorted(sdp.items())),
        dsp_a_bits=a_bits, dsp_b_bits=b_bits, packed_max_bits=packed_max,
        packed_macs_per_dsp=packed_n, lut_max_bits=lut_max,
        lut_per_mac_table=tuple(sorted(lut_table.items())),
        sources=tuple(sorted(src.items())), file=f.file,
    )
