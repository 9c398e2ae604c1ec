"""ASIC targets: per-action energy (pJ) and area (um^2) by component, size and technology.

The ASIC cost model and the Timeloop back-end (its ERT/ART files) price every access through an
`AsicTarget`. They never copy a number out of the Accelergy table themselves, so dnac's energy
and the energy Timeloop reproduces come from the same lookup.  Each answer carries its `source`:
  - "accelergy-0.4 table, <plugin>" for an exact row;
  - a closed form or law that reproduces the table;
  - "interpolated ..." for SRAM sizes between swept points;
  - "estimate: ..." for 32 nm classes that Accelergy could not price.
The rules are written in `asic_45nm.yaml` / `asic_32nm.yaml` under `lookup:`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .tables import TABLE_NAME, Costs, accelergy_table, sram_grid

ADDRESS_ADDER_BITS = 16  # Accelergy prices smartbuffer address generators as 16-bit adders
MAC_ACTIONS = ("mac_random", "mac_reused", "mac_gated")


@dataclass(frozen=True)
class Component:
    """One storage component: energy per access, leakage per cycle, area of one instance."""

    read_pJ: float
    write_pJ: float
    area_um2: float
    source: str  # table row, closed form, "interpolated ..." or "estimate: ..."
    idle_pJ: float = 0.0


@dataclass(frozen=True)
class Operation:
    """One arithmetic or wire action: energy per action, leakage per cycle, area."""

    energy_pJ: float
    area_um2: float
    source: str
    idle_pJ: float = 0.0


def _component(c: Costs, source: str) -> Component:
    return Component(c.read, c.write, c.area, source, c.idle)


def _positive(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_size(depth: object, width: object, n_banks: object = 1) -> None:
    _positive("depth", depth)
    _positive("width", width)
    _positive("n_banks", n_banks)


@dataclass(frozen=True)
class RegfileLaw:
    """Aladdin regfile closed form: a x width + b x ceil(log2 depth)/32 x depth, per quantity."""

    energy_per_bit: float
    energy_per_entry: float
    idle_per_bit: float
    idle_per_entry: float
    area_per_bit: float
    area_per_entry: float

    def costs(self, depth: int, width: int) -> Costs:
        entries = math.ceil(math.log2(depth)) / 32 * depth
        e = self.energy_per_bit * width + self.energy_per_entry * entries
        return Costs(e, e, self.idle_per_bit * width + self.idle_per_entry * entries,
                     self.area_per_bit * width + self.area_per_entry * entries)


@dataclass(frozen=True)
class Estimate:
    """How a node without Aladdin rows borrows them from another target (32 nm from 45 nm)."""

    base: AsicTarget  # the target whose values are scaled
    technology: str  # the node being estimated, e.g. "32nm"
    energy_scale: float
    idle_scale: float
    area_scale: float
    wire_energy_scale: float

    def costs(self, c: Costs) -> Costs:
        return c.scaled(energy=self.energy_scale, idle=self.idle_scale, area=self.area_scale)

    def label(self, inner: str) -> str:
        return (f"estimate: {self.base.technology} value ({inner}) x {self.energy_scale} energy, "
                f"x {self.idle_scale} idle, x {self.area_scale} area (CACTI SRAM "
                f"{self.technology}/{self.base.technology} ratios); not Accelergy output")


@dataclass(frozen=True)
class AsicTarget:
    """A technology node priced from the Accelergy v0.4 table (see the module docstring)."""

    KIND: ClassVar[str] = "asic"
    OVERRIDE_KEYS: ClassVar[tuple[str, ...]] = (
        "clock_mhz", "dram_type", "dram_bandwidth_gbps", "area_mm2")

    name: str  # registry name, e.g. "asic_45nm"
    technology: str  # CSV `technology` the rows come from: "45nm", "32nm"
    clock_mhz: float  # assumption of ours: cycles -> seconds only
    dram_type: str  # LPDDR4, DDR3, GDDR5, HBM2, LPDDR (CSV class DRAM_<type>)
    dram_width_bits: int  # bits per DRAM action (64)
    dram_bandwidth_gbps: float  # off-chip bandwidth in GB/s (10^9 bytes per second)
    sram_widths: tuple[int, ...]  # widths with exact SRAM rows
    regfile_widths: tuple[int, ...]  # widths with exact (or, at 32 nm, estimated) regfile rows
    mac_widths: tuple[int, ...]  # operand widths with exact intmac rows (45 nm)
    wire_widths: tuple[int, ...]
    regfile_law: RegfileLaw | None = None  # None when `estimate` supplies Aladdin classes
    estimate: Estimate | None = None
    area_mm2: float | None = None  # optional area budget; None = unconstrained
    # Report energy as `timeloop-model` run with its defaults (link transfers between neighbouring
    # PEs on); False reproduces TIMELOOP_DISABLE_LINK_TRANSFERS=1 (`--no-link-transfers`).
    link_transfers: bool = True
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    file: str = field(default="<python>", compare=False)

    # -- storage ---------------------------------------------------------------------------

    def sram(self, depth_words: int, width_bits: int, n_banks: int = 1) -> Component:
        """1-port CACTI SRAM; one action = one `width_bits` word in one bank."""
        _check_size(depth_words, width_bits, n_banks)
        costs, source = sram_grid(self.technology).lookup(
            accelergy_table(), depth_words, width_bits, n_banks)
        return _component(costs, source)

    def sram_sizes(self) -> tuple[tuple[int, int, int], ...]:
        """(depth, width, n_banks) points with exact SRAM rows, for design spaces."""
        return accelergy_table().storage_points(self.technology, "SRAM")

    def smartbuffer_sram(self, depth_words: int, width_bits: int, n_banks: int = 1) -> Component:
        """Eyeriss-example global buffer: 2-port SRAM storage + two 16-bit address adders."""
        _check_size(depth_words, width_bits, n_banks)
        exact = accelergy_table().costs(self.technology, "smartbuffer_SRAM",
                                        depth_words, width_bits, n_banks)
        if exact is not None:
            return _component(*exact)
        storage = self.sram(depth_words, width_bits, n_banks)
        ratio, anchor = self._port_ratio(depth_words, width_bits, n_banks)
        costs = _costs(storage).times(ratio).plus(self._address_adders())
        return _component(costs, f"estimate: 1-port SRAM ({storage.source}) x 2-port/1-port ratio "
                                 f"of the {self.anchor_tech} smartbuffer_SRAM row {anchor} "
                                 f"+ two {ADDRESS_ADDER_BITS}-bit address adders")

    @property
    def anchor_tech(self) -> str:
        """The node whose Aladdin / smartbuffer rows this target uses."""
        return self.estimate.base.technology if self.estimate else self.technology

    def _port_ratio(self, depth: int, width: int, n_banks: int) -> tuple[Costs, str]:
        """(smartbuffer - adders) / 1-port SRAM at the nearest smartbuffer_SRAM row."""
        base = self.estimate.base if self.estimate else self
        tech = base.technology
        table = accelergy_table()
        points = table.storage_points(tech, "smartbuffer_SRAM")
        d, w, b = min(points, key=lambda p: math.hypot(
            math.log2(p[0] / depth), math.log2(p[1] / width), math.log2(p[2] / n_banks)))
        sb, _ = table.costs(tech, "smartbuffer_SRAM", d, w, b)  # type: ignore[misc]
        storage = sb.minus(base._address_adders())
        return storage.over(_costs(base.sram(d, w, b))), f"{d}x{w}x{b}"

    def _address_adders(self) -> Costs:
        """Two 16-bit adders: one adds and one idles per access; both idle when idle."""
        add = self.adder(ADDRESS_ADDER_BITS)
        return Costs(add.energy_pJ + add.idle_pJ, add.energy_pJ + add.idle_pJ,
                     2 * add.idle_pJ, 2 * add.area_um2)

    def regfile(self, depth: int, width: int) -> Component:
        """Aladdin register file (area is a lower bound: storage bits are counted once)."""
        _check_size(depth, width)
        if self.estimate is not None:
            inner = self.estimate.base.regfile(depth, width)
            return _component(self.estimate.costs(_costs(inner)), self.estimate.label(inner.source))
        exact = accelergy_table().costs(self.technology, "regfile", depth, width, None)
        if exact is not None:
            return _component(*exact)
        assert self.regfile_law is not None
        return _component(self.regfile_law.costs(depth, width),
                          f"Aladdin regfile closed form (reproduces every {self.technology} "
                          f"{TABLE_NAME} regfile row); {depth}x{width} is not a row")

    def smartbuffer_rf(self, depth: int, width: int) -> Component:
        """Eyeriss-example PE scratchpad: regfile + two 16-bit address adders."""
        _check_size(depth, width)
        if self.estimate is None:
            exact = accelergy_table().costs(self.technology, "smartbuffer_RF", depth, width, 1)
            if exact is not None:
                return _component(*exact)
        rf = self.regfile(depth, width)
        costs = _costs(rf).plus(self._address_adders())
        how = (f"regfile ({rf.source}) + two {ADDRESS_ADDER_BITS}-bit address adders "
               f"(reproduces every {self.anchor_tech} smartbuffer_RF row)")
        return _component(costs, f"estimate: {how}" if self.estimate else how)

    def dram(self, width_bits: int | None = None, dram_type: str | None = None) -> Component:
        """Off-chip DRAM per access of `width_bits` (default: the target's 64-bit access)."""
        width = _positive("width_bits", width_bits or self.dram_width_bits)
        kind = dram_type or self.dram_type
        cls = f"DRAM_{kind}"
        got = {a: accelergy_table().row(self.technology, cls, a, width=64) for a in ("read", "write")}
        if got["read"] is None or got["write"] is None:
            raise ValueError(f"no {cls} rows at {self.technology} in {TABLE_NAME}")
        k = width / 64
        how = f"{TABLE_NAME}, {got['read'].plugin}"
        if width != 64:
            how += f" (64-bit row x {width}/64: the plug-in is a pJ/bit constant)"
        return Component(got["read"].energy_pJ * k, got["write"].energy_pJ * k, 0.0, how, 0.0)

    # -- arithmetic and wires --------------------------------------------------------------

    def mac(self, bits: int, action: str = "mac_random") -> Operation:
        """Integer MAC on `bits`-bit operands (Aladdin intmac)."""
        if action not in MAC_ACTIONS:
            raise ValueError(f"unknown intmac action {action!r} (known: {', '.join(MAC_ACTIONS)})")
        return self._aladdin("intmac", _positive("bits", bits), action)

    def adder(self, bits: int) -> Operation:
        """Integer adder (Aladdin intadder), e.g. for residual adds and pooling."""
        return self._aladdin("intadder", _positive("bits", bits), "add")

    def _aladdin(self, cls: str, bits: int, action: str) -> Operation:
        if self.estimate is not None:
            op = self.estimate.base._aladdin(cls, bits, action)
            e = self.estimate
            return Operation(op.energy_pJ * e.energy_scale, op.area_um2 * e.area_scale,
                             e.label(op.source), op.idle_pJ * e.idle_scale)
        table, tech = accelergy_table(), self.technology
        row = table.row(tech, cls, action, datawidth=bits)
        idle = table.row(tech, cls, "idle", datawidth=bits)
        if row is not None and idle is not None:
            return Operation(row.energy_pJ, row.area_um2, f"{TABLE_NAME}, {row.plugin}", idle.energy_pJ)
        energy, idle_e, area = aladdin_law(tech, cls, bits, action)
        return Operation(energy, area, f"Aladdin analytic law: adder x n/32 + multiplier x (n/32)^2 "
                                       f"from the {tech} 32-bit {TABLE_NAME} rows; {bits}-bit is "
                                       f"not a row", idle_e)

    def wire(self, bits: int, mm: float) -> Operation:
        """Moving `bits` bits over `mm` millimetres (Aladdin wire; linear in length)."""
        _positive("bits", bits)
        if not mm >= 0:
            raise ValueError(f"mm must be >= 0, got {mm!r}")
        if self.estimate is not None:
            op = self.estimate.base.wire(bits, mm)
            scale = self.estimate.wire_energy_scale
            return Operation(op.energy_pJ * scale, 0.0,
                             f"estimate: {self.estimate.base.technology} wire ({op.source}) x {scale}")
        table = accelergy_table()
        row = table.row(self.technology, "wire", "transfer_random", datawidth=bits)
        if row is not None:
            return Operation(row.energy_pJ * mm, 0.0, f"{TABLE_NAME}, {row.plugin} (1 mm row x {mm} mm)")
        ref = table.row(self.technology, "wire", "transfer_random", datawidth=8)
        if ref is None:
            raise ValueError(f"no wire rows at {self.technology}")
        return Operation(ref.energy_pJ / 8 * bits * mm, 0.0,
                         f"{TABLE_NAME} 8-bit wire row per bit x {bits} bits x {mm} mm (linear law)")

    # -- misc ------------------------------------------------------------------------------

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram_bandwidth_gbps * 1e3 / self.clock_mhz

    def source(self, name: str) -> str:
        return dict(self.sources).get(name, "")

    def with_overrides(self, **kw: Any) -> AsicTarget:
        """A copy with another clock / DRAM / area budget; see `apply_asic_overrides`."""
        from .asic_parse import apply_asic_overrides

        return apply_asic_overrides(self, kw, file="<python>")


def _costs(c: Component) -> Costs:
    return Costs(c.read_pJ, c.write_pJ, c.idle_pJ, c.area_um2)


def aladdin_law(tech: str, cls: str, bits: int, action: str) -> tuple[float, float, float]:
    """(energy, idle, area) of an Aladdin intadder / intmultiplier / intmac at `bits` bits.

    Aladdin has one characterised 32-bit point; adders scale linearly, multipliers
    quadratically, a MAC is their sum (reference README sec. 4.1)."""
    table = accelergy_table()

    def get(c: str, a: str) -> tuple[float, float]:
        row = table.row(tech, c, a, datawidth=32)
        if row is None:
            raise ValueError(f"no 32-bit {c} {a} row at {tech} in {TABLE_NAME}")
        return row.energy_pJ, row.area_um2

    s = bits / 32
    add, add_area = get("intadder", "add")
    add_idle, _ = get("intadder", "idle")
    adder = (add * s, add_idle * s, add_area * s)
    if cls == "intadder":
        return adder
    mult_idle, mult_area = get("intmultiplier", "idle")
    if cls == "intmultiplier":
        return get("intmultiplier", action)[0] * s * s, mult_idle * s * s, mult_area * s * s
    mult_action = {"mac_random": "mult_random", "mac_reused": "mult_reused", "mac_gated": "idle"}[action]
    mult = get("intmultiplier", mult_action)[0] * s * s
    return adder[0] + mult, adder[1] + mult_idle * s * s, adder[2] + mult_area * s * s
