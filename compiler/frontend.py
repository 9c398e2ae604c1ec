"""Resolve a MODEL argument: a zoo name, a model.yaml or a design.yaml.

Users type `dnac inspect vgg16`, `dnac build model.yaml` or `dnac build hw_out/x/design.yaml`;
this is the one place that decides which it is, so every command accepts the same things.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dnac.compiler.errors import ModelError
from dnac.compiler.ir import design_yaml
from dnac.compiler.ir.design import DesignGraph
from dnac.compiler.ir.validate import check
from dnac.compiler.workload import zoo
from dnac.compiler.workload.layer import Workload
from dnac.compiler.workload.model_yaml import parse_model
from dnac.compiler.yamlio import read_yaml


@dataclass(frozen=True)
class LoadedModel:
    """What a MODEL argument named."""

    workload: Workload
    design: DesignGraph | None  # set when MODEL was a design.yaml
    kind: str  # "zoo", "model" or "design"


def _looks_like_path(spec: str) -> bool:
    return spec.endswith((".yaml", ".yml")) or "/" in spec or "\\" in spec or Path(spec).exists()


def load_model(spec: str) -> LoadedModel:
    if not isinstance(spec, str) or not spec:
        raise ModelError("-", "MODEL", "give a zoo name, a model.yaml or a design.yaml")
    if not _looks_like_path(spec):
        if spec not in zoo.names():
            raise ModelError(spec, "", f"not a file and not a zoo model (zoo: {', '.join(zoo.names())})")
        return LoadedModel(zoo.get(spec), None, "zoo")
    data = read_yaml(spec)
    if design_yaml.is_design(data):
        g = design_yaml.from_dict(data, spec)
        check(g, spec)
        return LoadedModel(g.workload(), g, "design")
    return LoadedModel(parse_model(data, spec, base_dir=Path(spec).parent), None, "model")
