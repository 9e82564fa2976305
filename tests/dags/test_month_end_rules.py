"""dags/month_end_rules.py: which month a run triggered by billing events closes (plain functions, no Airflow)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from month_end_rules import close_commands, months_billed_by_events, months_to_close, named_month

from enlivy_provider.compat import TriggeringEvent

OURS = "enlivy://api.enlivy.com/organizations/org_1/invoices?billing_key=monthly-usage"
CONSULTING = "enlivy://api.enlivy.com/organizations/org_1/invoices?billing_key=consulting-hours"
AT = dt.datetime(2026, 11, 1, 0, 30, tzinfo=dt.timezone.utc)


def event(uri: str = OURS, minutes: int = 0, **extra: Any) -> TriggeringEvent:
    return TriggeringEvent(uri, extra, AT + dt.timedelta(minutes=minutes))


def month(key: str, start: str, end: str) -> dict[str, str]:
    return {"billing_period": key, "period_start": start, "period_end": end}


OCTOBER = month("2026-10", "2026-10-01", "2026-10-31")


def test_the_months_named_in_the_extras_with_their_latest_report() -> None:
    february = month("2028-02", "2028-02-01", "2028-02-29")  # a leap February
    events = [
        event(CONSULTING, 9, **OCTOBER),
        event(**february),
        event(OURS, 5, **february),
        event(OURS, 2, **OCTOBER),
    ]
    assert months_billed_by_events(events, "monthly-usage") == {
        "2028-02": AT + dt.timedelta(minutes=5),  # re-billed: its latest report
        "2026-10": AT + dt.timedelta(minutes=2),  # the consulting billing's event is not ours
    }


def at(minutes: int) -> dt.datetime:
    return AT + dt.timedelta(minutes=minutes)


def test_the_month_reported_last_is_closed_and_older_open_months_are_named() -> None:
    billed = {"2026-08": at(-900), "2026-10": at(0), "2026-09": at(-60)}
    assert months_to_close(billed, {}) == ("2026-10", ["2026-08", "2026-09"])


def test_a_month_closed_after_its_report_is_not_closed_again_but_a_later_report_is() -> None:
    billed = {"2026-09": at(-60), "2026-10": at(0)}
    # September was closed by hand after its report: only October is left, nothing named.
    assert months_to_close(billed, {"2026-09": at(-30)}) == ("2026-10", [])
    # Everything closed after its report (an event delivered late): nothing to close.
    assert months_to_close(billed, {"2026-09": at(-30), "2026-10": at(1)}) == (None, [])
    # October re-billed after it was closed: closed again.
    assert months_to_close({"2026-10": at(10)}, {"2026-10": at(1)}) == ("2026-10", [])


def test_close_commands_name_each_month() -> None:
    assert close_commands("me", ["2026-08", "2026-09"]) == (
        """airflow dags trigger me --conf '{"billing_period": "2026-08"}'; """
        """airflow dags trigger me --conf '{"billing_period": "2026-09"}'"""
    )


def test_events_of_no_billing_of_ours_name_no_month() -> None:
    with pytest.raises(ValueError, match=r"no asset event of the billing 'monthly-usage'.*consulting-hours"):
        months_billed_by_events([event(CONSULTING, **OCTOBER)], "monthly-usage")
    with pytest.raises(ValueError, match=r"events of: none"):
        months_billed_by_events([], "monthly-usage")


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
        months_billed_by_events([event(**extra)], "monthly-usage")
    assert f"the event of {OURS} at 2026-11-01T00:30:00+00:00" in str(raised.value)


def test_named_month_refuses_what_is_not_a_month() -> None:
    assert named_month("2026-12", "params.billing_period")["end"] == "2026-12-31"
    for value in ("2026-1", "26-10", "2026-00", 202610, None):
        with pytest.raises(ValueError, match=r"^params.billing_period: .* is not a month"):
            named_month(value, "params.billing_period")
