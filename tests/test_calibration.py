"""The ZC706 model against DNNBuilder's measured designs (DNA Tab. 5).

DNNBuilder (Zhang et al., ICCAD 2018) on the ZC706 at 200 MHz, 16-bit: VGG16 with 680 DSP
measured 262 GOP/s; AlexNet with 808 DSP measured 247 GOP/s.  Configured as those designs
(one pipeline stage per convolution, (K, C) parallelism allocated by work, the rest explored by
DAS), the model should land near the measurements.  The exploration takes minutes, so the
comparison itself is `dnac bench calibration`; these tests check the configuration.
"""

from __future__ import annotations

import pytest

from dnac.compiler.cost.calibration import DNNBUILDER, balanced_unrolls, conv_part, frozen_knobs
from dnac.compiler.das.space import DesignSpace
from dnac.compiler.targets import load_target
from dnac.compiler.workload import zoo

ZC706 = load_target("zc706")


@pytest.mark.parametrize("design", DNNBUILDER, ids=[d.model for d in DNNBUILDER])
def test_configured_design_uses_the_published_dsps(design) -> None:
    w = conv_part(zoo.get(design.model))
    unrolls = balanced_unrolls(w, design.dsp, ZC706)
    used = sum(k * c for k, c in unrolls)
    assert 0.95 * design.dsp <= used <= design.dsp


@pytest.mark.parametrize("design", DNNBUILDER, ids=[d.model for d in DNNBUILDER])
def test_configuration_freezes_the_pipeline_and_parallelism(design) -> None:
    w = conv_part(zoo.get(design.model))
    t = ZC706.with_overrides(dsp=design.dsp)
    space = DesignSpace(w, t)
    frozen = frozen_knobs(space, balanced_unrolls(w, design.dsp, t))
    names = {space.knobs[k].name for k in frozen}
    assert "arch" in names and all(f"slot[{i}].noc" in names for i in range(len(space.layers)))
    assert not any(".rf." in n or ".gb." in n or "order" in n for n in names)  # left to the exploration
