"""Monthly billing of many customers, in chunks on several workers.

The pattern for a customer base too large for one task (docs/recurring-billing.md, "Billing at scale"):

1. ``export_invoice_specs`` gives the month's invoice specs as a JSON Lines file, one spec per customer
   (the bulk operator's spec: ``key``, ``customer``, ``line_items``, ``invoice``). Here it hands out the file
   shipped in ``data/``; in production it is your export (a query written to ``s3://.../{{ ds }}.jsonl``).
2. ``plan_chunks`` (:class:`EnlivyPlanInvoiceChunksOperator`) cuts the file into ``chunks`` contiguous
   chunks and returns one small descriptor per chunk (a URL, byte offsets, a digest) - never the rows.
3. ``create_invoices`` (:class:`EnlivyCreateInvoicesOperator`, mapped with ``.expand(chunk=...)``) bills one
   chunk per task instance, on whichever worker picks it up, at most ``CHUNKS_AT_ONCE`` at a time, each
   within its share of the API quota. Every invoice is one billing (customer, month, ``BILLING_KEY``): a
   retried chunk, a re-run, a second run cut into other chunks, or two chunks given the same customer all
   meet the invoice that exists instead of making another.
4. ``summary`` (:class:`EnlivySummarizeInvoiceChunksOperator`) adds the chunk results up, logs a table and
   the run's totals, and fails when a chunk did not finish (runs whatever the chunks did).

Scheduling is the monthly usage DAG's: the run started on 1 November (Berlin) bills 1-31 October, issued on
1 November. Configuration (read when the file is parsed, no API call): ``ENLIVY_REQUESTS_PER_SECOND``, the
API quota of the token (default 20), shared by the ``ENLIVY_CHUNKS_AT_ONCE`` chunk tasks (default 4).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from enlivy_provider.compat import CronDataIntervalTimetable
from enlivy_provider.operators.chunks import (
    EnlivyPlanInvoiceChunksOperator,
    EnlivySummarizeInvoiceChunksOperator,
)
from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator

DAG_ID = "enlivy_billing_in_chunks"
TIMEZONE = "Europe/Berlin"
HERE = Path(__file__).resolve().parent
# What this DAG bills (carried on every invoice): the same in every chunk, every run, every retry.
BILLING_KEY = "monthly-usage-chunked"
REQUESTS_PER_SECOND = float(os.environ.get("ENLIVY_REQUESTS_PER_SECOND", "20"))
CHUNKS_AT_ONCE = int(os.environ.get("ENLIVY_CHUNKS_AT_ONCE", "4"))

with DAG(
    dag_id=DAG_ID,
    description="Monthly invoices for many customers: a specs file cut into chunks billed by mapped tasks",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    params={
        "specs_file": Param(
            "data/invoice_specs.jsonl",
            type="string",
            description="The month's invoice specs, JSON Lines: a URL or a path relative to the dags folder",
        ),
        "chunks": Param(
            4, type="integer", minimum=1, description="How many chunks (mapped tasks) to cut it into"
        ),
    },
    tags=["enlivy", "billing", "example"],
    doc_md=__doc__,
) as dag:

    @task
    def export_invoice_specs(params: dict[str, Any]) -> str:
        """The month's specs file (stands in for your export): its URL, resolved on the worker."""
        value = str(params["specs_file"])
        if "://" in value or Path(value).is_absolute():
            return value
        return str(HERE / value)

    plan = EnlivyPlanInvoiceChunksOperator(
        task_id="plan_chunks", source=export_invoice_specs(), chunks="{{ params.chunks }}", retries=0
    )

    create_invoices = EnlivyCreateInvoicesOperator.partial(
        task_id="create_invoices",
        billing_key=BILLING_KEY,
        billing_period="data_interval",  # the month the run covers, in the schedule's zone
        invoice_defaults={
            "currency": "EUR",
            "status": "pending",
            "payment_method": "bank_transfer",
            "delivery_method": "email",
            "due_in_days": 14,
        },
        if_exists="skip",  # the billing's invoice exists (an earlier attempt, run or chunk made it): reuse it
        max_concurrency=8,
        # The quota is the token's: the chunk tasks running at once share it.
        max_requests_per_second=REQUESTS_PER_SECOND / CHUNKS_AT_ONCE,
        max_active_tis_per_dagrun=CHUNKS_AT_ONCE,
    ).expand(chunk=plan.output)

    EnlivySummarizeInvoiceChunksOperator(
        task_id="summary", results=create_invoices.output, chunks=plan.output
    )
