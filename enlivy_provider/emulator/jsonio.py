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
from enlivy_provider.emulator.limits import MAX_JSON_DEPTH
from enlivy_provider.invoices.totals import CENT


class BodyError(ValueError):
    """The request body is not a JSON object."""


def loads(raw: bytes | str) -> Any:
    """Parse JSON with every non-integer number as ``Decimal`` (integers stay ``int``)."""
    return json.loads(raw, parse_float=Decimal)


def depth_of(value: Any) -> int:
    """How deeply objects and arrays nest (a scalar is 0, ``{}`` is 1); iterative, so any depth is safe."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse_json(raw: bytes) -> Any:
    """Any JSON request body, as :func:`loads`; a :class:`BodyError` when it is not JSON or nests deeper than
    :data:`~enlivy_provider.emulator.limits.MAX_JSON_DEPTH` (the code that walks a body recurses)."""
    try:
        value = loads(raw)
    except RecursionError as exc:
        raise BodyError(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(f"The request body is not valid JSON: {exc}") from exc
    if depth_of(value) > MAX_JSON_DEPTH:
        raise BodyError(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.")
    return value


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object. Empty means ``{}``, and so does ``[]``: the SDK JSON-encodes the
    params of every write, and PHP encodes an empty params array as ``[]`` (CurlClient.php lines 75-80).
    Anything else that is not a JSON object is a :class:`BodyError`."""
    if not raw.strip():
        return {}
    value = parse_json(raw)
    if value == []:
        return {}
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
