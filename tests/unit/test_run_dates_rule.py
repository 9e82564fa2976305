"""enlivy_provider.run_dates: the one rule for the reference date and the interval a run covers.

Task contexts as Airflow 3 builds them (task_runner.get_template_context): a run with a logical date has
``data_interval_start``/``_end``; a run without one (CLI/REST trigger) has neither, only ``dag_run``.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest

from enlivy_provider.compat import CronDataIntervalTimetable, CronTriggerTimetable
from enlivy_provider.invoices.payload import build_invoice_draft, build_update_payload
from enlivy_provider.run_dates import RunInfo, run_data_interval

BERLIN = "Europe/Berlin"
MONTHLY = CronDataIntervalTimetable("0 0 1 * *", timezone=BERLIN)


def context(timetable: Any, run_after: dt.datetime, interval: tuple[dt.datetime, dt.datetime] | None) -> dict:
    dag = SimpleNamespace(timetable=timetable, timezone=pendulum.timezone("UTC"))
    ctx: dict[str, Any] = {"dag": dag, "dag_run": SimpleNamespace(run_after=run_after)}
    if interval is not None:
        ctx["data_interval_start"], ctx["data_interval_end"] = interval
    return ctx


def berlin(*args: int) -> dt.datetime:
    return pendulum.datetime(*args, tz=BERLIN)


def test_scheduled_run_is_dated_on_the_day_its_interval_ends() -> None:
    # The scheduler's October run: logical date 2026-10-01, created after the interval ends (run_after).
    october = (berlin(2026, 10, 1), berlin(2026, 11, 1))
    run = RunInfo.from_context(context(MONTHLY, berlin(2026, 11, 1), october))
    assert run.reference_date == dt.date(2026, 11, 1)
    assert run.data_interval == october
    assert [d.date() for d in run.data_interval] == [dt.date(2026, 10, 1), dt.date(2026, 11, 1)]


def test_the_interval_end_is_taken_in_the_schedules_zone() -> None:
    # 2026-11-01 00:00 Berlin is 2026-10-31 23:00 UTC: the day is 1 November, not 31 October.
    october = (berlin(2026, 10, 1).in_timezone("UTC"), berlin(2026, 11, 1).in_timezone("UTC"))
    assert RunInfo.from_context(context(MONTHLY, october[1], october)).reference_date == dt.date(2026, 11, 1)


def test_a_retry_days_later_computes_the_same_dates() -> None:
    # Nothing in the rule reads the clock: the same run gives the same dates whenever its task runs.
    ctx = context(MONTHLY, berlin(2026, 11, 3, 10, 30), None)
    assert RunInfo.from_context(ctx) == RunInfo.from_context(dict(ctx))


def test_run_without_a_logical_date_covers_the_last_whole_interval_before_its_trigger() -> None:
    run = RunInfo.from_context(context(MONTHLY, berlin(2026, 11, 3, 10, 30), None))
    assert run.reference_date == dt.date(2026, 11, 1)  # the end of the interval it covers, as if scheduled
    assert run.data_interval == (berlin(2026, 10, 1), berlin(2026, 11, 1))


def test_trigger_just_after_a_berlin_midnight_counts_the_berlin_day() -> None:
    run = RunInfo.from_context(context(MONTHLY, berlin(2026, 12, 1, 0, 30), None))  # 30 Nov 23:30 UTC
    assert run.reference_date == dt.date(2026, 12, 1)
    assert run.data_interval == (berlin(2026, 11, 1), berlin(2026, 12, 1))


def test_zero_length_interval_is_dated_on_the_trigger_day() -> None:
    # CronTriggerTimetable: logical date = run_after, interval of no length (here a manual run whose
    # logical date was given as 1 November but which was triggered on 4 November).
    timetable = CronTriggerTimetable("0 6 1 * *", timezone=BERLIN)
    moment = berlin(2026, 11, 1, 6)
    run = RunInfo.from_context(context(timetable, berlin(2026, 11, 4, 9), (moment, moment)))
    assert run.reference_date == dt.date(2026, 11, 4)
    assert run.data_interval == (moment, moment)  # "data_interval" billing refuses it: shorter than a day


def test_daily_utc_export_run_without_a_logical_date_covers_yesterday() -> None:
    daily = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")
    interval = run_data_interval(context(daily, pendulum.datetime(2026, 11, 25, 0, 30), None))
    assert interval == (pendulum.datetime(2026, 11, 24), pendulum.datetime(2026, 11, 25))


def test_outside_a_run_there_is_no_reference_date() -> None:
    assert RunInfo.from_context({}) == RunInfo(reference_date=None, data_interval=None)


@pytest.mark.parametrize(
    ("invoice", "issued", "due"),
    [
        ({"currency": "EUR", "due_in_days": 14}, "2026-11-01", "2026-11-15"),  # issued on the reference date
        ({"currency": "EUR", "issued_at": "2026-11-05", "due_in_days": 14}, "2026-11-05", "2026-11-19"),
        ({"currency": "EUR", "due_at": "2026-12-01"}, None, "2026-12-01"),  # no term to date: left to Enlivy
        ({"currency": "EUR"}, None, None),
    ],
)
def test_a_create_counting_its_term_from_the_reference_date_is_issued_on_it(
    invoice: dict[str, Any], issued: str | None, due: str | None
) -> None:
    line = {"name": "Support", "quantity": 1, "price": "10.00"}
    draft, issues = build_invoice_draft(
        line_items=[line], invoice=invoice, reference_date=dt.date(2026, 11, 1)
    )
    assert issues == [] and draft is not None
    assert (draft.fields.get("issued_at"), draft.fields.get("due_at")) == (issued, due)


def test_an_update_does_not_move_the_issue_date() -> None:
    payload, issues = build_update_payload({"due_in_days": 30}, reference_date=dt.date(2026, 11, 1))
    assert issues == [] and payload == {"due_at": "2026-12-01"}


def _asset_or_monthly_4th() -> Any:
    """The month-end DAG's schedule: the billing's asset alias, or 06:00 Berlin on the 4th."""
    from airflow.providers.common.compat.sdk import AssetAlias

    from enlivy_provider.compat import asset_or_time_schedule

    cron = CronDataIntervalTimetable("0 6 4 * *", timezone=BERLIN)
    return asset_or_time_schedule(timetable=cron, assets=[AssetAlias(name="enlivy_billed_invoices")])


def test_asset_or_time_schedule_counts_days_in_its_time_parts_zone() -> None:
    from enlivy_provider.run_dates import schedule_timezone

    dag = SimpleNamespace(timetable=_asset_or_monthly_4th(), timezone=pendulum.timezone("UTC"))
    zone = schedule_timezone(dag)
    assert zone is not None and str(getattr(zone, "name", zone)) == BERLIN


def test_asset_triggered_run_is_dated_on_its_trigger_day_not_on_the_time_schedules_last_interval() -> None:
    # Billing reported October at 01:30 Berlin on 1 November (00:30 UTC). The "or time" part's last whole
    # interval before then is 4 Sep .. 4 Oct: dating the run 4 October would close September.
    triggered = berlin(2026, 11, 1, 1, 30).in_timezone("UTC")
    ctx = context(_asset_or_monthly_4th(), triggered, None)
    ctx["dag"].timezone = pendulum.timezone("UTC")
    ctx["dag_run"].run_type = "asset_triggered"
    run = RunInfo.from_context(ctx)
    assert run.reference_date == dt.date(2026, 11, 1)
    assert run.data_interval is None  # it covers no interval of the cron part


def test_airflow2_dataset_triggered_run_is_dated_on_its_logical_date() -> None:
    # Airflow 2: no run_after; the logical date is the trigger time, the interval spans the events.
    triggered = berlin(2026, 11, 1, 0, 30)
    first_event = berlin(2026, 10, 31, 23, 50)
    ctx = context(_asset_or_monthly_4th(), triggered, (first_event, triggered))
    ctx["dag_run"] = SimpleNamespace(run_type="dataset_triggered")
    ctx["logical_date"] = triggered
    run = RunInfo.from_context(ctx)
    assert run.reference_date == dt.date(2026, 11, 1)
    assert run.data_interval == (first_event, triggered)
