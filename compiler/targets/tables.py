"""The Accelergy v0.4 per-action table: parsed once, exact lookups, and SRAM interpolation.

`data/accelergy_tables.csv` is the only place dnac's ASIC energies and areas come from (see
`data/README.md` for its provenance).  This module parses it once (`accelergy_table()` is
cached), answers exact row lookups, and interpolates SRAM sizes that the CACTI sweep did not
cover, by the rule written in the ASIC target files.  Every answer carries a `source` string, so
that a report can always tell a table row from an interpolation or an estimate.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple

TABLE_RESOURCE = ("data", "accelergy_tables.csv")  # inside the dnac.compiler.targets package
TABLE_NAME = "accelergy-0.4 table"  # how `source` strings name it


class Costs(NamedTuple):
    """Per-action energies (pJ) and the instance area (um^2) of one storage component."""

    read: float
    write: float
    idle: float
    area: float

    def scaled(self, energy: float = 1.0, idle: float = 1.0, area: float = 1.0) -> Costs:
        return Costs(self.read * energy, self.write * energy, self.idle * idle, self.area * area)

    def times(self, other: Costs) -> Costs:
        return Costs(*(a * b for a, b in zip(self, other, strict=True)))

    def over(self, other: Costs) -> Costs:
        return Costs(*(a / b for a, b in zip(self, other, strict=True)))

    def plus(self, other: Costs) -> Costs:
        return Costs(*(a + b for a, b in zip(self, other, strict=True)))

    def minus(self, other: Costs) -> Costs:
        return Costs(*(a - b for a, b in zip(self, other, strict=True)))


@dataclass(frozen=True)
class Row:
    energy_pJ: float
    area_um2: float
    plugin: str  # CACTI, Aladdin_table, Aladdin_table+CACTI


# (technology, class, depth, width, n_banks, datawidth, action); None where a cell is empty
Key = tuple[str, str, int | None, int | None, int | None, int | None, str]


def _cell(text: str) -> int | None:
    return int(text) if text.strip() else None


@dataclass(frozen=True)
class AccelergyTable:
    """All rows of `accelergy_tables.csv`, keyed for exact lookup."""

    rows: dict[Key, Row]
    version: str  # accelergy_version column, e.g. "0.4 (3e0d934)"

    def row(
        self, technology: str, cls: str, action: str, *, depth: int | None = None,
        width: int | None = None, n_banks: int | None = None, datawidth: int | None = None,
    ) -> Row | None:
        return self.rows.get((technology, cls, depth, width, n_banks, datawidth, action))

    def costs(
        self, technology: str, cls: str, depth: int, width: int, n_banks: int | None
    ) -> tuple[Costs, str] | None:
        """read/write/idle/area of one storage row set, with its `source`; None if absent."""
        got = [self.row(technology, cls, a, depth=depth, width=width, n_banks=n_banks)
               for a in ("read", "write", "idle")]
        if any(r is None for r in got):
            return None
        read, write, idle = got  # type: ignore[misc]
        return Costs(read.energy_pJ, write.energy_pJ, idle.energy_pJ, read.area_um2), \
            f"{TABLE_NAME}, {read.plugin}"

    def storage_points(self, technology: str, cls: str) -> tuple[tuple[int, int, int], ...]:
        """Sorted (depth, width, n_banks) of every storage component of `cls` at `technology`.

        n_banks is 1 for classes without a bank count (regfile)."""
        pts = {(k[2], k[3], k[4] or 1) for k in self.rows
               if k[0] == technology and k[1] == cls and k[2] is not None and k[3] is not None}
        return tuple(sorted(pts))  # type: ignore[arg-type]

    def datawidths(self, technology: str, cls: str) -> tuple[int, ...]:
        return tuple(sorted({k[5] for k in self.rows
                             if k[0] == technology and k[1] == cls and k[5] is not None}))

    def has_class(self, technology: str, cls: str) -> bool:
        return any(k[0] == technology and k[1] == cls for k in self.rows)


@functools.cache
def accelergy_table() -> AccelergyTable:
    """Parse the packaged CSV once (importlib.resources, so it works from an installed wheel)."""
    ref = resources.files(__package__).joinpath(*TABLE_RESOURCE)
    rows: dict[Key, Row] = {}
    versions: set[str] = set()
    for rec in csv.DictReader(io.StringIO(ref.read_text(encoding="utf-8"))):
        key: Key = (rec["technology"], rec["class"], _cell(rec["depth"]), _cell(rec["width"]),
                    _cell(rec["n_banks"]), _cell(rec["datawidth"]), rec["action"])
        if key in rows:
            raise ValueError(f"duplicate row in {'/'.join(TABLE_RESOURCE)}: {key}")
        rows[key] = Row(float(rec["energy_pJ"]), float(rec["area_um2"]), rec["plugin"])
        versions.add(rec["accelergy_version"])
    return AccelergyTable(rows=rows, version=", ".join(sorted(versions)))


# ---------------------------------------------------------------------------------------------
# SRAM sizes between and beyond the CACTI sweep (the rule of `lookup.sram` in asic_*.yaml)


def _loglerp(x: float, x0: float, x1: float, y0: Costs, y1: Costs) -> Costs:
    """Interpolate ln(value) linearly in log2(x); values are positive."""
    if x0 == x1:
        return y0
    t = (math.log2(x) - math.log2(x0)) / (math.log2(x1) - math.log2(x0))
    return Costs(*(math.exp((1 - t) * math.log(a) + t * math.log(b)) for a, b in zip(y0, y1, strict=True)))


def _bracket(xs: tuple[int, ...], x: float) -> tuple[int, int]:
    """Nearest grid points below and above x (x already within [xs[0], xs[-1]])."""
    lo = max(v for v in xs if v <= x)
    hi = min(v for v in xs if v >= x)
    return lo, hi


class SramGrid:
    """The single-bank CACTI sweep of one class at one node, plus its bank sweeps."""

    def __init__(self, table: AccelergyTable, technology: str, cls: str = "SRAM") -> None:
        self.technology, self.cls = technology, cls
        self.points = table.storage_points(technology, cls)
        self.one: dict[tuple[int, int], Costs] = {}
        self.banked: dict[tuple[int, int], dict[int, Costs]] = {}
        for d, w, b in self.points:
            c, _ = table.costs(technology, cls, d, w, b)  # type: ignore[misc]
            if b == 1:
                self.one[(d, w)] = c
            self.banked.setdefault((d, w), {})[b] = c
        self.widths = tuple(sorted({w for _, w in self.one}))
        self.depths_of = {w: tuple(sorted(d for d, ww in self.one if ww == w)) for w in self.widths}
        # depths swept at every width: the full rectangle
        self.common = tuple(sorted(set.intersection(*(set(v) for v in self.depths_of.values()))))
        self.bank_anchors = {dw: bs for dw, bs in self.banked.items() if len(bs) > 1 and 1 in bs}

    def single_bank(self, depth: int, width: int) -> tuple[Costs, list[str]]:
        """Interpolated n_banks = 1 costs and the notes that say how they were obtained."""
        notes: list[str] = []
        wmin, wmax = self.widths[0], self.widths[-1]
        if width > wmax:
            k = width / wmax
            base, sub = self.single_bank(depth, wmax)
            notes += sub + [f"width {width} > {wmax}: {k:g} macros of width {wmax} side by side"]
            return base.scaled(energy=k, idle=k, area=k), notes
        w = width
        if w < wmin:
            notes.append(f"width {width} clamped to {wmin} (CACTI's minimum block)")
            w = wmin
        deepest = max(max(v) for v in self.depths_of.values())
        d = float(depth)
        if d < self.common[0]:
            notes.append(f"depth {depth} clamped to {self.common[0]}")
            d = self.common[0]
        if d > deepest:
            base, sub = self.single_bank(deepest, width)
            grow = d / deepest
            notes += sub + [f"depth {depth} > {deepest}: energy held, area x{grow:.3g}"]
            return Costs(base.read, base.write, base.idle * grow, base.area * grow), notes
        if d <= self.common[-1]:
            return self._bilinear(d, w), notes
        # deeper than the full rectangle: follow the depth trend of a column that goes that deep
        ref = min((ww for ww, ds in self.depths_of.items() if ds[-1] >= d),
                  key=lambda ww: abs(math.log2(ww) - math.log2(w)))
        top = self.common[-1]
        col = self.depths_of[ref]
        lo, hi = _bracket(col, d)
        trend = _loglerp(d, lo, hi, self.one[(lo, ref)], self.one[(hi, ref)]).over(self.one[(top, ref)])
        if ref != w:
            notes.append(f"depth beyond {top} follows the {ref}-bit column's depth trend")
        return self._bilinear(top, w).times(trend), notes

    def _bilinear(self, d: float, w: float) -> Costs:
        d0, d1 = _bracket(self.common, d)
        w0, w1 = _bracket(self.widths, w)
        at_w0 = _loglerp(d, d0, d1, self.one[(d0, w0)], self.one[(d1, w0)])
        at_w1 = _loglerp(d, d0, d1, self.one[(d0, w1)], self.one[(d1, w1)])
        return _loglerp(w, w0, w1, at_w0, at_w1)

    def bank_factor(self, depth: int, width: int, n_banks: int) -> tuple[Costs, str]:
        """E(b)/E(1) (and area ratio) of the nearest bank sweep, log-linear in log2(b)."""
        (ad, aw), sweep = min(
            self.bank_anchors.items(),
            key=lambda kv: math.hypot(math.log2(kv[0][0] / depth), math.log2(kv[0][1] / width)),
        )
        counts = tuple(sorted(sweep))
        b = min(max(n_banks, counts[0]), counts[-1])
        lo, hi = _bracket(counts, b)
        ratio = _loglerp(b, lo, hi, sweep[lo], sweep[hi]).over(sweep[1])
        clamp = f", clamped to {counts[-1]} banks" if n_banks > counts[-1] else ""
        return ratio, f"bank factor of the {ad}x{aw} bank sweep{clamp}"

    def lookup(self, table: AccelergyTable, depth: int, width: int, n_banks: int) -> tuple[Costs, str]:
        """Exact row if swept, else the documented interpolation, with its `source`."""
        exact = table.costs(self.technology, self.cls, depth, width, n_banks)
        if exact is not None:
            return exact
        costs, notes = self.single_bank(depth, width)
        if n_banks != 1:
            factor, how = self.bank_factor(depth, width, n_banks)
            costs = costs.times(factor)
            notes.append(how)
        detail = "; ".join(notes) if notes else "between swept points"
        return costs, (f"interpolated (log-log in depth and width) from {TABLE_NAME} "
                       f"{self.technology} CACTI {self.cls} rows: {detail}")


@functools.cache
def sram_grid(technology: str, cls: str = "SRAM") -> SramGrid:
    return SramGrid(accelergy_table(), technology, cls)
