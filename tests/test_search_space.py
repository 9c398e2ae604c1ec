"""The FBNet space as data, the operator registry, genotypes as workloads and model.yaml."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dnac.compiler.workload import zoo
from dnac.compiler.workload.model_yaml import parse_model
from dnac.compiler.yamlio import parse_yaml
from dnac.search.errors import ConfigError
from dnac.search.genotype import Genotype, model_yaml
from dnac.search.ops import OPS
from dnac.search.space import CIFAR_STRIDES, FBNET_CANDIDATES, IMAGENET_STRIDES, fbnet_space


def test_registry_names_and_unknown_op() -> None:
    assert OPS.names() == FBNET_CANDIDATES
    assert OPS["k5_e1_g2"].groups == 2 and OPS["k3_e6"].expansion == 6
    with pytest.raises(ConfigError, match="unknown operator 'k7_e6'"):
        OPS.get("k7_e6")


def test_fbnet_cifar_space() -> None:
    sp = fbnet_space("c", (3, 32, 32), 10)
    layers = sp.layers()
    assert len(layers) == 22 and CIFAR_STRIDES == (1, 1, 2, 2, 1, 2, 1)
    assert [s.stride for s in layers if s.stride > 1] == [2, 2, 2]
    assert layers[-1].in_size == (4, 4)
    # skip exists only where it is an identity: not where a stage changes the width
    no_skip = [s.index for s in layers if "skip" not in s.candidates]
    assert no_skip == [1, 5, 9, 13, 17, 21]
    assert all(len(s.candidates) == 9 for s in layers if s.index not in no_skip)


def test_genotype_workload_matches_zoo_fbnet_b() -> None:
    """FBNet-B built through the search space equals the zoo's FBNet-B layer for layer."""
    sp = fbnet_space("fbnet", (3, 224, 224), 1000, strides=IMAGENET_STRIDES, stem_stride=2, bits=(16,))
    ops = [s.candidates.index(op) for s, (op, _, _) in zip(sp.layers(), zoo.FBNET_B_BLOCKS)]
    w = Genotype.of(sp, ops, [0] * 22).to_workload()
    ref = zoo.get("fbnet")
    assert w.total_macs == ref.total_macs
    # the zoo's stem and head convs carry no bias; the genotype folds a BatchNorm into every conv
    assert w.total_params == ref.total_params + 16 + 1984
    assert [(lay.K, lay.C, lay.R, lay.P, lay.groups) for lay in w.compute_layers] == \
        [(lay.K, lay.C, lay.R, lay.P, lay.groups) for lay in ref.compute_layers]


def test_model_yaml_round_trip() -> None:
    sp = fbnet_space("rt", (1, 28, 28), 10, width_mult=0.25, depths=(1, 2, 1, 1, 1, 1, 1))
    ops = [len(s.candidates) - 1 - (s.index % 3) for s in sp.layers()]
    bits = [s.index % len(sp.bits) for s in sp.layers()]
    w = Genotype.of(sp, ops, bits).to_workload()
    back = parse_model(parse_yaml(model_yaml(w, header="a\nb"), "m.yaml"), "m.yaml")
    assert [replace(lay, source="") for lay in back.layers] == [replace(lay, source="") for lay in w.layers]
    assert {lay.w_bits for lay in w.layers if lay.name.startswith("blocks.")} <= set(sp.bits)
