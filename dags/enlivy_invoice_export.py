"""Daily ETL: export the Enlivy invoices updated during each day, with their line items, for the data team.

Every run exports the invoices whose ``updated_at`` falls in its data interval (one UTC day) to

    <destination>/date=YYYY-MM-DD/invoices.jsonl   one invoice per line, with line_items
    <destination>/date=YYYY-MM-DD/invoices.csv     the flat invoice table

and replaces that partition when the run is repeated (clear, backfill, catchup). A run triggered without a
logical date (``airflow dags trigger``, the REST API, the UI) has no data interval: it exports the last whole
UTC day before it was triggered, i.e. yesterday. See docs/etl-export.md.

Destination, first match wins:
1. the run's ``destination`` Param (``airflow dags trigger enlivy_invoice_export -c '{"destination": "..."}'``),
2. the Airflow Variable ``enlivy_export_destination`` (e.g. ``s3://aws_default@data-lake/enlivy/invoices``),
3. ``file://$AIRFLOW_HOME/enlivy-export`` on the worker's local disk.

Every file written is recorded as an asset event on the asset alias ``enlivy_invoice_export_files``: URI the
file's URL without connection id (``file:///.../date=2026-10-01/invoices.csv``, ``s3://bucket/...``), extra
``{"date", "rows", "format"}``. A DAG scheduled on that alias runs once an export has written its files; a
re-run of a day records them again (the files were replaced).

The schedule is a *data-interval* timetable in UTC: Airflow 3's plain ``schedule="@daily"`` gives runs a
zero-length data interval, which would export nothing. This file only declares the DAG: no API calls and no
imports beyond the operator at parse time.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import DAG, AssetAlias, Param

from enlivy_provider.compat import CronDataIntervalTimetable
from enlivy_provider.operators.export import EnlivyExportInvoicesOperator

DESTINATION_VARIABLE = "enlivy_export_destination"
# The export records one asset event per file it wrote on this alias (the files' URIs depend on the run's
# destination and day, so they cannot be declared here); a data team's DAG is scheduled on the alias.
EXPORTED_FILES = AssetAlias(name="enlivy_invoice_export_files")
DEFAULT_DESTINATION = "file://" + os.path.join(
    os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"), "enlivy-export"
)

with DAG(
    dag_id="enlivy_invoice_export",
    description="Export invoices updated each day (with line items) to JSON Lines + CSV partitions",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    default_args={
        "retries": 3,
        "retry_delay": pendulum.duration(minutes=2),
        "retry_exponential_backoff": True,
    },
    params={
        "destination": Param(
            None,
            type=["null", "string"],
            description=(
                "ObjectStoragePath URL of the export root, e.g. file:///data/enlivy or "
                f"s3://aws_default@bucket/enlivy. Empty: the Variable {DESTINATION_VARIABLE}, "
                f"else {DEFAULT_DESTINATION}."
            ),
        )
    },
    user_defined_macros={
        "destination_variable": DESTINATION_VARIABLE,
        "default_destination": DEFAULT_DESTINATION,
    },
    tags=["enlivy", "etl", "example"],
    doc_md=__doc__,
) as dag:
    EnlivyExportInvoicesOperator(
        task_id="export_invoices",
        destination="{{ params.destination or var.value.get(destination_variable, default_destination) }}",
        outlets=[EXPORTED_FILES],
        # updated_from / updated_to default to the run's data interval, or, without one, to the last whole
        # day before the trigger time ({{ data_interval_start }} would be undefined in such a run).
    )
