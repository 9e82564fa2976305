"""Fixed-width text tables for task logs and reports a billing person reads (no dependencies: DAG files import it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def format_table(
    rows: Iterable[Mapping[str, str]],
    columns: Sequence[tuple[str, str]],
    *,
    right: Iterable[str] = (),
    indent: str = "",
) -> str:
    """``columns`` are ``(key, title)``; keys in ``right`` (amounts, quantities) are right-aligned so their
    decimal points line up. Cells are never cut: a long line name widens its column."""
    rows = list(rows)
    right = set(right)
    widths = {key: max([len(title)] + [len(row.get(key, "")) for row in rows]) for key, title in columns}

    def line(values: Mapping[str, str]) -> str:
        cells = [
            values.get(key, "").rjust(widths[key]) if key in right else values.get(key, "").ljust(widths[key])
            for key, _ in columns
        ]
        return (indent + "  ".join(cells)).rstrip()

    header = line({key: title for key, title in columns})
    rule = indent + "  ".join("-" * widths[key] for key, _ in columns)
    return "\n".join([header, rule, *(line(row) for row in rows)])
