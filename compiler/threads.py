"""How many threads dnac's tensor work runs on: one, unless the user asks for more.

The library default (one intra-op thread per core) is the wrong choice for dnac.  DAS and the
batched cost models run thousands of small tensor kernels whose threads wait for each other, so
as soon as another process holds a core they slow down several times over.  Measured on the
2-core development machine (CPU torch 2.13), idle / with one CPU-bound process beside it:

    DAS, ResNet-18 on the ZC706        1 thread 5.0 s / 4.4 s     2 threads 4.4 s / 10.3 s
    `dnac train`, 40 Fashion-MNIST     1 thread 8.6 s / 8.3 s     2 threads 6.9 s / 12.2 s
    batches of a searched network

Two threads gain 12-20% on an idle machine and lose 2.3x / 1.5x on a busy one (a laptop, a
shared server, a CI runner with parallel jobs), so every dnac command uses one thread unless
`dnac --threads N` or the environment variable DNAC_THREADS says otherwise.
"""

from __future__ import annotations

import os
import sys

from dnac.compiler.errors import OptionError

#: The environment variable that sets the default of `dnac --threads`.
ENV = "DNAC_THREADS"
#: Threads when neither `--threads` nor DNAC_THREADS is given (see the module docstring).
DEFAULT = 1


def resolve(threads: int | None) -> int:
    """The thread count to use: `threads`, else DNAC_THREADS, else `DEFAULT`."""
    if threads is None:
        raw = os.environ.get(ENV, "").strip()
        if not raw:
            return DEFAULT
        if not raw.isdigit() or int(raw) < 1:
            raise OptionError("-", ENV, f"expected a positive whole number of threads, got {raw!r}")
        threads = int(raw)
    if threads < 1:
        raise OptionError("-", "--threads", f"expected a positive whole number, got {threads}")
    return threads


def apply(threads: int) -> None:
    """Run torch's intra-op work (and OpenMP / MKL, for torch imported later) on `threads`."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
