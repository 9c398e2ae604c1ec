"""Targets: board facts, arithmetic rules, Accelergy lookups and their provenance, overrides."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math

import pytest

from dnac.compiler.errors import TargetError
from dnac.compiler.targets import (
    OVERRIDE_KEYS,
    AsicTarget,
    FpgaTarget,
    accelergy_table,
    apply_overrides,
    known_targets,
    load_target,
    parse_target,
    read_target_document,
    unsourced_numbers,
)
from dnac.compiler.targets.asic import aladdin_law
from dnac.compiler.targets.tables import Costs


@pytest.fixture(scope="module")
def zc706() -> FpgaTarget:
    t = load_target("zc706")
    assert isinstance(t, FpgaTarget)
    return t


@pytest.fixture(scope="module")
def asic45() -> AsicTarget:
    t = load_target("asic_45nm")
    assert isinstance(t, AsicTarget)
    return t


@pytest.fixture(scope="module")
def asic32() -> AsicTarget:
    t = load_target("asic_32nm")
    assert isinstance(t, AsicTarget)
    return t


def rows(cls: str, tech: str = "45nm") -> dict:
    return {k: r for k, r in accelergy_table().rows.items() if k[0] == tech and k[1] == cls}


# --- registry and files -------------------------------------------------------------------------


def test_known_targets_and_alias(asic45: AsicTarget) -> None:
    assert known_targets() == ["asic", "asic_32nm", "asic_45nm", "zc706"]
    assert load_target("asic") == asic45
    assert set(OVERRIDE_KEYS) == {"fpga", "asic"}


def test_unknown_target_lists_known_names() -> None:
    with pytest.raises(TargetError) as err:
        load_target("vu9p")
    text = str(err.value)
    assert "unknown target 'vu9p'" in text and "\n" not in text
    for name in known_targets():
        assert name in text
    assert err.value.field == "target"


@pytest.mark.parametrize("name", ["zc706", "asic_45nm", "asic_32nm"])
def test_every_number_in_a_target_file_has_a_source(name: str) -> None:
    doc, _ = read_target_document(name)
    assert unsourced_numbers(doc) == []


def test_source_walker_catches_a_bare_number() -> None:
    doc, _ = read_target_document("zc706")
    doc = copy.deepcopy(doc)
    doc["resources"]["uram"] = 96
    doc["bram18k"]["bits"] = {"value": 18432}
    assert sorted(unsourced_numbers(doc)) == ["bram18k.bits.value", "resources.uram"]


def _broken(name: str, edit) -> TargetError:
    doc, file = read_target_document(name)
    doc = copy.deepcopy(doc)
    edit(doc)
    with pytest.raises(TargetError) as err:
        parse_target(doc, file)
    assert err.value.file == file
    return err.value


def test_malformed_files_name_file_and_field() -> None:
    err = _broken("zc706", lambda d: d["resources"].pop("dsp"))
    assert err.field == "resources.dsp" and "missing" in err.reason
    err = _broken("zc706", lambda d: d["resources"].update(lut=218600))
    assert err.field == "resources.lut" and "source" in err.reason
    err = _broken("zc706", lambda d: d["resources"]["ff"].update(value="many"))
    assert err.field == "resources.ff.value"
    err = _broken("zc706", lambda d: d["resources"]["dsp"].update(source=""))
    assert err.field == "resources.dsp.source"
    err = _broken("zc706", lambda d: d["arithmetic"]["lut_per_mac"]["value"].pop(3))
    assert err.field == "arithmetic.lut_per_mac.value"
    err = _broken("zc706", lambda d: d.update(kind="gpu"))
    assert err.field == "kind"
    err = _broken("asic_45nm", lambda d: d["widths"]["mac"].update(value=[4, 10]))
    assert err.field == "widths.mac.value" and "[10]" in err.reason
    err = _broken("asic_45nm", lambda d: d["dram"]["type"].update(value="SRAM"))
    assert err.field == "dram.type.value" and "LPDDR4" in err.reason
    err = _broken("asic_32nm", lambda d: d["estimates"].update(from_target="nope"))
    assert err.field == "estimates.from_target" and "unknown target 'nope'" in err.reason


# --- ZC706 ---------------------------------------------------------------------------------------


def test_zc706_device_numbers(zc706: FpgaTarget) -> None:
    assert (zc706.dsp, zc706.bram18k, zc706.lut, zc706.ff) == (900, 1090, 218600, 437200)
    assert zc706.clock_mhz == 200
    assert zc706.part == "xc7z045ffg900-2"
    assert zc706.bram18k_bits == 18432
    assert all(zc706.source(k) for k in ("dsp", "bram18k", "lut", "ff", "clock_mhz", "part"))


def test_zc706_mac_rules(zc706: FpgaTarget) -> None:
    assert zc706.macs_per_dsp(16) == 1 and zc706.macs_per_dsp(18) == 1 and zc706.macs_per_dsp(9) == 1
    assert zc706.macs_per_dsp(8) == 2 and zc706.macs_per_dsp(5) == 2
    assert zc706.dsp_per_mac(32) == 4 and zc706.dsp_per_mac(19) == 2
    assert not zc706.uses_dsp(4) and zc706.uses_dsp(5)
    assert zc706.lut_per_mac(4) > zc706.lut_per_mac(2) > 0
    assert zc706.lut_per_mac(8) == 0 and zc706.lut_per_mac(16) == 0
    assert zc706.dsp_per_mac(4) == 0 and math.isinf(zc706.macs_per_dsp(4))
    assert zc706.dsp_per_mac(4, act_bits=16) == 1  # mixed precision: the wider operand decides
    with pytest.raises(ValueError):
        zc706.dsp_per_mac(0)


def test_lut_per_mac_follows_the_finn_r_formula(zc706: FpgaTarget) -> None:
    for b in range(1, zc706.lut_max_bits + 1):
        wa = 2 * b  # W + A
        assert zc706.lut_per_mac(b) == int(1.1 * wa * (2 * math.ceil(wa / 6) + 1) + 0.5)


def test_zc706_bram_geometry(zc706: FpgaTarget) -> None:
    assert zc706.bram18k_widths == (1, 2, 4, 9, 18, 36)
    for w, d in zc706.bram18k_tdp + zc706.bram18k_sdp:
        assert w * d <= zc706.bram18k_bits
    assert dict(zc706.bram18k_sdp)[36] == 512 and 36 not in dict(zc706.bram18k_tdp)
    assert zc706.bram18k_for(512, 36) == 1
    assert zc706.bram18k_for(512, 36, true_dual_port=True) == 2
    assert zc706.bram18k_for(1024, 18) == 1 and zc706.bram18k_for(1025, 18) == 2
    assert zc706.bram18k_for(2048, 8) == 1 and zc706.bram18k_for(0, 16) == 0


def test_zc706_dram_bandwidth(zc706: FpgaTarget) -> None:
    assert zc706.dram_interface == "ps_ddr3"
    assert zc706.dram_peak_gbps == pytest.approx(32 * 1066.667 / 8e3, rel=1e-3)
    assert zc706.dram_bandwidth_gbps == pytest.approx(0.75 * zc706.dram_peak_gbps)
    assert zc706.dram_bytes_per_cycle == pytest.approx(zc706.dram_bandwidth_gbps * 1e9 / 200e6)


def test_fpga_overrides_copy_and_validate(zc706: FpgaTarget) -> None:
    small = zc706.with_overrides(dsp=450, clock_mhz=150, dram_bandwidth_gbps=2.0)
    assert (small.dsp, small.clock_mhz, small.dram_bandwidth_gbps) == (450, 150.0, 2.0)
    assert zc706.dsp == 900 and small.device_dsp == 900 and small.bram18k == 1090
    assert "override" in small.source("dsp")
    with pytest.raises(TargetError) as err:
        zc706.with_overrides(dsps=450)
    for key in FpgaTarget.OVERRIDE_KEYS:
        assert key in str(err.value)
    for bad in ({"dsp": 901}, {"dsp": 1.5}, {"lut": 0}, {"clock_mhz": "fast"}, {"ff": True}):
        with pytest.raises(TargetError):
            zc706.with_overrides(**bad)
    err2 = pytest.raises(TargetError, apply_overrides, zc706, {"bram": 3}, file="model.yaml")
    assert err2.value.file == "model.yaml" and err2.value.field == "target.bram"


def test_targets_are_frozen_and_hashable(zc706: FpgaTarget, asic32: AsicTarget) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        zc706.dsp = 1  # type: ignore[misc]
    assert len({zc706, asic32, zc706.with_overrides(dsp=512)}) == 3


# --- ASIC, 45 nm: exact rows ---------------------------------------------------------------------


def test_table_is_the_full_copy() -> None:
    table = accelergy_table()
    assert len(table.rows) == 843 and table.version == "0.4 (3e0d934)"


def test_asic45_exact_rows(asic45: AsicTarget) -> None:
    sram = asic45.sram(1024, 64)
    assert sram.read_pJ == 6.13702 and sram.source == "accelergy-0.4 table, CACTI"
    assert asic45.mac(16).energy_pJ == 2.20035 and asic45.mac(8).energy_pJ == 0.5608
    assert asic45.mac(16).source.startswith("accelergy-0.4 table")
    gb = asic45.smartbuffer_sram(16384, 64, 32)
    assert gb.read_pJ == 74.1442 and gb.area_um2 == 1162549.0
    assert asic45.dram().read_pJ == 512.0 and asic45.dram().write_pJ == 512.0
    assert asic45.dram(32).read_pJ == 256.0
    assert asic45.wire(16, 2.0).energy_pJ == pytest.approx(2 * 5.2064)
    assert asic45.regfile(224, 16).read_pJ == 1.76884


@pytest.mark.parametrize("tech", ["45nm", "32nm"])
def test_every_sram_row_is_returned_exactly(tech: str) -> None:
    t = load_target(f"asic_{tech}")
    assert isinstance(t, AsicTarget)
    sizes = t.sram_sizes()
    assert (1024, 64, 1) in sizes and (16384, 64, 32) in sizes and len(sizes) == 67
    for (_, cls, d, w, b, _, action), row in rows("SRAM", tech).items():
        got = t.sram(d, w, b)
        assert got.area_um2 == row.area_um2 and got.source == "accelergy-0.4 table, CACTI"
        assert {"read": got.read_pJ, "write": got.write_pJ, "idle": got.idle_pJ}[action] == row.energy_pJ


def test_regfile_closed_form_reproduces_every_row(asic45: AsicTarget) -> None:
    law = asic45.regfile_law
    assert law is not None
    table_rows = rows("regfile")
    assert len(table_rows) == 81
    for (_, _, d, w, _, _, action), row in table_rows.items():
        c = law.costs(d, w)
        want = {"read": c.read, "write": c.write, "idle": c.idle}[action]
        assert want == pytest.approx(row.energy_pJ, rel=1e-4)
        assert c.area == pytest.approx(row.area_um2, rel=1e-4)
    other = asic45.regfile(100, 16)
    assert "closed form" in other.source and other.read_pJ == pytest.approx(law.costs(100, 16).read)


def test_smartbuffer_rf_is_regfile_plus_two_adders(asic45: AsicTarget) -> None:
    adder = asic45.adder(16)
    for (_, _, d, w, _, _, action), row in rows("smartbuffer_RF").items():
        rf = asic45.regfile_law.costs(d, w)  # type: ignore[union-attr]
        extra = Costs(adder.energy_pJ + adder.idle_pJ, adder.energy_pJ + adder.idle_pJ,
                      2 * adder.idle_pJ, 2 * adder.area_um2)
        c = rf.plus(extra)
        assert {"read": c.read, "write": c.write, "idle": c.idle}[action] == pytest.approx(row.energy_pJ, rel=1e-4)
        assert c.area == pytest.approx(row.area_um2, rel=1e-4)
    assert asic45.smartbuffer_rf(100, 16).read_pJ == pytest.approx(asic45.regfile(100, 16).read_pJ + 0.0488)


def test_aladdin_law_reproduces_every_arithmetic_row() -> None:
    for cls in ("intmac", "intadder", "intmultiplier"):
        for (_, _, _, _, _, bits, action), row in rows(cls).items():
            energy, idle, area = aladdin_law("45nm", cls, bits, action if action != "idle" else
                                             {"intmac": "mac_random", "intadder": "add",
                                              "intmultiplier": "mult_random"}[cls])
            assert (idle if action == "idle" else energy) == pytest.approx(row.energy_pJ, rel=1e-6)
            assert area == pytest.approx(row.area_um2, rel=1e-6)


def test_mac_off_table_uses_the_law(asic45: AsicTarget) -> None:
    m10 = asic45.mac(10)
    assert "Aladdin analytic law" in m10.source
    assert m10.energy_pJ == pytest.approx(0.0857 * 10 / 32 + 8.63 * (10 / 32) ** 2)
    assert asic45.mac(8).energy_pJ < m10.energy_pJ < asic45.mac(12).energy_pJ
    assert asic45.mac(16, "mac_reused").energy_pJ == 1.876725
    with pytest.raises(ValueError):
        asic45.mac(16, "mac_twice")


# --- ASIC: interpolation and estimates -----------------------------------------------------------


@pytest.mark.parametrize("width", [8, 16, 24, 64, 100, 256, 512])
def test_interpolated_sram_is_monotone_in_depth(asic45: AsicTarget, width: int) -> None:
    depths = [32, 100, 128, 200, 1000, 1500, 3000, 20000, 40000, 70000, 131072, 200000]
    got = [asic45.sram(d, width) for d in depths]
    for a, b in itertools.pairwise(got):
        assert b.read_pJ >= a.read_pJ and b.write_pJ >= a.write_pJ and b.area_um2 >= a.area_um2


def test_interpolated_sram_is_monotone_in_width_and_labelled(asic45: AsicTarget) -> None:
    got = [asic45.sram(3000, w) for w in (16, 20, 32, 48, 64, 96, 128, 200, 256, 300)]
    for a, b in itertools.pairwise(got):
        assert b.read_pJ >= a.read_pJ and b.area_um2 >= a.area_um2
    mid = asic45.sram(3000, 64)
    lo, hi = asic45.sram(2048, 64), asic45.sram(4096, 64)
    assert lo.read_pJ < mid.read_pJ < hi.read_pJ
    assert mid.source.startswith("interpolated")
    banked = asic45.sram(4096, 64, 4)
    assert banked.source.startswith("interpolated") and "bank factor" in banked.source
    assert asic45.smartbuffer_sram(8192, 64, 4).source.startswith("estimate")


def test_asic32_borrowed_classes_are_labelled_estimates(asic45: AsicTarget, asic32: AsicTarget) -> None:
    rf45, rf32 = asic45.regfile(224, 16), asic32.regfile(224, 16)
    assert rf32.source.startswith("estimate") and "not Accelergy output" in rf32.source
    assert rf32.read_pJ == pytest.approx(0.55 * rf45.read_pJ)
    assert rf32.area_um2 == pytest.approx(0.53 * rf45.area_um2)
    mac = asic32.mac(16)
    assert mac.source.startswith("estimate") and mac.energy_pJ == pytest.approx(0.55 * 2.20035)
    assert asic32.mac(10).source.startswith("estimate")
    assert asic32.smartbuffer_rf(192, 16).source.startswith("estimate")
    assert asic32.smartbuffer_sram(16384, 64, 32).source.startswith("estimate")
    assert asic32.wire(8, 1.0).source.startswith("estimate")
    assert asic32.sram(1024, 64).read_pJ == 3.44337  # 32 nm SRAM is real CACTI output
    assert asic32.dram().read_pJ == 512.0
    assert asic32.mac_widths == asic45.mac_widths and asic32.regfile_law is None


def test_asic_overrides_copy_and_validate(asic45: AsicTarget) -> None:
    hbm = asic45.with_overrides(dram_type="HBM2", clock_mhz=500, area_mm2=2.5)
    assert hbm.dram().read_pJ == 249.6 and hbm.clock_mhz == 500 and hbm.area_mm2 == 2.5
    assert asic45.dram_type == "LPDDR4" and asic45.area_mm2 is None
    with pytest.raises(TargetError) as err:
        asic45.with_overrides(dsp=100)
    assert all(k in str(err.value) for k in AsicTarget.OVERRIDE_KEYS)
    with pytest.raises(TargetError):
        asic45.with_overrides(dram_type="SDRAM")
    with pytest.raises(TargetError):
        asic45.with_overrides(clock_mhz=0)
