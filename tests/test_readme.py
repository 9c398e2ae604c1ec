"""The README's two commands are the front door, and CI must run exactly them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)]


def test_readme_front_door_commands() -> None:
    install, tests = _bash_blocks((ROOT / "README.md").read_text())[:2]
    assert "pip install torch==2.13.0" in install and "dnac build" in install
    assert install.index("torch==2.13.0") < install.index("'.[test]'")  # the CPU wheel first
    assert "pytest" in tests and "\n" not in install and "\n" not in tests


def test_ci_runs_the_readme_blocks() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'blocks[0]' in ci and 'blocks[1]' in ci and "README.md" in ci


def test_every_package_is_installed() -> None:
    """A subpackage missing from pyproject's list imports in an editable tree but not from the
    wheel CI installs."""
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(dnac\.[\w.]+)"', text))
    roots = {"compiler": "dnac.compiler", "search": "dnac.search", "templates": "dnac.templates"}
    for folder, pkg in roots.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            name = ".".join([pkg, *rel.parts]) if rel.parts else pkg
            assert name in listed, f"{name} is not in pyproject.toml's packages"
