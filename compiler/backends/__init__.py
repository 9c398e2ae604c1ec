"""Back-ends, registered by target kind: each turns a mapped design into one target's project.

`BACKENDS[target.KIND]()` is what `dnac build` calls: "fpga" targets (zc706) get the Vivado HLS
project, "asic" targets get the per-layer Timeloop/Accelergy inputs.  The registry is loaded on
first use, so that `backends.render` (which `dnac map` needs) does not pull in the cost models
and torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BACKENDS", "Backend", "HlsBackend", "TimeloopBackend"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(name)
    from dnac.compiler.backends.base import Backend
    from dnac.compiler.backends.hls import HlsBackend
    from dnac.compiler.backends.timeloop import TimeloopBackend
    from dnac.compiler.targets import AsicTarget, FpgaTarget

    found = {"Backend": Backend, "HlsBackend": HlsBackend, "TimeloopBackend": TimeloopBackend,
             "BACKENDS": {FpgaTarget.KIND: HlsBackend, AsicTarget.KIND: TimeloopBackend}}
    globals().update(found)
    return found[name]
