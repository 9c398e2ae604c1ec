"""The scalar report of one IR design equals its row of the batched evaluation: what the
search optimized is what report.json says (both targets)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dnac.compiler.cost.model import cost_design, evaluate
from dnac.compiler.das.decode import decode
from dnac.compiler.das.space import DesignSpace
from dnac.compiler.ir import design_yaml
from dnac.compiler.targets import AsicTarget, load_target
from dnac.compiler.timeloop import evaluate as timeloop_model
from dnac.compiler.timeloop import lower
from dnac.compiler.workload import zoo


@pytest.mark.parametrize("target_name", ["zc706", "asic"])
@pytest.mark.parametrize("model", ["tiny", "tiny_mbv2"])
def test_scalar_report_equals_batched_row(target_name: str, model: str) -> None:
    """The report of a design is the search's own row; on ASIC targets priced, as the search
    does, without link transfers (see `cost/model.py`)."""
    target = load_target(target_name)
    if isinstance(target, AsicTarget):
        target = replace(target, link_transfers=False)
    space = DesignSpace(zoo.get(model), target)
    batch = decode(space, space.random_choices(12, np.random.default_rng(3)))
    cost = evaluate(batch, target)
    names = [layer.name for layer in space.layers]
    for i in range(batch.size):
        # through design.yaml and back, as `dnac build design.yaml` does
        g = design_yaml.loads(design_yaml.dump(batch.to_design(i, target_name)))
        one = cost_design(g, target)
        assert one.feasible == bool(cost.feasible[i])
        assert one.cycles_per_frame == float(cost.cycles_per_frame[i])
        assert one.fps == float(cost.fps[i]) and one.throughput_gops == float(cost.throughput_gops[i])
        for key, value in one.resources.items():
            assert value == pytest.approx(float(cost.resources[key][i]), rel=1e-12)  # summed over other slots
        per_layer = {entry["name"]: entry for entry in one.layers}
        for li, name in enumerate(names):
            assert per_layer[name]["cycles"] == float(cost.layer_cycles[i, li])
        if target_name == "asic":
            assert one.energy_pj == pytest.approx(float(cost.energy_pj[i]), rel=1e-12)


@pytest.mark.parametrize("model", ["tiny", "tiny_mbv2"])
def test_asic_report_prices_link_transfers_as_timeloop(model: str) -> None:
    """With link transfers on (Timeloop's default), each layer's energy is the scalar model's on the
    layer's Timeloop form, the total moves by the same amounts, and cycles stay the search's."""
    target = load_target("asic")
    off = replace(target, link_transfers=False)
    space = DesignSpace(zoo.get(model), target)
    batch = decode(space, space.random_choices(12, np.random.default_rng(5)))
    for i in range(batch.size):
        g = batch.to_design(i, "asic")
        on, plain = cost_design(g, target), cost_design(g, off)
        assert on.cycles_per_frame == plain.cycles_per_frame
        delta = 0.0
        for a, b in zip(on.layers, plain.layers, strict=True):
            assert a["cycles"] == b["cycles"]
            if a["macs"]:
                assert a["energy_pj"] == pytest.approx(timeloop_model(lower(g, a["name"], target)).energy_pJ, rel=1e-12)
                delta += a["energy_pj"] - b["energy_pj"]
        assert on.energy_pj == pytest.approx(plain.energy_pj + delta, rel=1e-12)


def test_array_gb_depths_equal_the_scalar_rule() -> None:
    """The search sizes GB macros with `gb_depths`; reports and Timeloop export with `gb_depth`."""
    from dnac.compiler.cost.asic import gb_depth, gb_depths

    rng = np.random.default_rng(0)
    words = np.concatenate([np.arange(0, 3000), rng.integers(0, 1 << 24, 5000)])
    bits = rng.choice([2, 4, 8, 12, 16, 32], words.size)
    expected = [gb_depth(int(w), int(b)) for w, b in zip(words, bits, strict=True)]
    assert gb_depths(words, bits).tolist() == expected
