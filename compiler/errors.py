"""User-facing errors.

Every error a user can cause (bad YAML, unknown op, impossible budget, unwritable path) is a
`DnacError` that knows the file, the field and the reason, so the CLI can print exactly one line
and exit with status 2.  Internal bugs stay ordinary exceptions and keep their traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DnacError(Exception):
    """A user error: `file: field: reason` on one line."""

    file: str  # the input the error is about ("<python>" for API calls, "-" if none)
    field: str  # dotted path of the offending field ("layers[3].kernel"), "" if whole input
    reason: str  # what is wrong and, where possible, what would be right

    def __post_init__(self) -> None:
        super().__init__(self.line())

    def line(self) -> str:
        """The message on one line: every character that could break it (\\n, \\r, U+2028, other
        controls) written as its escape, so that names from input cannot split or forge lines."""
        from dnac.compiler.naming import printable

        parts = [p for p in (self.file, self.field) if p]
        return printable(": ".join(parts + [self.reason]).replace("\n", " "))

    def __str__(self) -> str:  # dataclass would otherwise print the repr
        return self.line()

    def __reduce__(self) -> tuple:  # pickled as its three fields (`dnac map` raises them in worker processes)
        return type(self), (self.file, self.field, self.reason)


class ModelError(DnacError):
    """A model description (model.yaml, zoo name, nn.Module) is malformed."""


class DesignError(DnacError):
    """A design (design.yaml or an IR graph) breaks an invariant."""


class TargetError(DnacError):
    """An unknown target or a malformed target file."""


class BudgetError(DnacError):
    """A resource budget that no design can meet."""


class OutputError(DnacError):
    """An output folder that cannot or must not be written."""


class OptionError(DnacError):
    """A command-line option or environment setting out of its range."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, for one-line reports of failures in
    code dnac calls (a user's module factory, torch.fx)."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[0].strip() if lines else type(exc).__name__
