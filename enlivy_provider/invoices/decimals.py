"""Turn rendered values (numbers, Jinja-rendered strings) into :class:`~decimal.Decimal` safely.

* ``int`` and ``Decimal`` are taken as they are; ``bool`` is refused (it is an ``int`` in Python).
* ``float`` goes through ``str()`` (its shortest repr), never ``Decimal(float)``: ``0.1`` becomes
  ``Decimal("0.1")``, not ``0.1000000000000000055511151231257827...``.
* strings must look like a plain decimal number (``"12.50"``, ``" 3 "``, ``"-1"``, ``"1e3"``); thousands
  separators, decimal commas, currency signs, ``"NaN"`` and ``"Infinity"`` are refused rather than guessed.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation

# More integer digits than any amount can have: beyond this a value is refused rather than handled with a
# precision the default decimal context (28 digits) does not have.
MAX_INTEGER_DIGITS = 100
_DECIMAL_TEXT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


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
