"""Back-ends, registered by target kind: each turns a mapped design into one target's project.

`BACKENDS[target.KIND]()` is what `dnac build` calls: "fpga" targets (zc706) get the Vivado HLS
project, "asic" targets get the per-layer Timeloop/Accelergy inputs.
"""

from __future__ import annotations

from dnac.compiler.backends.base import Backend
from dnac.compiler.backends.hls import HlsBackend
from dnac.compiler.backends.timeloop import TimeloopBackend
from dnac.compiler.targets import AsicTarget, FpgaTarget

BACKENDS: dict[str, type[Backend]] = {
    FpgaTarget.KIND: HlsBackend,
    AsicTarget.KIND: TimeloopBackend,
}

__all__ = ["BACKENDS", "Backend", "HlsBackend", "TimeloopBackend"]
