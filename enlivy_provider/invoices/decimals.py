"""Turn rendered values (numbers, Jinja-rendered strings) into :class:`~decimal.Decimal` safely.

* ``int`` and ``Decimal`` are taken as they are; ``bool`` is refused (it is an ``int`` in Python).
* ``float`` goes through ``str()`` (its shortest repr), never ``Decimal(float)``: ``0.1`` becomes
  ``Decimal("0.1")``, not ``0.1000000000000000055511151231257827...``.
* strings must look like a plain decimal number (``"12.50"``, ``" 3 "``, ``"-1"``, ``"1e3"``); thousands
  separators, decimal commas, currency signs, ``"NaN"`` and ``"Infinity"`` are refused rather than guessed.
  Only the digits 0-9 count: Python's ``Decimal("١٢")`` and ``int("１２")`` read Arabic-Indic or full-width
  digits as 12, which is not what an invoice template meant to write.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from decimal import Context, Decimal, InvalidOperation

from enlivy_provider.invoices.errors import ValidationIssue, join_path

# More integer digits than any amount can have: beyond this a value is refused rather than handled with a
# precision the default decimal context (28 digits) does not have.
MAX_INTEGER_DIGITS = 100
# re.ASCII: without it \d also matches every other script's digits.
_DECIMAL_TEXT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$", re.ASCII)
_WHOLE_NUMBER_TEXT = re.compile(r"^\d+$", re.ASCII)


class NotADecimalError(ValueError):
    """The value is not a number; ``str(error)`` is a message that can follow a field path."""


def to_decimal(value: object) -> Decimal:
    """Coerce ``value`` to a finite Decimal or raise :class:`NotADecimalError`."""
    if isinstance(value, bool):
        raise NotADecimalError(f"must be a number, not a boolean ({value!r})")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise NotADecimalError(f"must be a finite number (got {value!r})")
        result = _parse(str(value), shown=value)
    elif isinstance(value, str):
        result = _parse(value.strip(), shown=value)
    else:
        raise NotADecimalError(f"must be a number (got {type(value).__name__} {_short(value)})")
    if not result.is_finite():
        raise NotADecimalError(f"must be a finite number (got {_short(value)})")
    if result and result.adjusted() >= MAX_INTEGER_DIGITS:
        raise NotADecimalError(f"is too large (got {_short(value)})")
    if result.as_tuple().exponent > 0:  # type: ignore[operator]  # "1e3" -> 1000, not 1E+3
        result = result.quantize(Decimal(1), context=Context(prec=MAX_INTEGER_DIGITS))
    return result


def _parse(text: str, *, shown: object) -> Decimal:
    if not _DECIMAL_TEXT.match(text):
        if has_foreign_digits(text):
            raise NotADecimalError(f"must be written with the digits 0-9 (got {_short(shown)})")
        raise NotADecimalError(f"must be a number (got {_short(shown)})")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes these
        raise NotADecimalError(f"must be a number (got {_short(shown)})") from None


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def decimal_places(value: Decimal) -> int:
    """Number of significant decimal places (``Decimal("12.50")`` -> 1)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def has_foreign_digits(text: str) -> bool:
    """True when ``text`` holds a digit other than 0-9 (``"١٢"``, ``"１２"``, ``"²"``)."""
    return any(not char.isascii() and (char.isdigit() or char.isnumeric()) for char in text)


def whole_number(text: str) -> int | None:
    """``" 14 "`` -> 14; None unless the text is digits 0-9 only (``str.isdigit`` also accepts ``"١٤"``
    and ``"²"``, and ``int("²")`` then raises)."""
    stripped = text.strip()
    return int(stripped) if _WHOLE_NUMBER_TEXT.match(stripped) else None


def non_finite_issues(value: object, path: str) -> Iterator[ValidationIssue]:
    """Every float NaN/Infinity inside ``value`` (dicts and lists walked), named by its path.

    Operators run this on their rendered arguments before Airflow stores them: Airflow's upload of the rendered
    fields is JSON and fails on such a float with an error that names no field (and is retried).
    """
    if isinstance(value, float) and not math.isfinite(value):
        yield ValidationIssue(path, f"must be a finite number (got {value!r})")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from non_finite_issues(item, join_path(path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from non_finite_issues(item, join_path(path, index))
