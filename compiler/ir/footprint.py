"""Tile footprints: how many words of each tensor a tile of loop extents touches.

Timeloop's rule, which dnac shares so that its capacity checks and Timeloop's agree: a tile is
the axis-aligned bounding box of each tensor's projection.  Inputs along a spatial axis span
(P - 1) * stride + (R - 1) * dilation + 1 rows, so strided tiles include the rows they skip
(golden README §9.8).  For a depthwise layer the input channel is the output channel (its C
loop has one iteration), as in Timeloop's grouped shape.

Works on numpy arrays and torch tensors alike (extents in `Dim` order on the last axis).
"""

from __future__ import annotations

from typing import Any

from dnac.compiler.vocab import DIMS, Dim

_N, _K, _C, _R, _S, _P, _Q = (DIMS.index(d) for d in (Dim.N, Dim.K, Dim.C, Dim.R, Dim.S, Dim.P, Dim.Q))

#: Which dims index each tensor (for a depthwise layer, inputs are indexed by K instead of C).
RELEVANT = {
    "W": (Dim.K, Dim.C, Dim.R, Dim.S),
    "I": (Dim.N, Dim.C, Dim.R, Dim.S, Dim.P, Dim.Q),
    "O": (Dim.N, Dim.K, Dim.P, Dim.Q),
}


def footprints(e: Any, stride: Any, depthwise: Any) -> tuple[Any, Any, Any]:
    """Words of (weights, inputs, outputs) in a tile with extents `e[..., 7]`.

    `stride[..., 2]` is (row, column) stride; `depthwise[...]` is a boolean mask (or bool).
    Broadcasting follows numpy/torch rules.
    """
    w = e[..., _K] * e[..., _C] * e[..., _R] * e[..., _S]
    rows = (e[..., _P] - 1) * stride[..., 0] + e[..., _R]
    cols = (e[..., _Q] - 1) * stride[..., 1] + e[..., _S]
    ch = e[..., _C] + (e[..., _K] - e[..., _C]) * depthwise
    i = e[..., _N] * ch * rows * cols
    o = e[..., _N] * e[..., _K] * e[..., _P] * e[..., _Q]
    return w, i, o
