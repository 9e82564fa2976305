"""The Airflow names and behaviours that differ between Airflow 2.11 and 3.x and that
``apache-airflow-providers-common-compat`` does not cover: the one place in the provider that asks which
Airflow it runs on.

Everything common-compat does provide is imported from it directly (``airflow.providers.common.compat.sdk``
for ``BaseOperator``, the exceptions, ``mask_secret``...; ``...compat.connection`` for async connection reads).
DAG files may import the timetables from here to run on every supported Airflow (see docs/index.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.providers.common.compat.sdk import mask_secret
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

if AIRFLOW_V_3_0_PLUS:
    # The Task SDK's timetables describe the schedule; Airflow core's twins hold the rules (core_timetable).
    # AssetWatcher (event-driven scheduling) is Airflow 3's and common-compat does not offer it.
    from airflow.sdk import AssetOrTimeSchedule, AssetWatcher, CronDataIntervalTimetable, CronTriggerTimetable
else:
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[assignment,no-redef]
    from airflow.timetables.trigger import CronTriggerTimetable  # type: ignore[assignment,no-redef]

    # Airflow 2 has no event-driven scheduling: check AIRFLOW_V_3_0_PLUS before using it.
    AssetWatcher = None  # type: ignore[assignment,misc]

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AssetWatcher",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "TriggeringEvent",
    "amask_secret",
    "asset_or_time_schedule",
    "core_timetable",
    "run_task_states",
    "timetable_timezone",
    "triggering_events",
]


async def amask_secret(secret: str) -> None:
    """Register a secret with the masker from async code (a trigger, an async hook read).

    Airflow 3 has an async variant: the sync one would block the event loop on a call to the supervisor. On
    Airflow 2 the masker is in-process, so the sync call is safe.
    """
    if not AIRFLOW_V_3_0_PLUS:
        mask_secret(secret)
        return
    from airflow.sdk.log import amask_secret as sdk_amask_secret

    await sdk_amask_secret(secret)


def run_task_states(context: Any) -> dict[str, str]:
    """{task_id: state} of the running task's DAG run, read from a task.

    Airflow 3's tasks ask the Task SDK (``get_task_states``; they have no database); Airflow 2's read the
    run's task instances from the metadata database.
    """
    ti = context["ti"]
    if AIRFLOW_V_3_0_PLUS:
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        return {task: str(state) for task, state in states.items() if state is not None}
    return {
        other.task_id: str(getattr(other.state, "value", other.state))
        for other in context["dag_run"].get_task_instances()
        if other.state is not None
    }


def timetable_timezone(timetable: Any) -> dt.tzinfo | str | None:
    """The zone a cron timetable counts in: ``timezone`` on the Task SDK's timetables (3.x), ``_timezone``
    on Airflow core's (every 2.x timetable, and a core timetable given to a 3.x DAG). An "assets or time"
    schedule counts in its time part's zone (it has none of its own)."""
    inner = getattr(timetable, "timetable", None)
    if inner is not None and inner is not timetable:
        return timetable_timezone(inner)
    return getattr(timetable, "timezone", None) or getattr(timetable, "_timezone", None)


def asset_or_time_schedule(*, timetable: Any, assets: Any) -> Any:
    """A schedule that runs the DAG when ``assets`` get events *and* on ``timetable``: Airflow 3's
    ``AssetOrTimeSchedule``, Airflow 2's ``DatasetOrTimeSchedule`` (the same, with ``datasets=``)."""
    if AIRFLOW_V_3_0_PLUS:
        return AssetOrTimeSchedule(timetable=timetable, assets=assets)
    from airflow.timetables.datasets import DatasetOrTimeSchedule

    return DatasetOrTimeSchedule(timetable=timetable, datasets=assets)


@dataclass(frozen=True)
class TriggeringEvent:
    """One asset event that triggered the running DAG run (``triggering_asset_events`` on Airflow 3,
    ``triggering_dataset_events`` on Airflow 2)."""

    uri: str
    extra: Mapping[str, Any]
    timestamp: dt.datetime


def triggering_events(context: Mapping[str, Any]) -> list[TriggeringEvent]:
    """Every asset event the running DAG run was triggered by, once each, oldest first (empty for a run
    that assets did not trigger).

    Airflow 3 files an event under its asset *and* under each alias it was recorded through; only the
    assets are read here, so an event recorded through an alias is not counted twice.
    """
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import Asset

        accessor = context.get("triggering_asset_events") or {}
        raw = [event for key in accessor if isinstance(key, Asset) for event in accessor[key]]
        events = [TriggeringEvent(e.asset.uri, dict(e.extra or {}), e.timestamp) for e in raw]
    else:
        by_uri = context.get("triggering_dataset_events") or {}
        events = [
            TriggeringEvent(str(uri), dict(e.extra or {}), e.timestamp)
            for uri, uri_events in by_uri.items()
            for e in uri_events
        ]
    return sorted(events, key=lambda event: event.timestamp)


def core_timetable(timetable: Any) -> Any:
    """A timetable that can infer intervals (``infer_manual_data_interval``), or None.

    On Airflow 2 every timetable is core's and can. On 3.x a DAG file's Task SDK timetable only describes the
    schedule; its core twin, from the serializer's own mapping, holds the rules. A worker with the Task SDK
    only has no core, and None comes back.
    """
    if hasattr(timetable, "infer_manual_data_interval"):
        return timetable
    try:
        from airflow.serialization.encoders import coerce_to_core_timetable
    except ImportError:
        return None
    return coerce_to_core_timetable(timetable)


def connection_form_widgets(fields: dict[str, Any]) -> dict[str, Any]:
    """The connection form's extra fields as Airflow 2 reads them (``get_connection_form_widgets``), built
    from the same ``conn-fields`` declaration Airflow 3 reads from the provider info.

    Airflow 2 allows only text, integer, password and boolean fields: a number (the timeout) is a text
    field, which also takes the ``[connect, read]`` pair; an enum is a text field checked against its values.
    """
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import AnyOf, InputRequired, Optional

    widgets: dict[str, Any] = {}
    for name, field in fields.items():
        schema = field["schema"]
        kind = schema["type"] if isinstance(schema["type"], str) else schema["type"][0]
        validators: list[Any] = [Optional() if "null" in schema["type"] else InputRequired()]
        if "enum" in schema:
            validators.append(AnyOf(schema["enum"]))
        options = {"description": field["description"], "default": schema.get("default")}
        label = lazy_gettext(field["label"])
        if kind == "boolean":
            widgets[name] = BooleanField(label, **options)
        elif kind == "integer":
            widgets[name] = IntegerField(label, widget=BS3TextFieldWidget(), validators=validators, **options)
        else:
            widgets[name] = StringField(label, widget=BS3TextFieldWidget(), validators=validators, **options)
    return widgets


def ui_field_behaviour(behaviour: dict[str, Any]) -> dict[str, Any]:
    """``ui-field-behaviour`` of the provider info (Airflow 3's spelling, with dashes) as Airflow 2's
    ``get_ui_field_behaviour`` returns it (underscores)."""
    return {key.replace("-", "_"): value for key, value in behaviour.items()}
