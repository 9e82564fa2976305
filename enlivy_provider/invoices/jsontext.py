"""Read rendered JSON text (a ``.json``/``.json.j2`` template, Jinja producing JSON) strictly.

Python's ``json.loads`` is lenient in two ways that matter for money:

* it accepts ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON, as floats;
* a key given twice in one object silently keeps the *last* value, so a template that renders
  ``"quantity": 1, ... "quantity": 1000`` bills a thousand.

Here both are problems reported with the field's path (``line_items[0].quantity``). Numbers with a fraction
are read as :class:`~decimal.Decimal`, so ``12.10`` stays ``12.10``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from enlivy_provider.invoices.errors import ValidationIssue, join_path


class _Constant:
    """Stands in for a ``NaN``/``Infinity`` literal until the walk below knows its path."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


class _RepeatedKeys(dict[str, Any]):
    """An object in which some key appeared more than once: ``repeats`` keeps (key, first, later) values."""

    def __init__(self, values: dict[str, Any], repeats: list[tuple[str, Any, Any]]) -> None:
        super().__init__(values)
        self.repeats = repeats


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    repeats: list[tuple[str, Any, Any]] = []
    for key, value in pairs:
        if key in values:
            repeats.append((key, values[key], value))
        values[key] = value
    return _RepeatedKeys(values, repeats) if repeats else values


def loads_strict(text: str, path: str) -> tuple[Any, list[ValidationIssue]]:
    """Parse ``text``; returns ``(value, [])`` or ``(None, issues)``. Raises ``json.JSONDecodeError``."""
    value = json.loads(text, parse_float=Decimal, parse_constant=_Constant, object_pairs_hook=_object)
    issues = list(_problems(value, path))
    return (None, issues) if issues else (value, [])


def _problems(value: Any, path: str) -> Any:
    if isinstance(value, _Constant):
        yield ValidationIssue(
            path, f"{value.literal} is not a JSON number; the template must render a number"
        )
    elif isinstance(value, dict):
        for key, first, later in getattr(value, "repeats", ()):
            yield ValidationIssue(
                join_path(path, key),
                f"given twice in the rendered JSON ({_show(first)}, then {_show(later)}); "
                "a key may appear once per object",
            )
        for key, item in value.items():
            yield from _problems(item, join_path(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _problems(item, join_path(path, index))


def _show(value: Any, limit: int = 40) -> str:
    if isinstance(value, _Constant):
        return value.literal
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
