"""dags/month_end_rules.py: which month a run triggered by billing events closes (plain functions, no Airflow)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from month_end_rules import month_billed_by_events, named_month

from enlivy_provider.compat import TriggeringEvent

OURS = "enlivy://api.enlivy.com/organizations/org_1/invoices?billing_key=monthly-usage"
CONSULTING = "enlivy://api.enlivy.com/organizations/org_1/invoices?billing_key=consulting-hours"
AT = dt.datetime(2026, 11, 1, 0, 30, tzinfo=dt.timezone.utc)


def event(uri: str = OURS, minutes: int = 0, **extra: Any) -> TriggeringEvent:
    return TriggeringEvent(uri, extra, AT + dt.timedelta(minutes=minutes))


def month(key: str, start: str, end: str) -> dict[str, str]:
    return {"billing_period": key, "period_start": start, "period_end": end}


OCTOBER = month("2026-10", "2026-10-01", "2026-10-31")


def test_the_month_named_in_the_extra_is_closed() -> None:
    assert month_billed_by_events([event(**OCTOBER)], "monthly-usage", "enlivy_month_end") == {
        "start": "2026-10-01",
        "end": "2026-10-31",
        "label": "October 2026",
    }


def test_a_leap_february_and_events_of_other_billings_are_handled() -> None:
    february = month("2028-02", "2028-02-01", "2028-02-29")
    events = [event(CONSULTING, **OCTOBER), event(**february), event(minutes=5, **february)]
    closed = month_billed_by_events(events, "monthly-usage", "enlivy_month_end")
    assert (closed["start"], closed["end"]) == ("2028-02-01", "2028-02-29")  # a re-billing: one month still


def test_two_months_fail_naming_both_and_the_commands_that_close_each() -> None:
    september = month("2026-09", "2026-09-01", "2026-09-30")
    with pytest.raises(ValueError) as raised:
        month_billed_by_events([event(**OCTOBER), event(minutes=1, **september)], "monthly-usage", "me")
    message = str(raised.value)
    assert "name 2 months (2026-09, 2026-10)" in message and "nothing was closed" in message
    assert """airflow dags trigger me --conf '{"billing_period": "2026-09"}'""" in message
    assert """airflow dags trigger me --conf '{"billing_period": "2026-10"}'""" in message


def test_events_of_no_billing_of_ours_name_no_month() -> None:
    with pytest.raises(ValueError, match=r"no asset event of the billing 'monthly-usage'.*consulting-hours"):
        month_billed_by_events([event(CONSULTING, **OCTOBER)], "monthly-usage", "me")
    with pytest.raises(ValueError, match=r"events of: none"):
        month_billed_by_events([], "monthly-usage", "me")


@pytest.mark.parametrize(
    ("extra", "rule"),
    [
        ({}, r"extra.billing_period: None is not a month \(YYYY-MM\)"),
        (month("2026-13", "2026-13-01", "2026-13-31"), r"extra.billing_period: '2026-13' is not a month"),
        (
            month("2026-10", "2026-10-01", "2026-10-30"),
            r"2026-10-01..2026-10-30 is not the whole month October",
        ),
        ({"billing_period": "2026-10"}, r"period_start..period_end None..None is not the whole month"),
    ],
)
def test_an_extra_that_names_no_whole_month_is_refused_naming_the_field(extra: dict, rule: str) -> None:
    with pytest.raises(ValueError, match=rule) as raised:
        month_billed_by_events([event(**extra)], "monthly-usage", "me")
    assert f"the event of {OURS} at 2026-11-01T00:30:00+00:00" in str(raised.value)


def test_named_month_refuses_what_is_not_a_month() -> None:
    assert named_month("2026-12", "params.billing_period")["end"] == "2026-12-31"
    for value in ("2026-1", "26-10", "2026-00", 202610, None):
        with pytest.raises(ValueError, match=r"^params.billing_period: .* is not a month"):
            named_month(value, "params.billing_period")
