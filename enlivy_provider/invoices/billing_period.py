"""Billing periods: ``{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}`` (both inclusive) or the run's data interval."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from enlivy_provider.invoices.errors import ValidationIssue, join_path

DATA_INTERVAL = "data_interval"


@dataclass(frozen=True)
class BillingPeriod:
    start: dt.date
    end: dt.date  # inclusive

    def as_line_fields(self) -> dict[str, object]:
        """The line-item fields the API uses for a period (docs/enlivy-api-notes.md §10.2)."""
        return {
            "has_billing_period": True,
            "billing_period_started_at": self.start.isoformat(),
            "billing_period_ended_at": self.end.isoformat(),
        }

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def parse_date(value: object) -> dt.date | None:
    """A ``date``, a ``datetime`` (its date) or an ISO ``YYYY-MM-DD`` string; None when it is none of them."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) < 10 or text[4:5] != "-" or (len(text) > 10 and text[10] not in "T "):
            return None
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None


# The shape the invoice schema accepts for dates and datetimes (YYYY-MM-DD[THH:MM[:SS[.f]][zone]]). A text in
# this shape can still name no real moment: 2026-02-30, 2026-09-31, 24:30.
_ISO_DATE_OR_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-](\d{2}):?(\d{2}))?)?",
    re.ASCII,
)


def calendar_problem(value: object) -> str | None:
    """Why a date/datetime text in the ISO shape is no real day or time (a message that can follow a field
    path), or None — also for anything not in that shape, which the schema reports."""
    if not isinstance(value, str):
        return None
    match = _ISO_DATE_OR_DATETIME.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, zone_hours, zone_minutes = match.groups()
    try:
        dt.date(int(year), int(month), int(day))
    except ValueError as exc:
        return f"must be a real calendar date (got {value!r}: {exc})"
    if hour is not None:
        try:
            dt.time(int(hour), int(minute), int(second or 0))
        except ValueError as exc:
            return f"must be a real time of day (got {value!r}: {exc})"
    if zone_hours is not None and (int(zone_hours) > 23 or int(zone_minutes) > 59):
        return f"must have a real UTC offset, at most ±23:59 (got {value!r})"
    return None


def parse_billing_period(
    value: object,
    *,
    data_interval: tuple[dt.datetime, dt.datetime] | None = None,
    path: str = "billing_period",
) -> tuple[BillingPeriod | None, list[ValidationIssue]]:
    """Parse a billing period; returns ``(period or None, issues)``.

    ``"data_interval"`` means the run's data interval as whole days: its start date up to the day before its
    end date (a monthly run over 2026-10-01T00:00 .. 2026-11-01T00:00 bills 2026-10-01 .. 2026-10-31).
    """
    if value is None or value == "":
        return None, []
    if isinstance(value, BillingPeriod):
        return value, []
    if value == DATA_INTERVAL:
        if data_interval is None:
            return None, [ValidationIssue(path, "'data_interval' needs a run with a data interval")]
        start_at, end_at = data_interval
        start, end = start_at.date(), end_at.date() - dt.timedelta(days=1)
        if end < start:
            return None, [
                ValidationIssue(
                    path,
                    f"the run's data interval ({start_at.isoformat()} .. {end_at.isoformat()}) is shorter than "
                    "a day; give the billing period explicitly",
                )
            ]
        return BillingPeriod(start, end), []
    if not isinstance(value, dict):
        return None, [
            ValidationIssue(
                path,
                f"must be {{'start': 'YYYY-MM-DD', 'end': 'YYYY-MM-DD'}} or 'data_interval' (got {value!r})",
            )
        ]
    issues: list[ValidationIssue] = []
    unknown = sorted(set(value) - {"start", "end"})
    for key in unknown:
        issues.append(ValidationIssue(join_path(path, str(key)), "unknown field (use start and end)"))
    dates: dict[str, dt.date] = {}
    for key in ("start", "end"):
        raw = value.get(key)
        if raw is None:
            issues.append(ValidationIssue(join_path(path, key), "is required"))
            continue
        parsed = parse_date(raw)
        if parsed is None:
            problem = calendar_problem(raw) or f"must be a date YYYY-MM-DD (got {raw!r})"
            issues.append(ValidationIssue(join_path(path, key), problem))
        else:
            dates[key] = parsed
    if not issues and dates["end"] < dates["start"]:
        issues.append(ValidationIssue(join_path(path, "end"), f"must not be before start ({dates['start']})"))
    if issues:
        return None, issues
    return BillingPeriod(dates["start"], dates["end"]), []
