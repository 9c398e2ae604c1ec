"""Plain-text tables for the terminal (`dnac inspect`, `dnac bench`): one layout everywhere."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def render(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: Collection[int] = ()) -> str:
    """Columns two spaces apart under a dashed rule; cells right-aligned (numbers line up) except
    the columns whose index is in `left`; no trailing blanks."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])
