"""YAML in and out, with errors that name file, field and reason.

Both user-written inputs (model.yaml) and dnac's own outputs (design.yaml) go through here so
that a typo anywhere gives the same kind of one-line message, and so that dnac writes YAML
the same readable way everywhere: block style for structure, flow style for short leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import yaml

from dnac.compiler.errors import DnacError, ModelError

_MISSING = object()

#: Limits on a YAML input, checked before it is built into Python objects (whose composer
#: recurses once per nesting level, and whose aliases can multiply a small file into gigabytes).
MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 256


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (YAML 1.2 forbids it; PyYAML
    silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                break
            if dup:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _check_limits(text: str, file: str, error: type[DnacError]) -> None:
    """Size, nesting depth and alias count, from the parser's event stream (which does not
    recurse), so that no input can exhaust the stack or the memory of the loader after it."""
    if len(text) > MAX_BYTES:
        raise error(file, "", f"{len(text):,} characters exceed the {MAX_BYTES:,} a dnac YAML input may have")
    depth = aliases = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise error(file, f"line {mark.line + 1}, column {mark.column + 1}",
                            f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                mark = event.start_mark
                raise error(file, f"line {mark.line + 1}, column {mark.column + 1}",
                            f"more than {MAX_ALIASES} aliases (*name)")


def read_yaml(path: str | Path, error: type[DnacError] = ModelError) -> Any:
    """Parse a YAML file; every way it can fail is a one-line `error`."""
    p = Path(path)
    if not p.exists():
        raise error(str(p), "", "file not found")
    if p.is_dir():
        raise error(str(p), "", "is a directory, expected a YAML file")
    if p.stat().st_size > 4 * MAX_BYTES:  # before reading it: at most 4 bytes a character
        raise error(str(p), "", f"{p.stat().st_size:,} bytes exceed the {MAX_BYTES:,} characters a dnac YAML "
                                "input may have")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(str(p), "", f"cannot read: {exc}") from None
    return parse_yaml(text, str(p), error)


def parse_yaml(text: str, file: str, error: type[DnacError] = ModelError) -> Any:
    """Parse YAML text within `MAX_BYTES` / `MAX_DEPTH` / `MAX_ALIASES` and without duplicate
    keys; every way it can fail is a one-line `error`."""
    try:
        _check_limits(text, file, error)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise error(file, where, f"YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise error(file, "", f"YAML error: {exc}") from None
    if data is None:
        raise error(file, "", "the file is empty")
    return data


class Fields:
    """A mapping read field by field; every accessor checks type and names the field path."""

    def __init__(self, data: Any, file: str, path: str = "", error: type[DnacError] = ModelError) -> None:
        self.file, self.path, self.error = file, path, error
        if not isinstance(data, dict):
            self.fail("", f"must be a mapping, got {_kind(data)}")
        self.data: dict[str, Any] = data

    def fail(self, key: str | int, reason: str) -> NoReturn:
        raise self.error(self.file, self.sub(key), reason)

    def sub(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        if not key:
            return self.path
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        if key not in self.data:
            if default is _MISSING:
                self.fail(key, "missing required field")
            return default
        return self.data[key]

    def str_(self, key: str, default: Any = _MISSING) -> str:
        v = self.raw(key, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, str) or not v:
            self.fail(key, f"must be a non-empty string, got {_kind(v)}")
        return v

    def int_(self, key: str, default: Any = _MISSING, *, min: int = 1, max: int | None = None) -> int:
        v = self.raw(key, default)
        if v is default and default is not _MISSING:
            return v
        return check_int(v, self, key, min=min, max=max)

    def bool_(self, key: str, default: Any = _MISSING) -> bool:
        v = self.raw(key, default)
        if not isinstance(v, bool):
            self.fail(key, f"must be true or false, got {_kind(v)}")
        return v

    def list_(self, key: str, default: Any = _MISSING) -> list[Any]:
        v = self.raw(key, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, list):
            self.fail(key, f"must be a list, got {_kind(v)}")
        return v

    def map_(self, key: str, default: Any = _MISSING) -> Fields:
        v = self.raw(key, default)
        return Fields(v, self.file, self.sub(key), self.error)

    def items(self, key: str) -> Iterator[Fields]:
        for i, item in enumerate(self.list_(key)):
            yield Fields(item, self.file, f"{self.sub(key)}[{i}]", self.error)

    def only(self, allowed: set[str] | list[str] | tuple[str, ...]) -> None:
        """Reject unknown keys (typos must not pass silently)."""
        for key in self.data:
            if key not in allowed:
                self.fail(str(key), f"unknown field (known: {', '.join(sorted(allowed))})")


def check_int(v: Any, f: Fields, key: str | int, *, min: int = 1, max: int | None = None) -> int:
    """An integer in [min, max]; 3.0, "3" and true are not integers."""
    if isinstance(v, bool) or not isinstance(v, int):
        f.fail(key, f"must be an integer, got {_kind(v)}")
    if v < min or (max is not None and v > max):
        rng = f">= {min}" if max is None else f"in [{min}, {max}]"
        what = "zero or negative" if v <= 0 < min else "out of range"
        f.fail(key, f"{what}: {v} (must be {rng})")
    return v


def int_list(f: Fields, key: str, length: int | None = None, *, min: int = 1, default: Any = _MISSING) -> list[int]:
    v = f.raw(key, default)
    if v is default and default is not _MISSING:
        return v
    if not isinstance(v, list) or (length is not None and len(v) != length):
        n = f"{length} " if length else ""
        f.fail(key, f"must be a list of {n}integers, got {_kind(v)}")
    sub = Fields({}, f.file, f.sub(key), f.error)
    return [check_int(x, sub, i, min=min) for i, x in enumerate(v)]


def int_or_pair(f: Fields, key: str, default: Any = _MISSING, *, min: int = 1) -> int | tuple[int, int]:
    v = f.raw(key, default)
    if v is default and default is not _MISSING:
        return v
    if isinstance(v, list):
        a, b = int_list(f, key, 2, min=min)
        return (a, b)
    return check_int(v, f, key, min=min)


def _kind(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return f"a {type(v).__name__}"
    return repr(v) if not isinstance(v, str) or len(v) < 40 else repr(v[:40] + "...")


# ---------------------------------------------------------------------------- output
class _Dumper(yaml.SafeDumper):
    """Block style for structure, flow style for leaves (a list or map of scalars)."""


def _is_leaf(v: Any) -> bool:
    if isinstance(v, dict):
        return all(not isinstance(x, (dict, list, tuple)) for x in v.values())
    if isinstance(v, (list, tuple)):
        return all(not isinstance(x, (dict, list, tuple)) for x in v)
    return False


def _repr_dict(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=_is_leaf(data) and len(data) > 0)


def _repr_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_is_leaf(data))


_Dumper.add_representer(dict, _repr_dict)
_Dumper.add_representer(list, _repr_list)
_Dumper.add_representer(tuple, _repr_list)


def dump_yaml(data: Any) -> str:
    """Deterministic, human-readable YAML (key order as given, unicode kept, wide lines)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110, default_flow_style=False)
