"""The dates a DAG run gives the operators: one rule for every way a run is made (docs/operators.md).

* **Reference date** (what ``due_in_days`` counts from, and the day a create is issued on by default): the
  day the interval the run covers *ends* (see below), in the schedule's time zone. A monthly Europe/Berlin
  run over 2026-10-01 .. 2026-11-01 gives 2026-11-01, whether the scheduler made it (logical date = interval
  start, 2026-10-01), a backfill did, someone ran it by hand with the logical date 2026-11-01, or someone
  triggered it without a logical date on 3 November (it covers October too). So every run billing one month
  sends the same invoice body, and runs racing to bill it agree. Only a run whose schedule has no intervals
  (``CronTriggerTimetable``, ``schedule=None``: zero-length intervals) gives the day it was triggered
  (``dag_run.run_after``) in that zone. So does a run that asset events triggered: it was made because
  something happened, not for an interval, even when its DAG also has a time schedule (``AssetOrTimeSchedule``:
  inferring that schedule's last interval would date it up to a month back). Airflow 2 gives such a run the
  trigger time as its logical date. All of it is stored with the run when it is created, so every retry and
  every clear of a task computes the same date and sends the same body.
* **Data interval**: the run's; for a run without one, the last whole interval of the DAG's timetable
  before the run's trigger time (``timetable.infer_manual_data_interval(run_after=...)``: what Airflow gives
  a manual run with that logical date). A run triggered on 3 November of a monthly DAG covers October.
  An asset-triggered run covers no interval of the time schedule: it has the one Airflow gave it (Airflow 2:
  from its first to its last event), else none.

Nothing here talks to Enlivy or imports Airflow's core at module level: DAG files may import it.
The timetable's zone and rules are read through :mod:`enlivy_provider.compat` (Airflow 2 keeps them elsewhere).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enlivy_provider.compat import core_timetable, timetable_timezone

Interval = tuple[dt.datetime, dt.datetime]


def schedule_timezone(dag: Any) -> dt.tzinfo | None:
    """The time zone the DAG's schedule counts days in: the cron timetable's own zone when it has one
    (``CronDataIntervalTimetable(..., timezone="Europe/Berlin")`` with a UTC start_date), else the DAG's."""
    zone = timetable_timezone(getattr(dag, "timetable", None)) or getattr(dag, "timezone", None)
    if isinstance(zone, str):
        import pendulum

        return pendulum.timezone(zone)
    return zone if isinstance(zone, dt.tzinfo) else None


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _in_zone(moment: dt.datetime, zone: dt.tzinfo | None) -> dt.datetime:
    moment = _aware(moment)
    return moment.astimezone(zone) if zone is not None else moment


def _own_interval(context: Mapping[str, Any]) -> Interval | None:
    """The data interval the run was created with; Airflow leaves it out of runs without a logical date."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        return _aware(start), _aware(end)
    return None


def _run_after(context: Mapping[str, Any]) -> dt.datetime | None:
    run_after = getattr(context.get("dag_run"), "run_after", None)
    return _aware(run_after) if isinstance(run_after, dt.datetime) else None


def infer_interval(dag: Any, run_after: dt.datetime) -> Interval | None:
    """The last whole interval of the DAG's timetable before ``run_after`` (zero-length for timetables
    without intervals); None when the DAG has no timetable that can tell."""
    import pendulum

    timetable = getattr(dag, "timetable", None)
    timetable = core_timetable(timetable) if timetable is not None else None
    if timetable is None:
        return None
    interval = timetable.infer_manual_data_interval(run_after=pendulum.instance(_aware(run_after)))
    return _aware(interval.start), _aware(interval.end)


def run_type(context: Mapping[str, Any]) -> str | None:
    """How the run was made (``"scheduled"``, ``"manual"``, ``"backfill"``, ``"asset_triggered"``...), as a
    plain string on every Airflow version (an enum on the scheduler's side, a string in the Task SDK)."""
    kind = getattr(context.get("dag_run"), "run_type", None)
    return None if kind is None else str(getattr(kind, "value", kind))


def is_asset_triggered(context: Mapping[str, Any]) -> bool:
    """Whether asset events made this run (``asset_triggered``; ``dataset_triggered`` on Airflow 2)."""
    return run_type(context) in ("asset_triggered", "dataset_triggered")


def _triggered_at(context: Mapping[str, Any]) -> dt.datetime | None:
    """When the run was triggered: ``run_after``, or on Airflow 2 (no ``run_after``) the logical date."""
    logical = context.get("logical_date")
    return _run_after(context) or (_aware(logical) if isinstance(logical, dt.datetime) else None)


def run_data_interval(context: Mapping[str, Any]) -> Interval | None:
    """The interval a run covers: its own data interval, else (no logical date) the last whole interval of
    the DAG's timetable before the run's trigger time. Aware datetimes; None if neither can be known, and
    for an asset-triggered run without an interval of its own."""
    interval = _own_interval(context)
    if interval is not None:
        return interval
    if is_asset_triggered(context):
        return None
    run_after = _run_after(context)
    return infer_interval(context.get("dag"), run_after) if run_after is not None else None


def reference_date(context: Mapping[str, Any]) -> dt.date | None:
    """The day invoices of this run are dated from (see the module docstring); None outside a run."""
    if is_asset_triggered(context):
        anchor = _triggered_at(context)
        return _in_zone(anchor, schedule_timezone(context.get("dag"))).date() if anchor else None
    interval = run_data_interval(context)
    anchor = interval[1] if interval is not None and interval[1] > interval[0] else _run_after(context)
    if anchor is None:
        return None
    return _in_zone(anchor, schedule_timezone(context.get("dag"))).date()


@dataclass(frozen=True)
class RunInfo:
    """What the invoice operators take from the run: the reference date (for ``due_in_days`` and the
    default ``issued_at``) and the data interval (for ``billing_period="data_interval"``), both in the
    schedule's time zone."""

    reference_date: dt.date | None
    data_interval: Interval | None

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> RunInfo:
        # Whole days in the schedule's zone: a Europe/Berlin month starts at 22:00 or 23:00 UTC the day before.
        zone = schedule_timezone(context.get("dag"))
        interval = run_data_interval(context)
        return cls(
            reference_date=reference_date(context),
            data_interval=(
                (_in_zone(interval[0], zone), _in_zone(interval[1], zone)) if interval is not None else None
            ),
        )
