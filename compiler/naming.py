"""Sanitizers for names that come from input files (layer and model names).

A name from a model.yaml, a design.yaml or a torch module can hold anything: `../../x`, quotes and
semicolons, newlines, non-ASCII letters, 300 characters.  Such a name never reaches a file path or
a C++ identifier as it is; it goes through one of the two functions below first.

Both are deterministic (the same name gives the same result on every machine) and keep distinct
names distinct: whenever sanitizing changes a name (a character replaced, a prefix added, the
length cut), a short hash of the *original* name is appended, so two names that sanitize to the
same text still differ.  A name that needs no change is kept as it is, so ordinary names stay
readable.  `unique` checks a whole design's set of names and raises if two still coincide
(which would take a hash collision).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable

#: Longest result of either sanitizer, hash suffix included.
MAX_LEN = 64
_HASH_LEN = 8

#: C++14 keywords and alternative tokens (ISO/IEC 14882:2014 [lex.key], [lex.digraph]), plus the
#: identifiers with special meaning and the C++20 keywords, so that the output stays valid when a
#: user compiles the generated code with a newer standard.
CPP_KEYWORDS = frozenset(["alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch", "char", "char8_t", "char16_t", "char32_t", "class", "compl", "concept", "const", "consteval", "constexpr", "constinit", "const_cast", "continue", "co_await", "co_return", "co_yield", "decltype", "default", "delete", "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "final", "float", "for", "friend", "goto", "if", "import", "inline", "int", "long", "module", "mutable", "namespace", "new", "noexcept", "not", "not_eq", "nullptr", "operator", "or", "or_eq", "override", "private", "protected", "public", "register", "reinterpret_cast", "requires", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct", "switch", "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq", "main", "NULL"])

#: File names Windows refuses whatever the extension (a design may be copied there).
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(1, 10)] + [f"lpt{i}" for i in range(1, 10)])

_IDENT_BAD = re.compile(r"[^A-Za-z0-9_]+")
_PATH_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def printable(text: str, *, lines: bool = False) -> str:
    """`text` with every character that a terminal, a log line or XML could act on (control
    characters, ANSI escapes, \\r, U+2028) written as its Python escape; with `lines`, newlines
    stay (a table's rows).  For names from input on their way to a message, a summary or a plot."""
    if lines:
        return "\n".join(printable(line) for line in text.split("\n"))
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]


def _with_hash(base: str, name: str, sep: str) -> str:
    """`base` cut so that `base + sep + hash(name)` fits `MAX_LEN`."""
    room = MAX_LEN - len(sep) - _HASH_LEN
    return f"{base[:room].rstrip('_.-')}{sep}{_digest(name)}"


def cpp_ident(name: str) -> str:
    """A valid C++ identifier for `name`: ASCII letters, digits and `_`, at most `MAX_LEN`
    characters, never a keyword, never starting with a digit, never reserved (`_X`, `__x`)."""
    s = _IDENT_BAD.sub("_", str(name)).strip("_")
    s = re.sub(r"_{2,}", "_", s)
    if not s:
        s = "n"
    if s[0].isdigit():
        s = "n_" + s
    if s != name or len(s) > MAX_LEN or s in CPP_KEYWORDS:
        s = _with_hash(s, str(name), "_")
    return s


def safe_path_segment(name: str) -> str:
    """One safe path component for `name`: ASCII letters, digits, `.`, `_`, `-`; never empty, never
    `.`/`..` or hidden (no leading dot or dash), never a Windows device name, at most `MAX_LEN`
    characters.  Separators (`/`, `\\`) cannot survive, so the result never leaves its folder."""
    s = _PATH_BAD.sub("_", str(name)).strip("._-")
    if not s:
        s = "x"
    if s.split(".")[0].lower() in _WINDOWS_RESERVED:
        s = "n_" + s
    if s != name or len(s) > MAX_LEN:
        s = _with_hash(s, str(name), "_")
    return s


def unique(names: Iterable[str], sanitize: Callable[[str], str], *, fold_case: bool = False) -> dict[str, str]:
    """`{name: sanitize(name)}` for distinct names, checking that no two results coincide
    (case-insensitively with `fold_case`, for paths on file systems that fold case)."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in names:
        if name in out:
            continue
        s = sanitize(name)
        key = s.lower() if fold_case else s
        if key in seen:
            raise ValueError(f"names {seen[key]!r} and {name!r} sanitize to the same {s!r}")
        seen[key] = name
        out[name] = s
    return out
