"""JSON in and out without floats: request bodies parse numbers to ``Decimal``, responses print them exactly.

The standard ``json`` module cannot print a :class:`~decimal.Decimal` as a JSON number, so :func:`dumps`
uses the project's one exact encoder, ``enlivy_provider.client.core.dumps_json``. Money in emulator records is always quantized to cents before it gets here
(``round_money``), so ``190`` is printed as ``190.00`` and ``99.99`` never passes through a float.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from enlivy_provider.client.core import dumps_json
from enlivy_provider.invoices.totals import CENT


class BodyError(ValueError):
    """The request body is not a JSON object."""


def loads(raw: bytes | str) -> Any:
    """Parse JSON with every non-integer number as ``Decimal`` (integers stay ``int``)."""
    return json.loads(raw, parse_float=Decimal)


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request body: empty means ``{}``; anything but a JSON object is a :class:`BodyError`."""
    if not raw.strip():
        return {}
    try:
        value = loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BodyError("The request body must be a JSON object.")
    return value


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(item) for item in value]
    return value


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """Serialise to JSON text; ``Decimal`` becomes a plain JSON number (the client's encoder, shared)."""
    return dumps_json(_sorted(value) if sort_keys else value).decode("utf-8")


def to_decimal(value: Any) -> Decimal | None:
    """A number or decimal string as ``Decimal``; ``None`` for anything else (booleans included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return result if result.is_finite() else None


def money(value: Decimal) -> Decimal:
    """An amount for output: at least two decimals (``190`` → ``190.00``), more precision kept as given."""
    return value.quantize(CENT) if value.as_tuple().exponent >= -2 else value  # type: ignore[operator]
