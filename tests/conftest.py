"""Shared fixtures: tiny workloads, random valid designs, a CLI runner."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dnac.compiler import threads
from dnac.compiler.das.decode import decode
from dnac.compiler.das.space import DesignSpace
from dnac.compiler.ir.design import DesignGraph
from dnac.compiler.targets import load_target
from dnac.compiler.workload.layer import Workload

DATA = Path(__file__).parent / "data"

# The suite runs dnac's tensor work as dnac does: on one thread (`dnac.compiler.threads`), so
# that it keeps its speed while another process holds a core.
threads.apply(threads.resolve(None))


def random_design(w: Workload, seed: int, target: str = "zc706") -> DesignGraph:
    """A random point of the design space, decoded (every one passes the validator)."""
    space = DesignSpace(w, load_target(target))
    batch = decode(space, space.random_choices(1, np.random.default_rng(seed)))
    return batch.to_design(0, target)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def tests_on_path():
    """Make modules under tests/ importable (torch factories named from model.yaml)."""
    here = str(Path(__file__).parent)
    sys.path.insert(0, here)
    yield
    sys.path.remove(here)
