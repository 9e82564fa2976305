"""Parsing of request dates and datetimes (``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM:SS``, ISO 8601 with ``Z``/offset)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from enlivy_provider.emulator.common import iso

_SPACED_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def parse_moment(value: object) -> tuple[datetime, bool] | None:
    """``(UTC datetime, is_date_only)`` or ``None`` when the value is not a date/datetime string."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    # An unencoded "+01:00" offset arrives as " 01:00" (a query string turns "+" into a space).
    text = _SPACED_OFFSET.sub(r"\1+\2", text)
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc), True
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc), False


def normalise(value: object) -> str | None:
    """A request date/datetime as the API's ``YYYY-MM-DDTHH:MM:SSZ``; ``None`` if it does not parse."""
    parsed = parse_moment(value)
    return None if parsed is None else iso(parsed[0])


def range_bounds(start: str, end: str) -> tuple[str, str, bool] | None:
    """SQL bounds for a ``_from``/``_to`` pair: ``(from, to, to_is_exclusive)``.

    A date-only ``_to`` covers that whole day (``< next midnight``). ``None`` when either end does not parse.
    """
    low, high = parse_moment(start), parse_moment(end)
    if low is None or high is None:
        return None
    if high[1]:
        return iso(low[0]), iso(high[0] + timedelta(days=1)), True
    return iso(low[0]), iso(high[0]), False
