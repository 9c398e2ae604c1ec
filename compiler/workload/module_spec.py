"""Resolve `package.module:factory` specs (model.yaml's `torch:` field) into modules.

Kept apart from the tracer because it is about importing user code safely and explaining why
an import failed, not about graphs.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from torch import nn

from dnac.compiler.errors import ModelError, first_line

_SPEC = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

#: The environment variable that, set to 1, lets model.yaml files name PyTorch factories.
TRUST_ENV = "DNAC_TRUST_CODE"
_trusted = False


def trust_code(enabled: bool) -> None:
    """Let (or stop letting) model.yaml files import and call the factories they name
    (`dnac --trust-code`).  A model.yaml is data: by default naming a factory is an error, since
    importing a module runs its code."""
    global _trusted
    _trusted = enabled


def code_trusted() -> bool:
    """Whether model.yaml files may name factories: `trust_code(True)` or DNAC_TRUST_CODE=1."""
    return _trusted or os.environ.get(TRUST_ENV, "") == "1"


def load_factory(
    spec: str, file: str, *, search_path: str | os.PathLike[str] | None = None
) -> Callable[..., nn.Module]:
    """Resolve "package.module:factory" to the callable it names (not calling it).

    `search_path` (e.g. the folder of the model.yaml naming the factory) is put in front of
    `sys.path` while the module is imported.
    """
    if not isinstance(spec, str) or not _SPEC.match(spec.strip()):
        raise ModelError(file, "torch", f"malformed factory {spec!r}; expected 'package.module:factory'")
    mod_name, attr_path = spec.strip().split(":")
    try:
        obj: Any = _import(mod_name, search_path)
    except ModuleNotFoundError as e:
        if e.name and (mod_name == e.name or mod_name.startswith(e.name + ".")):
            raise ModelError(file, "torch", f"cannot import module '{mod_name}' (not found on sys.path)") from None
        raise ModelError(file, "torch", f"importing '{mod_name}' failed: {e}") from None
    except Exception as e:  # the module's own code failed  # noqa: BLE001
        reason = f"importing '{mod_name}' failed: {type(e).__name__}: {first_line(e)}"
        raise ModelError(file, "torch", reason) from None
    owner = mod_name
    for attr in attr_path.split("."):
        if not hasattr(obj, attr):
            close = difflib.get_close_matches(attr, [a for a in dir(obj) if not a.startswith("_")], n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ModelError(file, "torch", f"'{owner}' has no attribute '{attr}'{hint}")
        obj = getattr(obj, attr)
        owner = f"{owner}.{attr}" if owner != mod_name else f"{mod_name}:{attr}"
    if not callable(obj):
        raise ModelError(file, "torch", f"'{spec}' is a {type(obj).__name__}, not a callable that returns an nn.Module")
    return obj  # type: ignore[no-any-return]


def _import(mod_name: str, search_path: str | os.PathLike[str] | None) -> Any:
    if search_path is None:
        return importlib.import_module(mod_name)
    folder = os.fspath(search_path)
    sys.path.insert(0, folder)
    importlib.invalidate_caches()
    try:
        return importlib.import_module(mod_name)
    finally:
        sys.path.remove(folder)  # removes the first occurrence: the one inserted above


def module_from_spec(
    spec: str,
    file: str,
    kwargs: dict[str, Any] | None = None,
    *,
    search_path: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """Call the factory `spec` names (with `kwargs`) and check that it returns an nn.Module."""
    factory = load_factory(spec, file, search_path=search_path)
    try:
        module = factory(**(kwargs or {}))
    except Exception as e:  # the user's factory failed  # noqa: BLE001
        raise ModelError(file, "torch", f"calling '{spec}' failed: {type(e).__name__}: {first_line(e)}") from None
    if not isinstance(module, nn.Module):
        kind = type(module).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise ModelError(file, "torch", f"'{spec}' returned {article} {kind}, not an nn.Module")
    return module
