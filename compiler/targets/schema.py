"""Reading a target YAML into typed values, with one `TargetError` per malformed field.

Target files write each number as `{value: ..., source: "..."}`, so that no hardware fact enters
dnac without its provenance.  `Fields` walks such a document by dotted path and turns every
problem (missing key, bare number without a source, wrong type, non-positive count) into a
`TargetError(file, field, reason)`.  The FPGA and ASIC parsers therefore stay declarative, and
the CLI can print the error as one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import TargetError

FORMAT = "dnac-target-v1"  # the `format:` every target file declares


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class Fields:
    """Dotted-path accessors over one parsed target document."""

    def __init__(self, doc: object, file: str) -> None:
        if not isinstance(doc, Mapping):
            raise TargetError(file, "", "a target file must be a YAML mapping")
        self.doc: Mapping[str, Any] = doc
        self.file = file

    def error(self, field: str, reason: str) -> TargetError:
        return TargetError(self.file, field, reason)

    def raw(self, path: str) -> Any:
        """The node at `path` ("a.b.c"); missing keys are an error naming the path."""
        node: Any = self.doc
        walked: list[str] = []
        for key in path.split("."):
            walked.append(key)
            if not isinstance(node, Mapping):
                raise self.error(".".join(walked[:-1]), "expected a mapping")
            if key not in node:
                raise self.error(".".join(walked), "missing field")
            node = node[key]
        return node

    def has(self, path: str) -> bool:
        try:
            self.raw(path)
        except TargetError:
            return False
        return True

    def mapping(self, path: str) -> Mapping[str, Any]:
        node = self.raw(path)
        if not isinstance(node, Mapping):
            raise self.error(path, f"expected a mapping, got {type(node).__name__}")
        return node

    def string(self, path: str) -> str:
        node = self.raw(path)
        if not isinstance(node, str) or not node.strip():
            raise self.error(path, "expected a non-empty string")
        return node

    def sourced(self, path: str) -> tuple[Any, str]:
        """`(value, source)` of a `{value, source}` entry."""
        node = self.raw(path)
        if not isinstance(node, Mapping) or "value" not in node:
            raise self.error(path, "expected {value: ..., source: \"...\"}: every fact needs a source")
        source = node.get("source")
        if not isinstance(source, str) or not source.strip():
            raise self.error(f"{path}.source", "missing or empty source")
        return node["value"], source

    def number(self, path: str, *, integer: bool = False, positive: bool = True) -> tuple[float, str]:
        value, source = self.sourced(path)
        if not _is_number(value) or not math.isfinite(value):
            raise self.error(f"{path}.value", f"expected a number, got {value!r}")
        if integer and value != int(value):
            raise self.error(f"{path}.value", f"expected an integer, got {value!r}")
        if positive and value <= 0:
            raise self.error(f"{path}.value", f"must be > 0, got {value!r}")
        return (int(value) if integer else float(value)), source

    def int_list(self, path: str) -> tuple[tuple[int, ...], str]:
        value, source = self.sourced(path)
        if not isinstance(value, list) or not value or not all(
            _is_number(v) and v == int(v) and v > 0 for v in value
        ):
            raise self.error(f"{path}.value", "expected a non-empty list of positive integers")
        return tuple(sorted(int(v) for v in value)), source

    def int_map(self, path: str) -> tuple[dict[int, int], str]:
        """A `{int: int}` mapping value, e.g. BRAM width -> depth."""
        value, source = self.sourced(path)
        if not isinstance(value, Mapping) or not value:
            raise self.error(f"{path}.value", "expected a non-empty mapping of integers")
        out: dict[int, int] = {}
        for k, v in value.items():
            if not (_is_number(k) and k == int(k) and k > 0 and _is_number(v) and v == int(v) and v > 0):
                raise self.error(f"{path}.value", f"entry {k!r}: {v!r} is not a positive integer pair")
            out[int(k)] = int(v)
        return out, source

    def check_header(self, kind: str) -> str:
        """Check `format` and `kind`; returns the target's `name`."""
        fmt = self.raw("format")
        if fmt != FORMAT:
            raise self.error("format", f"expected {FORMAT!r}, got {fmt!r}")
        got = self.raw("kind")
        if got != kind:
            raise self.error("kind", f"expected {kind!r}, got {got!r}")
        return self.string("name")


def unsourced_numbers(node: object, path: str = "") -> list[str]:
    """Paths of numbers in a target document that do not sit next to a `source`.

    A number is sourced when it is a field of a mapping that has `source`, or lies anywhere inside
    the `value` of such a mapping.  Used by the loader's tests to keep target files honest.
    """
    found: list[str] = []

    def walk(n: object, p: str, covered: bool) -> None:
        if _is_number(n):
            if not covered:
                found.append(p or "<root>")
        elif isinstance(n, Mapping):
            has_source = "source" in n
            for k, v in n.items():
                sub = f"{p}.{k}" if p else str(k)
                if _is_number(v):
                    walk(v, sub, covered or has_source)
                else:
                    walk(v, sub, covered or (has_source and k == "value"))
        elif isinstance(n, list):
            for i, v in enumerate(n):
                walk(v, f"{p}[{i}]", covered)

    walk(node, path, False)
    return found
