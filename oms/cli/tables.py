"""Tables that fit the terminal they are printed in: a rich table when every cell fits whole, else one line per
row with ``column: value`` pairs (nothing cut, nothing folded mid-word)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.table import Table

from oms.cli.common import console, write


def width(columns: Sequence[str], rows: list[tuple[str, ...]]) -> int:
    """What rich needs to show every cell whole (3 per column of box and padding, plus 1)."""
    widths = [max(len(c) for c in column) for column in zip(columns, *rows, strict=True)]
    return sum(widths) + 3 * len(widths) + 1


def fit(
    title: str,
    columns: Sequence[str],
    rows: list[tuple[str, ...]],
    *,
    right: Sequence[str] = (),
    styles: list[dict[int, str]] | None = None,
    line: Callable[[tuple[str, ...]], str] | None = None,
) -> None:
    """``rows`` as a table when it fits the console, else as lines. ``right`` columns are right-aligned;
    ``styles[r][c]`` is rich markup style for cell (r, c) in the table form; ``line`` formats a row in the
    narrow form (default: the title, then ``column: value`` pairs)."""
    if not rows:
        return
    if width(columns, rows) <= console.width:
        table = Table(title=title, title_justify="left")
        for col in columns:
            table.add_column(col, no_wrap=True, justify="right" if col in right else "left")
        for r, row in enumerate(rows):
            style = (styles[r] if styles else {}) or {}
            table.add_row(*(f"[{style[c]}]{v}[/]" if c in style else v for c, v in enumerate(row)))
        console.print(table)
        return
    if line is not None:
        for row in rows:
            write(line(row))
        return
    write(f"{title}:")
    for row in rows:
        write("  " + "  ".join(f"{c}: {v}" for c, v in zip(columns, row, strict=True)))
