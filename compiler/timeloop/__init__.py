"""An exact re-implementation of Timeloop v3.0.3's `timeloop-model` for CNN layers.

`parse.read_case` reads a Timeloop case folder (v0.3 tree arch, explicit problem shape, mapping,
ERT) into the frozen `Nest` form; `model.evaluate` returns Timeloop's per-level, per-tensor access
counts, tile and partition sizes, bandwidth-limited cycles and energy (link transfers off), in
plain Python ints, in about a millisecond per layer; `batched` evaluates many designs of dnac's
canonical hierarchy at once in torch with the same semantics.
"""

from dnac.compiler.timeloop.lower import lower
from dnac.compiler.timeloop.model import build_loops, evaluate
from dnac.compiler.timeloop.nest import (
    RW_TENSOR,
    TL_TENSORS,
    Compute,
    LevelMapping,
    LevelStats,
    Nest,
    NestStats,
    Problem,
    ShapeKind,
    Storage,
    TensorStats,
)
from dnac.compiler.timeloop.parse import read_case

__all__ = [
    "RW_TENSOR", "TL_TENSORS", "Compute", "LevelMapping", "LevelStats", "Nest", "NestStats", "Problem",
    "ShapeKind", "Storage", "TensorStats", "build_loops", "evaluate", "lower", "read_case",
]
