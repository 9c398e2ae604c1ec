"""Workload front-end: a network as a list of 7-D loop-nest layers.

Three ways in: `load_model` (a model.yaml path, a design.yaml path or a zoo name), the zoo
(`zoo.get`), and `from_torch` (an `nn.Module` traced with torch.fx).
"""

from dnac.compiler.workload.builder import ModelBuilder
from dnac.compiler.workload.layer import INPUT, Layer, Workload

__all__ = ["INPUT", "Layer", "ModelBuilder", "Workload"]
