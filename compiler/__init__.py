"""dnac.compiler: workload front-end, design IR, cost models, accelerator search, back-ends."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dnac")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
