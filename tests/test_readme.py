"""The README's two commands are the front door, and CI must run exactly them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_exactly_the_readme_commands() -> None:
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    install, tests = blocks[0], blocks[1]
    assert "pip install torch==2.13.0" in install and "dnac " in install
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install in ci and tests in ci
