"""The one Jinja2 environment of the project.

Every emitted file comes from a template under `dnac.templates` (the `templates/` folder),
rendered here with `StrictUndefined` (a misspelled variable is an error, never an empty string),
`trim_blocks`/`lstrip_blocks` (block tags do not leave blank lines) and `keep_trailing_newline`.
The filters that make input names and values safe are registered once, below:

- `cpp_ident`: a valid C++ identifier for any name (`naming.cpp_ident`);
- `cpp_comment`: any text as a safe one-line C++ comment body (no `*/`, no trailing backslash,
  no trigraph, ASCII only);
- `cpp_string`: any text as a C++ string literal;
- `tojson`: a JSON value (ASCII, so also a valid YAML flow scalar) for Timeloop YAML.

Templates load through `importlib.resources`, so they work from an installed wheel.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jinja2

from dnac.compiler.naming import cpp_ident

TEMPLATE_PACKAGE = "dnac.templates"


def tojson(value: Any) -> str:
    """`value` as compact JSON; floats keep their exact repr so YAML readers get the same double."""
    return json.dumps(value, ensure_ascii=True, separators=(", ", ": "))


#: Longest text `cpp_comment` keeps (names can be 300 characters long).
COMMENT_MAX = 100


def cpp_comment(text: Any) -> str:
    """`text` made safe inside a `//` or `/* */` comment, cut to `COMMENT_MAX` characters."""
    text = str(text)
    if len(text) > COMMENT_MAX:
        text = text[:COMMENT_MAX - 3] + "..."
    out = []
    for ch in text:
        if ch == "\\":
            out.append("/")
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.append("?" if ord(ch) >= 127 else " ")
    text = "".join(out).replace("*/", "*_/").replace("/*", "/_*")
    while "??" in text:  # no trigraph (`??/` would continue the comment onto the next line): "???=" too
        text = text.replace("??", "?_?")
    return text


def cpp_string(text: Any) -> str:
    """`text` as a C++ string literal (octal escapes for anything not printable ASCII, `\\?` so no
    trigraph can form)."""
    out = ['"']
    for b in str(text).encode("utf-8", "surrogatepass"):
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "?":
            out.append("\\?")
        elif 32 <= b < 127:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    out.append('"')
    return "".join(out)


@functools.cache
def environment() -> jinja2.Environment:
    """The shared environment (cached: templates compile once per process)."""
    root = resources.files(TEMPLATE_PACKAGE)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(cpp_ident=cpp_ident, cpp_comment=cpp_comment, cpp_string=cpp_string, tojson=tojson)
    return env


def render(template: str, **context: Any) -> str:
    """Render `template` (a path under `templates/`, e.g. "hls/top.cpp.j2") with `context`."""
    return environment().get_template(template).render(**context)


def read_static(path: str) -> bytes:
    """A file shipped verbatim (e.g. "hls/lib/dnac_ops.h")."""
    return resources.files(TEMPLATE_PACKAGE).joinpath(path).read_bytes()
